"""The delivery loop: sends recorded deliveries to their endpoints, signed, with retries.

Runs in `botsmith worker` (and in the API process when there is no Redis). A loop claims one due
delivery at a time with a lease (an atomic update), so two loops never send the same attempt at
once; a loop that dies mid-attempt leaves the lease to expire and another loop sends it again.
At most WEBHOOK_CONCURRENCY deliveries are in flight per loop.

A failed attempt (no answer, a timeout, a status outside 2xx, a redirect) is tried again after
WEBHOOK_RETRY_BASE_SECONDS, doubling each time up to WEBHOOK_RETRY_MAX_SECONDS, each wait shortened
by a random jitter of up to a quarter, for WEBHOOK_RETRY_HOURS after the delivery was recorded. An
endpoint that has failed every attempt for that long is disabled and its owner notified.

Connections go through an `Egress`: the endpoint's URL is checked again before every attempt and
the connection is made to the address checked (see `app.sources.egress`).
"""

import asyncio
import contextlib
import logging
import random
import time
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from pymongo.errors import PyMongoError

from app.core.events import publish_event
from app.core.resources import Resources
from app.core.security import new_id, utcnow
from app.webhooks.documents import (
    AttemptDocument,
    DeliveryDocument,
    DeliveryStatus,
    EndpointDocument,
)
from app.webhooks.repository import WebhookRepository
from app.webhooks.signing import signature

logger = logging.getLogger(__name__)
# Response bodies are read up to this size and dropped: only the status code counts.
MAX_RESPONSE_BYTES = 64 * 1024
# A lease outlasts the attempt's timeout by this much before another loop may take it over.
LEASE_MARGIN_SECONDS = 30.0
USER_AGENT = "BotSmith-Webhooks/1.0"
DISABLED_EVENT = "webhook.disabled"


class UnsafeEndpointError(Exception):
    """The endpoint's URL may not be contacted; the message says why."""


class Egress(Protocol):
    """Outgoing connections to owner-given URLs without server-side request forgery."""

    async def check(self, url: str) -> None:
        """Raises UnsafeEndpointError unless the URL may be contacted; the client's next
        connections to its host go to the addresses checked here."""

    def client(self) -> httpx.AsyncClient:
        """A client that connects only to checked addresses and follows no redirects."""


