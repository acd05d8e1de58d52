"""The only code that touches the conversations and messages collections."""

from datetime import datetime

from app.core.db import Document, MongoDatabase


class ConversationRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._conversations = db["conversations"]
        self._messages = db["messages"]

    async def get(self, chatbot_id: str, conversation_id: str) -> Document | None:
        query = {"id": conversation_id, "chatbot_id": chatbot_id}
        return await self._conversations.find_one(query, {"_id": 0})

    async def create(self, conversation: Document) -> None:
        await self._conversations.insert_one(conversation)

    async def add_message(self, message: Document, now: datetime) -> None:
        await self._messages.insert_one(message)
        await self._conversations.update_one(
            {"id": message["conversation_id"]},
            {"$set": {"last_message_at": now}, "$inc": {"message_count": 1}},
        )
