"""Erasure requests and receipts."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, Field, model_validator

from app.chat.schemas import EndUserId, SessionId
from app.core.schemas import RequestModel
from app.governance.documents import ErasureKind, ErasureStatus


class VisitorErasureRequest(RequestModel):
    """Whose data to erase: a widget session, or the embedding site's id for its user (every
    conversation started with that `end_user_id`, and everything of those sessions)."""

    session_id: SessionId | None = None
    end_user_id: EndUserId | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.session_id is None) == (self.end_user_id is None):
            raise ValueError("give either session_id or end_user_id")
        return self


class AccountErasureRequest(RequestModel):
    password: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="The account's current password"
    )


class ErasureStatusOut(BaseModel):
    """An account erasure as anyone holding its id sees it: its progress and counts only."""

    id: str
    kind: ErasureKind
    status: ErasureStatus
    requested_at: datetime
    done_at: datetime | None = None
    counts: dict[str, int] = Field(
        default_factory=dict, description="What was deleted so far, by collection (and Redis keys)"
    )


class ErasureOut(ErasureStatusOut):
    """An erasure's progress and, once done, its receipt: no personal data, only counts. The
    subject's salted hash stays stored, never returned."""

    chatbot_id: str | None = Field(description="The visitor's bot; null for an account")
    requested_by: str = Field(description="owner, account or admin")
    updated_at: datetime
    error: str | None = Field(default=None, description="Why the last round stopped, if it did")
