"""Erasure intake: requests are recorded (and the account's use ended) here; the housekeeping
round in `app.governance.erasure` carries them out.

An account's erasure is stored before the account is suspended, so no account is ever
suspended without an erasure to finish the job; the round leaves an erasure alone while its
account is still active (a wrong password withdraws it before anything happens)."""

import secrets

from app.audit.documents import AuditAction
from app.audit.log import AuditTrail, user_target
from app.chatbots.documents import ChatbotDocument
from app.core.errors import ConflictError, NotFoundError
from app.core.security import new_id, sha256_hex, utcnow
from app.governance.documents import (
    ErasureDocument,
    ErasureKind,
    ErasureStatus,
    SubjectDocument,
)
from app.governance.errors import ErasureNotFoundError
from app.governance.repository import ErasureRepository
from app.governance.schemas import ErasureOut, ErasureStatusOut, VisitorErasureRequest
from app.users.documents import UserDocument
from app.users.repository import UserRepository
from app.users.schemas import Role, UserStatus
from app.users.service import AuthService


def _new_erasure(
    kind: ErasureKind,
    chatbot_id: str | None,
    requested_by: str,
    subject: SubjectDocument,
    subject_id: str,
) -> ErasureDocument:
    now = utcnow()
    salt = secrets.token_hex(16)
    return {
        "id": new_id(),
        "kind": kind,
        "status": ErasureStatus.PENDING,
        "chatbot_id": chatbot_id,
        "requested_by": requested_by,
        "subject_hash": sha256_hex(salt + subject_id),
        "salt": salt,
        "requested_at": now,
        "updated_at": now,
        "done_at": None,
        "counts": {},
        "failures": 0,
        "error": None,
        "subject": subject,
    }


class ErasureService:
    def __init__(
        self, erasures: ErasureRepository, auth: AuthService, users: UserRepository
    ) -> None:
        self._erasures = erasures
        self._auth = auth
        self._users = users

    async def request_visitor(
        self, chatbot: ChatbotDocument, request: VisitorErasureRequest, audit: AuditTrail
    ) -> ErasureOut:
        """A visitor's data on this bot; asking again while one is under way returns it."""
        subject: SubjectDocument
        if request.session_id is not None:
            subject, subject_id = {"session_id": request.session_id}, request.session_id
            query = {"subject.session_id": subject_id}
        else:
            assert request.end_user_id is not None  # the request model wants one of the two
            subject, subject_id = {"end_user_id": request.end_user_id}, request.end_user_id
            query = {"subject.end_user_id": subject_id}
        under_way = await self._erasures.unfinished_for({"chatbot_id": chatbot["id"], **query})
        if under_way is not None:
            return ErasureOut.model_validate(under_way)
        erasure = _new_erasure(ErasureKind.VISITOR, chatbot["id"], "owner", subject, subject_id)
        await self._erasures.insert(erasure)
        await audit.record(
            AuditAction.ERASURE_REQUESTED,
            actor_id=chatbot["user_id"],
            target=f"chatbot:{chatbot['id']}",
            owner_id=chatbot["user_id"],
            details={"erasure": erasure["id"], "kind": ErasureKind.VISITOR.value},
        )
        return ErasureOut.model_validate(erasure)

    async def visitor_erasure(self, chatbot: ChatbotDocument, erasure_id: str) -> ErasureOut:
        erasure = await self._erasures.get(erasure_id)
        if erasure is None or erasure["chatbot_id"] != chatbot["id"]:
            raise ErasureNotFoundError()
        return ErasureOut.model_validate(erasure)

    async def request_own_account(
        self, user: UserDocument, password: str, audit: AuditTrail
    ) -> ErasureOut:
        """The account's own deletion: the erasure is stored, then the password is checked and
        the account's use ends at once (a wrong password withdraws the new erasure)."""
        under_way = await self._erasures.unfinished_for({"subject.user_id": user["id"]})
        erasure = under_way or await self._new_account_erasure(user["id"], "account")
        try:
            await self._auth.close_account(user, password, audit)
        except BaseException:
            if under_way is None:
                await self._erasures.withdraw(erasure["id"])
            raise
        return await self._requested(erasure, user["id"], user["id"], audit)

    async def request_account(
        self, admin: UserDocument, user_id: str, audit: AuditTrail
    ) -> ErasureOut:
        """An administrator's erasure of another account (never their own, nor the last
        active administrator's); asking again while one is under way returns it."""
        if user_id == admin["id"]:
            raise ConflictError("Administrators cannot erase their own account")
        target = await self._users.by_id(user_id)
        if target is None:
            raise NotFoundError("No such user")
        if target["role"] == Role.ADMIN and target["status"] == UserStatus.ACTIVE:
            admins = await self._users.list(
                status=UserStatus.ACTIVE,
                role=Role.ADMIN,
                created_from=None,
                created_to=None,
                cursor=None,
                limit=2,
            )
            if not any(other["id"] != user_id for other in admins):
                raise ConflictError("The last active administrator cannot be erased")
        under_way = await self._erasures.unfinished_for({"subject.user_id": user_id})
        erasure = under_way or await self._new_account_erasure(user_id, "admin")
        await self._auth.end_account(user_id)
        return await self._requested(erasure, user_id, admin["id"], audit)

    async def _new_account_erasure(self, user_id: str, requested_by: str) -> ErasureDocument:
        erasure = _new_erasure(
            ErasureKind.ACCOUNT, None, requested_by, {"user_id": user_id}, user_id
        )
        await self._erasures.insert(erasure)
        return erasure

    async def _requested(
        self, erasure: ErasureDocument, user_id: str, actor_id: str, audit: AuditTrail
    ) -> ErasureOut:
        await audit.record(
            AuditAction.ERASURE_REQUESTED,
            actor_id=actor_id,
            target=user_target(user_id),
            details={"erasure": erasure["id"], "kind": ErasureKind.ACCOUNT.value},
        )
        return ErasureOut.model_validate(erasure)

    async def account_erasure(self, erasure_id: str) -> ErasureStatusOut:
        """An account erasure's progress, to whoever holds its id (the account is gone)."""
        erasure = await self._erasures.get(erasure_id)
        if erasure is None or erasure["kind"] != ErasureKind.ACCOUNT:
            raise ErasureNotFoundError()
        return ErasureStatusOut.model_validate(erasure)
