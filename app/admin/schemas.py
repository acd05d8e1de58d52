"""Admin views: user management, platform counts and the LLM spend controls."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from app.analytics.schemas import LlmUsage
from app.core.schemas import RequestModel
from app.users.schemas import Role, UserStatus


class UserAdminUpdate(RequestModel):
    role: Role | None = None
    status: UserStatus | None = None


class PlatformCounts(BaseModel):
    users: int
    chatbots: int
    conversations: int
    messages: int


ModelName = Annotated[str, Field(min_length=1, max_length=100)]


class ModelAllowlistUpdate(RequestModel):
    models: Annotated[list[ModelName], Field(min_length=1, max_length=100)]
    max_tokens_ceiling: Annotated[int, Field(ge=1, le=16_384)]

    @field_validator("models")
    @classmethod
    def _distinct(cls, models: list[str]) -> list[str]:
        if len(set(models)) != len(models):
            raise ValueError("models must not repeat")
        return models


class ModelAllowlistOut(BaseModel):
    models: list[str] = Field(description="What bots answering with the platform's LLM may name")
    max_tokens_ceiling: int = Field(description="The highest model.max_tokens a bot may set")
    default_model: str = Field(description="LLM_MODEL: used by bots that name no model")
    fallback_model: str = Field(description="Answers for bots whose model is no longer allowed")
    updated_at: datetime | None = Field(description="null: the deployment's settings apply")


class LlmBudgetUpdate(RequestModel):
    """An owner's own limits; null returns to the platform's default, 0 is unlimited."""

    daily_tokens: Annotated[int, Field(ge=0)] | None = None
    monthly_tokens: Annotated[int, Field(ge=0)] | None = None


class LlmBudgetOut(LlmUsage):
    own_daily_tokens: int | None = Field(description="null: LLM_OWNER_DAILY_TOKENS applies")
    own_monthly_tokens: int | None = Field(description="null: LLM_OWNER_MONTHLY_TOKENS applies")
