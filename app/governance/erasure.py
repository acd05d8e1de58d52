"""Carrying out erasures: a housekeeping round advances every requested erasure, a batch at a time.

Each step deletes in bounded batches and adds what it deleted to the erasure's counts before
the next batch, so the erasure document always says how far it got. Nothing is marked done
step by step: a deletion that already happened finds nothing the second time, so a round
killed midway (or a second round over a finished subject) just runs the steps again, and
deletes only what is left. The subject's ids stay on the document until the last step, then
only their salted hash is kept.

Visitor (one bot): the end user's sessions are looked up first; then the conversations of those
sessions (or of that end user), each batch with its messages (and their feedback), handoff
marks, leads and the webhook deliveries that name it, the conversations last; then the
sessions' remaining leads and the deliveries naming the sessions or end user (as the JSON
member's whole value); then any document of the bot, in any collection, that names the
session or end user; then the sessions' quota counters in Redis (under the bot's owner).

Account: waits while the account is active (it is suspended when the erasure is requested);
each bot the account owns is hidden and purged with the chatbot cascade; then every document, in
any collection, that belongs to the account (`user_id`, or `owner_id`); the account itself; the
Redis keys in the account's own namespaces.

A visitor's erasure fails after MAX_FAILURES rounds in a row; an account's is retried every
round (its owner, suspended, cannot ask again), with an error logged each time.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.chatbots.repository import ChatbotRepository
from app.core.periodic import Periodic
from app.core.resources import Resources
from app.core.security import utcnow
from app.governance.documents import (
    ErasureDocument,
    ErasureKind,
    ErasureStatus,
    SubjectDocument,
)
from app.governance.metrics import ERASURES_FINISHED, GOVERNANCE_DELETED
from app.governance.repository import ErasureRepository, StoredData, naming

logger = logging.getLogger(__name__)
MAX_FAILURES = 5  # rounds failing in a row before an erasure is reported failed
ERASURES_PER_ROUND = 20

Progress = Callable[[str, int], Awaitable[None]]


class ConversationCascade:
    """Deletes conversations with everything stored about them (retention uses it too)."""

    def __init__(self, data: StoredData) -> None:
        self._data = data

    async def drain(self, collection: str, query: dict[str, Any], progress: Progress) -> None:
        """Deletes every matching document, one batch at a time."""
        while deleted := await self._data.delete_batch(collection, query):
            await progress(collection, deleted)

    async def delete(
        self, chatbot_id: str, conversation_ids: list[str], progress: Progress, *, deliveries: bool
    ) -> None:
        """`deliveries`: also the webhook deliveries whose body names the conversations
        (retention deletes old deliveries by age instead)."""
        among = {"$in": conversation_ids}
        await self.drain("messages", {"conversation_id": among}, progress)
        await self.drain("handoff_marks", {"conversation_id": among}, progress)
        await self.drain("leads", {"chatbot_id": chatbot_id, "conversation_id": among}, progress)
        if deliveries:
            body = naming(("id", "conversation_id"), conversation_ids)
            await self.drain(
                "webhook_deliveries", {"chatbot_id": chatbot_id, "body": body}, progress
            )
        await self.drain("conversations", {"id": among}, progress)


class Eraser:
    """Advances one erasure to its end (see the module's documentation)."""

    def __init__(self, resources: Resources) -> None:
        self._erasures = ErasureRepository(resources.db)
        self._data = StoredData(resources)
        self._conversations = ConversationCascade(self._data)
        self._chatbots = ChatbotRepository(resources)

    async def advance_all(self) -> int:
        """One round: every unfinished erasure, oldest first; returns how many were finished."""
        finished = 0
        for erasure in await self._erasures.unfinished(ERASURES_PER_ROUND):
            try:
                finished += await self.run(erasure)
            except Exception as error:
                # Whatever went wrong, the erasures after this one still get their turn.
                await self._record_failure(erasure, error)
        return finished

    async def _record_failure(self, erasure: ErasureDocument, error: Exception) -> None:
        account = erasure["kind"] == ErasureKind.ACCOUNT
        logger.error(
            "erasure %s (%s) stopped; it goes on next round",
            erasure["id"],
            erasure["kind"],
            exc_info=error,
        )
        try:
            failed = await self._erasures.record_failure(
                erasure["id"], type(error).__name__, utcnow(), None if account else MAX_FAILURES
            )
        except Exception:
            logger.exception("erasure %s: its failure could not be recorded", erasure["id"])
            return
        if not account and failed is not None and failed["failures"] >= MAX_FAILURES:
            ERASURES_FINISHED.labels(erasure["kind"], ErasureStatus.FAILED.value).inc()
            logger.error("erasure %s failed %d rounds in a row", erasure["id"], MAX_FAILURES)

    async def run(self, erasure: ErasureDocument) -> int:
        """Carries the erasure out; returns 1 when it finished, 0 when it waits."""
        erasure_id = erasure["id"]
        subject: SubjectDocument = erasure.get("subject", {})
        if (
            erasure["kind"] == ErasureKind.ACCOUNT
            and "user_id" in subject
            and await self._data.account_active(subject["user_id"])
        ):
            # Requested, but the account's use has not ended (yet): nothing is erased.
            return 0
        await self._erasures.start(erasure_id, utcnow())

        async def progress(collection: str, deleted: int) -> None:
            GOVERNANCE_DELETED.labels("erasure", collection).inc(deleted)
            await self._erasures.count(erasure_id, collection, deleted, utcnow())

        if erasure["kind"] == ErasureKind.VISITOR and erasure["chatbot_id"] is not None:
            await self._erase_visitor(erasure_id, erasure["chatbot_id"], subject, progress)
        elif erasure["kind"] == ErasureKind.ACCOUNT and "user_id" in subject:
            await self._erase_account(subject["user_id"], progress)
        await self._erasures.finish(erasure_id, utcnow())
        ERASURES_FINISHED.labels(erasure["kind"], ErasureStatus.DONE.value).inc()
        logger.info("erasure %s done", erasure_id)
        return 1

    async def _erase_visitor(
        self, erasure_id: str, chatbot_id: str, subject: SubjectDocument, progress: Progress
    ) -> None:
        sessions: list[str] = list(subject.get("session_ids", []))
        if "session_id" in subject:
            sessions.append(subject["session_id"])
        end_user_id = subject.get("end_user_id")
        if end_user_id is not None:
            # Stored before anything is deleted: the sessions are found through conversations.
            found = await self._data.end_user_sessions(chatbot_id, end_user_id)
            if found:
                await self._erasures.add_sessions(erasure_id, found)
            sessions = sorted({*sessions, *found})
        owned_by: list[dict[str, Any]] = []
        if sessions:
            owned_by.append({"session_id": {"$in": sessions}})
        if end_user_id is not None:
            owned_by.append({"end_user_id": end_user_id})
        if not owned_by:
            return
        of_visitor = {"chatbot_id": chatbot_id, "$or": owned_by}
        while conversation_ids := await self._data.conversation_ids(of_visitor):
            # Before the messages go: their texts are how their questions are found.
            forgotten = await self._data.forget_questions(chatbot_id, conversation_ids)
            await progress("analytics_questions", forgotten)
            await self._conversations.delete(
                chatbot_id, conversation_ids, progress, deliveries=True
            )
        named = [
            *([naming(("session_id",), sessions)] if sessions else []),
            *([naming(("end_user_id",), [end_user_id])] if end_user_id is not None else []),
        ]
        for body in named:
            deliveries = {"chatbot_id": chatbot_id, "body": body}
            await self._conversations.drain("webhook_deliveries", deliveries, progress)
        for collection in await self._data.collections():
            await self._conversations.drain(collection, of_visitor, progress)
        await progress("rollup_visitors", await self._data.forget_visitors(chatbot_id, sessions))
        owner_id = await self._data.chatbot_owner(chatbot_id)
        if owner_id is not None:
            for session in sessions:
                deleted = await self._data.delete_session_keys(owner_id, chatbot_id, session)
                await progress("redis_keys", deleted)

    async def _erase_account(self, user_id: str, progress: Progress) -> None:
        while chatbot_ids := await self._chatbots.owner_chatbot_ids(user_id, 1):
            chatbot_id = chatbot_ids[0]
            await self._chatbots.hide(chatbot_id)
            # What the cascade does not list (collections added since) goes by the bot's id.
            for collection in await self._data.collections():
                if collection != "chatbots":
                    await self._conversations.drain(
                        collection, {"chatbot_id": chatbot_id}, progress
                    )
            await self._chatbots.purge(chatbot_id)
            await progress("chatbots", 1)
        for collection in await self._data.collections():
            owned = {"$or": [{"user_id": user_id}, {"owner_id": user_id}]}
            await self._conversations.drain(collection, owned, progress)
        await progress("users", await self._data.delete_user(user_id))
        await progress("redis_keys", await self._data.delete_account_keys(user_id))


def erasure_round(resources: Resources) -> Periodic:
    return Periodic(
        name="erasures",
        interval=resources.settings.erasure_check_seconds,
        job=Eraser(resources).advance_all,
    )
