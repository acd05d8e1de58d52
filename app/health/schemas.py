"""The health JSON: exactly the shape of the seed scalability guide."""

from typing import Literal

from pydantic import BaseModel

Health = Literal["healthy", "unhealthy"]


class ConnectionPool(BaseModel):
    status: Health
    max_pool_size: int
    min_pool_size: int


class Scalability(BaseModel):
    max_pool_size: int
    concurrent_tasks_limit: int
    rate_limit_per_minute: int


class HealthReport(BaseModel):
    status: Literal["running", "degraded"]
    database: Health
    connection_pool: ConnectionPool
    scalability: Scalability


class Liveness(BaseModel):
    status: Literal["alive"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
