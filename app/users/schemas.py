"""Users and authentication: request and response models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.core.schemas import RequestModel


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


def _normalise_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_normalise_email)]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class RegisterRequest(RequestModel):
    email: Email
    password: Password
    name: Name | None = None


class LoginRequest(RequestModel):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class RefreshRequest(RequestModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class PasswordChangeRequest(RequestModel):
    current_password: Annotated[str, Field(min_length=1, max_length=128)]
    new_password: Password


class UserUpdate(RequestModel):
    email: Email | None = None
    name: Name | None = None
    current_password: Annotated[str | None, Field(min_length=1, max_length=128)] = Field(
        default=None, validate_default=True, description="Required to change the email"
    )

    @field_validator("current_password")
    @classmethod
    def _required_with_email(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("email") is not None:
            raise PydanticCustomError("missing", "Required to change the email")
        return value


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None
    role: Role
    status: UserStatus
    created_at: datetime
    updated_at: datetime


class AdminAccount(RequestModel):
    """What `botsmith create-admin` is given; no password means promote an existing account."""

    email: Email
    password: Password | None = None
    name: Name | None = None
