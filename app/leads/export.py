"""A bot's leads as JSON Lines or CSV, produced as they are read. CSV cells go through the
exports' formula guard: what a visitor typed never runs in a spreadsheet."""

import json
from collections.abc import AsyncIterator

from app.core.spreadsheet import csv_row
from app.leads.documents import LeadDocument
from app.leads.schemas import LEAD_FIELDS, ExportFormat

COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "origin",
    "session_id",
    "conversation_id",
    *LEAD_FIELDS,
    "consent_text",
    "consent_at",
)


def export_row(lead: LeadDocument) -> dict[str, object]:
    consent = lead["consent"]
    return {
        "id": lead["id"],
        "created_at": lead["created_at"].isoformat(),
        "updated_at": lead["updated_at"].isoformat(),
        "origin": lead["origin"],
        "session_id": lead["session_id"],
        "conversation_id": lead.get("conversation_id"),
        "name": lead["name"],
        "email": lead["email"],
        "phone": lead["phone"],
        "company": lead["company"],
        "message": lead["message"],
        "consent_text": consent["text"] if consent else None,
        "consent_at": consent["at"].isoformat() if consent else None,
    }


async def export_lines(
    leads: AsyncIterator[LeadDocument], kind: ExportFormat
) -> AsyncIterator[bytes]:
    if kind == "csv":
        yield csv_row(COLUMNS)
    async for lead in leads:
        row = export_row(lead)
        if kind == "csv":
            yield csv_row([row[column] for column in COLUMNS])
        else:
            yield (json.dumps(row, ensure_ascii=False) + "\n").encode()
