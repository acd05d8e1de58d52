"""A chat turn's events as a Server-Sent Events response (owner chat and widget chat), and the
OpenAPI description of that stream: one schema per event, its `data` a JSON document."""

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from app.chat.schemas import ChatEvent, Citation, EventName
from app.handoff.schemas import HandoffState

EVENT_STREAM = "text/event-stream"
SCHEMA_REF = "#/components/schemas/{model}"


class StartEvent(BaseModel):
    """`start`: the turn began; the answer will be stored under `message_id`."""

    conversation_id: str
    message_id: str


class TokenEvent(BaseModel):
    """`token`: the next piece of the answer's text."""

    text: str


class SourcesEvent(BaseModel):
    """`sources`: the passages the answer cites."""

    sources: list[Citation]


class HandoffEvent(BaseModel):
    """`handoff`: a person has the conversation (or was just asked to take it); the bot is
    silent until the handoff closes. Comes before `end`."""

    state: HandoffState
    agent_name: str | None = Field(default=None, description="Set once an agent claimed it")


class EndEvent(BaseModel):
    """`end`: the answer is complete and stored."""

    message_id: str
    answered: bool = Field(description="False when the bot said it does not know")
    latency_ms: int


class ErrorEvent(BaseModel):
    """`error`: the answer failed; no other event follows."""

    message: str
    timeout: bool = Field(default=False, description="The model provider timed out")
    retry_after: int | None = Field(
        default=None, description="Over the LLM budget: seconds until the turn may be asked again"
    )


EVENT_DATA: dict[EventName, type[BaseModel]] = {
    "start": StartEvent,
    "token": TokenEvent,
    "sources": SourcesEvent,
    "handoff": HandoffEvent,
    "end": EndEvent,
    "error": ErrorEvent,
}


def _event_schema(name: str, data: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": SCHEMA_REF.format(model=data.__name__)},
            },
        },
    }


# The media type object for `responses=`: `itemSchema` describes each event, as FastAPI's own
# event streams and OpenAPI 3.2 do.
SSE_CONTENT: dict[str, dict[str, Any]] = {
    EVENT_STREAM: {
        "itemSchema": {
            "description": "start → token… → sources → [handoff] → end; or error in place "
            "of the rest",
            "oneOf": [_event_schema(name, data) for name, data in EVENT_DATA.items()],
        }
    }
}


def event_schemas() -> dict[str, Any]:
    """The OpenAPI component schemas the events' `data` refer to."""
    _, definitions = models_json_schema(
        [(data, "serialization") for data in EVENT_DATA.values()], ref_template=SCHEMA_REF
    )
    schemas: dict[str, Any] = definitions["$defs"]
    return schemas


async def sse_stream(events: AsyncIterator[ChatEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event.sse()
    except Exception as error:
        failed = ErrorEvent(message=f"the answer failed: {error}")
        yield ChatEvent(event="error", data=failed.model_dump(exclude_none=True)).sse()


def sse_response(events: AsyncIterator[ChatEvent]) -> StreamingResponse:
    return StreamingResponse(
        sse_stream(events), media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache"}
    )
