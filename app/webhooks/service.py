"""Webhook endpoints for their owners: registration (URL checked, secret shown once), changes,
the delivery log, test events and redeliveries."""

from typing import Any

from app.chatbots.documents import ChatbotDocument
from app.core.config import Settings
from app.core.errors import (
    ConflictError,
    LimitReachedError,
    NotFoundError,
    UnprocessableError,
)
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.webhooks.delivery import Egress, UnsafeEndpointError
from app.webhooks.documents import DeliveryDocument, EndpointDocument
from app.webhooks.events import TEST_EVENT
from app.webhooks.outbox import event_body, new_delivery, new_event_id
from app.webhooks.repository import WebhookRepository
from app.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from app.webhooks.signing import new_secret


class RefusedEndpointError(UnprocessableError):
    title = "Endpoint URL refused"


def delivery_out(delivery: DeliveryDocument) -> DeliveryOut:
    return DeliveryOut.model_validate({**delivery, "status_code": delivery["last_status_code"]})


class WebhookService:
    def __init__(self, repository: WebhookRepository, egress: Egress, settings: Settings) -> None:
        self._repository = repository
        self._egress = egress
        self._max_per_chatbot = settings.max_webhooks_per_chatbot

    async def create(self, chatbot: ChatbotDocument, request: WebhookCreate) -> WebhookCreated:
        url = await self._checked(str(request.url))
        now = utcnow()
        endpoint = EndpointDocument(
            id=new_id(),
            chatbot_id=chatbot["id"],
            user_id=chatbot["user_id"],
            url=url,
            events=[event.value for event in request.events],
            enabled=request.enabled,
            secret=new_secret(),
            created_at=now,
            updated_at=now,
            disabled_reason=None,
            failing_since=None,
        )
        # Insert, then count (as for API keys): concurrent requests never pass the cap.
        await self._repository.insert_endpoint(endpoint)
        if await self._repository.count_endpoints(chatbot["id"]) > self._max_per_chatbot:
            await self._repository.delete_endpoint(chatbot["id"], endpoint["id"])
            raise LimitReachedError(
                f"A chatbot may have at most {self._max_per_chatbot} webhook endpoints "
                "(MAX_WEBHOOKS_PER_CHATBOT); delete one first"
            )
        return WebhookCreated.model_validate(endpoint)

    async def list(
        self, chatbot: ChatbotDocument, cursor: str | None, limit: int
    ) -> Page[WebhookOut]:
        found = await self._repository.list_endpoints(chatbot["id"], limit, cursor)
        return page_of(found, limit, WebhookOut.model_validate, "created_at")

    async def get(self, chatbot: ChatbotDocument, endpoint_id: str) -> WebhookOut:
        return WebhookOut.model_validate(await self._endpoint(chatbot, endpoint_id))

    async def update(
        self, chatbot: ChatbotDocument, endpoint_id: str, request: WebhookUpdate
    ) -> WebhookOut:
        await self._endpoint(chatbot, endpoint_id)
        fields: dict[str, Any] = {"updated_at": utcnow()}
        if request.url is not None:
            fields["url"] = await self._checked(str(request.url))
        if request.events is not None:
            fields["events"] = [event.value for event in request.events]
        if request.enabled is not None:
            fields["enabled"] = request.enabled
            if request.enabled:
                fields.update(disabled_reason=None, failing_since=None)
        updated = await self._repository.update_endpoint(chatbot["id"], endpoint_id, fields)
        if updated is None:
            raise NotFoundError("No such webhook endpoint on this chatbot")
        return WebhookOut.model_validate(updated)

    async def delete(self, chatbot: ChatbotDocument, endpoint_id: str) -> None:
        if not await self._repository.delete_endpoint(chatbot["id"], endpoint_id):
            raise NotFoundError("No such webhook endpoint on this chatbot")

    async def deliveries(
        self, chatbot: ChatbotDocument, endpoint_id: str, cursor: str | None, limit: int
    ) -> Page[DeliveryOut]:
        await self._endpoint(chatbot, endpoint_id)
        found = await self._repository.list_deliveries(endpoint_id, limit, cursor)
        return page_of(found, limit, delivery_out, "created_at")

    async def send_test(self, chatbot: ChatbotDocument, endpoint_id: str) -> DeliveryOut:
        """Records a `webhook.test` event for this endpoint alone; the delivery loop sends it
        (even when the endpoint is disabled)."""
        await self._endpoint(chatbot, endpoint_id)
        now, event_id = utcnow(), new_event_id()
        data = {"message": "A test event sent from the BotSmith dashboard"}
        body = event_body(event_id, TEST_EVENT, chatbot["id"], now, data)
        delivery = new_delivery(
            endpoint_id, chatbot["id"], event_id, TEST_EVENT, body, now, manual=True
        )
        await self._repository.insert_deliveries([delivery])
        return delivery_out(delivery)

    async def redeliver(
        self, chatbot: ChatbotDocument, endpoint_id: str, delivery_id: str
    ) -> DeliveryOut:
        """Sends a delivery again as soon as possible: the same body and `webhook-id`, freshly
        signed, with a new day of retries."""
        await self._endpoint(chatbot, endpoint_id)
        delivery = await self._repository.schedule_again(endpoint_id, delivery_id, utcnow())
        if delivery is not None:
            return delivery_out(delivery)
        if await self._repository.get_delivery(endpoint_id, delivery_id) is None:
            raise NotFoundError("No such delivery for this webhook endpoint")
        raise ConflictError("This delivery is being sent right now; try again in a moment")

    async def _endpoint(self, chatbot: ChatbotDocument, endpoint_id: str) -> EndpointDocument:
        endpoint = await self._repository.get_endpoint(chatbot["id"], endpoint_id)
        if endpoint is None:
            raise NotFoundError("No such webhook endpoint on this chatbot")
        return endpoint

    async def _checked(self, url: str) -> str:
        try:
            await self._egress.check(url)
        except UnsafeEndpointError as error:
            raise RefusedEndpointError(str(error)) from None
        return url
