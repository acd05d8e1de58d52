"""Lead rules: the bot's form decides which details a lead must and may carry, a visitor's lead
hangs off their own session (and conversation), one lead per session (a second submit updates
it), and every new lead is announced to the bot's webhooks."""

from collections.abc import AsyncIterator
from datetime import datetime

from app.chat.repository import ConversationRepository
from app.chat.service import ConversationNotFoundError
from app.chatbots.documents import ChatbotDocument
from app.chatbots.schemas import LeadFormOut
from app.core.errors import ConflictError, NotFoundError, UnprocessableError
from app.core.resources import Resources
from app.core.schemas import Page, page_of
from app.core.security import new_id, utcnow
from app.leads.documents import ConsentDocument, LeadDocument, LeadOrigin
from app.leads.export import export_lines
from app.leads.repository import LeadRepository
from app.leads.schemas import LEAD_FIELDS, ExportFormat, LeadOut, LeadSubmit
from app.webhooks import outbox


class LeadFormOffError(ConflictError):
    def __init__(self) -> None:
        super().__init__("This chatbot's lead form is off (lead_form.enabled)")


class LeadNotFoundError(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such lead on this chatbot")


class LeadDetailsError(UnprocessableError):
    """The submitted details do not fit the bot's form; the detail names every field."""

    def __init__(self, problems: dict[str, str]) -> None:
        names = ", ".join(sorted(problems))
        reasons = "; ".join(f"{name}: {reason}" for name, reason in sorted(problems.items()))
        super().__init__(f"Invalid request: {names} ({reasons})")


def check_details(form: LeadFormOut, submit: LeadSubmit) -> None:
    """Required fields given, fields the form does not ask for absent, consent when asked."""
    problems: dict[str, str] = {}
    modes = form.fields.model_dump()
    for name in LEAD_FIELDS:
        given = getattr(submit, name) is not None
        if modes[name] == "required" and not given:
            problems[name] = "required"
        elif modes[name] == "off" and given:
            problems[name] = "not asked for by this chatbot's lead form"
    if form.consent_text and not submit.consent:
        problems["consent"] = "the visitor must agree to the consent text"
    if not problems and all(getattr(submit, name) is None for name in LEAD_FIELDS):
        asked = (name for name in LEAD_FIELDS if modes[name] != "off")
        problems = dict.fromkeys(asked, "a lead needs at least one of these")
    if problems:
        raise LeadDetailsError(problems)


class LeadService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._leads = LeadRepository(resources)
        self._conversations = ConversationRepository(resources.db, resources.reads)

    async def submit(
        self, chatbot: ChatbotDocument, submit: LeadSubmit, origin: LeadOrigin
    ) -> tuple[LeadOut, bool]:
        """Stores the session's lead (or updates it); True when it was created."""
        form = LeadFormOut.model_validate(chatbot.get("lead_form", {}))
        if not form.enabled:
            raise LeadFormOffError()
        check_details(form, submit)
        if submit.conversation_id is not None:
            # The visitor's own conversation; another session's looks missing.
            conversation = await self._conversations.get(chatbot["id"], submit.conversation_id)
            if conversation is None or conversation["session_id"] != submit.session_id:
                raise ConversationNotFoundError()
        now = utcnow()
        consent: ConsentDocument | None = (
            {"text": form.consent_text, "at": now} if form.consent_text else None
        )
        lead: LeadDocument = {
            "id": new_id(),
            "chatbot_id": chatbot["id"],
            "user_id": chatbot["user_id"],
            "session_id": submit.session_id,
            "name": submit.name,
            "email": submit.email,
            "phone": submit.phone,
            "company": submit.company,
            "message": submit.message,
            "consent": consent,
            "origin": origin,
            "created_at": now,
            "updated_at": now,
        }
        if submit.conversation_id is not None:
            lead["conversation_id"] = submit.conversation_id
        stored, created = await self._leads.save(lead)
        out = LeadOut.model_validate(stored)
        if created:
            await outbox.emit(
                self._resources, chatbot, outbox.LEAD_CREATED, out.model_dump(mode="json")
            )
        return out, created

    async def list(
        self,
        chatbot: ChatbotDocument,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[LeadOut]:
        found = await self._leads.list_for_chatbot(chatbot["id"], since, until, cursor, limit + 1)
        return page_of(found, limit, LeadOut.model_validate, "created_at")

    def export(
        self,
        chatbot: ChatbotDocument,
        since: datetime | None,
        until: datetime | None,
        kind: ExportFormat,
    ) -> AsyncIterator[bytes]:
        return export_lines(self._leads.all_for_chatbot(chatbot["id"], since, until), kind)

    async def delete(self, chatbot: ChatbotDocument, lead_id: str) -> None:
        if not await self._leads.delete(chatbot["id"], lead_id):
            raise LeadNotFoundError()
