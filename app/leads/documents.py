"""What the leads collection stores: the details a visitor left, with where they came from."""

from datetime import datetime
from enum import StrEnum
from typing import NotRequired, TypedDict


class LeadOrigin(StrEnum):
    WIDGET = "widget"  # a visitor, through the public endpoint
    API = "api"  # the bot's owner or one of its API keys, for a visitor of their own


class ConsentDocument(TypedDict):
    """The consent text the visitor agreed to, as it read then, and when."""

    text: str
    at: datetime


class LeadDocument(TypedDict):
    id: str
    chatbot_id: str
    user_id: str  # the bot's owner
    session_id: str  # the visitor's session: one lead per session and bot
    conversation_id: NotRequired[str]  # absent until a submit names the visitor's conversation
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    message: str | None
    consent: ConsentDocument | None
    origin: LeadOrigin
    created_at: datetime
    updated_at: datetime
