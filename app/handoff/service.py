"""Handoff rules: a conversation is handed to a person (asked by the visitor, the owner or an API
key, or by the bot after its configured number of "I don't know" answers), claimed by one agent,
answered by that agent, and closed. While it waits or is claimed, the bot does not answer: the
chat turn stores the visitor's message and passes it on (`hold`)."""

from datetime import timedelta
from typing import Literal

from app.chatbots.documents import ChatbotDocument
from app.chatbots.repository import ChatbotRepository
from app.chatbots.schemas import HandoffSettingsOut
from app.core.errors import ConflictError, NotFoundError
from app.core.resources import Resources
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.handoff import events
from app.handoff.access import Desk
from app.handoff.documents import HandedOffConversation, HandoffDocument, HandoffMessageDocument
from app.handoff.repository import AgentRepository, HandoffRepository
from app.handoff.schemas import (
    OPEN_STATES,
    AgentMessageOut,
    HandoffNotice,
    HandoffOut,
    HandoffState,
    Requester,
)
from app.webhooks.outbox import HANDOFF_CLOSED, HANDOFF_REQUESTED, MESSAGE_CREATED, emit

SWEEP_BATCH = 100
Step = Literal["claim", "close", "fallback"]


class ConversationNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such conversation on this chatbot")


class HandoffNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("This conversation was never handed to a person")


class HandoffDisabledError(ConflictError):
    def __init__(self) -> None:
        super().__init__("This chatbot does not hand conversations to people (handoff.enabled)")


class HandoffStateError(ConflictError):
    """The handoff is not in a state that allows this (claimed by someone else, closed…)."""


def handoff_settings(chatbot: ChatbotDocument) -> HandoffSettingsOut:
    """The bot's handoff settings; bots from before them read as the defaults (off)."""
    return HandoffSettingsOut.model_validate(chatbot.get("handoff", {}))


def _out(conversation: HandedOffConversation) -> HandoffOut:
    handoff = conversation["handoff"]
    return HandoffOut.model_validate(
        {
            **handoff,
            "conversation_id": conversation["id"],
            "chatbot_id": conversation["chatbot_id"],
            "session_id": conversation["session_id"],
        }
    )


def _seen(kind: str, out: HandoffOut) -> dict[str, object]:
    """A change of the handoff as its visitor is told it: no account ids."""
    return {
        "type": kind,
        "conversation_id": out.conversation_id,
        "state": out.state.value,
        "agent_name": out.agent_name,
    }


def _is_open(conversation: HandedOffConversation) -> bool:
    handoff = conversation.get("handoff")
    return handoff is not None and handoff["state"] in OPEN_STATES


