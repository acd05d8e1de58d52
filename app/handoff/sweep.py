"""The unclaimed-handoff sweep: every HANDOFF_SWEEP_SECONDS one API process (whichever takes the
round's lease in Redis; without Redis, the only process) sends the fallback message in handoffs
nobody claimed in time. Each fallback is marked sent by a conditional update before it is sent,
so a handoff gets it once even if two processes sweep at the same moment."""

import asyncio
import logging
import os

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from app.core.resources import Resources
from app.handoff.service import HandoffService

logger = logging.getLogger(__name__)
LEASE_KEY = "botsmith:handoff:sweep-lease"


async def _take_lease(resources: Resources, seconds: float) -> bool:
    if resources.redis is None:
        return True
    try:
        taken = await resources.redis.set(
            LEASE_KEY, str(os.getpid()), nx=True, px=max(1, int(seconds * 1000))
        )
    except RedisError:
        return True  # the conditional update still sends each fallback once
    return bool(taken)


async def sweep_unclaimed_handoffs(resources: Resources) -> None:
    """Runs until cancelled (started by the API's lifespan)."""
    interval = resources.settings.handoff_sweep_seconds
    service = HandoffService(resources)
    while True:
        await asyncio.sleep(interval)
        try:
            if await _take_lease(resources, interval * 0.9):
                sent = await service.send_fallbacks()
                if sent:
                    logger.info("sent the fallback message in %d unclaimed handoffs", sent)
        except PyMongoError as error:
            logger.warning("the unclaimed-handoff sweep failed, it runs again: %s", error)
        except Exception:
            logger.exception("the unclaimed-handoff sweep failed; it runs again")
