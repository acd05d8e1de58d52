"""Schemas shared by every domain: strict request bodies, cursor pagination."""

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import DomainError


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page[T](BaseModel):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class InvalidCursorError(DomainError):
    status = 400
    title = "Invalid cursor"


Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page")]


def encode_cursor(created_at: datetime, item_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) position a cursor stands for; a malformed cursor is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        position = datetime.fromisoformat(created_at)
        if position.tzinfo is None or not isinstance(item_id, str):
            raise ValueError
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursorError("The cursor is not one this API returned") from None
    return position, item_id


def page_of[D: Mapping[str, Any], T](
    found: Sequence[D], limit: int, item: Callable[[D], T], time_field: str
) -> Page[T]:
    """A page from `limit + 1` documents read in (time desc, id desc) order: the extra one only
    says whether there is a next page."""
    last = found[limit - 1] if len(found) > limit else None
    return Page(
        items=[item(document) for document in found[:limit]],
        next_cursor=encode_cursor(last[time_field], last["id"]) if last else None,
    )


def after_cursor(cursor: str | None, time_field: str = "created_at") -> dict[str, object]:
    """The filter for items after the cursor in (time desc, id desc) order."""
    if cursor is None:
        return {}
    position, item_id = decode_cursor(cursor)
    return {
        "$or": [
            {time_field: {"$lt": position}},
            {time_field: position, "id": {"$lt": item_id}},
        ]
    }
