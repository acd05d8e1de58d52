"""What the users domain stores: accounts, refresh tokens and chatbots' API keys."""

from datetime import datetime
from typing import TypedDict

from app.users.schemas import Role, UserStatus


class UserDocument(TypedDict):
    """An account as request handling reads it: the cached read leaves the password hash out."""

    id: str
    email: str
    name: str | None
    role: Role
    status: UserStatus
    token_version: int  # bumped by a password change, which voids every access token
    created_at: datetime
    updated_at: datetime


class StoredUser(UserDocument):
    """The whole stored account (what is inserted, and what login and updates read back)."""

    password_hash: str


class RefreshTokenDocument(TypedDict):
    id: str
    user_id: str
    family_id: str  # every token rotated from one login: reuse of a revoked one ends them all
    token_hash: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ApiKeyDocument(TypedDict):
    id: str
    name: str
    prefix: str
    chatbot_id: str
    user_id: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
