"""Leads: what a visitor (or the bot's owner, for a visitor of theirs) submits, and what the
owner reads back."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, field_validator

from app.chat.schemas import SessionId
from app.core.schemas import RequestModel
from app.leads.documents import LeadOrigin

# The details a lead form may ask for, in the order the widget and the exports show them.
LEAD_FIELDS = ("name", "email", "phone", "company", "message")
ExportFormat = Literal["jsonl", "csv"]


def _enough_digits(phone: str) -> str:
    if sum(character.isdigit() for character in phone) < 6:
        raise ValueError("a phone number has at least 6 digits")
    return phone


PersonName = Annotated[str, Field(max_length=100)]
Phone = Annotated[
    str,
    Field(max_length=32, pattern=r"^\+?[0-9 ().-]+$", examples=["+44 20 7946 0958"]),
    AfterValidator(_enough_digits),
]
Company = Annotated[str, Field(max_length=200)]
Message = Annotated[str, Field(max_length=2000)]


class LeadSubmit(RequestModel):
    """A visitor's details. Which are required, and which may be sent at all, is the bot's lead
    form's choice (`lead_form.fields`); an empty string counts as not given."""

    session_id: SessionId = Field(description="The visitor's session: one lead per session")
    conversation_id: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="The visitor's conversation the form was shown in"
    )
    name: PersonName | None = None
    email: EmailStr | None = None
    phone: Phone | None = None
    company: Company | None = None
    message: Message | None = Field(default=None, description="Free text from the visitor")
    consent: bool = Field(
        default=False,
        description="The visitor ticked the consent box; required when the form has a "
        "`consent_text`",
    )

    @field_validator(*LEAD_FIELDS, mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class ConsentOut(BaseModel):
    text: str = Field(description="The consent text as the visitor saw it")
    at: datetime = Field(description="When the visitor agreed")


class LeadOut(BaseModel):
    id: str
    chatbot_id: str
    session_id: str
    conversation_id: str | None = None
    name: str | None
    email: str | None
    phone: str | None
    company: str | None
    message: str | None
    consent: ConsentOut | None
    origin: LeadOrigin = Field(description="`widget`: a visitor; `api`: the owner or an API key")
    created_at: datetime
    updated_at: datetime = Field(description="The last submit from the same session")
