"""Settings: one frozen class read from the environment, with the seed guide's names."""

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    Field,
    HttpUrl,
    IPvAnyNetwork,
    MongoDsn,
    SecretStr,
    UrlConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import MultiHostUrl
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.redis_url import SCHEMES, parse_redis_url

# There is no built-in signing secret: `make dev` and the test scripts generate one per run folder.
_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "jwt-secret"}
_MIN_SECRET_LENGTH = 32
# Never echoed back in an error: they may carry credentials.
_SENSITIVE_FIELDS = {"jwt_secret", "mongo_url", "redis_url"}

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
# One server, a Redis Cluster or a Sentinel-managed master: the forms are in app/core/redis_url.py.
RedisUrl = Annotated[
    MultiHostUrl, UrlConstraints(allowed_schemes=list(SCHEMES), host_required=True)
]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        case_sensitive=False,
        # An empty variable (as Helm renders an unset value) means "use the default".
        env_ignore_empty=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    # Loopback unless told otherwise; the container image sets HOST=0.0.0.0.
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000

    # MongoDB
    mongo_url: MongoDsn = MongoDsn("mongodb://127.0.0.1:27017/")
    db_name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_-]+$")] = (
        "botsmith"
    )
    mongo_max_pool_size: PositiveInt = 100
    mongo_min_pool_size: Annotated[int, Field(ge=0)] = 10
    mongo_max_idle_time_ms: PositiveInt = 45_000
    mongo_wait_queue_timeout_ms: PositiveInt = 10_000
    mongo_connect_timeout_ms: PositiveInt = 20_000
    mongo_server_selection_timeout_ms: PositiveInt = 5_000
    mongo_ensure_indexes: bool = True
    read_policy_file: Path | None = None
    read_policy_reload_seconds: PositiveFloat = 5.0

    # Redis (one server, a Cluster or Sentinels); unset means single-process, in-process fallbacks
    redis_url: RedisUrl | None = None

    # Serving
    uvicorn_workers: Annotated[int, Field(ge=1, le=64)] = 4
    gunicorn_graceful_timeout: PositiveInt = 30
    # A stopping worker serves requests still arriving on open connections this long, each
    # with `Connection: close`, before closing what is left (part of the graceful timeout).
    shutdown_drain_seconds: Annotated[float, Field(ge=0, le=30)] = 1.0
    gunicorn_keepalive: PositiveInt = 5
    gunicorn_max_requests: Annotated[int, Field(ge=0)] = 10_000
    gunicorn_max_requests_jitter: Annotated[int, Field(ge=0)] = 1_000
    request_timeout: PositiveFloat = 30
    async_concurrency_limit: PositiveInt = 1000
    concurrency_queue_size: Annotated[int, Field(ge=0)] = 1000
    concurrency_queue_timeout_seconds: PositiveFloat = 2.0
    slow_request_seconds: PositiveFloat = 5
    # Largest request body of any route; those that take whole documents (file, text and Q&A
    # sources) take INGEST_MAX_FILE_BYTES plus the multipart framing instead (413 beyond).
    max_request_bytes: PositiveInt = 1024 * 1024
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = ()

    # Rate limits
    rate_limit_enabled: bool = True
    rate_limit_per_minute: PositiveInt = 200
    rate_limit_per_hour: PositiveInt = 5000
    rate_limit_login_per_minute: PositiveInt = 10
    rate_limit_login_per_hour: PositiveInt = 100
    rate_limit_public_per_minute: PositiveInt = 60
    rate_limit_public_per_hour: PositiveInt = 1000
    # Clients far from their limits are admitted from each process's view of the counters,
    # synced with Redis this often (0: every request asks Redis); within this fraction of a
    # limit, Redis decides exactly. Error bound: app/core/limitview.py.
    rate_limit_sync_seconds: Annotated[float, Field(ge=0, le=5)] = 0.1
    rate_limit_exact_margin: Annotated[float, Field(ge=0, le=1)] = 0.1
    redis_retry_after_failure_seconds: PositiveFloat = 2.0

    # WebSockets
    websocket_max_connections: PositiveInt = 10_000
    websocket_ping_interval: PositiveFloat = 30
    websocket_ping_timeout: PositiveFloat = 10
    websocket_max_per_user: PositiveInt = 20
    websocket_max_message_bytes: PositiveInt = 64 * 1024
    websocket_send_queue: PositiveInt = 256
    websocket_status_interval: PositiveFloat = 15
    websocket_per_message_deflate: bool = False
    # Chat messages a socket may have in flight at once (each is rate limited like a REST chat).
    websocket_max_concurrent_chats: PositiveInt = 2
    # How often owners' quiet sockets are checked for a revoked access (every message is, too).
    websocket_revalidate_seconds: PositiveFloat = 30

    # Cache
    cache_enabled: bool = True
    cache_ttl: PositiveInt = 300

    # OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, ...) for bots whose provider
    # is "openai"; other bots use the offline grounded provider.
    llm_base_url: HttpUrl | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: PositiveFloat = 30.0
    # Spend controls on the platform's LLM key. The models bots may name and the max_tokens
    # ceiling until an administrator sets them (PUT /api/admin/models); empty: LLM_MODEL only.
    llm_allowed_models: Annotated[tuple[str, ...], NoDecode] = ()
    llm_max_tokens_ceiling: Annotated[int, Field(ge=1, le=16_384)] = 4096
    # Tokens each owner's bots may spend per UTC day and month (0 = unlimited); administrators
    # may set other limits for one owner.
    llm_owner_daily_tokens: Annotated[int, Field(ge=0)] = 100_000
    llm_owner_monthly_tokens: Annotated[int, Field(ge=0)] = 1_000_000

    # Optional embeddings (OpenAI-compatible /embeddings) for hybrid retrieval with BM25
    embeddings_base_url: HttpUrl | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_model: str = "text-embedding-3-small"
    embeddings_batch_size: Annotated[int, Field(ge=1, le=2048)] = 64

    # Knowledge ingestion
    ingest_max_file_bytes: PositiveInt = 10 * 1024 * 1024
    ingest_max_sources_per_bot: PositiveInt = 200
    ingest_max_chars_per_bot: PositiveInt = 5_000_000
    ingest_stream: str = "botsmith:ingest"
    ingest_reclaim_seconds: PositiveFloat = 60.0
    # A source whose processing takes longer fails with that reason (its thread work, if any,
    # finishes in the background; the job is not retried).
    ingest_job_timeout_seconds: PositiveFloat = 600.0
    # Files are read in a child process with these limits: its address space, its CPU time,
    # and the uncompressed bytes of an archive-based file (.docx); a file past one fails.
    ingest_extract_max_memory_bytes: Annotated[int, Field(ge=64 * 1024**2)] = 768 * 1024**2
    ingest_extract_max_cpu_seconds: PositiveInt = 120
    ingest_max_extracted_bytes: PositiveInt = 50 * 1024 * 1024
    # A worker not seen for this long counts as gone: pending sources and /readyz then say so.
    ingest_worker_stale_seconds: PositiveFloat = 30.0
    # A source pending or processing this long without a change lost its job (Redis lost its
    # data, a process died): it is queued again. Longer than INGEST_JOB_TIMEOUT_SECONDS.
    ingest_requeue_after_seconds: PositiveFloat = 900.0
    ingest_requeue_check_seconds: PositiveFloat = 60.0
    # Scheduled refreshes of URL sources: how often one process looks for due sources, how many
    # it refreshes per round, and a factor on the periods (below 1 only to test schedules).
    source_refresh_check_seconds: PositiveFloat = 60.0
    source_refresh_batch: Annotated[int, Field(ge=1, le=1000)] = 20
    source_refresh_period_scale: Annotated[float, Field(gt=0, le=1)] = 1.0
    # Hosts or networks that URL sources may reach although they are private (an intranet).
    ingest_url_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    ingest_fetch_timeout_seconds: PositiveFloat = 10.0
    ingest_fetch_max_bytes: PositiveInt = 2 * 1024 * 1024
    ingest_user_agent: str = "BotSmithBot/0.1 (knowledge ingestion; +https://botsmith.ai/bot)"
    # `botsmith worker` serves its metrics here (on HOST); 0 turns that off.
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9100
    # `botsmith serve` serves /metrics of every gunicorn worker here (on HOST), from the master,
    # and no longer on PORT; 0 keeps /metrics on PORT.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0

    # Outbound webhooks
    max_webhooks_per_chatbot: Annotated[int, Field(ge=1, le=100)] = 10
    # Retries stop (and an endpoint failing all along is disabled) after this many hours.
    webhook_retry_hours: PositiveFloat = 24.0
    # The first retry waits about this long; each next one twice as long, at most the maximum.
    webhook_retry_base_seconds: PositiveFloat = 10.0
    webhook_retry_max_seconds: PositiveFloat = 3600.0
    webhook_timeout_seconds: PositiveFloat = 10.0
    # Deliveries sent at once by one process, and how often an idle delivery loop looks for work.
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    webhook_poll_seconds: PositiveFloat = 1.0

    # Human handoff: how often the API looks for handoffs nobody claimed in time (one process at
    # a time, by a lease in Redis), and how many agents one bot may have.
    handoff_sweep_seconds: PositiveFloat = 5.0
    max_agents_per_chatbot: Annotated[int, Field(ge=1, le=500)] = 50

    # Retention and erasure: how often one process deletes what bots keep no longer (and expired
    # refresh tokens, old webhook deliveries), how often it advances requested erasures, and how
    # many documents one delete takes.
    retention_check_seconds: PositiveFloat = 3600.0
    erasure_check_seconds: PositiveFloat = 10.0
    retention_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    # Finished webhook deliveries (sent, or given up on) are deleted this many days later.
    webhook_delivery_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30

    # Analytics
    analytics_max_days: Annotated[int, Field(ge=1, le=3660)] = 366
    analytics_max_buckets: Annotated[int, Field(ge=1, le=100_000)] = 2000

    # Health checks: a short ping, its result shared for a moment
    health_check_timeout_seconds: PositiveFloat = 1.0
    health_cache_seconds: Annotated[float, Field(ge=0)] = 2.0

    # Secrets and accounts
    jwt_secret: SecretStr = SecretStr("")
    access_token_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    refresh_token_days: Annotated[int, Field(ge=1, le=365)] = 30
    login_max_failures: PositiveInt = 5
    login_failure_window_seconds: PositiveInt = 900
    max_chatbots_per_user: PositiveInt = 100
    max_api_keys_per_chatbot: PositiveInt = 25
    # Chat messages each owner's bots may take per UTC month (0 = unlimited) unless the owner's
    # plan (set by an administrator) says otherwise; MAX_CHATBOTS_PER_USER and the
    # INGEST_MAX_*_PER_BOT caps are the plan's other defaults.
    plan_messages_per_month: Annotated[int, Field(ge=0)] = 0
    # Audit entries older than this are deleted by a housekeeping round, a batch at a time.
    audit_retention_days: Annotated[int, Field(ge=1, le=3660)] = 365
    audit_purge_seconds: PositiveFloat = 3600.0

    # Observability
    log_level: Annotated[str, Field(pattern=r"^(?i:debug|info|warning|error|critical)$")] = "info"
    otel_exporter_otlp_endpoint: HttpUrl | None = None
    otel_service_name: str = "botsmith-api"

    @field_validator("trusted_proxies", "ingest_url_allowlist", "llm_allowed_models", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: MultiHostUrl | None) -> MultiHostUrl | None:
        if url is not None:
            parse_redis_url(url)
        return url

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.mongo_min_pool_size > self.mongo_max_pool_size:
            raise ValueError(
                "MONGO_MIN_POOL_SIZE must not exceed MONGO_MAX_POOL_SIZE "
                f"({self.mongo_min_pool_size} > {self.mongo_max_pool_size})"
            )
        if self.ingest_requeue_after_seconds <= self.ingest_job_timeout_seconds:
            raise ValueError(
                "INGEST_REQUEUE_AFTER_SECONDS must exceed INGEST_JOB_TIMEOUT_SECONDS "
                f"({self.ingest_requeue_after_seconds:g} <= {self.ingest_job_timeout_seconds:g}): "
                "a source still being processed would be queued again"
            )
        secret = self.jwt_secret.get_secret_value()
        if secret.lower() in _PLACEHOLDER_SECRETS or len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(
                f"JWT_SECRET must be set to a random value of at least {_MIN_SECRET_LENGTH} "
                "characters (for example: openssl rand -hex 32); `make dev` generates one"
            )
        return self

    @property
    def redis_configured(self) -> bool:
        return self.redis_url is not None


def describe_validation_error(error: ValidationError) -> str:
    """Turns pydantic's multi-line report into one line naming each variable and its problem."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if location:
            given = item.get("input")
            echo = isinstance(given, str | int | float) and location not in _SENSITIVE_FIELDS
            shown = f" (got {given!r})" if echo else ""
            parts.append(f"{location.upper()}: {message}{shown}")
        else:
            parts.append(message)
    return "; ".join(parts)


def load_settings() -> Settings:
    """Reads the settings, or raises ConfigurationError with one line saying what is wrong."""
    try:
        return Settings()
    except ValidationError as error:
        message = describe_validation_error(error)
        raise ConfigurationError(f"configuration error: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
