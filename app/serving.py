"""The gunicorn worker: uvicorn's, with the WebSocket settings and a graceful 1001 close.

Uvicorn closes WebSockets with 1012 when it shuts down; before that, this server runs the
application's `before_shutdown` hooks, which close them with 1001 (going away), so clients know
to reconnect elsewhere.
"""

import sys
from socket import socket
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.core.config import load_settings


class GracefulServer(Server):
    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        for hook in getattr(self.config.app, "before_shutdown", ()):
            await hook()
        await super().shutdown(sockets)


class Worker(UvicornWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read when gunicorn creates the worker, not when this module is imported.
        settings = load_settings()
        self.CONFIG_KWARGS = {
            **UvicornWorker.CONFIG_KWARGS,
            "ws_ping_interval": settings.websocket_ping_interval,
            "ws_ping_timeout": settings.websocket_ping_timeout,
            "ws_max_size": settings.websocket_max_message_bytes,
            # Compression state costs tens of kilobytes per socket and buys little on small frames.
            "ws_per_message_deflate": settings.websocket_per_message_deflate,
        }
        super().__init__(*args, **kwargs)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = GracefulServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
