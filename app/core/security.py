"""Password hashing (argon2id), signed access tokens (JWT) and opaque random secrets."""

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.config import Settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when an email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
JWT_ALGORITHM = "HS256"
API_KEY_MARKER = "bsk_"


def utcnow() -> datetime:
    """Now, in UTC, at the millisecond precision MongoDB stores, so responses match reads."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    return uuid.uuid4().hex


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def sha256_hex(value: str) -> str:
    """Digest of a high-entropy secret (refresh token, API key): a fast lookup, nothing to crack."""
    return hashlib.sha256(value.encode()).hexdigest()


def random_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    token_version: int


def create_access_token(settings: Settings, user_id: str, token_version: int) -> str:
    now = utcnow()
    claims = {
        "sub": user_id,
        "ver": token_version,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=settings.access_token_minutes),
        "jti": new_id(),
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=JWT_ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims | None:
    """The claims of a valid, unexpired access token, or None."""
    verified = _verify(token, settings.jwt_secret.get_secret_value())
    if verified is None:
        return None
    claims, expires_at = verified
    return claims if time.time() < expires_at else None


@lru_cache(maxsize=8192)
def _verify(token: str, secret: str) -> tuple[AccessClaims, float] | None:
    """Signature and shape checks, remembered per token: a client sends the same token many
    times, and verifying it is the costliest step of a cached read. Expiry is checked by the
    caller on every use."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "ver", "typ"]},
        )
    except jwt.PyJWTError:
        return None
    if claims["typ"] != "access" or not isinstance(claims["ver"], int):
        return None
    return AccessClaims(user_id=str(claims["sub"]), token_version=claims["ver"]), float(
        claims["exp"]
    )
