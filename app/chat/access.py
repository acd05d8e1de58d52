"""A visitor's conversation: the rule the widget's HTTP chat and the WebSocket both apply."""

from app.chat.documents import ConversationDocument
from app.chat.schemas import ChatRequest
from app.chat.service import ChatService, ConversationNotFoundError
from app.chatbots.documents import ChatbotDocument
from app.core.errors import UnprocessableError


class SessionRequiredError(UnprocessableError):
    def __init__(self) -> None:
        super().__init__("a visitor's chat needs a session_id")


async def visitor_conversation(
    service: ChatService, chatbot: ChatbotDocument, request: ChatRequest
) -> ConversationDocument:
    """The visitor's own conversation (or a new one); another visitor's looks missing."""
    if not request.session_id:
        raise SessionRequiredError()
    conversation = await service.open_conversation(chatbot, request)
    if conversation["session_id"] != request.session_id:
        raise ConversationNotFoundError()
    return conversation
