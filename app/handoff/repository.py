"""The only code that touches handoff state: the `handoff` field of conversations, the messages
agents write, the once-only steps (handoff_marks) and the chatbot_agents collection. A step two
callers may race for (claim, close, fallback) is decided by a unique index, then applied."""

from collections import Counter
from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from app.core import rollups
from app.core.db import Document, MongoDatabase, is_duplicate_key, without_id
from app.core.errors import ConflictError
from app.core.rollups import HourTally, RollupWriter
from app.core.schemas import after_cursor
from app.handoff.documents import (
    AgentDocument,
    HandedOffConversation,
    HandoffDocument,
    HandoffMarkDocument,
    HandoffMessageDocument,
)
from app.handoff.schemas import OPEN_STATES, HandoffState

_FIELDS = {"_id": 0, "id": 1, "chatbot_id": 1, "user_id": 1, "session_id": 1, "handoff": 1}
_OPEN = [state.value for state in OPEN_STATES]


class HandoffRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._conversations = db["conversations"]
        self._messages = db["messages"]
        self._marks = db["handoff_marks"]
        self._rollups = RollupWriter(db)

    async def conversation(
        self, chatbot_id: str, conversation_id: str
    ) -> HandedOffConversation | None:
        found = await self._conversations.find_one(
            {"id": conversation_id, "chatbot_id": chatbot_id}, _FIELDS
        )
        return cast("HandedOffConversation | None", found)

    async def _change(
        self, query: dict[str, Any], fields: dict[str, Any]
    ) -> HandedOffConversation | None:
        updated = await self._conversations.find_one_and_update(
            query, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        return cast("HandedOffConversation | None", without_id(updated))

    async def open(
        self, chatbot_id: str, conversation_id: str, handoff: HandoffDocument
    ) -> HandedOffConversation | None:
        """Starts a handoff unless one is waiting or active; None when one is (or no such
        conversation)."""
        return await self._change(
            {"id": conversation_id, "chatbot_id": chatbot_id, "handoff.state": {"$nin": _OPEN}},
            {"handoff": handoff},
        )

    async def mark(self, mark: HandoffMarkDocument) -> bool:
        """Records a once-only step of a handoff; False when it was recorded already (by
        whoever was first: the unique index decides, on MongoDB and FerretDB alike)."""
        try:
            await self._marks.insert_one(cast("Document", mark))
        except OperationFailure as error:
            if is_duplicate_key(error):
                return False
            raise
        return True

    async def claim(
        self,
        conversation_id: str,
        handoff_id: str,
        user_id: str,
        agent_name: str,
        now: datetime,
    ) -> HandedOffConversation | None:
        """Waiting → active for the agent who recorded the claim; None when it was closed."""
        return await self._change(
            {
                "id": conversation_id,
                "handoff.id": handoff_id,
                "handoff.state": HandoffState.WAITING.value,
            },
            {
                "handoff.state": HandoffState.ACTIVE.value,
                "handoff.claimed_at": now,
                "handoff.claimed_by": user_id,
                "handoff.agent_name": agent_name,
            },
        )

    async def close(
        self, conversation_id: str, handoff_id: str, by: str, now: datetime
    ) -> HandedOffConversation | None:
        """Closes the handoff whose close was recorded."""
        return await self._change(
            {"id": conversation_id, "handoff.id": handoff_id, "handoff.state": {"$in": _OPEN}},
            {
                "handoff.state": HandoffState.CLOSED.value,
                "handoff.closed_at": now,
                "handoff.closed_by": by,
            },
        )

    async def overdue(self, now: datetime, limit: int) -> list[HandedOffConversation]:
        """Waiting handoffs past their deadline whose visitor was not yet sent the fallback."""
        found = self._conversations.find(
            {
                "handoff.state": HandoffState.WAITING.value,
                "handoff.deadline": {"$lte": now},
                "handoff.fallback_sent_at": None,
            },
            _FIELDS,
        )
        return cast("list[HandedOffConversation]", await found.limit(limit).to_list())

    async def fallback_sent(self, conversation_id: str, handoff_id: str, now: datetime) -> None:
        await self._conversations.update_one(
            {"id": conversation_id, "handoff.id": handoff_id},
            {"$set": {"handoff.fallback_sent_at": now}},
        )

    async def add_message(self, message: HandoffMessageDocument) -> None:
        await self._messages.insert_one(cast("Document", message))
        await self._conversations.update_one(
            {"id": message["conversation_id"]},
            {"$set": {"last_message_at": message["timestamp"]}, "$inc": {"message_count": 1}},
        )
        # Counted as the analytics recount counts any reply that is not the visitor's; best
        # effort: a failed rollup write is logged and counted, the reply stays stored.
        reply = HourTally(counts=Counter({rollups.MESSAGES: 1, rollups.ANSWERS: 1}))
        await self._rollups.record(message["chatbot_id"], message["timestamp"], reply)

    async def unanswered_since(self, conversation_id: str, since: datetime | None) -> int:
        """The bot's "I don't know" answers in the conversation (after `since`, if given)."""
        query: dict[str, Any] = {
            "conversation_id": conversation_id,
            "role": "assistant",
            "answered": False,
        }
        if since is not None:
            query["timestamp"] = {"$gt": since}
        return await self._messages.count_documents(query)

    async def list_for_chatbot(
        self, chatbot_id: str, state: HandoffState | None, cursor: str | None, limit: int
    ) -> list[HandedOffConversation]:
        """The bot's handoffs (in one state, or all), most recently requested first."""
        query: dict[str, Any] = {
            "chatbot_id": chatbot_id,
            "handoff.state": state.value if state is not None else {"$exists": True},
            **after_cursor(cursor, "handoff.requested_at"),
        }
        found = self._conversations.find(query, _FIELDS).sort(
            [("handoff.requested_at", -1), ("id", -1)]
        )
        return cast("list[HandedOffConversation]", await found.limit(limit).to_list())


class AgentAlreadyInvitedError(ConflictError):
    def __init__(self) -> None:
        super().__init__("This account is already an agent of this chatbot")


class AgentRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._agents = db["chatbot_agents"]

    async def insert(self, agent: AgentDocument) -> None:
        try:
            await self._agents.insert_one(cast("Document", agent))
        except OperationFailure as error:
            if is_duplicate_key(error):
                raise AgentAlreadyInvitedError() from None
            raise

    async def of_user(self, chatbot_id: str, user_id: str) -> AgentDocument | None:
        found = await self._agents.find_one(
            {"chatbot_id": chatbot_id, "user_id": user_id}, {"_id": 0}
        )
        return cast("AgentDocument | None", found)

    async def list_for_chatbot(
        self, chatbot_id: str, cursor: str | None, limit: int
    ) -> list[AgentDocument]:
        query = {"chatbot_id": chatbot_id, **after_cursor(cursor)}
        found = self._agents.find(query, {"_id": 0}).sort([("created_at", -1), ("id", -1)])
        return cast("list[AgentDocument]", await found.limit(limit).to_list())

    async def user_ids(self, chatbot_id: str) -> list[str]:
        found = self._agents.find({"chatbot_id": chatbot_id}, {"_id": 0, "user_id": 1})
        return [agent["user_id"] for agent in await found.to_list()]

    async def count(self, chatbot_id: str) -> int:
        return await self._agents.count_documents({"chatbot_id": chatbot_id})

    async def delete(self, chatbot_id: str, agent_id: str) -> bool:
        result = await self._agents.delete_one({"chatbot_id": chatbot_id, "id": agent_id})
        return result.deleted_count == 1

    async def remove_unused(self, agent_id: str) -> None:
        await self._agents.delete_one({"id": agent_id})
