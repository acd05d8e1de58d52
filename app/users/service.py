"""Accounts and sessions: registration, login and account changes with throttled password
attempts, rotating refresh tokens."""

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from app.audit.documents import AuditAction, AuditOutcome
from app.audit.log import AuditTrail, email_target, user_target
from app.core.config import Settings
from app.core.errors import DomainError
from app.core.security import (
    create_access_token,
    hash_password,
    new_id,
    password_needs_rehash,
    random_secret,
    sha256_hex,
    utcnow,
    verify_password,
)
from app.core.throttle import FailureCounter
from app.users.documents import RefreshTokenDocument, StoredUser, UserDocument
from app.users.errors import AuthenticationError, ForbiddenError, TooManyAttemptsError
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    RegisterRequest,
    Role,
    TokenPair,
    UserOut,
    UserStatus,
    UserUpdate,
)

INVALID_LOGIN = "Invalid email or password"


class WrongPasswordError(DomainError):
    status = HTTPStatus.BAD_REQUEST
    title = "Wrong password"


def new_user_document(email: str, password: str, name: str | None, role: Role) -> StoredUser:
    now = utcnow()
    return {
        "id": new_id(),
        "email": email,
        "name": name,
        "password_hash": hash_password(password),
        "role": role,
        "status": UserStatus.ACTIVE,
        "token_version": 0,
        "created_at": now,
        "updated_at": now,
    }


