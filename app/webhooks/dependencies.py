"""HTTP dependencies of the webhooks domain."""

from typing import Annotated

from fastapi import Depends

from app.container import ContainerDep
from app.webhooks.repository import WebhookRepository
from app.webhooks.service import WebhookService


async def get_webhook_service(container: ContainerDep) -> WebhookService:
    resources = container.resources
    return WebhookService(
        WebhookRepository(resources.db), container.webhook_egress, resources.settings
    )


WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
