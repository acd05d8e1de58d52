"""A chat turn: store the question, retrieve, answer (or say "I don't know"), store the answer,
as one stream of events that the JSON, SSE and WebSocket endpoints all read. A turn that would
call the platform's LLM on a spent token budget is refused (429) before anything is stored."""

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from http import HTTPStatus
from typing import cast

from app.chat.activity import ChatActivity
from app.chat.answering import I_DONT_KNOW, Answerer, citations_in
from app.chat.budget import BudgetExhaustedError
from app.chat.documents import (
    CitationDocument,
    ConversationDocument,
    FeedbackDocument,
    MessageDocument,
)
from app.chat.providers import ProviderError
from app.chat.repository import ConversationRepository
from app.chat.schemas import (
    ChatEvent,
    ChatRequest,
    ChatResponse,
    Citation,
    ConversationDetail,
    ConversationOut,
    Feedback,
    MessageOut,
    PublicFeedback,
)
from app.chat.spend import OverBudgetError, SpendControls
from app.chatbots.documents import ChatbotDocument
from app.core.errors import DomainError, NotFoundError
from app.core.events import EventBus, publish_event
from app.core.resources import Resources
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.core.spreadsheet import csv_row
from app.handoff.service import HandoffService
from app.quotas.counters import MessageQuotas
from app.retrieval.schemas import RetrievedChunk
from app.webhooks.outbox import CONVERSATION_CREATED, FEEDBACK_CREATED, MESSAGE_CREATED, emit


class BadGatewayError(DomainError):
    status = HTTPStatus.BAD_GATEWAY
    title = "Model provider failed"


