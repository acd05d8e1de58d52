"""The baseline: a minimal FastAPI app answering the health JSON, with no middleware and no I/O.

Served by the same gunicorn + uvicorn workers as the product, so the ratio measures only what
the product adds per request (middleware, rate limiting, cached reads, metrics).
"""

from fastapi import FastAPI

HEALTH = {
    "status": "running",
    "database": "healthy",
    "connection_pool": {"status": "healthy", "max_pool_size": 100, "min_pool_size": 10},
    "scalability": {
        "max_pool_size": 100,
        "concurrent_tasks_limit": 1000,
        "rate_limit_per_minute": 200,
    },
}

app = FastAPI()


@app.get("/api/health")
async def health() -> dict[str, object]:
    return HEALTH


@app.get("/api/chatbots/{chatbot_id}")
async def chatbot(chatbot_id: str) -> dict[str, object]:
    return {"id": chatbot_id, **HEALTH}
