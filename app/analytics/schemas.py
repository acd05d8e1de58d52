"""Analytics: the owner's and the admin's views."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel
from app.sources.schemas import SourceOut

Interval = Literal["day", "hour"]


class Totals(BaseModel):
    conversations: int
    messages: int
    unique_visitors: int
    avg_messages_per_conversation: float
    answer_latency_ms_p50: float | None
    answer_latency_ms_p95: float | None
    feedback_up: int
    feedback_down: int
    feedback_ratio: float | None = Field(description="up / (up + down); null without feedback")
    idk_rate: float | None = Field(description="Share of answers that were 'I don't know'")
    leads: int = Field(default=0, description="Leads gathered in the range")
    unanswered_resolved: int = Field(
        default=0,
        description="Unanswered questions asked in the range that the owner answered with a "
        "Q&A source (POST .../analytics/unanswered/{message_id}/answer)",
    )


class Bucket(BaseModel):
    start: datetime = Field(description="Bucket start in the requested time zone")
    conversations: int
    messages: int
    unique_visitors: int


class QuestionCount(BaseModel):
    question: str
    count: int


class UnansweredQuestion(QuestionCount):
    reasons: list[Literal["no_answer", "thumbs_down"]]
    message_id: str | None = Field(
        default=None, description="An answer that missed; give it to .../unanswered/{id}/answer"
    )
    resolved: bool = Field(default=False, description="The owner has answered it")


class ChatbotAnalytics(BaseModel):
    chatbot_id: str
    start: datetime
    end: datetime
    interval: Interval
    timezone: str
    totals: Totals
    series: list[Bucket]
    top_questions: list[QuestionCount]
    unanswered_questions: list[UnansweredQuestion]


class OwnerAnswer(RequestModel):
    answer: Annotated[str, Field(min_length=1, max_length=10_000)]
    title: Annotated[str, Field(min_length=1, max_length=200)] = "Answered from analytics"


class ResolvedQuestion(BaseModel):
    """An unanswered question the owner answered: the Q&A source now holding the answer."""

    message_id: str = Field(description="The visitor's question")
    question: str
    source: SourceOut


class DailyPlatform(BaseModel):
    day: datetime
    signups: int
    active_users: int
    chatbots: int
    conversations: int
    messages: int


class PlatformStats(BaseModel):
    start: datetime
    end: datetime
    timezone: str
    totals: dict[str, int]
    series: list[DailyPlatform]


class PeriodTokens(BaseModel):
    used: int
    limit: int = Field(description="0: unlimited")
    remaining: int | None = Field(description="null when unlimited")
    exhausted: bool = Field(description="Chat with the platform's LLM answers 429 until reset")
    resets_at: datetime


class LlmUsage(BaseModel):
    """LLM tokens an owner's bots spent on the platform's key this UTC day and month (prompt and
    completion; the offline provider costs nothing), against the owner's limits."""

    user_id: str
    daily: PeriodTokens
    monthly: PeriodTokens
