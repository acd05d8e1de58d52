"""Closing the loop on unanswered questions: the owner answers one from the analytics, the answer
becomes a Q&A source of the bot (ingested like any other), and the question counts as resolved."""

from pydantic import ValidationError

from app.analytics.repository import RollupRepository
from app.analytics.schemas import OwnerAnswer, ResolvedQuestion
from app.chat.activity import ChatActivity
from app.chat.documents import MessageDocument
from app.chat.repository import ConversationRepository
from app.chatbots.documents import ChatbotDocument
from app.core.errors import ConflictError, NotFoundError, UnprocessableError
from app.core.security import utcnow
from app.sources.schemas import QASourceCreate
from app.sources.service import SourceService


class QuestionNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such message on this chatbot")


class AlreadyAnsweredError(ConflictError):
    title = "Already answered"


class ResolutionService:
    def __init__(
        self,
        rollups: RollupRepository,
        conversations: ConversationRepository,
        sources: SourceService,
        activity: ChatActivity,
    ) -> None:
        self._rollups = rollups
        self._conversations = conversations
        self._sources = sources
        self._activity = activity

    async def _question(self, chatbot: ChatbotDocument, message_id: str) -> MessageDocument:
        """The visitor's question: the message itself, or the question an answer replied to."""
        message = await self._conversations.message(chatbot["id"], message_id)
        if message is None:
            raise QuestionNotFoundError()
        question: MessageDocument | None = message
        if message["role"] != "user":
            question = await self._conversations.question_before(message)
        if question is None:
            raise UnprocessableError("No visitor question precedes this message")
        return question

    async def answer(
        self, chatbot: ChatbotDocument, message_id: str, body: OwnerAnswer
    ) -> ResolvedQuestion:
        """Adds a Q&A source holding the question and the owner's answer, once per question
        (a second answer is a 409: edit or delete the source instead)."""
        question = await self._question(chatbot, message_id)
        try:
            pair = {"question": question["content"], "answer": body.answer}
            request = QASourceCreate.model_validate({"title": body.title, "pairs": [pair]})
        except ValidationError:
            raise UnprocessableError("The question is too long for a Q&A pair") from None
        now = utcnow()
        earlier = await self._rollups.claim_resolution(
            {
                "message_id": question["id"],
                "chatbot_id": chatbot["id"],
                "question": question["content"],
                "question_at": question["timestamp"],
                "source_id": None,
                "at": now,
            }
        )
        if earlier is not None:
            holder = earlier["source_id"] or "being created"
            raise AlreadyAnsweredError(f"This question has been answered (source {holder})")
        try:
            source = await self._sources.add_qa(chatbot, request)
        except BaseException:
            await self._rollups.release_resolution(question["id"])
            raise
        await self._rollups.resolved(chatbot["id"], question["id"], source.id, now)
        await self._activity.resolved(chatbot["id"], question)
        return ResolvedQuestion(
            message_id=question["id"], question=question["content"], source=source
        )
