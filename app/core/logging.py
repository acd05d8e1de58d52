"""Process-wide logging: one line per record with the request id, level from LOG_LEVEL."""

import contextvars
import logging
import re

from app.core.config import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


_SECRET_PARAMETER = re.compile(r"((?:token|access_token|api_key)=)[^&\s\"']+")


class RedactSecrets(logging.Filter):
    """Hides credentials passed in URLs (a WebSocket's ?token=) from server log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(
                _SECRET_PARAMETER.sub(r"\1***", arg) if isinstance(arg, str) else arg
                for arg in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET_PARAMETER.sub(r"\1***", record.msg)
        return True


class OneLineDriverErrors(logging.Filter):
    """PyMongo logs a failure of its background pool maintenance (refilling the pool to
    MONGO_MIN_POOL_SIZE while the server is gone) with a full traceback, every time it runs
    into the outage. The outage itself is reported once (app/core/outage.py); this keeps those
    records to one warning line that names the error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"MongoDB background task failed: {record.exc_info[1]}"
            record.args = ()
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _add_once(target: logging.Filterer, kind: type[logging.Filter]) -> None:
    """setup_logging runs again in each worker and test: one filter of each kind is enough."""
    if not any(isinstance(f, kind) for f in target.filters):
        target.addFilter(kind())


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    for name in ("uvicorn.error", "uvicorn.access"):
        _add_once(logging.getLogger(name), RedactSecrets)
    _add_once(logging.getLogger("pymongo.client"), OneLineDriverErrors)
    for handler in logging.getLogger().handlers:
        _add_once(handler, RequestIdFilter)
