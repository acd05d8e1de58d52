"""Settings keep the seed guide's names and defaults and refuse bad values in one line."""

import subprocess

import pytest
from app.core.config import ConfigurationError, Settings, load_settings
from app.core.redis_url import RedisMode, parse_redis_url

from tests.support.processes import ROOT, TEST_JWT_SECRET, VENV_BIN

CONNECTION_VARIABLES = ("MONGO_URL", "REDIS_URL", "DB_NAME", "ENVIRONMENT", "JWT_SECRET")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.usefixtures("clean_env")
def test_defaults_are_the_seed_guides_numbers() -> None:
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    assert settings.host == "127.0.0.1"
    assert settings.mongo_max_pool_size == 100
    assert settings.mongo_min_pool_size == 10
    assert settings.mongo_max_idle_time_ms == 45_000
    assert settings.mongo_wait_queue_timeout_ms == 10_000
    assert settings.mongo_connect_timeout_ms == 20_000
    assert settings.uvicorn_workers == 4
    assert settings.request_timeout == 30
    assert settings.async_concurrency_limit == 1000
    assert settings.rate_limit_per_minute == 200
    assert settings.rate_limit_per_hour == 5000
    assert settings.websocket_max_connections == 10_000
    assert settings.websocket_ping_interval == 30
    assert settings.websocket_ping_timeout == 10
    assert settings.cache_enabled is True
    assert settings.cache_ttl == 300
    assert settings.slow_request_seconds == 5
    assert settings.redis_url is None


def test_a_non_numeric_pool_size_is_one_line_naming_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("MONGO_MAX_POOL_SIZE", "lots")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("configuration error: MONGO_MAX_POOL_SIZE:")
    assert "'lots'" in message


def test_min_pool_above_max_pool_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MONGO_MIN_POOL_SIZE", "50")
    clean_env.setenv("MONGO_MAX_POOL_SIZE", "20")
    with pytest.raises(ConfigurationError, match="MONGO_MIN_POOL_SIZE must not exceed"):
        load_settings()


@pytest.mark.parametrize("environment", ["development", "production"])
@pytest.mark.parametrize("secret", ["changeme", "short-but-real", None])
def test_every_environment_refuses_a_placeholder_or_missing_secret(
    clean_env: pytest.MonkeyPatch, secret: str | None, environment: str
) -> None:
    """There is no built-in secret: one from the source code would sign anybody's tokens."""
    clean_env.setenv("ENVIRONMENT", environment)
    if secret is not None:
        clean_env.setenv("JWT_SECRET", secret)
    with pytest.raises(ConfigurationError, match="JWT_SECRET must be set") as caught:
        load_settings()
    if secret is not None:
        assert secret not in str(caught.value)


def test_production_accepts_a_long_random_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ENVIRONMENT", "production")
    clean_env.setenv("JWT_SECRET", "q8Xr2mVb7TzL0pWc4NdY6hJs9KfA1eGu")
    assert load_settings().jwt_secret.get_secret_value().startswith("q8Xr")


def test_a_url_with_credentials_is_not_echoed_in_the_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MONGO_URL", "http://admin:hunter2@db.example")
    with pytest.raises(ConfigurationError, match="MONGO_URL") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_serve_without_a_secret_refuses_to_start(clean_env: pytest.MonkeyPatch) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "botsmith"), "serve"], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: JWT_SECRET must be set"), result.stderr


def test_the_image_runs_as_production_on_all_interfaces() -> None:
    """The service itself binds to loopback by default; only the container image opens it up."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ENVIRONMENT=production" in dockerfile
    assert "HOST=0.0.0.0" in dockerfile


def test_serve_with_a_bad_value_prints_one_line_and_no_traceback(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("UVICORN_WORKERS", "zero")
    result = subprocess.run(
        [str(VENV_BIN / "botsmith"), "serve"], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: UVICORN_WORKERS:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "mode", "nodes", "service", "db"),
    [
        ("redis://cache.internal:6380/2", RedisMode.SERVER, [("cache.internal", 6380)], "", 2),
        (
            "redis+cluster://a.internal:7000,b.internal",
            RedisMode.CLUSTER,
            [("a.internal", 7000), ("b.internal", 6379)],
            "",
            0,
        ),
        (
            "rediss+sentinel://:pw@s1.internal,s2.internal:26380/mymaster/1",
            RedisMode.SENTINEL,
            [("s1.internal", 26379), ("s2.internal", 26380)],
            "mymaster",
            1,
        ),
    ],
)
def test_redis_url_names_one_server_a_cluster_or_the_master_of_sentinels(
    clean_env: pytest.MonkeyPatch,
    url: str,
    mode: RedisMode,
    nodes: list[tuple[str, int]],
    service: str,
    db: int,
) -> None:
    clean_env.setenv("REDIS_URL", url)
    settings = Settings(jwt_secret=TEST_JWT_SECRET)
    assert settings.redis_url is not None
    target = parse_redis_url(settings.redis_url)
    assert (target.mode, list(target.nodes), target.service) == (mode, nodes, service)
    assert target.options["db"] == db
    assert target.tls is url.startswith("rediss")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis://:hunter2@a.internal,b.internal/0", "redis:// names one server"),
        ("redis+sentinel://:hunter2@s1.internal:26379", "needs the master's name"),
        ("redis+cluster://:hunter2@a.internal:7000/1", "a Redis Cluster has database 0 only"),
        ("redis+cluster://:hunter2@a.internal:7000/?socket_timeout=soon", "socket_timeout"),
        ("memcached://:hunter2@a.internal", "URL scheme should be"),
    ],
)
def test_a_wrong_redis_url_is_one_line_that_names_it_and_hides_the_password(
    clean_env: pytest.MonkeyPatch, url: str, complaint: str
) -> None:
    clean_env.setenv("JWT_SECRET", TEST_JWT_SECRET)
    clean_env.setenv("REDIS_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("configuration error: REDIS_URL:")
    assert complaint in message
    assert "\n" not in message
    assert "hunter2" not in message
