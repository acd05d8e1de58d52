"""The chat turn's reads and writes of conversations and messages. Analytics and the admin
counts read them too, through their own repositories; a chatbot's deletion purges them
(`ChatbotRepository.purge`)."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

from pymongo.asynchronous.cursor import AsyncCursor

from app.chat.documents import ConversationDocument, FeedbackDocument, MessageDocument
from app.core.db import Document, MongoDatabase, without_id
from app.core.read_policy import ReadRouter
from app.core.schemas import after_cursor


class ConversationRepository:
    def __init__(self, db: MongoDatabase, reads: ReadRouter) -> None:
        self._conversations = db["conversations"]
        self._messages = db["messages"]
        # Listings and exports may read from secondaries, as the read policy says.
        self._reading = reads.database("conversations")

    async def get(self, chatbot_id: str, conversation_id: str) -> ConversationDocument | None:
        query = {"id": conversation_id, "chatbot_id": chatbot_id}
        found = await self._conversations.find_one(query, {"_id": 0})
        return cast("ConversationDocument | None", found)

    async def create(self, conversation: ConversationDocument) -> None:
        await self._conversations.insert_one(cast("Document", conversation))

    async def add_message(self, message: MessageDocument, now: datetime) -> None:
        await self._messages.insert_one(cast("Document", message))
        await self._conversations.update_one(
            {"id": message["conversation_id"]},
            {"$set": {"last_message_at": now}, "$inc": {"message_count": 1}},
        )

    async def list_for_chatbot(
        self, chatbot_id: str, cursor: str | None, limit: int
    ) -> list[ConversationDocument]:
        query: dict[str, Any] = {"chatbot_id": chatbot_id, **after_cursor(cursor, "started_at")}
        found = self._reading["conversations"].find(query, {"_id": 0})
        newest = await found.sort([("started_at", -1), ("id", -1)]).limit(limit).to_list()
        return cast("list[ConversationDocument]", newest)

    async def messages(
        self, conversation_id: str, after: datetime | None, limit: int
    ) -> list[MessageDocument]:
        query: dict[str, Any] = {"conversation_id": conversation_id}
        if after is not None:
            query["timestamp"] = {"$gt": after}
        found = self._reading["messages"].find(query, {"_id": 0})
        oldest = await found.sort([("timestamp", 1), ("id", 1)]).limit(limit).to_list()
        return cast("list[MessageDocument]", oldest)

    async def all_messages(self, chatbot_id: str) -> AsyncIterator[MessageDocument]:
        """Every message of the bot, oldest first, read in batches (for exports)."""
        found = cast(
            "AsyncCursor[MessageDocument]",
            self._reading["messages"].find({"chatbot_id": chatbot_id}, {"_id": 0}),
        )
        async for message in found.sort([("timestamp", 1), ("id", 1)]).batch_size(500):
            yield message

    async def message(self, chatbot_id: str, message_id: str) -> MessageDocument | None:
        found = await self._messages.find_one(
            {"id": message_id, "chatbot_id": chatbot_id}, {"_id": 0}
        )
        return cast("MessageDocument | None", found)

    async def question_before(self, answer: MessageDocument) -> MessageDocument | None:
        """The visitor's question an answer replied to: the latest question before it."""
        found = self._messages.find(
            {
                "conversation_id": answer["conversation_id"],
                "role": "user",
                "timestamp": {"$lte": answer["timestamp"]},
            },
            {"_id": 0},
        )
        latest = await found.sort([("timestamp", -1), ("id", -1)]).limit(1).to_list()
        return cast("MessageDocument | None", latest[0] if latest else None)

    async def recent_turns(
        self, conversation_id: str, before_id: str, limit: int = 6
    ) -> list[dict[str, str]]:
        """The last turns before a message, oldest first, as chat-completion messages."""
        found = self._messages.find(
            {"conversation_id": conversation_id, "id": {"$ne": before_id}},
            {"_id": 0, "role": 1, "content": 1},
        )
        latest = await found.sort([("timestamp", -1), ("id", -1)]).limit(limit).to_list()
        # A person's replies in a handoff read as the assistant's side to the model.
        return [
            {"role": "assistant" if m["role"] == "agent" else m["role"], "content": m["content"]}
            for m in reversed(latest)
        ]

    async def delete(self, conversation_id: str) -> None:
        await self._messages.delete_many({"conversation_id": conversation_id})
        await self._conversations.delete_one({"id": conversation_id})

    async def set_feedback(
        self, chatbot_id: str, message_id: str, feedback: FeedbackDocument
    ) -> MessageDocument | None:
        """Stores the feedback on an answer; returns the answer as it was before."""
        before = await self._messages.find_one_and_update(
            {"id": message_id, "chatbot_id": chatbot_id, "role": "assistant"},
            {"$set": {"feedback": feedback}},
        )
        return cast("MessageDocument | None", without_id(before))
