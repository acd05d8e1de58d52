"""Per-chatbot API keys: request and response models."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel


class ApiKeyCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it")
    chatbot_id: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key; shown only in this response")
