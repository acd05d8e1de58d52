"""API models of the audit log."""

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime, BaseModel, Field

ActionFilter = Annotated[
    str | None, Query(max_length=100, description="Only this action, e.g. `auth.login`")
]
ActorFilter = Annotated[str | None, Query(max_length=64, description="Only this actor's entries")]
TargetFilter = Annotated[
    str | None, Query(max_length=200, description="Only this target, e.g. `user:<id>`")
]
Since = Annotated[
    AwareDatetime | None, Query(description="Entries at or after this (ISO 8601 with offset)")
]
Until = Annotated[
    AwareDatetime | None, Query(description="Entries before this (ISO 8601 with offset)")
]


class AuditEntryOut(BaseModel):
    id: str
    action: str = Field(description="What was done, e.g. `auth.login` or `admin.update_user`")
    actor_id: str | None = Field(description="The user who did it; null when unknown")
    target: str | None = Field(
        description="What it was done to, as `kind:id`; a failed login for an unknown email "
        "names the email's keyed digest (`email:<HMAC-SHA256 prefix>`), never the address"
    )
    owner_id: str | None = Field(description="The account the target belongs to")
    client: str | None = Field(
        description="The client address, as rate limits see it; in `GET /api/audit`, null "
        "on entries whose actor is someone else"
    )
    request_id: str | None = Field(
        description="The request's X-Request-ID; in `GET /api/audit`, null on entries whose "
        "actor is someone else"
    )
    outcome: str = Field(
        description="`success`, `failure`, or `denied` (refused before it ran: the caller may "
        "not use the route)"
    )
    details: dict[str, str | int | bool]
    created_at: datetime
