"""Analytics figures: exact counts from the pipelines, buckets in the caller's time zone,
averages and percentiles computed here."""

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.analytics.repository import AnalyticsRepository, ConversationRow, MessageRow
from app.analytics.schemas import (
    Bucket,
    ChatbotAnalytics,
    DailyPlatform,
    Interval,
    LlmUsage,
    PeriodTokens,
    PlatformStats,
    QuestionCount,
    Totals,
    UnansweredQuestion,
)
from app.chat.budget import OwnerUsage, PeriodUsage, TokenBudget
from app.chatbots.documents import ChatbotDocument
from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import DomainError
from app.core.security import utcnow

TOP = 10


class InvalidRangeError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Invalid analytics range"


def normalise_question(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: 'How do I return?' ~ 'how do i return'."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


class Buckets:
    """Bucket starts from `start` to `end` in a time zone; days follow local midnights."""

    def __init__(self, start: datetime, end: datetime, interval: Interval, zone: ZoneInfo) -> None:
        self.interval = interval
        self.zone = zone
        self.starts: list[datetime] = []
        current = self.floor(start)
        while current < end:
            self.starts.append(current)
            current = self._next(current)

    def floor(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone)
        if self.interval == "hour":
            return local.replace(minute=0, second=0, microsecond=0)
        return datetime(local.year, local.month, local.day, tzinfo=self.zone)

    def _next(self, start: datetime) -> datetime:
        if self.interval == "hour":
            return (start.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)).astimezone(self.zone)
        day = start.date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=self.zone)

    def key(self, moment: datetime) -> datetime:
        return self.floor(moment)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRangeError(f"unknown time zone {name!r}") from None


@dataclass(slots=True)
class ChatbotTally:
    """One bot's counts over a range, folded in a row at a time."""

    buckets: Buckets
    conversations: defaultdict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    visitors: defaultdict[datetime, set[str]] = field(default_factory=lambda: defaultdict(set))
    all_visitors: set[str] = field(default_factory=set)
    messages: defaultdict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    answers: int = 0
    unknown_answers: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    latencies: list[float] = field(default_factory=list)
    questions: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)
    unanswered_reasons: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    leads: int = 0
    # Conversation id to its latest question, so an answer is charged to what it answered.
    last_question: dict[str, str] = field(default_factory=dict)

    def add_conversation(self, conversation: ConversationRow) -> None:
        """Count a conversation and its visitor (the session, else the conversation itself)."""
        bucket = self.buckets.key(conversation["started_at"])
        visitor = conversation.get("session_id") or conversation["id"]
        self.conversations[bucket] += 1
        self.visitors[bucket].add(visitor)
        self.all_visitors.add(visitor)

    def add_message(self, message: MessageRow) -> None:
        """Count a message; messages must come in time order."""
        self.messages[self.buckets.key(message["timestamp"])] += 1
        if message["role"] == "user":
            self._add_question(message)
        else:
            self._add_answer(message)

    def _add_question(self, message: MessageRow) -> None:
        question = normalise_question(message["content"])
        self.questions[question] += 1
        self.last_question[message["conversation_id"]] = question

    def _add_answer(self, message: MessageRow) -> None:
        self.answers += 1
        if message.get("latency_ms") is not None:
            self.latencies.append(float(message["latency_ms"]))
        feedback = message.get("feedback")
        rating = feedback["rating"] if feedback else None
        self.feedback_up += rating == "up"
        self.feedback_down += rating == "down"
        reasons = []
        if message.get("answered") is False:
            self.unknown_answers += 1
            reasons.append("no_answer")
        if rating == "down":
            reasons.append("thumbs_down")
        asked = self.last_question.get(message["conversation_id"])
        if asked and reasons:
            self.unanswered_reasons[asked].update(reasons)
            self.unanswered[asked] += 1


def _most_common(counts: Counter[str]) -> list[tuple[str, int]]:
    """The TOP most frequent, ties in alphabetical order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]


def _totals(tally: ChatbotTally) -> Totals:
    """The range's totals, rates rounded and null where nothing was measured."""
    conversations = sum(tally.conversations.values())
    messages = sum(tally.messages.values())
    up, down, answers = tally.feedback_up, tally.feedback_down, tally.answers
    return Totals(
        conversations=conversations,
        messages=messages,
        unique_visitors=len(tally.all_visitors),
        avg_messages_per_conversation=round(messages / conversations, 3) if conversations else 0.0,
        answer_latency_ms_p50=percentile(tally.latencies, 0.5),
        answer_latency_ms_p95=percentile(tally.latencies, 0.95),
        feedback_up=up,
        feedback_down=down,
        feedback_ratio=round(up / (up + down), 4) if up + down else None,
        idk_rate=round(tally.unknown_answers / answers, 4) if answers else None,
        leads=tally.leads,
    )


def _series(tally: ChatbotTally) -> list[Bucket]:
    """Every bucket of the range, empty ones included."""
    return [
        Bucket(
            start=bucket,
            conversations=tally.conversations.get(bucket, 0),
            messages=tally.messages.get(bucket, 0),
            unique_visitors=len(tally.visitors.get(bucket, ())),
        )
        for bucket in tally.buckets.starts
    ]


def _chatbot_analytics(
    chatbot_id: str, start: datetime, end: datetime, tally: ChatbotTally
) -> ChatbotAnalytics:
    """The response for a range once every row is folded in."""
    return ChatbotAnalytics(
        chatbot_id=chatbot_id,
        start=start,
        end=end,
        interval=tally.buckets.interval,
        timezone=tally.buckets.zone.key,
        totals=_totals(tally),
        series=_series(tally),
        top_questions=[
            QuestionCount(question=question, count=count)
            for question, count in _most_common(tally.questions)
        ],
        unanswered_questions=[
            UnansweredQuestion.model_validate(
                {
                    "question": question,
                    "count": count,
                    "reasons": sorted(tally.unanswered_reasons[question]),
                }
            )
            for question, count in _most_common(tally.unanswered)
        ],
    )


