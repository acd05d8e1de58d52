"""The only code that touches the webhook_endpoints and webhook_deliveries collections."""

from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument

from app.core.db import Document, MongoDatabase, without_id
from app.core.schemas import after_cursor
from app.webhooks.documents import (
    AttemptDocument,
    DeliveryDocument,
    DeliveryStatus,
    EndpointDocument,
)

ENDPOINTS = "webhook_endpoints"
DELIVERIES = "webhook_deliveries"
# Attempts kept per delivery in its log (the counter keeps counting past it).
ATTEMPT_LOG_SIZE = 50
_NO_ID = {"_id": 0}
_PENDING = DeliveryStatus.PENDING.value


class WebhookRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._endpoints = db[ENDPOINTS]
        self._deliveries = db[DELIVERIES]

    # Endpoints

    async def subscribed_endpoint_ids(self, chatbot_id: str, event_type: str) -> list[str]:
        found = self._endpoints.find(
            {"chatbot_id": chatbot_id, "enabled": True, "events": event_type}, {"_id": 0, "id": 1}
        )
        return [document["id"] for document in await found.to_list()]

    async def insert_endpoint(self, endpoint: EndpointDocument) -> None:
        await self._endpoints.insert_one(cast("Document", endpoint))

    async def count_endpoints(self, chatbot_id: str) -> int:
        return await self._endpoints.count_documents({"chatbot_id": chatbot_id})

    async def get_endpoint(self, chatbot_id: str, endpoint_id: str) -> EndpointDocument | None:
        found = await self._endpoints.find_one(
            {"id": endpoint_id, "chatbot_id": chatbot_id}, _NO_ID
        )
        return cast("EndpointDocument | None", found)

    async def endpoint_by_id(self, endpoint_id: str) -> EndpointDocument | None:
        found = await self._endpoints.find_one({"id": endpoint_id}, _NO_ID)
        return cast("EndpointDocument | None", found)

    async def list_endpoints(
        self, chatbot_id: str, limit: int, cursor: str | None
    ) -> list[EndpointDocument]:
        query = {"chatbot_id": chatbot_id, **after_cursor(cursor)}
        found = self._endpoints.find(query, _NO_ID).sort([("created_at", -1), ("id", -1)])
        return cast("list[EndpointDocument]", await found.limit(limit + 1).to_list())

    async def update_endpoint(
        self, chatbot_id: str, endpoint_id: str, fields: dict[str, Any]
    ) -> EndpointDocument | None:
        found = await self._endpoints.find_one_and_update(
            {"id": endpoint_id, "chatbot_id": chatbot_id},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        return cast("EndpointDocument | None", without_id(found))

    async def delete_endpoint(self, chatbot_id: str, endpoint_id: str) -> bool:
        result = await self._endpoints.delete_one({"id": endpoint_id, "chatbot_id": chatbot_id})
        if result.deleted_count == 0:
            return False
        await self._deliveries.delete_many({"endpoint_id": endpoint_id})
        return True

    async def mark_failing_since(self, endpoint_id: str, since: datetime) -> datetime | None:
        """Remembers the start of a run of failures (a later failure keeps the first one);
        returns the start, or None when the endpoint is gone."""
        await self._endpoints.update_one(
            {"id": endpoint_id, "failing_since": None}, {"$set": {"failing_since": since}}
        )
        found = await self._endpoints.find_one({"id": endpoint_id}, {"_id": 0, "failing_since": 1})
        return None if found is None else found.get("failing_since")

    async def clear_failing(self, endpoint_id: str) -> None:
        await self._endpoints.update_one(
            {"id": endpoint_id, "failing_since": {"$ne": None}}, {"$set": {"failing_since": None}}
        )

    async def disable_failing(self, endpoint_id: str, reason: str, now: datetime) -> bool:
        """Turns off an endpoint still failing; True only for the one call that did it."""
        result = await self._endpoints.update_one(
            {"id": endpoint_id, "enabled": True, "failing_since": {"$ne": None}},
            {"$set": {"enabled": False, "disabled_reason": reason, "updated_at": now}},
        )
        return result.modified_count == 1

    # Deliveries

    async def insert_deliveries(self, deliveries: list[DeliveryDocument]) -> None:
        await self._deliveries.insert_many([cast("Document", delivery) for delivery in deliveries])

    async def get_delivery(self, endpoint_id: str, delivery_id: str) -> DeliveryDocument | None:
        found = await self._deliveries.find_one(
            {"id": delivery_id, "endpoint_id": endpoint_id}, _NO_ID
        )
        return cast("DeliveryDocument | None", found)

    async def list_deliveries(
        self, endpoint_id: str, limit: int, cursor: str | None
    ) -> list[DeliveryDocument]:
        query = {"endpoint_id": endpoint_id, **after_cursor(cursor)}
        found = self._deliveries.find(query, _NO_ID).sort([("created_at", -1), ("id", -1)])
        return cast("list[DeliveryDocument]", await found.limit(limit + 1).to_list())

    async def claim_due(
        self, now: datetime, lease_until: datetime, token: str
    ) -> DeliveryDocument | None:
        """Takes the next due attempt for this worker until `lease_until`: of two workers asking
        at once, only one gets a given delivery (an expired lease is up for grabs again)."""
        found = await self._deliveries.find_one_and_update(
            {
                "status": _PENDING,
                "next_attempt_at": {"$lte": now},
                "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}],
            },
            {"$set": {"lease_until": lease_until, "lease_token": token}},
            sort=[("next_attempt_at", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return cast("DeliveryDocument | None", without_id(found))

    async def record_attempt(
        self,
        delivery_id: str,
        token: str,
        attempt: AttemptDocument,
        fields: dict[str, Any],
        *,
        failed: bool,
    ) -> bool:
        """Stores an attempt's outcome if this worker still holds the lease."""
        result = await self._deliveries.update_one(
            {"id": delivery_id, "lease_token": token},
            {
                "$set": {
                    **fields,
                    "lease_until": None,
                    "lease_token": None,
                    "last_status_code": attempt["status_code"],
                    "last_error": attempt["error"],
                    "latency_ms": attempt["latency_ms"],
                    "updated_at": attempt["at"],
                },
                "$inc": {"attempts": 1, "failures": 1 if failed else 0},
                "$push": {
                    "attempt_log": {
                        "$each": [cast("Document", attempt)],
                        "$slice": -ATTEMPT_LOG_SIZE,
                    }
                },
            },
        )
        return result.modified_count == 1

    async def schedule_again(
        self, endpoint_id: str, delivery_id: str, now: datetime
    ) -> DeliveryDocument | None:
        """Sends a delivery once more, as soon as possible, with its webhook-id and body; None
        when there is no such delivery or an attempt of it is under way."""
        found = await self._deliveries.find_one_and_update(
            {
                "id": delivery_id,
                "endpoint_id": endpoint_id,
                "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}],
            },
            {
                "$set": {
                    "status": _PENDING,
                    "next_attempt_at": now,
                    "failures": 0,
                    "give_up_at": None,
                    "manual": True,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        return cast("DeliveryDocument | None", without_id(found))

    async def stop_pending(self, endpoint_id: str, reason: str, now: datetime) -> None:
        """Fails the deliveries still waiting for an endpoint that was turned off."""
        await self._deliveries.update_many(
            {"endpoint_id": endpoint_id, "status": _PENDING},
            {
                "$set": {
                    "status": DeliveryStatus.FAILED.value,
                    "next_attempt_at": None,
                    "last_error": reason,
                    "updated_at": now,
                }
            },
        )
