"""The gunicorn worker: uvicorn's, with the WebSocket settings, a graceful 1001 close and a
drain that loses no request.

Uvicorn closes WebSockets with 1012 when it shuts down; before that, this server runs the
application's `before_shutdown` hooks, which close them with 1001 (going away), so clients know
to reconnect elsewhere.

Uvicorn also closes every idle keep-alive connection at once when it stops, and a client that
sent its next request on one at that moment loses it (a reload or rolling restart under load
dropped a few requests that way). So a stopping worker first stops accepting connections and,
for up to SHUTDOWN_DRAIN_SECONDS, serves the requests still arriving on open connections with
`Connection: close` (the application's `draining` flag); only then does uvicorn close what is
left.
"""

import asyncio
import sys
from socket import socket
from typing import Any

from gunicorn.arbiter import Arbiter
from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from app.core.config import load_settings


class GracefulServer(Server):
    def __init__(self, config: Config, drain_seconds: float) -> None:
        super().__init__(config)
        self._drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        app = self.config.app
        for hook in getattr(app, "before_shutdown", ()):
            await hook()
        if hasattr(app, "draining"):
            app.draining = True
            for server in self.servers:  # the other workers accept new connections meanwhile
                server.close()
            await self._drain()
        await super().shutdown(sockets)

    async def _drain(self) -> None:
        """Waits until the open connections have closed (each after its next response), or
        for the drain time at most."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_seconds
        # Uvicorn's connection set has no event to wait for; it polls the same way.
        while self.server_state.connections and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


class Worker(UvicornWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read when gunicorn creates the worker, not when this module is imported.
        settings = load_settings()
        self._drain_seconds = settings.shutdown_drain_seconds
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
        server = GracefulServer(self.config, self._drain_seconds)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
