"""The only code that touches the api_keys collection."""

from datetime import datetime

from app.core.db import Document, MongoDatabase


class ApiKeyRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._keys = db["api_keys"]

    async def insert(self, key: Document) -> None:
        await self._keys.insert_one(key)

    async def list_for_chatbot(self, chatbot_id: str) -> list[Document]:
        found = self._keys.find({"chatbot_id": chatbot_id, "revoked_at": None}, {"_id": 0})
        return await found.sort("created_at", -1).to_list()

    async def revoke(self, chatbot_id: str, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"id": key_id, "chatbot_id": chatbot_id, "revoked_at": None},
            {"$set": {"revoked_at": now}},
        )
        return result.modified_count == 1

    async def live_by_hash(self, key_hash: str) -> Document | None:
        return await self._keys.find_one({"key_hash": key_hash, "revoked_at": None}, {"_id": 0})

    async def touch(self, key_id: str, now: datetime) -> None:
        await self._keys.update_one({"id": key_id}, {"$set": {"last_used_at": now}})
