"""Platform-wide counts over the product's collections."""

from app.core.db import MongoDatabase


class PlatformRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._db = db

    async def count(self, collection: str) -> int:
        return await self._db[collection].count_documents({})
