"""Where handoff events go: the desk (the bot's owner and agents, on their `notifications`
topic) and the visitor (the conversation's own channel, which the visitor's socket subscribes
to). Both travel through the EventBus, so they reach sockets on every worker and pod."""

from app.core.events import CHANNEL_PREFIX, EventBus, publish_event

CONVERSATION_CHANNEL_PREFIX = f"{CHANNEL_PREFIX}conversation:"

REQUESTED = "handoff.requested"
CLAIMED = "handoff.claimed"
CLOSED = "handoff.closed"
MESSAGE = "handoff.message"  # a visitor's message to the desk, or an agent's to the visitor
FALLBACK = "handoff.fallback"  # nobody claimed it in time; the visitor got the fallback


def conversation_channel(conversation_id: str) -> str:
    return CONVERSATION_CHANNEL_PREFIX + conversation_id


async def tell_desk(
    events: EventBus, owner_id: str, agent_ids: list[str], event: dict[str, object]
) -> None:
    for user_id in {owner_id, *agent_ids}:
        await publish_event(events, user_id, event)


async def tell_visitor(events: EventBus, conversation_id: str, event: dict[str, object]) -> None:
    await events.publish(conversation_channel(conversation_id), event)
