"""Human handoff over HTTP: asking for a person (visitor, owner or API key), the desk's list,
claim, reply and close (the owner and the bot's invited agents), and the owner's agents."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.chatbots.cors import Origin, allow_origin, answer_preflight
from app.chatbots.dependencies import BotCaller, OwnedChatbot, PublicBot
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.handoff.dependencies import AgentServiceDep, HandoffDesk, HandoffServiceDep, RequesterDep
from app.handoff.schemas import (
    AgentInvite,
    AgentMessageOut,
    AgentOut,
    AgentReply,
    HandoffOut,
    HandoffState,
    Requester,
    VisitorHandoffOut,
    VisitorHandoffRequest,
)

ItemId = Annotated[str, Path(max_length=64)]
router = APIRouter(prefix="/chatbots/{chatbot_id}", tags=["handoff"])
public_router = APIRouter(prefix="/public/chatbots/{chatbot_id}", tags=["widget"])


@router.post(
    "/conversations/{conversation_id}/handoff", responses=problem_responses(401, 404, 409, 422)
)
async def request_handoff(
    conversation_id: ItemId,
    chatbot: BotCaller,
    requester: RequesterDep,
    handoffs: HandoffServiceDep,
) -> HandoffOut:
    """Hands the conversation to a person (the owner's token or the bot's API key); the bot
    stops answering it until the handoff is closed. Asking again while one is open answers
    it unchanged; 409 when the bot's handoff is not enabled."""
    owner = chatbot["user_id"] if requester == Requester.OWNER else None
    return await handoffs.request(chatbot, conversation_id, requester, user_id=owner)


@router.get("/handoffs", responses=problem_responses(401, 404))
async def list_handoffs(
    desk: HandoffDesk,
    handoffs: HandoffServiceDep,
    state: Annotated[HandoffState | None, Query(description="Only handoffs in this state")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[HandoffOut]:
    """The bot's handed-off conversations, most recently requested first (owner and agents)."""
    return await handoffs.list(desk.chatbot, state, cursor, limit)


@router.post("/handoffs/{conversation_id}/claim", responses=problem_responses(401, 404, 409))
async def claim_handoff(
    conversation_id: ItemId, desk: HandoffDesk, handoffs: HandoffServiceDep
) -> HandoffOut:
    """Takes a waiting handoff; of agents claiming at once one wins, the others get 409."""
    return await handoffs.claim(desk, conversation_id)


@router.post(
    "/handoffs/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 404, 409, 422),
)
async def reply_to_handoff(
    conversation_id: ItemId, body: AgentReply, desk: HandoffDesk, handoffs: HandoffServiceDep
) -> AgentMessageOut:
    """A message to the visitor from the agent who claimed the handoff (or the owner); the
    visitor's socket receives it at once."""
    return await handoffs.reply(desk, conversation_id, body.content)


@router.post("/handoffs/{conversation_id}/close", responses=problem_responses(401, 404, 409))
async def close_handoff(
    conversation_id: ItemId, desk: HandoffDesk, handoffs: HandoffServiceDep
) -> HandoffOut:
    """Ends the handoff; the bot answers the conversation again."""
    return await handoffs.close(desk, conversation_id)


@router.post(
    "/agents",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 404, 409, 422),
)
async def invite_agent(
    body: AgentInvite, chatbot: OwnedChatbot, agents: AgentServiceDep
) -> AgentOut:
    """Lets a registered account work this bot's handoffs (and nothing else of the owner's).
    422 when no account has the email; 409 when it is an agent already or past
    MAX_AGENTS_PER_CHATBOT."""
    return await agents.invite(chatbot, body)


@router.get("/agents", responses=problem_responses(401, 404))
async def list_agents(
    chatbot: OwnedChatbot, agents: AgentServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> Page[AgentOut]:
    return await agents.list(chatbot, cursor, limit)


@router.delete(
    "/agents/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def remove_agent(agent_id: ItemId, chatbot: OwnedChatbot, agents: AgentServiceDep) -> None:
    """The account loses access to the bot's handoffs at once."""
    await agents.remove(chatbot, agent_id)


@public_router.options(
    "/conversations/{conversation_id}/handoff",
    status_code=status.HTTP_204_NO_CONTENT,
    include_in_schema=False,
)
async def preflight(
    conversation_id: ItemId, chatbot: PublicBot, response: Response, origin: Origin = None
) -> None:
    answer_preflight(response, origin, "POST, OPTIONS")


@public_router.post(
    "/conversations/{conversation_id}/handoff",
    responses=problem_responses(403, 404, 409, 422, 429),
)
async def visitor_handoff(
    conversation_id: ItemId,
    body: VisitorHandoffRequest,
    chatbot: PublicBot,
    handoffs: HandoffServiceDep,
    response: Response,
    origin: Origin = None,
) -> VisitorHandoffOut:
    """A visitor asks for a person in one of their own conversations (another visitor's looks
    missing). Subscribe to the conversation on the visitor WebSocket for the agent's messages.
    409 when the bot's handoff is not enabled."""
    allow_origin(response, origin)
    out = await handoffs.request(
        chatbot, conversation_id, Requester.VISITOR, session_id=body.session_id
    )
    return VisitorHandoffOut(
        conversation_id=out.conversation_id, state=out.state, agent_name=out.agent_name
    )
