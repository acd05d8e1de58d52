"""Chatbots: what an owner configures, as request and response models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, HttpUrl, model_validator

from app.core.schemas import RequestModel
from app.quotas.schemas import BotQuotas, BotQuotasOut

Origin = Annotated[str, Field(max_length=200, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]


class Visibility(StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


class ChatbotStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETING = "deleting"  # set by DELETE while the bot's data is purged; never set by owners


# What an owner may set: a bot being deleted cannot be brought back.
SettableStatus = Literal[ChatbotStatus.ACTIVE, ChatbotStatus.PAUSED]
Provider = Literal["offline", "openai"]


class ModelSettings(RequestModel):
    provider: Provider = "offline"
    model: Annotated[str, Field(max_length=100)] = ""
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.2
    max_tokens: Annotated[int, Field(ge=1, le=16_384)] = 512


class RetrievalSettings(RequestModel):
    top_k: Annotated[int, Field(ge=1, le=20)] = 5
    score_threshold: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="The bot answers when its best passage's relevance (the estimated "
            "chance that it answers the question) reaches this; below it, it says it does not "
            "know. The default is calibrated on the public benchmark (`make bench-rag`).",
        ),
    ] = 0.5
    chunk_size: Annotated[int, Field(ge=200, le=8000)] = 1000
    chunk_overlap: Annotated[int, Field(ge=0, le=2000)] = 150

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


HexColor = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#2563eb"])]
Position = Literal["bottom-right", "bottom-left"]
Theme = Literal["light", "dark", "auto"]
WidgetTitle = Annotated[str, Field(max_length=60)]
SuggestedQuestion = Annotated[str, Field(min_length=1, max_length=120)]
SuggestedQuestions = Annotated[list[SuggestedQuestion], Field(max_length=4)]


def _https_only(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https":
        raise ValueError("the avatar must be an https URL")
    return url


AvatarUrl = Annotated[HttpUrl, Field(max_length=500), AfterValidator(_https_only)]


class Appearance(RequestModel):
    """How the widget looks: colours, place on the page, title, avatar, theme, suggestions."""

    accent_color: HexColor = "#2563eb"
    position: Position = "bottom-right"
    title: WidgetTitle = Field(default="", description="Shown in the panel; empty: the bot's name")
    avatar_url: AvatarUrl | None = None
    theme: Theme = "auto"
    suggested_questions: SuggestedQuestions = Field(default_factory=list)


class AppearanceOut(BaseModel):
    """The stored appearance as responses show it (validated when it was written)."""

    accent_color: str = "#2563eb"
    position: Position = "bottom-right"
    title: str = ""
    avatar_url: str | None = None
    theme: Theme = "auto"
    suggested_questions: list[str] = Field(default_factory=list)


class AppearanceUpdate(RequestModel):
    accent_color: HexColor | None = None
    position: Position | None = None
    title: WidgetTitle | None = None
    avatar_url: AvatarUrl | None = None
    theme: Theme | None = None
    suggested_questions: SuggestedQuestions | None = None


# Human handoff: when a conversation is handed to a person, and what the visitor is told when
# nobody takes it in time.
DEFAULT_HANDOFF_FALLBACK = (
    "Nobody is available right now — leave your email and we will get back to you."
)
AfterUnanswered = Annotated[
    int,
    Field(
        ge=0,
        le=20,
        description="Hand the conversation to a person after this many 'I don't know' "
        "answers in it (1: on the first one); 0: never by itself",
    ),
]
UnclaimedTimeout = Annotated[
    int,
    Field(
        ge=1,
        le=86_400,
        description="Seconds a handoff may wait for an agent before the visitor is sent "
        "`fallback_message`",
    ),
]
FallbackMessage = Annotated[str, Field(min_length=1, max_length=1000)]


class HandoffSettings(RequestModel):
    """Whether visitors may ask for a person, and when the bot hands over by itself."""

    enabled: bool = False
    after_unanswered: AfterUnanswered = 0
    unclaimed_timeout_seconds: UnclaimedTimeout = 300
    fallback_message: FallbackMessage = DEFAULT_HANDOFF_FALLBACK


class HandoffSettingsOut(BaseModel):
    """The stored handoff settings as responses show them (bots from before them: defaults)."""

    enabled: bool = False
    after_unanswered: int = 0
    unclaimed_timeout_seconds: int = 300
    fallback_message: str = DEFAULT_HANDOFF_FALLBACK


class HandoffSettingsUpdate(RequestModel):
    enabled: bool | None = None
    after_unanswered: AfterUnanswered | None = None
    unclaimed_timeout_seconds: UnclaimedTimeout | None = None
    fallback_message: FallbackMessage | None = None


# Lead capture: the form the widget shows for the visitor's contact details, what it asks for
# and when (the leads themselves live in app.leads).
FieldMode = Literal["off", "optional", "required"]
LeadTrigger = Literal["start", "after_messages", "unanswered"]
AfterMessages = Annotated[
    int,
    Field(
        ge=1, le=50, description="With `trigger: after_messages`: shown after this many messages"
    ),
]
ConsentText = Annotated[
    str,
    Field(
        max_length=1000,
        description="Shown with a checkbox the visitor must tick, and stored with the lead; "
        "empty: no consent is asked",
    ),
]
LeadFormTitle = Annotated[str, Field(min_length=1, max_length=80)]
SubmitLabel = Annotated[str, Field(min_length=1, max_length=40)]


class LeadFormFields(RequestModel):
    """Which details the form asks for: each off, optional or required."""

    name: FieldMode = "optional"
    email: FieldMode = "required"
    phone: FieldMode = "off"
    company: FieldMode = "off"
    message: FieldMode = Field(default="off", description="Free text from the visitor")

    @model_validator(mode="after")
    def _asks_for_something(self) -> Self:
        if all(mode == "off" for mode in self.model_dump().values()):
            raise ValueError("the lead form must ask for at least one field")
        return self


class LeadFormFieldsUpdate(RequestModel):
    name: FieldMode | None = None
    email: FieldMode | None = None
    phone: FieldMode | None = None
    company: FieldMode | None = None
    message: FieldMode | None = None


class LeadForm(RequestModel):
    """The widget shows the form at the start, after `after_messages` visitor messages, or
    right after an "I don't know" answer (`unanswered`); once per visitor session."""

    enabled: bool = False
    trigger: LeadTrigger = "start"
    after_messages: AfterMessages = 3
    fields: LeadFormFields = LeadFormFields()
    consent_text: ConsentText = ""
    title: LeadFormTitle = "Leave us your details"
    submit_label: SubmitLabel = "Send"


class LeadFormOut(BaseModel):
    """The stored lead form as responses show it (bots from before lead capture: defaults)."""

    enabled: bool = False
    trigger: LeadTrigger = "start"
    after_messages: int = 3
    fields: LeadFormFields = LeadFormFields()
    consent_text: str = ""
    title: str = "Leave us your details"
    submit_label: str = "Send"


class LeadFormUpdate(RequestModel):
    """Only the settings sent are changed, `fields` entry by entry."""

    enabled: bool | None = None
    trigger: LeadTrigger | None = None
    after_messages: AfterMessages | None = None
    fields: LeadFormFieldsUpdate | None = None
    consent_text: ConsentText | None = None
    title: LeadFormTitle | None = None
    submit_label: SubmitLabel | None = None


class PublicLeadForm(BaseModel):
    """What the widget needs to show the lead form."""

    trigger: LeadTrigger
    after_messages: int
    fields: LeadFormFields
    consent_text: str
    title: str
    submit_label: str


def _when_enabled(form: object) -> object:
    """A stored lead form as the widget gets it: only when it is on."""
    if not isinstance(form, dict) or not form.get("enabled"):
        return None
    return LeadFormOut.model_validate(form).model_dump()


ShownLeadForm = Annotated[
    PublicLeadForm | None,
    BeforeValidator(_when_enabled),
    Field(description="The lead form to show; null when the bot has none"),
]


Name = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=1000)]
SystemPrompt = Annotated[str, Field(max_length=8000)]
WelcomeMessage = Annotated[str, Field(max_length=1000)]
Origins = Annotated[list[Origin], Field(max_length=20)]


RetentionDays = Annotated[
    int | None,
    Field(
        ge=1,
        le=3650,
        description="Delete conversations (with their messages, feedback and leads) this many "
        "days after their last message; null keeps them",
    ),
]


class ChatbotCreate(RequestModel):
    name: Name
    description: Description = ""
    system_prompt: SystemPrompt = "You are a helpful assistant. Answer from the knowledge given."
    welcome_message: WelcomeMessage = "Hi! How can I help?"
    model: ModelSettings = ModelSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    visibility: Visibility = Visibility.PRIVATE
    allowed_origins: Origins = Field(default_factory=list)
    status: SettableStatus = ChatbotStatus.ACTIVE
    appearance: Appearance = Appearance()
    handoff: HandoffSettings = HandoffSettings()
    lead_form: LeadForm = LeadForm()
    retention_days: RetentionDays = None
    quotas: BotQuotas = BotQuotas()


class ModelSettingsUpdate(RequestModel):
    provider: Provider | None = None
    model: Annotated[str, Field(max_length=100)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=16_384)] | None = None


class RetrievalSettingsUpdate(RequestModel):
    top_k: Annotated[int, Field(ge=1, le=20)] | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    chunk_size: Annotated[int, Field(ge=200, le=8000)] | None = None
    chunk_overlap: Annotated[int, Field(ge=0, le=2000)] | None = None


class ChatbotUpdate(RequestModel):
    """Only the fields sent are changed; nested settings are merged field by field."""

    name: Name | None = None
    description: Description | None = None
    system_prompt: SystemPrompt | None = None
    welcome_message: WelcomeMessage | None = None
    model: ModelSettingsUpdate | None = None
    retrieval: RetrievalSettingsUpdate | None = None
    visibility: Visibility | None = None
    allowed_origins: Origins | None = None
    status: SettableStatus | None = None
    appearance: AppearanceUpdate | None = None
    handoff: HandoffSettingsUpdate | None = None
    lead_form: LeadFormUpdate | None = None
    retention_days: RetentionDays = None
    quotas: BotQuotas | None = None

    def to_set(self) -> dict[str, Any]:
        """The $set document: dotted paths for nested settings, so siblings are kept."""
        fields: dict[str, Any] = {}
        sent = self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        for name, value in sent.items():
            if isinstance(value, dict):
                fields.update({f"{name}.{key}": inner for key, inner in value.items()})
            else:
                fields[name] = value
        if "retention_days" in self.model_fields_set:  # null is a value here: keep forever
            fields["retention_days"] = self.retention_days
        if self.quotas is not None:  # a quota sent as null is removed (unlimited)
            quotas = self.quotas.model_dump(exclude_unset=True)
            fields.update({f"quotas.{name}": limit for name, limit in quotas.items()})
        return fields


class ChatbotOut(BaseModel):
    id: str
    user_id: str
    name: str
    description: str
    system_prompt: str
    welcome_message: str
    model: ModelSettings
    retrieval: RetrievalSettings
    visibility: Visibility
    allowed_origins: list[str]
    status: ChatbotStatus
    appearance: AppearanceOut = AppearanceOut()  # bots from before the widget settings: defaults
    handoff: HandoffSettingsOut = HandoffSettingsOut()
    lead_form: LeadFormOut = LeadFormOut()
    retention_days: int | None = Field(
        default=None, description="Conversations idle this many days are deleted; null: kept"
    )
    quotas: BotQuotasOut = BotQuotasOut()  # bots from before quotas: unlimited
    created_at: datetime
    updated_at: datetime
