"""Retention: a housekeeping round deletes what is kept no longer, a batch at a time.

- A bot with `retention_days` loses the conversations whose last message is older than that,
  with their messages (and feedback), handoff marks and leads; its leads left without a
  conversation and its webhook deliveries go by the same age.
- Refresh tokens past `expires_at` (a real MongoDB's TTL index would remove them too; FerretDB
  has none).
- Webhook deliveries that were sent or given up on, WEBHOOK_DELIVERY_RETENTION_DAYS later.

A round killed midway leaves the rest to the next one: every delete is complete in itself.
"""

from datetime import datetime, timedelta

from app.chatbots.repository import ChatbotRepository
from app.core.periodic import Periodic
from app.core.resources import Resources
from app.core.security import utcnow
from app.governance.erasure import ConversationCascade
from app.governance.metrics import GOVERNANCE_DELETED
from app.governance.repository import StoredData
from app.webhooks.documents import DeliveryStatus

_FINISHED_DELIVERIES = [DeliveryStatus.DELIVERED.value, DeliveryStatus.FAILED.value]


class Retention:
    def __init__(self, resources: Resources) -> None:
        self._chatbots = ChatbotRepository(resources)
        self._data = StoredData(resources)
        self._conversations = ConversationCascade(self._data)
        self._delivery_days = resources.settings.webhook_delivery_retention_days
        self._deleted = 0

    async def run(self) -> int:
        """One round; returns how many documents it deleted."""
        self._deleted = 0
        now = utcnow()
        for chatbot_id, days in await self._chatbots.retention_policies():
            await self.expire_conversations(chatbot_id, now - timedelta(days=days))
        await self._conversations.drain(
            "refresh_tokens", {"expires_at": {"$lt": now}}, self._expired
        )
        old_deliveries = {
            "status": {"$in": _FINISHED_DELIVERIES},
            "updated_at": {"$lt": now - timedelta(days=self._delivery_days)},
        }
        await self._conversations.drain("webhook_deliveries", old_deliveries, self._expired)
        return self._deleted

    async def expire_conversations(self, chatbot_id: str, cutoff: datetime) -> None:
        idle = {"chatbot_id": chatbot_id, "last_message_at": {"$lt": cutoff}}
        while conversation_ids := await self._data.conversation_ids(idle):
            await self._conversations.delete(
                chatbot_id, conversation_ids, self._retained, deliveries=False
            )
        loose_leads = {
            "chatbot_id": chatbot_id,
            "conversation_id": {"$exists": False},
            "updated_at": {"$lt": cutoff},
        }
        await self._conversations.drain("leads", loose_leads, self._retained)
        # A delivery is never newer than the activity it reports.
        old_deliveries = {"chatbot_id": chatbot_id, "created_at": {"$lt": cutoff}}
        await self._conversations.drain("webhook_deliveries", old_deliveries, self._retained)

    async def _retained(self, collection: str, deleted: int) -> None:
        GOVERNANCE_DELETED.labels("retention", collection).inc(deleted)
        self._deleted += deleted

    async def _expired(self, collection: str, deleted: int) -> None:
        GOVERNANCE_DELETED.labels("expiry", collection).inc(deleted)
        self._deleted += deleted


def retention_round(resources: Resources) -> Periodic:
    return Periodic(
        name="retention",
        interval=resources.settings.retention_check_seconds,
        job=Retention(resources).run,
    )