def user_out(user: UserDocument) -> UserOut:
    return UserOut.model_validate(user, from_attributes=False)


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        tokens: RefreshTokenRepository,
        settings: Settings,
        login_throttle: FailureCounter,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._settings = settings
        self._throttle = login_throttle

    async def register(self, request: RegisterRequest) -> UserOut:
        user = new_user_document(request.email, request.password, request.name, Role.USER)
        await self._users.insert(user)
        return user_out(user)

    async def login(
        self, request: LoginRequest, client_address: str, audit: AuditTrail
    ) -> TokenPair:
        """Attempts count per email and client address (the trusted one, as rate limits see
        it): one client's guesses do not lock the account's owner out elsewhere."""
        throttle_key = f"login:{request.email}|{client_address}"
        try:
            await self._count_attempt(throttle_key)
        except TooManyAttemptsError:
            await self._login_refused(audit, request.email, "throttled")
            raise
        user = await self._users.by_email(request.email)
        password_hash = user["password_hash"] if user else None
        if user is None or not verify_password(request.password, password_hash):
            await self._login_refused(audit, request.email, "invalid_credentials", user)
            raise AuthenticationError(INVALID_LOGIN)
        await self._throttle.reset(throttle_key)
        if user["status"] != UserStatus.ACTIVE:
            await self._login_refused(audit, request.email, "suspended", user)
            raise AuthenticationError("This account is suspended")
        if password_needs_rehash(user["password_hash"]):
            await self._users.update(user["id"], {"password_hash": hash_password(request.password)})
        tokens = await self._issue(user, family_id=new_id())
        await audit.record(AuditAction.LOGIN, actor_id=user["id"], target=user_target(user["id"]))
        return tokens

    async def _login_refused(
        self, audit: AuditTrail, email: str, reason: str, user: UserDocument | None = None
    ) -> None:
        """A refused login names the account when there is one, else the email's digest."""
        if user is None:
            user = await self._users.by_email(email)
        await audit.record(
            AuditAction.LOGIN,
            actor_id=None,
            target=user_target(user["id"]) if user else email_target(self._settings, email),
            outcome=AuditOutcome.FAILURE,
            details={"reason": reason},
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = utcnow()
        token_hash = sha256_hex(refresh_token)
        token = await self._tokens.consume(token_hash, now)
        if token is None:
            known = await self._tokens.by_hash(token_hash)
            if known is not None and known["revoked_at"] is not None:
                # A rotated-out token came back: assume it was stolen and end the whole session.
                await self._tokens.revoke_family(known["family_id"], now)
            raise AuthenticationError("Invalid, expired or already used refresh token")
        user = await self._users.by_id(token["user_id"])
        if user is None or user["status"] != UserStatus.ACTIVE:
            raise AuthenticationError("This account is not active")
        return await self._issue(user, family_id=token["family_id"])

    async def logout(self, refresh_token: str, audit: AuditTrail) -> None:
        token = await self._tokens.consume(sha256_hex(refresh_token), utcnow())
        if token is not None:
            user_id = token["user_id"]
            await audit.record(AuditAction.LOGOUT, actor_id=user_id, target=user_target(user_id))

    async def change_password(
        self, user: UserDocument, request: PasswordChangeRequest, audit: AuditTrail
    ) -> TokenPair:
        if not await self._current_password_matches(user, request.current_password):
            await _record_wrong_password(audit, AuditAction.PASSWORD_CHANGE, user)
            raise WrongPasswordError("The current password is wrong")
        new_hash = hash_password(request.new_password)
        updated = await self._change_credentials(user, {"password_hash": new_hash})
        tokens = await self._issue(updated, family_id=new_id())
        await audit.record(
            AuditAction.PASSWORD_CHANGE, actor_id=user["id"], target=user_target(user["id"])
        )
        return tokens

    async def update_profile(
        self, user: UserDocument, request: UserUpdate, audit: AuditTrail
    ) -> UserOut:
        """A new email takes the current password and, like a password change, ends every
        session (this one included)."""
        fields = request.model_dump(
            exclude_unset=True, exclude_none=True, exclude={"current_password"}
        )
        if not fields:
            return user_out(user)
        if fields.get("email", user["email"]) != user["email"]:
            password = request.current_password or ""
            if not await self._current_password_matches(user, password):
                await _record_wrong_password(audit, AuditAction.EMAIL_CHANGE, user)
                raise ForbiddenError("The current password is wrong")
            changed = await self._change_credentials(user, fields)
            # The addresses stay out of the log: it outlives the account's erasure.
            await audit.record(
                AuditAction.EMAIL_CHANGE, actor_id=user["id"], target=user_target(user["id"])
            )
            return user_out(changed)
        updated = await self._users.update(user["id"], {**fields, "updated_at": utcnow()})
        if updated is None:
            raise AuthenticationError("This account no longer exists")
        return user_out(updated)

    async def close_account(self, user: UserDocument, password: str, audit: AuditTrail) -> None:
        """The owner's own deletion: takes the current password (throttled like the others),
        then ends the account's use at once; `app.governance` erases its data."""
        if not await self._current_password_matches(user, password):
            await _record_wrong_password(audit, AuditAction.ERASURE_REQUESTED, user)
            raise ForbiddenError("The current password is wrong")
        await self.end_account(user["id"])

    async def end_account(self, user_id: str) -> bool:
        """Suspends the account and ends every session (before its erasure); False when there
        is no such account."""
        now = utcnow()
        suspended = await self._users.update(
            user_id,
            {"status": UserStatus.SUSPENDED.value, "updated_at": now},
            bump_token_version=True,
        )
        if suspended is None:
            return False
        await self._tokens.revoke_all_for_user(user_id, now)
        return True

    async def _count_attempt(self, throttle_key: str) -> None:
        """Counts a password attempt before the password is checked; refuses it over the limit."""
        retry_after = await self._throttle.attempt(throttle_key)
        if retry_after:
            raise TooManyAttemptsError(retry_after)

    async def _current_password_matches(self, user: UserDocument, password: str) -> bool:
        """Checks the signed-in user's password; guesses count per account, from any address."""
        throttle_key = f"account:{user['id']}"
        await self._count_attempt(throttle_key)
        if not verify_password(password, await self._users.password_hash(user["id"])):
            return False
        await self._throttle.reset(throttle_key)
        return True

    async def _change_credentials(self, user: UserDocument, fields: dict[str, Any]) -> StoredUser:
        """Stores a new password or email and ends every session: the token version moves on,
        which voids every access token, and every refresh token is revoked."""
        now = utcnow()
        updated = await self._users.update(
            user["id"], {**fields, "updated_at": now}, bump_token_version=True
        )
        if updated is None:
            raise AuthenticationError("This account no longer exists")
        await self._tokens.revoke_all_for_user(user["id"], now)
        return updated

    async def _issue(self, user: UserDocument, family_id: str) -> TokenPair:
        now = utcnow()
        refresh_token = random_secret()
        token: RefreshTokenDocument = {
            "id": new_id(),
            "user_id": user["id"],
            "family_id": family_id,
            "token_hash": sha256_hex(refresh_token),
            "created_at": now,
            "expires_at": now + timedelta(days=self._settings.refresh_token_days),
            "revoked_at": None,
        }
        await self._tokens.insert(token)
        access_token = create_access_token(self._settings, user["id"], user["token_version"])
        return TokenPair(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=self._settings.access_token_minutes * 60,
        )


async def _record_wrong_password(audit: AuditTrail, action: str, user: UserDocument) -> None:
    await audit.record(
        action,
        actor_id=user["id"],
        target=user_target(user["id"]),
        outcome=AuditOutcome.FAILURE,
        details={"reason": "wrong_password"},
    )
