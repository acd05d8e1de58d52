"""Recording audit entries. Recording never fails the caller: a database error is logged and
counted (`botsmith_audit_records{result="failed"}`), and the request goes on.

Callers pass identifiers only; details never hold a password, token, key or request body, and
a detail whose name says it is a credential is dropped here as a second line of defence.
"""

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pymongo.errors import PyMongoError
from starlette.requests import HTTPConnection

from app.audit.documents import AuditDocument, AuditOutcome
from app.audit.metrics import AUDIT_RECORDS
from app.audit.repository import AuditRepository
from app.container import container_of
from app.core.config import Settings
from app.core.logging import request_id_var
from app.core.middleware import ClientIdentity
from app.core.resources import Resources
from app.core.security import new_id, utcnow

logger = logging.getLogger(__name__)

DetailValue = str | int | bool
_CREDENTIAL_NAME = re.compile(r"password|secret|token|authorization|^key$|api_?key$", re.I)
_MAX_DETAIL_LENGTH = 200
# Sets these digests apart from anything else keyed with the same secret.
_EMAIL_TARGET_CONTEXT = b"botsmith audit email target\x00"


def user_target(user_id: str) -> str:
    return f"user:{user_id}"


def email_target(settings: Settings, email: str) -> str:
    """A login attempt for an email no account has: an HMAC of the address keyed with
    JWT_SECRET, never the address itself, nor a plain hash anyone could match by guessing."""
    key = settings.jwt_secret.get_secret_value().encode()
    message = _EMAIL_TARGET_CONTEXT + email.strip().lower().encode()
    return "email:" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _safe_details(details: Mapping[str, DetailValue] | None) -> dict[str, DetailValue]:
    safe: dict[str, DetailValue] = {}
    for name, value in (details or {}).items():
        if _CREDENTIAL_NAME.search(name):
            continue
        safe[name] = value[:_MAX_DETAIL_LENGTH] if isinstance(value, str) else value
    return safe


async def record_audit(
    resources: Resources,
    action: str,
    *,
    actor_id: str | None,
    target: str | None,
    client: str | None,
    request_id: str | None,
    outcome: str = AuditOutcome.SUCCESS,
    details: Mapping[str, DetailValue] | None = None,
    owner_id: str | None = None,
) -> None:
    """Stores one entry. `owner_id` is the account the target belongs to (for a `user:` target,
    that user, unless given); the owner sees the entry as well as the actor."""
    if owner_id is None and target is not None and target.startswith("user:"):
        owner_id = target.removeprefix("user:")
    entry: AuditDocument = {
        "id": new_id(),
        "action": str(action),
        "actor_id": actor_id,
        "target": target,
        "owner_id": owner_id,
        "client": client,
        "request_id": request_id,
        "outcome": str(outcome),
        "details": _safe_details(details),
        "created_at": utcnow(),
    }
    try:
        await AuditRepository(resources.db).insert(entry)
    except PyMongoError:
        AUDIT_RECORDS.labels("failed").inc()
        logger.exception("audit entry %s (%s) not stored", entry["id"], entry["action"])
        return
    AUDIT_RECORDS.labels("stored").inc()


def request_client(connection: HTTPConnection) -> str:
    """The caller's address as the rate limiter and login throttle see it (TRUSTED_PROXIES)."""
    return ClientIdentity(container_of(connection).settings).client_address(connection.scope)


def request_id_of(connection: HTTPConnection) -> str | None:
    given = connection.scope.get("state", {}).get("request_id") or request_id_var.get()
    return None if given in (None, "-") else str(given)


@dataclass(frozen=True, slots=True)
class AuditTrail:
    """`record_audit` bound to one request's resources, client address and request id: what a
    service is handed when it records on the caller's behalf."""

    resources: Resources
    client: str | None
    request_id: str | None

    @classmethod
    def of(cls, connection: HTTPConnection) -> "AuditTrail":
        return cls(
            container_of(connection).resources,
            request_client(connection),
            request_id_of(connection),
        )

    async def record(
        self,
        action: str,
        *,
        actor_id: str | None,
        target: str | None,
        outcome: str = AuditOutcome.SUCCESS,
        details: Mapping[str, DetailValue] | None = None,
        owner_id: str | None = None,
    ) -> None:
        await record_audit(
            self.resources,
            action,
            actor_id=actor_id,
            target=target,
            client=self.client,
            request_id=self.request_id,
            outcome=outcome,
            details=details,
            owner_id=owner_id,
        )
