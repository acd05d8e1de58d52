"""Gunicorn configuration: uvicorn workers, graceful restarts, Prometheus multiprocess mode.

Loaded by the gunicorn master with ``-c python:app.gunicorn_conf`` (``botsmith serve`` does so).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from app.core.config import ConfigurationError, load_settings

try:
    _settings = load_settings()
except ConfigurationError as error:
    print(error, file=sys.stderr)
    sys.exit(2)

# Must be set before prometheus_client is first imported, in the master and so in every worker.
_metrics_dir = Path(
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR",
        str(Path(tempfile.gettempdir()) / f"botsmith-metrics-{os.getpid()}"),
    )
)

# Imported here, not in child_exit: that hook runs from a signal handler, where a first import
# can be re-entered by the next worker's exit.
from prometheus_client import CollectorRegistry, multiprocess, start_http_server  # noqa: E402

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.uvicorn_workers
worker_class = "app.serving.Worker"  # uvicorn_worker.UvicornWorker with WebSocket settings
graceful_timeout = _settings.gunicorn_graceful_timeout
timeout = _settings.gunicorn_graceful_timeout + 30
keepalive = _settings.gunicorn_keepalive
max_requests = _settings.gunicorn_max_requests
max_requests_jitter = _settings.gunicorn_max_requests_jitter
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Uvicorn would rewrite the client address from X-Forwarded-For for 127.0.0.1 by default; the
# service reads that header itself, only from TRUSTED_PROXIES (which may be networks).
forwarded_allow_ips = ""
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "botsmith-api"


def on_starting(server: Any) -> None:
    """Wipes the metrics directory: files left by an earlier run would be counted again."""
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    _metrics_dir.mkdir(parents=True, exist_ok=True)


def when_ready(server: Any) -> None:
    """With METRICS_PORT, the master serves /metrics of every worker on that port alone."""
    if not _settings.metrics_port:
        return
    # A fresh registry reads every worker's files on each scrape; the master records nothing.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(_settings.metrics_port, addr=_settings.host, registry=registry)
    server.log.info("metrics on %s:%d/metrics", _settings.host, _settings.metrics_port)


def child_exit(server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
