"""The MongoDB client: created in the lifespan (after fork), with the seed guide's pool settings."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
    ConnectionCheckedInEvent,
    ConnectionCheckedOutEvent,
    ConnectionCheckOutFailedEvent,
    ConnectionCheckOutFailedReason,
    ConnectionCheckOutStartedEvent,
    ConnectionClosedEvent,
    ConnectionCreatedEvent,
    ConnectionPoolListener,
    ConnectionReadyEvent,
    PoolClearedEvent,
    PoolClosedEvent,
    PoolCreatedEvent,
)

from app.core.config import Settings
from app.core.metrics import (
    MONGO_COMMAND_DURATION,
    MONGO_POOL_CHECKED_OUT,
    MONGO_POOL_CHECKOUT_TIMEOUTS,
    MONGO_POOL_CHECKOUT_WAITS,
    MONGO_POOL_CONNECTIONS,
    MONGO_POOL_MAX,
    MONGO_POOL_WAITING,
)

Document = dict[str, Any]
MongoClient = AsyncMongoClient[Document]
MongoDatabase = AsyncDatabase[Document]
MongoCollection = AsyncCollection[Document]


class PoolMetricsListener(ConnectionPoolListener):
    """Feeds connection-pool events into gauges; a checkout counts as a wait when none is idle."""

    def __init__(self) -> None:
        self._connections = 0
        self._checked_out = 0

    def pool_created(self, event: PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: Any) -> None:
        pass

    def pool_cleared(self, event: PoolClearedEvent) -> None:
        pass

    def pool_closed(self, event: PoolClosedEvent) -> None:
        pass

    def connection_created(self, event: ConnectionCreatedEvent) -> None:
        self._connections += 1
        MONGO_POOL_CONNECTIONS.inc()

    def connection_ready(self, event: ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: ConnectionClosedEvent) -> None:
        self._connections -= 1
        MONGO_POOL_CONNECTIONS.dec()

    def connection_check_out_started(self, event: ConnectionCheckOutStartedEvent) -> None:
        MONGO_POOL_WAITING.inc()
        if self._checked_out >= self._connections:
            MONGO_POOL_CHECKOUT_WAITS.inc()

    def connection_check_out_failed(self, event: ConnectionCheckOutFailedEvent) -> None:
        MONGO_POOL_WAITING.dec()
        if event.reason == ConnectionCheckOutFailedReason.TIMEOUT:
            MONGO_POOL_CHECKOUT_TIMEOUTS.inc()

    def connection_checked_out(self, event: ConnectionCheckedOutEvent) -> None:
        self._checked_out += 1
        MONGO_POOL_WAITING.dec()
        MONGO_POOL_CHECKED_OUT.inc()

    def connection_checked_in(self, event: ConnectionCheckedInEvent) -> None:
        self._checked_out -= 1
        MONGO_POOL_CHECKED_OUT.dec()


def create_mongo_client(settings: Settings) -> MongoClient:
    """Builds the pooled async client; it connects lazily, so start-up never blocks on MongoDB."""
    MONGO_POOL_MAX.set(settings.mongo_max_pool_size)
    return AsyncMongoClient(
        str(settings.mongo_url),
        maxPoolSize=settings.mongo_max_pool_size,
        minPoolSize=settings.mongo_min_pool_size,
        maxIdleTimeMS=settings.mongo_max_idle_time_ms,
        waitQueueTimeoutMS=settings.mongo_wait_queue_timeout_ms,
        connectTimeoutMS=settings.mongo_connect_timeout_ms,
        serverSelectionTimeoutMS=settings.mongo_server_selection_timeout_ms,
        retryWrites=True,
        retryReads=True,
        # Negotiated with the server: only what both sides support is used.
        compressors="snappy,zlib",
        tz_aware=True,
        appname=settings.otel_service_name,
        event_listeners=[PoolMetricsListener(), CommandMetricsListener()],
    )


def without_id(document: Document | None) -> Document | None:
    """Drops MongoDB's _id: public ids live in `id`. (FerretDB v1 refuses projections on
    findAndModify, so those results are trimmed here instead.)"""
    if document is not None:
        document.pop("_id", None)
    return document


def is_duplicate_key(error: OperationFailure) -> bool:
    """A unique index refused the write. MongoDB says code 11000; FerretDB v1 reports a
    findAndModify violation as an internal error naming the SQLite UNIQUE constraint."""
    return isinstance(error, DuplicateKeyError) or "UNIQUE constraint failed" in str(error)


class CommandMetricsListener(CommandListener):
    """Times every MongoDB command by name and outcome."""

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        MONGO_COMMAND_DURATION.labels(event.command_name, "ok").observe(event.duration_micros / 1e6)

    def failed(self, event: CommandFailedEvent) -> None:
        MONGO_COMMAND_DURATION.labels(event.command_name, "error").observe(
            event.duration_micros / 1e6
        )


async def delete_batch(collection: MongoCollection, query: Document, batch: int) -> int:
    """Deletes at most `batch` of the documents matching `query` (a bounded delete, for work
    done a batch at a time: retention, erasure); returns how many."""
    found = collection.find(query, {"_id": 1}).limit(batch)
    ids = [document["_id"] for document in await found.to_list()]
    if not ids:
        return 0
    result = await collection.delete_many({"_id": {"$in": ids}})
    return result.deleted_count


async def upsert(collection: MongoCollection, query: Document, update: Document) -> None:
    """`update_one` with upsert, safe when two first writes race on a unique index: the one that
    loses (duplicate key) applies its update to the document the other created."""
    try:
        await collection.update_one(query, update, upsert=True)
    except OperationFailure as error:
        if not is_duplicate_key(error):
            raise
        await collection.update_one(query, update)