class HandoffService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._events = resources.events
        self._handoffs = HandoffRepository(resources.db)
        self._agents = AgentRepository(resources.db)

    async def request(
        self,
        chatbot: ChatbotDocument,
        conversation_id: str,
        requester: Requester,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> HandoffOut:
        """Hands the conversation to a person (a visitor's only when it is their own); asking
        again while one waits or is claimed changes nothing and answers it."""
        if not handoff_settings(chatbot).enabled:
            raise HandoffDisabledError()
        conversation = await self._handoffs.conversation(chatbot["id"], conversation_id)
        if conversation is None or (
            session_id is not None and conversation["session_id"] != session_id
        ):
            raise ConversationNotFoundError()
        return await self._open(chatbot, conversation, requester, user_id)

    async def _open(
        self,
        chatbot: ChatbotDocument,
        conversation: HandedOffConversation,
        requester: Requester,
        user_id: str | None,
    ) -> HandoffOut:
        now = utcnow()
        timeout = handoff_settings(chatbot).unclaimed_timeout_seconds
        handoff: HandoffDocument = {
            "id": new_id(),
            "state": HandoffState.WAITING,
            "requested_at": now,
            "requested_by": requester,
            "requested_by_user": user_id,
            "deadline": now + timedelta(seconds=timeout),
            "fallback_sent_at": None,
            "claimed_at": None,
            "claimed_by": None,
            "agent_name": None,
            "closed_at": None,
            "closed_by": None,
        }
        opened = await self._handoffs.open(chatbot["id"], conversation["id"], handoff)
        if opened is None:  # one is waiting or claimed already
            current = await self._handoffs.conversation(chatbot["id"], conversation["id"])
            if current is None or "handoff" not in current:
                raise ConversationNotFoundError()
            return _out(current)
        out = _out(opened)
        summary = self._summary(out)
        await self._tell_desk(chatbot, {"type": events.REQUESTED, **summary})
        await events.tell_visitor(self._events, out.conversation_id, _seen(events.REQUESTED, out))
        await emit(self._resources, chatbot, HANDOFF_REQUESTED, summary)
        return out

    async def hold(
        self,
        chatbot: ChatbotDocument,
        conversation: HandedOffConversation,
        message: dict[str, object],
    ) -> HandoffNotice | None:
        """Called by the chat turn with the visitor's stored message: when a person has the
        conversation, the message goes to the desk and the bot stays silent (a notice is
        returned); otherwise None and the bot answers."""
        if not _is_open(conversation):
            return None
        handoff = conversation["handoff"]
        await self._tell_desk(
            chatbot,
            {
                "type": events.MESSAGE,
                "chatbot_id": chatbot["id"],
                "conversation_id": conversation["id"],
                "state": str(handoff["state"]),
                "message": message,
            },
        )
        return HandoffNotice(state=handoff["state"], agent_name=handoff["agent_name"])

    async def after_unanswered(
        self, chatbot: ChatbotDocument, conversation: HandedOffConversation
    ) -> HandoffNotice | None:
        """After an "I don't know": hands the conversation over when it is the bot's configured
        number of them (counted since the last handoff closed)."""
        settings = handoff_settings(chatbot)
        if not settings.enabled or settings.after_unanswered == 0 or _is_open(conversation):
            return None
        previous = conversation.get("handoff")
        since = previous["closed_at"] if previous is not None else None
        unanswered = await self._handoffs.unanswered_since(conversation["id"], since)
        if unanswered < settings.after_unanswered:
            return None
        out = await self._open(chatbot, conversation, Requester.BOT, None)
        return HandoffNotice(state=out.state, agent_name=out.agent_name)

    async def list(
        self, chatbot: ChatbotDocument, state: HandoffState | None, cursor: str | None, limit: int
    ) -> Page[HandoffOut]:
        found = await self._handoffs.list_for_chatbot(chatbot["id"], state, cursor, limit + 1)
        rows = [{"id": c["id"], **_out(c).model_dump()} for c in found]
        return page_of(rows, limit, HandoffOut.model_validate, "requested_at")

    async def claim(self, desk: Desk, conversation_id: str) -> HandoffOut:
        """Waiting → active for this agent: exactly one of agents claiming at once wins, the
        others get 409."""
        chatbot, operator = desk.chatbot, desk.operator
        handoff = (await self._current(chatbot, conversation_id))["handoff"]
        if handoff["state"] == HandoffState.ACTIVE:
            raise HandoffStateError(f"This handoff is already claimed by {handoff['agent_name']}")
        if handoff["state"] != HandoffState.WAITING:
            raise HandoffStateError(f"This handoff is {handoff['state']}; it cannot be claimed")
        if not await self._mark(handoff, "claim", chatbot, conversation_id, operator.user_id):
            raise HandoffStateError("This handoff was just claimed by another agent")
        claimed = await self._handoffs.claim(
            conversation_id, handoff["id"], operator.user_id, operator.display_name, utcnow()
        )
        if claimed is None:
            raise HandoffStateError("This handoff was closed meanwhile")
        out = _out(claimed)
        summary = self._summary(out)
        await self._tell_desk(chatbot, {"type": events.CLAIMED, **summary})
        await events.tell_visitor(self._events, conversation_id, _seen(events.CLAIMED, out))
        return out

    async def reply(self, desk: Desk, conversation_id: str, content: str) -> AgentMessageOut:
        """The claiming agent's (or the owner's) message to the visitor."""
        chatbot, operator = desk.chatbot, desk.operator
        handoff = (await self._current(chatbot, conversation_id))["handoff"]
        if handoff["state"] == HandoffState.WAITING:
            raise HandoffStateError("Claim this handoff before replying")
        if handoff["state"] != HandoffState.ACTIVE:
            raise HandoffStateError("This handoff is closed")
        if handoff["claimed_by"] != operator.user_id and not operator.is_owner:
            raise HandoffStateError(f"This handoff is claimed by {handoff['agent_name']}")
        message: HandoffMessageDocument = {
            "id": new_id(),
            "conversation_id": conversation_id,
            "chatbot_id": chatbot["id"],
            "role": "agent",
            "content": content,
            "timestamp": utcnow(),
            "agent_id": operator.user_id,
            "agent_name": operator.display_name,
        }
        await self._handoffs.add_message(message)
        out = AgentMessageOut(
            id=message["id"],
            conversation_id=conversation_id,
            content=content,
            agent_name=operator.display_name,
            timestamp=message["timestamp"],
        )
        event: dict[str, object] = {
            "type": events.MESSAGE,
            "chatbot_id": chatbot["id"],
            "conversation_id": conversation_id,
            "state": HandoffState.ACTIVE.value,
            "message": out.model_dump(mode="json"),
        }
        await events.tell_visitor(self._events, conversation_id, event)
        await self._tell_desk(chatbot, event)
        message_data = {**out.model_dump(mode="json"), "role": "agent"}
        await emit(self._resources, chatbot, MESSAGE_CREATED, {"message": message_data})
        return out

    async def close(self, desk: Desk, conversation_id: str) -> HandoffOut:
        """Ends the handoff: the bot answers the conversation again."""
        chatbot, operator = desk.chatbot, desk.operator
        handoff = (await self._current(chatbot, conversation_id))["handoff"]
        if handoff["state"] == HandoffState.CLOSED:
            raise HandoffStateError("This handoff is closed already")
        if (
            handoff["state"] == HandoffState.ACTIVE
            and handoff["claimed_by"] != operator.user_id
            and not operator.is_owner
        ):
            raise HandoffStateError(f"This handoff is claimed by {handoff['agent_name']}")
        if not await self._mark(handoff, "close", chatbot, conversation_id, operator.user_id):
            raise HandoffStateError("This handoff was just closed")
        closed = await self._handoffs.close(
            conversation_id, handoff["id"], operator.user_id, utcnow()
        )
        if closed is None:
            raise HandoffStateError("This handoff was just closed")
        out = _out(closed)
        summary = self._summary(out)
        await self._tell_desk(chatbot, {"type": events.CLOSED, **summary})
        await events.tell_visitor(self._events, conversation_id, _seen(events.CLOSED, out))
        await emit(self._resources, chatbot, HANDOFF_CLOSED, summary)
        return out

    async def send_fallbacks(self) -> int:
        """Sends the bot's fallback message in every handoff nobody claimed in time, once each
        (whichever process marks it first sends it); returns how many were sent."""
        sent = 0
        chatbots = ChatbotRepository(self._resources)
        for conversation in await self._handoffs.overdue(utcnow(), SWEEP_BATCH):
            chatbot = await chatbots.by_id(conversation["chatbot_id"])
            if chatbot is None:
                continue
            handoff = conversation["handoff"]
            if not await self._mark(handoff, "fallback", chatbot, conversation["id"], None):
                continue  # another process sent it
            await self._handoffs.fallback_sent(conversation["id"], handoff["id"], utcnow())
            message: HandoffMessageDocument = {
                "id": new_id(),
                "conversation_id": conversation["id"],
                "chatbot_id": chatbot["id"],
                "role": "assistant",
                "content": handoff_settings(chatbot).fallback_message,
                "timestamp": utcnow(),
                "handoff_fallback": True,
            }
            await self._handoffs.add_message(message)
            event: dict[str, object] = {
                "type": events.FALLBACK,
                "chatbot_id": chatbot["id"],
                "conversation_id": conversation["id"],
                "state": HandoffState.WAITING.value,
                "message": {
                    "id": message["id"],
                    "conversation_id": conversation["id"],
                    "role": "assistant",
                    "content": message["content"],
                    "timestamp": message["timestamp"].isoformat(),
                },
            }
            await events.tell_visitor(self._events, conversation["id"], event)
            await self._tell_desk(chatbot, event)
            sent += 1
        return sent

    async def _current(
        self, chatbot: ChatbotDocument, conversation_id: str
    ) -> HandedOffConversation:
        conversation = await self._handoffs.conversation(chatbot["id"], conversation_id)
        if conversation is None:
            raise ConversationNotFoundError()
        if "handoff" not in conversation:
            raise HandoffNotFoundError()
        return conversation

    async def _mark(
        self,
        handoff: HandoffDocument,
        step: Step,
        chatbot: ChatbotDocument,
        conversation_id: str,
        user_id: str | None,
    ) -> bool:
        """True for the one caller that records this step of this handoff."""
        return await self._handoffs.mark(
            {
                "handoff_id": handoff["id"],
                "step": step,
                "chatbot_id": chatbot["id"],
                "conversation_id": conversation_id,
                "user_id": user_id,
                "at": utcnow(),
            }
        )

    async def _tell_desk(self, chatbot: ChatbotDocument, event: dict[str, object]) -> None:
        agents = await self._agents.user_ids(chatbot["id"])
        await events.tell_desk(self._events, chatbot["user_id"], agents, event)

    @staticmethod
    def _summary(out: HandoffOut) -> dict[str, object]:
        """What every handoff event says about the handoff."""
        return {
            "chatbot_id": out.chatbot_id,
            **out.model_dump(mode="json", exclude={"chatbot_id"}),
        }
