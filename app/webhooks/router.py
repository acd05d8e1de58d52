"""A chatbot's webhook endpoints, their delivery log, test events and redeliveries."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.chatbots.dependencies import OwnedChatbot
from app.core.errors import problem_responses
from app.core.schemas import Cursor, Limit, Page
from app.webhooks.dependencies import WebhookServiceDep
from app.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)

WebhookId = Annotated[str, Path(max_length=64, description="The webhook endpoint's id")]
DeliveryId = Annotated[str, Path(max_length=64, description="The delivery's id")]
NOT_FOUND = problem_responses(status.HTTP_404_NOT_FOUND)
LIST_ERRORS = problem_responses(status.HTTP_400_BAD_REQUEST, status.HTTP_404_NOT_FOUND)
CREATE_ERRORS = problem_responses(
    status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT, status.HTTP_422_UNPROCESSABLE_CONTENT
)
UPDATE_ERRORS = problem_responses(status.HTTP_404_NOT_FOUND, status.HTTP_422_UNPROCESSABLE_CONTENT)
router = APIRouter(prefix="/chatbots/{chatbot_id}/webhooks", tags=["webhooks"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=CREATE_ERRORS)
async def create_webhook(
    body: WebhookCreate, chatbot: OwnedChatbot, webhooks: WebhookServiceDep
) -> WebhookCreated:
    """Registers an endpoint; the signing secret is in this response only. 422 when the URL may
    not be contacted, 409 past MAX_WEBHOOKS_PER_CHATBOT."""
    return await webhooks.create(chatbot, body)


@router.get("", responses=LIST_ERRORS)
async def list_webhooks(
    chatbot: OwnedChatbot, webhooks: WebhookServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> Page[WebhookOut]:
    """The bot's endpoints, newest first, a page at a time."""
    return await webhooks.list(chatbot, cursor, limit)


@router.get("/{webhook_id}", responses=NOT_FOUND)
async def get_webhook(
    webhook_id: WebhookId, chatbot: OwnedChatbot, webhooks: WebhookServiceDep
) -> WebhookOut:
    return await webhooks.get(chatbot, webhook_id)


@router.patch("/{webhook_id}", responses=UPDATE_ERRORS)
async def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdate, chatbot: OwnedChatbot, webhooks: WebhookServiceDep
) -> WebhookOut:
    """Changes the URL (checked again), the events or whether the endpoint is enabled."""
    return await webhooks.update(chatbot, webhook_id, body)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(
    webhook_id: WebhookId, chatbot: OwnedChatbot, webhooks: WebhookServiceDep
) -> None:
    """Deletes the endpoint and its delivery log; what was not sent yet is not sent."""
    await webhooks.delete(chatbot, webhook_id)


@router.get("/{webhook_id}/deliveries", responses=LIST_ERRORS)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    chatbot: OwnedChatbot,
    webhooks: WebhookServiceDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """The endpoint's deliveries, newest first: outcome, attempts and the next attempt."""
    return await webhooks.deliveries(chatbot, webhook_id, cursor, limit)


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
async def send_webhook_test(
    webhook_id: WebhookId, chatbot: OwnedChatbot, webhooks: WebhookServiceDep
) -> DeliveryOut:
    """Queues a `webhook.test` event for this endpoint (sent even when it is disabled)."""
    return await webhooks.send_test(chatbot, webhook_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT),
)
async def redeliver_webhook(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    chatbot: OwnedChatbot,
    webhooks: WebhookServiceDep,
) -> DeliveryOut:
    """Sends the delivery again with the same body and `webhook-id` (receivers deduplicate);
    409 while an attempt of it is under way."""
    return await webhooks.redeliver(chatbot, webhook_id, delivery_id)
