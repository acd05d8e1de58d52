"""The gunicorn worker: uvicorn's, with the WebSocket settings and a graceful 1001 close.

Uvicorn closes WebSockets with 1012 when it shuts down; before that, this server closes them
with 1001 (going away), so clients know to reconnect elsewhere.
"""

import sys
from collections.abc import Awaitable, Callable
from socket import socket
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.core.config import load_settings

# Filled by the application's lifespan: run before uvicorn closes connections.
BEFORE_SHUTDOWN: list[Callable[[], Awaitable[None]]] = []


class GracefulServer(Server):
    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        for hook in BEFORE_SHUTDOWN:
            await hook()
        await super().shutdown(sockets)


class Worker(UvicornWorker):  # type: ignore[misc]
    _settings = load_settings()
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "ws_ping_interval": _settings.websocket_ping_interval,
        "ws_ping_timeout": _settings.websocket_ping_timeout,
        "ws_max_size": _settings.websocket_max_message_bytes,
        # Compression state costs tens of kilobytes per socket and buys little on small frames.
        "ws_per_message_deflate": _settings.websocket_per_message_deflate,
    }

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = GracefulServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
