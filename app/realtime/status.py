"""The `status` topic: the health summary pushed to subscribed sockets."""

import asyncio

from app.health.service import HealthService
from app.realtime.hub import Hub


async def push_status(hub: Hub, health: HealthService, interval: float) -> None:
    """The health summary to `status` subscribers: when it changes, and every `interval`."""
    last_sent = 0.0
    while True:
        report = (await health.report()).model_dump()
        now = asyncio.get_running_loop().time()
        if report != hub.last_status or now - last_sent >= interval:
            hub.push_status(report)
            last_sent = now
        await asyncio.sleep(min(1.0, interval))
