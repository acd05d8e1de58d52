"""A chat turn's events as a Server-Sent Events response (owner chat and widget chat)."""

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from app.chat.schemas import ChatEvent


async def sse_stream(events: AsyncIterator[ChatEvent]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield event.sse()
    except Exception as error:
        yield ChatEvent(event="error", data={"message": f"the answer failed: {error}"}).sse()


def sse_response(events: AsyncIterator[ChatEvent]) -> StreamingResponse:
    return StreamingResponse(
        sse_stream(events), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