EARLIEST_YEAR, LATEST_YEAR = 1970, 9998


def _period_tokens(usage: PeriodUsage) -> PeriodTokens:
    return PeriodTokens(
        used=usage.used,
        limit=usage.limit,
        remaining=usage.remaining,
        exhausted=usage.exhausted,
        resets_at=usage.resets_at,
    )


def llm_usage_out(user_id: str, usage: OwnerUsage) -> LlmUsage:
    return LlmUsage(
        user_id=user_id, daily=_period_tokens(usage.daily), monthly=_period_tokens(usage.monthly)
    )


class AnalyticsService:
    def __init__(
        self,
        repository: AnalyticsRepository,
        cache: Cache,
        settings: Settings,
        budget: TokenBudget,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._settings = settings
        self._budget = budget

    async def llm_usage(self, user_id: str) -> LlmUsage:
        """Live, never cached: it is what the next chat turn is checked against."""
        return llm_usage_out(user_id, await self._budget.usage(user_id))

    def _range(
        self, start: datetime | None, end: datetime | None, interval: Interval, timezone: str
    ) -> tuple[datetime, datetime, ZoneInfo]:
        zone = _zone(timezone)
        end = end or utcnow()
        if end.tzinfo is None or (start is not None and start.tzinfo is None):
            raise InvalidRangeError("from and to need a time zone offset (e.g. 2026-01-01T00:00Z)")
        # Date arithmetic near year 1 or 9999 overflows; no analytics lives there.
        if any(
            not EARLIEST_YEAR <= moment.year <= LATEST_YEAR for moment in (start, end) if moment
        ):
            raise InvalidRangeError(
                f"from and to must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}"
            )
        start = start or end - timedelta(days=30)
        if start >= end:
            raise InvalidRangeError("from must be before to")
        if end - start > timedelta(days=self._settings.analytics_max_days):
            raise InvalidRangeError(
                f"the range is longer than {self._settings.analytics_max_days} days"
            )
        step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
        if (end - start) / step > self._settings.analytics_max_buckets:
            raise InvalidRangeError(
                f"more than {self._settings.analytics_max_buckets} {interval} buckets; "
                "use a shorter range or a longer interval"
            )
        return start, end, zone

    async def chatbot(
        self,
        chatbot: ChatbotDocument,
        start: datetime | None,
        end: datetime | None,
        interval: Interval,
        timezone: str,
    ) -> ChatbotAnalytics:
        start, end, zone = self._range(start, end, interval, timezone)
        key = f"{chatbot['id']}:{start.isoformat()}:{end.isoformat()}:{interval}:{timezone}"
        cached = await self._cache.get_or_load(
            "analytics",
            key,
            lambda: self._compute_chatbot(chatbot["id"], start, end, interval, zone),
        )
        assert cached is not None
        return ChatbotAnalytics.model_validate(cached)

    async def _compute_chatbot(
        self, chatbot_id: str, start: datetime, end: datetime, interval: Interval, zone: ZoneInfo
    ) -> Document:
        tally = ChatbotTally(Buckets(start, end, interval, zone))
        async for conversation in self._repository.conversations(chatbot_id, start, end):
            tally.add_conversation(conversation)
        # Ordered here: sorting in the pipeline costs FerretDB more than Python.
        rows = [message async for message in self._repository.messages(chatbot_id, start, end)]
        rows.sort(key=lambda message: message["timestamp"])
        for message in rows:
            tally.add_message(message)
        tally.leads = await self._repository.leads(chatbot_id, start, end)
        # Cached in its JSON form, so bucket starts keep the caller's UTC offset.
        return _chatbot_analytics(chatbot_id, start, end, tally).model_dump(mode="json")

    async def platform(
        self, start: datetime | None, end: datetime | None, timezone: str
    ) -> PlatformStats:
        start, end, zone = self._range(start, end, "day", timezone)
        buckets = Buckets(start, end, "day", zone)
        series: dict[str, dict[datetime, int]] = {}
        sources = {
            "signups": ("users", "created_at", None),
            "chatbots": ("chatbots", "created_at", None),
            "conversations": ("conversations", "started_at", None),
            "messages": ("messages", "timestamp", None),
        }
        for name, (collection, time_field, _) in sources.items():
            counts: dict[datetime, int] = defaultdict(int)
            async for row in self._repository.times(collection, time_field, start, end):
                counts[buckets.key(row[time_field])] += 1
            series[name] = counts
        active: dict[datetime, set[str]] = defaultdict(set)
        # A user is active on a day they signed in or renewed a session.
        async for row in self._repository.times(
            "refresh_tokens", "created_at", start, end, "user_id"
        ):
            active[buckets.key(row["created_at"])].add(row["user_id"])
        totals = {
            name: await self._repository.count(collection)
            for name, collection in (
                ("users", "users"),
                ("chatbots", "chatbots"),
                ("conversations", "conversations"),
                ("messages", "messages"),
            )
        }
        return PlatformStats(
            start=start,
            end=end,
            timezone=zone.key,
            totals=totals,
            series=[
                DailyPlatform(
                    day=day,
                    signups=series["signups"].get(day, 0),
                    active_users=len(active.get(day, ())),
                    chatbots=series["chatbots"].get(day, 0),
                    conversations=series["conversations"].get(day, 0),
                    messages=series["messages"].get(day, 0),
                )
                for day in buckets.starts
            ],
        )
