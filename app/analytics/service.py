"""Analytics figures from the hourly rollups (`app.core.rollups`): buckets in the caller's time
zone, averages and percentiles computed here; leads and the admin's platform figures still
count documents."""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.analytics.repository import AnalyticsRepository
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
from app.core import rollups
from app.core.cache import Cache
from app.core.config import Settings
from app.core.db import Document
from app.core.errors import DomainError
from app.core.rollups import HourTally, QuestionTally, hour_of
from app.core.security import utcnow

TOP = 10


class InvalidRangeError(DomainError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Invalid analytics range"


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def histogram_percentile(histogram: Counter[int], q: float) -> float | None:
    """Nearest-rank percentile of a latency histogram: the lower edge of the bucket holding the
    sample (see app.core.rollups for the error bound)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return float(bucket)
    return float(max(histogram))


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
    """One bot's hourly rollups over a range, folded into the requested buckets. A UTC hour
    goes to the bucket its start falls in: exact for zones whose offset is whole hours; in a
    half-hour zone (such as Asia/Kolkata) an hour straddling local midnight counts in the day
    it starts in, so up to 30 (45 for Nepal) minutes per day move to the day before."""

    buckets: Buckets
    conversations: defaultdict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    visitors: defaultdict[datetime, set[str]] = field(default_factory=lambda: defaultdict(set))
    messages: defaultdict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    total: HourTally = field(default_factory=HourTally)
    leads: int = 0

    def add_hour(self, hour: datetime, fields: Document) -> None:
        """Adds one hour's counters (`app.core.rollups.hour_fields`)."""
        bucket = self.buckets.key(hour)
        self.conversations[bucket] += int(fields.get(rollups.CONVERSATIONS, 0))
        self.messages[bucket] += int(fields.get(rollups.MESSAGES, 0))
        self.visitors[bucket].update(fields.get("visitors", ()))
        self.total.add_fields(fields)


def _most_common(questions: Iterable[QuestionTally], counter: str) -> list[QuestionTally]:
    """The TOP questions counted most by `counter` (once at least), ties in alphabetical order."""
    counted = [q for q in questions if q.counts[counter] > 0]
    return sorted(counted, key=lambda q: (-q.counts[counter], q.text))[:TOP]


def _totals(tally: ChatbotTally) -> Totals:
    """The range's totals, rates rounded and null where nothing was measured."""
    counts = tally.total.counts
    conversations = counts[rollups.CONVERSATIONS]
    messages = counts[rollups.MESSAGES]
    up, down, answers = (
        counts[rollups.FEEDBACK_UP],
        counts[rollups.FEEDBACK_DOWN],
        counts[rollups.ANSWERS],
    )
    return Totals(
        conversations=conversations,
        messages=messages,
        unique_visitors=len(tally.total.visitors),
        avg_messages_per_conversation=round(messages / conversations, 3) if conversations else 0.0,
        answer_latency_ms_p50=histogram_percentile(tally.total.latency, 0.5),
        answer_latency_ms_p95=histogram_percentile(tally.total.latency, 0.95),
        feedback_up=up,
        feedback_down=down,
        feedback_ratio=round(up / (up + down), 4) if up + down else None,
        idk_rate=round(counts[rollups.UNKNOWN_ANSWERS] / answers, 4) if answers else None,
        leads=tally.leads,
        unanswered_resolved=counts[rollups.RESOLVED],
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


def _unanswered(tally: HourTally) -> list[UnansweredQuestion]:
    return [
        UnansweredQuestion(
            question=q.text,
            count=q.counts["unanswered"],
            reasons=[r for r in ("no_answer", "thumbs_down") if q.counts[r] > 0],
            message_id=q.message_id,
            resolved=q.counts["resolved"] > 0,
        )
        for q in _most_common(tally.questions.values(), "unanswered")
    ]


def _chatbot_analytics(
    chatbot_id: str, start: datetime, end: datetime, tally: ChatbotTally
) -> ChatbotAnalytics:
    """The response for a range once every hour is folded in."""
    top = _most_common(tally.total.questions.values(), "asked")
    return ChatbotAnalytics(
        chatbot_id=chatbot_id,
        start=start,
        end=end,
        interval=tally.buckets.interval,
        timezone=tally.buckets.zone.key,
        totals=_totals(tally),
        series=_series(tally),
        top_questions=[QuestionCount(question=q.text, count=q.counts["asked"]) for q in top],
        unanswered_questions=_unanswered(tally.total),
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
        # Whole UTC hours: a range starting or ending inside an hour counts all of that hour.
        last = hour_of(end) if end == hour_of(end) else hour_of(end) + rollups.HOUR
        async for hour, fields in self._repository.hour_fields(chatbot_id, hour_of(start), last):
            tally.add_hour(hour, fields)
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
