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


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    for name in ("uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in server_logger.filters):
            server_logger.addFilter(RedactSecrets())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