class GatewayTimeoutError(DomainError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    title = "Model provider timed out"


class ConversationNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such conversation on this chatbot")


def _forwarded(message: MessageDocument) -> dict[str, object]:
    """A visitor's message as the handoff desk is sent it."""
    return {
        "id": message["id"],
        "conversation_id": message["conversation_id"],
        "role": message["role"],
        "content": message["content"],
        "timestamp": message["timestamp"].isoformat(),
    }


class ChatService:
    def __init__(
        self,
        conversations: ConversationRepository,
        answerer: Answerer,
        events: EventBus,
        spend: SpendControls,
        handoffs: HandoffService,
        resources: Resources,
    ) -> None:
        self._conversations = conversations
        self._answerer = answerer
        self._events = events
        self._spend = spend
        self._handoffs = handoffs
        self._resources = resources  # for webhook events
        self._quotas = MessageQuotas(resources)
        self._activity = ChatActivity(resources.db)

    async def _count_turn(self, chatbot: ChatbotDocument, request: ChatRequest) -> None:
        """Counts the turn against the bot's, the owner's and the visitor session's quotas."""
        await self._quotas.count_turn(
            chatbot["user_id"], chatbot["id"], chatbot.get("quotas"), request.session_id
        )

    async def events(
        self, chatbot: ChatbotDocument, request: ChatRequest, conversation: ConversationDocument
    ) -> AsyncIterator[ChatEvent]:
        """The turn's events; `conversation` comes from open_conversation (called first, so a
        wrong conversation id is a 404 before any event is sent)."""
        started = time.perf_counter()
        question = await self._store_question(chatbot, request, conversation)
        question_id = question["id"]
        held = await self._handoffs.hold(chatbot, conversation, _forwarded(question))
        if held is not None:
            # A person has the conversation: the message is passed on and the bot stays silent.
            yield ChatEvent(
                event="start",
                data={"conversation_id": conversation["id"], "message_id": question_id},
            )
            yield ChatEvent(event="handoff", data=held.model_dump(mode="json"))
            latency_ms = round((time.perf_counter() - started) * 1000)
            yield ChatEvent(
                event="end",
                data={"message_id": question_id, "answered": False, "latency_ms": latency_ms},
            )
            return
        answer_id = new_id()
        yield ChatEvent(
            event="start", data={"conversation_id": conversation["id"], "message_id": answer_id}
        )

        grounding = await self._answerer.ground(chatbot, request.message)
        history = (
            await self._conversations.recent_turns(conversation["id"], question_id)
            if grounding.passages
            else []
        )
        answer = ""
        try:
            async for token in self._answerer.stream(chatbot, request.message, grounding, history):
                answer += token
                yield ChatEvent(event="token", data={"text": token})
        except OverBudgetError as error:
            # Spent by other turns since this one was admitted; the model was not called.
            data = {
                "message": str(error),
                "timeout": False,
                "retry_after": error.refusal.retry_after,
            }
            yield ChatEvent(event="error", data=data)
            return
        except ProviderError as error:
            # The question is stored; the failed answer is not.
            yield ChatEvent(event="error", data={"message": str(error), "timeout": error.timeout})
            return
        answered = bool(answer.strip())
        if not answered:
            answer = I_DONT_KNOW
            yield ChatEvent(event="token", data={"text": answer})
        citations = citations_in(grounding, answer) if answered else []
        yield ChatEvent(event="sources", data={"sources": [c.model_dump() for c in citations]})
        latency_ms = round((time.perf_counter() - started) * 1000)
        await self._store_answer(
            chatbot,
            request,
            conversation,
            answer_id=answer_id,
            answer=answer,
            answered=answered,
            citations=citations,
            hits=grounding.hits,
            latency_ms=latency_ms,
        )
        if not answered:
            escalated = await self._handoffs.after_unanswered(chatbot, conversation)
            if escalated is not None:
                yield ChatEvent(event="handoff", data=escalated.model_dump(mode="json"))
        yield ChatEvent(
            event="end",
            data={"message_id": answer_id, "answered": answered, "latency_ms": latency_ms},
        )

    async def _store_question(
        self, chatbot: ChatbotDocument, request: ChatRequest, conversation: ConversationDocument
    ) -> MessageDocument:
        """Store the visitor's message; returns it."""
        question_id = new_id()
        now = utcnow()
        question: MessageDocument = {
            "id": question_id,
            "conversation_id": conversation["id"],
            "chatbot_id": chatbot["id"],
            "role": "user",
            "content": request.message,
            "timestamp": now,
        }
        await self._conversations.add_message(question, now)
        await self._activity.message_stored(question, None)
        await emit(self._resources, chatbot, MESSAGE_CREATED, {"message": _message_data(question)})
        return question

    async def _store_answer(
        self,
        chatbot: ChatbotDocument,
        request: ChatRequest,
        conversation: ConversationDocument,
        *,
        answer_id: str,
        answer: str,
        answered: bool,
        citations: list[Citation],
        hits: list[RetrievedChunk],
        latency_ms: int,
    ) -> None:
        """Store the answer with its citations, retrieval scores, latency and word counts."""
        now = utcnow()
        stored: MessageDocument = {
            "id": answer_id,
            "conversation_id": conversation["id"],
            "chatbot_id": chatbot["id"],
            "role": "assistant",
            "content": answer,
            "answered": answered,
            "citations": cast("list[CitationDocument]", [c.model_dump() for c in citations]),
            "retrieval_scores": [hit.relevance for hit in hits],
            "latency_ms": latency_ms,
            "tokens": {
                "prompt": len(request.message.split()),
                "completion": len(answer.split()),
            },
            "timestamp": now,
        }
        await self._conversations.add_message(stored, now)
        await self._activity.message_stored(stored, request.message)
        await emit(self._resources, chatbot, MESSAGE_CREATED, {"message": _message_data(stored)})

    async def answer(self, chatbot: ChatbotDocument, request: ChatRequest) -> ChatResponse:
        """The same turn, collected into one JSON answer."""
        conversation = await self.open_conversation(chatbot, request)
        return await self.answer_in(chatbot, request, conversation)

    async def answer_in(
        self, chatbot: ChatbotDocument, request: ChatRequest, conversation: ConversationDocument
    ) -> ChatResponse:
        data: dict[str, object] = {"answer": "", "sources": []}  # a held turn has neither
        async for event in self.events(chatbot, request, conversation):
            if event.event == "error":
                if "retry_after" in event.data:
                    retry_after = int(str(event.data["retry_after"]))
                    raise BudgetExhaustedError(str(event.data["message"]), retry_after)
                failed = GatewayTimeoutError if event.data["timeout"] else BadGatewayError
                raise failed(str(event.data["message"]))
            if event.event == "token":
                data["answer"] = str(data["answer"]) + str(event.data["text"])
            elif event.event == "handoff":
                data["handoff"] = event.data
            else:
                data.update(event.data)
        return ChatResponse.model_validate(data)

    async def open_conversation(
        self, chatbot: ChatbotDocument, request: ChatRequest
    ) -> ConversationDocument:
        """The turn's conversation, after admitting the turn: raises BudgetExhaustedError (429)
        when the bot's owner has spent their LLM token budget, QuotaExceededError (429) when a
        message quota is used up (the turn is then counted nowhere)."""
        await self._spend.admit(chatbot)
        if request.conversation_id is not None:
            found = await self._conversations.get(chatbot["id"], request.conversation_id)
            if found is None:
                raise ConversationNotFoundError()
            await self._count_turn(chatbot, request)
            return found
        await self._count_turn(chatbot, request)
        now = utcnow()
        conversation: ConversationDocument = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "session_id": request.session_id,
            "started_at": now,
            "last_message_at": now,
            "message_count": 0,
        }
        if request.end_user_id is not None:
            conversation["end_user_id"] = request.end_user_id
        await self._conversations.create(conversation)
        await self._activity.conversation_started(conversation)
        await publish_event(
            self._events,
            chatbot["user_id"],
            {
                "type": "conversation.started",
                "chatbot_id": chatbot["id"],
                "conversation_id": conversation["id"],
            },
        )
        created = ConversationOut.model_validate(conversation).model_dump(mode="json")
        await emit(self._resources, chatbot, CONVERSATION_CREATED, {"conversation": created})
        return conversation


class MessageNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such answer on this chatbot")


class ConversationService:
    def __init__(
        self, conversations: ConversationRepository, events: EventBus, resources: Resources
    ) -> None:
        self._conversations = conversations
        self._events = events
        self._resources = resources  # for webhook events
        self._activity = ChatActivity(resources.db)

    async def list(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[ConversationOut]:
        found = await self._conversations.list_for_chatbot(chatbot["id"], cursor, limit + 1)
        return page_of(found, limit, ConversationOut.model_validate, "started_at")

    async def detail(
        self, chatbot: ChatbotDocument, conversation_id: str, after: datetime | None, limit: int
    ) -> ConversationDetail:
        conversation = await self._conversations.get(chatbot["id"], conversation_id)
        if conversation is None:
            raise ConversationNotFoundError()
        found = await self._conversations.messages(conversation_id, after, limit + 1)
        messages = [MessageOut.model_validate(m) for m in found[:limit]]
        return ConversationDetail(
            conversation=ConversationOut.model_validate(conversation),
            messages=messages,
            next_after=messages[-1].timestamp if len(found) > limit else None,
        )

    async def delete(self, chatbot: ChatbotDocument, conversation_id: str) -> None:
        if await self._conversations.get(chatbot["id"], conversation_id) is None:
            raise ConversationNotFoundError()
        await self._conversations.delete(conversation_id)

    async def visitor_feedback(
        self, chatbot: ChatbotDocument, message_id: str, feedback: PublicFeedback
    ) -> MessageOut:
        """A visitor rates an answer of their own conversation; any other answer looks missing."""
        message = await self._conversations.message(chatbot["id"], message_id)
        conversation = (
            await self._conversations.get(chatbot["id"], message["conversation_id"])
            if message is not None
            else None
        )
        if conversation is None or conversation["session_id"] != feedback.session_id:
            raise MessageNotFoundError()
        rating = Feedback(rating=feedback.rating, comment=feedback.comment)
        return await self.feedback(chatbot, message_id, rating)

    async def feedback(
        self, chatbot: ChatbotDocument, message_id: str, feedback: Feedback
    ) -> MessageOut:
        stored: FeedbackDocument = {
            "rating": feedback.rating,
            "comment": feedback.comment,
            "at": utcnow(),
        }
        message = await self._conversations.set_feedback(chatbot["id"], message_id, stored)
        if message is None:
            raise MessageNotFoundError()
        question = await self._conversations.question_before(message)
        asked = question["content"] if question is not None else None
        await self._activity.rating_changed(message, feedback.rating, asked)
        await publish_event(
            self._events,
            chatbot["user_id"],
            {
                "type": "feedback.received",
                "chatbot_id": chatbot["id"],
                "message_id": message_id,
                "rating": feedback.rating,
            },
        )
        data = {"message": _message_data({**message, "feedback": stored})}
        await emit(self._resources, chatbot, FEEDBACK_CREATED, data)
        return MessageOut.model_validate({**message, "feedback": stored})

    async def export(self, chatbot: ChatbotDocument, kind: str) -> AsyncIterator[bytes]:
        """Every message of the bot as JSON Lines or CSV, produced as it is read."""
        columns = ["conversation_id", "id", "timestamp", "role", "content", "answered", "rating"]
        if kind == "csv":
            yield csv_row(columns)
        async for message in self._conversations.all_messages(chatbot["id"]):
            feedback = message.get("feedback")
            row = {
                "conversation_id": message["conversation_id"],
                "id": message["id"],
                "timestamp": message["timestamp"].isoformat(),
                "role": message["role"],
                "content": message["content"],
                "answered": message.get("answered"),
                "rating": feedback["rating"] if feedback else None,
            }
            if kind == "csv":
                yield csv_row([row[column] for column in columns])
            else:
                yield (json.dumps(row) + "\n").encode()


def _message_data(message: MessageDocument) -> dict[str, object]:
    """A message as webhooks carry it: the API's representation."""
    return MessageOut.model_validate(message).model_dump(mode="json")