def retry_delay(failed_attempts: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after `failed_attempts` failures in a row."""
    delay = min(base * 2.0 ** (failed_attempts - 1), cap)
    return delay * random.uniform(0.75, 1.0)


class DeliveryLoop:
    def __init__(self, resources: Resources, egress: Egress) -> None:
        self._resources = resources
        self._settings = resources.settings
        self._egress = egress
        self._repository = WebhookRepository(resources.db)

    async def run(self, stopping: asyncio.Event | None = None) -> None:
        """Sends due deliveries until `stopping` is set (or the task is cancelled)."""
        settings = self._settings
        slots = asyncio.Semaphore(settings.webhook_concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        async with self._egress.client() as client:
            try:
                while stopping is None or not stopping.is_set():
                    await slots.acquire()
                    delivery = await self._claim()
                    if delivery is None:
                        slots.release()
                        await _pause(settings.webhook_poll_seconds, stopping)
                        continue
                    task = asyncio.create_task(self._attempt(client, delivery))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    task.add_done_callback(lambda _: slots.release())
                if in_flight:  # a clean stop lets the attempts under way finish
                    await asyncio.wait(in_flight, timeout=settings.webhook_timeout_seconds + 1)
            finally:
                for task in in_flight:
                    task.cancel()

    async def _claim(self) -> DeliveryDocument | None:
        now = utcnow()
        lease = timedelta(seconds=self._settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        try:
            return await self._repository.claim_due(now, now + lease, new_id())
        except PyMongoError as error:
            logger.warning("could not claim webhook deliveries: %s", error)
            return None

    async def _attempt(self, client: httpx.AsyncClient, delivery: DeliveryDocument) -> None:
        try:
            await self._send_and_record(client, delivery)
        except PyMongoError as error:
            # The lease runs out and the attempt is made again.
            logger.warning("webhook delivery %s not recorded: %s", delivery["id"], error)
        except Exception:
            logger.exception("webhook delivery %s failed unexpectedly", delivery["id"])

    async def _send_and_record(self, client: httpx.AsyncClient, delivery: DeliveryDocument) -> None:
        repository, settings = self._repository, self._settings
        token = delivery.get("lease_token") or ""
        endpoint = await repository.endpoint_by_id(delivery["endpoint_id"])
        started = utcnow()
        if endpoint is None or not (endpoint["enabled"] or delivery.get("manual")):
            reason = "the endpoint was deleted" if endpoint is None else "the endpoint is disabled"
            attempt = AttemptDocument(at=started, status_code=None, latency_ms=0, error=reason)
            fields = _finished(DeliveryStatus.FAILED)
            await repository.record_attempt(delivery["id"], token, attempt, fields, failed=True)
            return
        status_code, error, latency_ms = await self._send(client, endpoint, delivery)
        now = utcnow()
        attempt = AttemptDocument(
            at=now, status_code=status_code, latency_ms=latency_ms, error=error
        )
        if error is None:
            fields = {**_finished(DeliveryStatus.DELIVERED), "delivered_at": now}
            if await repository.record_attempt(
                delivery["id"], token, attempt, fields, failed=False
            ):
                await repository.clear_failing(endpoint["id"])
            return
        give_up_at = delivery["give_up_at"] or started + timedelta(
            hours=settings.webhook_retry_hours
        )
        delay = retry_delay(
            delivery["failures"] + 1,
            settings.webhook_retry_base_seconds,
            settings.webhook_retry_max_seconds,
        )
        # The last attempt is made when the retries run out, not before.
        next_attempt = min(now + timedelta(seconds=delay), give_up_at)
        if now >= give_up_at:
            fields = _finished(DeliveryStatus.FAILED)
        else:
            fields = {"next_attempt_at": next_attempt, "give_up_at": give_up_at}
            attempt["retry_at"] = next_attempt
        if await repository.record_attempt(delivery["id"], token, attempt, fields, failed=True):
            await self._note_failure(endpoint, started, now)

    async def _send(
        self, client: httpx.AsyncClient, endpoint: EndpointDocument, delivery: DeliveryDocument
    ) -> tuple[int | None, str | None, int]:
        """(status code, error or None when delivered, latency in ms) of one POST."""
        seconds = self._settings.webhook_timeout_seconds
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery["event_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                endpoint["secret"], delivery["event_id"], timestamp, delivery["body"]
            ),
        }
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            await self._egress.check(endpoint["url"])
            async with (
                asyncio.timeout(seconds),
                client.stream(
                    "POST",
                    endpoint["url"],
                    content=delivery["body"].encode(),
                    headers=headers,
                    timeout=seconds,
                ) as response,
            ):
                status_code = response.status_code
                received = 0
                async for part in response.aiter_raw():
                    received += len(part)
                    if received >= MAX_RESPONSE_BYTES:
                        break
        except UnsafeEndpointError as refused:
            error = str(refused)
        except TimeoutError:
            error = f"no answer within {seconds:g} s"
        except httpx.HTTPError as failure:
            error = (
                f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
            )
        latency_ms = round((time.perf_counter() - started) * 1000)
        if error is None and status_code is not None and not 200 <= status_code < 300:
            if 300 <= status_code < 400:
                error = f"answered {status_code} (redirects are not followed)"
            else:
                error = f"answered {status_code}"
        return status_code, error, latency_ms

    async def _note_failure(
        self, endpoint: EndpointDocument, attempted_at: datetime, now: datetime
    ) -> None:
        """Disables an endpoint that has failed every attempt for WEBHOOK_RETRY_HOURS."""
        repository, hours = self._repository, self._settings.webhook_retry_hours
        failing_since = await repository.mark_failing_since(endpoint["id"], attempted_at)
        if failing_since is None or now - failing_since < timedelta(hours=hours):
            return
        reason = f"Every delivery failed for {hours:g} hours (since {failing_since.isoformat()})"
        if not await repository.disable_failing(endpoint["id"], reason, now):
            return
        await repository.stop_pending(endpoint["id"], "the endpoint was disabled", now)
        logger.warning("webhook endpoint %s disabled: %s", endpoint["id"], reason)
        event: dict[str, object] = {
            "type": DISABLED_EVENT,
            "chatbot_id": endpoint["chatbot_id"],
            "endpoint_id": endpoint["id"],
            "url": endpoint["url"],
            "reason": reason,
        }
        await publish_event(self._resources.events, endpoint["user_id"], event)


def _finished(status: DeliveryStatus) -> dict[str, object]:
    return {"status": status.value, "next_attempt_at": None}


async def _pause(seconds: float, stopping: asyncio.Event | None) -> None:
    if stopping is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
