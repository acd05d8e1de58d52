"""The real application plus one deliberately slow route, for shutdown and timeout tests."""

import asyncio

from app.main import create_app as create_product_app
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = create_product_app()

    @app.get("/test/slow")
    async def slow(seconds: float = 2.0) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    return app
