"""What the erasures collection stores: one erasure's progress and, once done, its receipt."""

from datetime import datetime
from enum import StrEnum
from typing import NotRequired, TypedDict


class ErasureKind(StrEnum):
    VISITOR = "visitor"  # one visitor of one bot, by session id or the site's end-user id
    ACCOUNT = "account"  # an account and everything it owns


class ErasureStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SubjectDocument(TypedDict):
    """Whose data is erased: kept only until the erasure is done, then removed."""

    session_id: NotRequired[str]
    end_user_id: NotRequired[str]
    user_id: NotRequired[str]
    # The sessions found to be the end user's (their leads and keys are erased by session).
    session_ids: NotRequired[list[str]]


class ErasureDocument(TypedDict):
    id: str
    kind: ErasureKind
    status: ErasureStatus
    chatbot_id: str | None  # the visitor's bot; null for an account
    requested_by: str  # "owner", "account" or "admin": a role, never an identity
    # The subject's id, salted and hashed: proves what was erased to whoever knows the id.
    subject_hash: str
    salt: str
    requested_at: datetime
    updated_at: datetime
    done_at: datetime | None
    counts: dict[str, int]  # documents (and Redis keys) deleted, by collection
    failures: int  # rounds that failed in a row; FAILED after MAX_FAILURES
    error: str | None
    subject: NotRequired[SubjectDocument]
