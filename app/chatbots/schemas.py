"""Chatbots: what an owner configures, as request and response models."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, model_validator

from app.core.schemas import RequestModel

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


Name = Annotated[str, Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=1000)]
SystemPrompt = Annotated[str, Field(max_length=8000)]
WelcomeMessage = Annotated[str, Field(max_length=1000)]
Origins = Annotated[list[Origin], Field(max_length=20)]


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

    def to_set(self) -> dict[str, Any]:
        """The $set document: dotted paths for nested settings, so siblings are kept."""
        fields: dict[str, Any] = {}
        sent = self.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        for name, value in sent.items():
            if isinstance(value, dict):
                fields.update({f"{name}.{key}": inner for key, inner in value.items()})
            else:
                fields[name] = value
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
    created_at: datetime
    updated_at: datetime
