"""What each stored conversation, message and rating adds to the bot's hourly rollups
(`app.core.rollups`): recorded by the chat turn as it writes, and recomputed from the stored
documents by `botsmith analytics backfill` and `check`, with the same functions."""

from app.chat.documents import ConversationDocument, MessageDocument
from app.chat.schemas import Rating
from app.core import rollups
from app.core.db import MongoDatabase
from app.core.rollups import HourTally, RollupWriter, short_hash


def visitor_of(conversation: ConversationDocument) -> str:
    """A conversation's visitor: its session, else the conversation itself."""
    return short_hash(conversation.get("session_id") or conversation["id"])


def conversation_change(conversation: ConversationDocument) -> HourTally:
    change = HourTally()
    change.counts[rollups.CONVERSATIONS] = 1
    change.visitors.add(visitor_of(conversation))
    return change


def _reasons(message: MessageDocument, rating: Rating | None) -> list[str]:
    reasons = []
    if message.get("answered") is False:
        reasons.append("no_answer")
    if rating == "down":
        reasons.append("thumbs_down")
    return reasons


def _rating(message: MessageDocument) -> Rating | None:
    feedback = message.get("feedback")
    return feedback["rating"] if feedback else None


def message_change(message: MessageDocument, question: str | None) -> HourTally:
    """A message as stored (with its rating, if any); `question` is the text an answer replied
    to (the conversation's latest question before it)."""
    change = HourTally()
    change.counts[rollups.MESSAGES] = 1
    if message["role"] == "user":
        asked = change.question(message["content"])
        asked.counts["asked"] = 1
        return change
    change.counts[rollups.ANSWERS] = 1
    change.counts[rollups.UNKNOWN_ANSWERS] = int(message.get("answered") is False)
    if message.get("latency_ms") is not None:
        change.latency[rollups.latency_bucket(message["latency_ms"])] = 1
    change.merge(_rating_change(message, _rating(message), question, 1))
    return change


def _rating_change(
    message: MessageDocument, rating: Rating | None, question: str | None, sign: int
) -> HourTally:
    """What an answer's rating (and its "I don't know") add to the feedback and question counts."""
    change = HourTally()
    change.counts[rollups.FEEDBACK_UP] = sign * (rating == "up")
    change.counts[rollups.FEEDBACK_DOWN] = sign * (rating == "down")
    reasons = _reasons(message, rating)
    if question is not None and reasons:
        tally = change.question(question)
        tally.counts["unanswered"] = sign
        for reason in reasons:
            tally.counts[reason] = sign
        if sign > 0:
            tally.message_id = message["id"]
    return change


def rating_changed(answer: MessageDocument, rating: Rating, question: str | None) -> HourTally:
    """An answer's rating replaced: `answer` as it was before."""
    change = _rating_change(answer, _rating(answer), question, -1)
    change.merge(_rating_change(answer, rating, question, 1))
    return change


def resolution_change(question: str) -> HourTally:
    """An unanswered question answered by its owner (counted in the question's hour)."""
    change = HourTally()
    change.counts[rollups.RESOLVED] = 1
    change.question(question).counts["resolved"] = 1
    return change


class ChatActivity:
    """Records chat writes in the hourly rollups, after they are stored: a failed rollup write is
    logged and counted (`RollupWriter.record`), never raised into the chat turn."""

    def __init__(self, db: MongoDatabase) -> None:
        self._writer = RollupWriter(db)

    async def conversation_started(self, conversation: ConversationDocument) -> None:
        change = conversation_change(conversation)
        await self._writer.record(conversation["chatbot_id"], conversation["started_at"], change)

    async def message_stored(self, message: MessageDocument, question: str | None) -> None:
        change = message_change(message, question)
        await self._writer.record(message["chatbot_id"], message["timestamp"], change)

    async def rating_changed(
        self, answer: MessageDocument, rating: Rating, question: str | None
    ) -> None:
        change = rating_changed(answer, rating, question)
        await self._writer.record(answer["chatbot_id"], answer["timestamp"], change)

    async def resolved(self, chatbot_id: str, question: MessageDocument) -> None:
        change = resolution_change(question["content"])
        await self._writer.record(chatbot_id, question["timestamp"], change)
