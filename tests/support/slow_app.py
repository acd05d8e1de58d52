"""The real application plus deliberately slow routes, for shutdown, timeout and limit tests."""

import asyncio
from collections.abc import AsyncIterator

from app.main import create_app as create_product_app
from fastapi import FastAPI
from fastapi.responses import StreamingResponse


def create_app() -> FastAPI:
    app = create_product_app()

    @app.get("/test/slow")
    async def slow(seconds: float = 2.0) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @app.get("/test/stream")
    async def stream(chunks: int = 5, gap: float = 0.5, stall: float = 0.0) -> StreamingResponse:
        """Sends `chunks` lines `gap` seconds apart, then stalls `stall` seconds before the last."""

        async def lines() -> AsyncIterator[bytes]:
            for n in range(chunks):
                await asyncio.sleep(gap)
                yield f"chunk {n}\n".encode()
            await asyncio.sleep(stall)
            yield b"done\n"

        return StreamingResponse(lines(), media_type="text/plain")

    return app
