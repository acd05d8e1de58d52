"""Analytics figures: exact counts from the pipelines, buckets in the caller's time zone,
averages and percentiles computed here."""

import math
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.analytics.repository import AnalyticsRepository
from app.analytics.schemas import (
    Bucket,
    ChatbotAnalytics,
    DailyPlatform,
    Interval,
    PlatformStats,
    QuestionCount,
    Totals,
    UnansweredQuestion,
)
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


class AnalyticsService:
    def __init__(self, repository: AnalyticsRepository, cache: Cache, settings: Settings) -> None:
        self._repository = repository
        self._cache = cache
        self._settings = settings

    def _range(
        self, start: datetime | None, end: datetime | None, interval: Interval, timezone: str
    ) -> tuple[datetime, datetime, ZoneInfo]:
        zone = _zone(timezone)
        end = end or utcnow()
        start = start or end - timedelta(days=30)
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidRangeError("from and to need a time zone offset (e.g. 2026-01-01T00:00Z)")
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
        chatbot: Document,
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
        buckets = Buckets(start, end, interval, zone)
        conversations: dict[datetime, int] = defaultdict(int)
        visitors: dict[datetime, set[str]] = defaultdict(set)
        visitor_of: dict[str, str] = {}
        all_visitors: set[str] = set()
        async for conversation in self._repository.conversations(chatbot_id, start, end):
            bucket = buckets.key(conversation["started_at"])
            visitor = conversation.get("session_id") or conversation["id"]
            visitor_of[conversation["id"]] = visitor
            conversations[bucket] += 1
            visitors[bucket].add(visitor)
            all_visitors.add(visitor)

        messages: dict[datetime, int] = defaultdict(int)
        latencies: list[float] = []
        up = down = answers = unknown = 0
        questions: Counter[str] = Counter()
        unanswered: dict[str, set[str]] = defaultdict(set)
        unanswered_count: Counter[str] = Counter()
        last_question: dict[str, str] = {}
        # Ordered here: sorting in the pipeline costs FerretDB more than Python.
        rows = [message async for message in self._repository.messages(chatbot_id, start, end)]
        rows.sort(key=lambda message: message["timestamp"])
        for message in rows:
            messages[buckets.key(message["timestamp"])] += 1
            if message["role"] == "user":
                question = normalise_question(message["content"])
                questions[question] += 1
                last_question[message["conversation_id"]] = question
                continue
            answers += 1
            if message.get("latency_ms") is not None:
                latencies.append(float(message["latency_ms"]))
            rating = (message.get("feedback") or {}).get("rating")
            up += rating == "up"
            down += rating == "down"
            asked = last_question.get(message["conversation_id"])
            reasons = []
            if message.get("answered") is False:
                unknown += 1
                reasons.append("no_answer")
            if rating == "down":
                reasons.append("thumbs_down")
            if asked and reasons:
                unanswered[asked].update(reasons)
                unanswered_count[asked] += 1

        total_messages = len(rows)
        total_conversations = sum(conversations.values())
        result = {
            "chatbot_id": chatbot_id,
            "start": start,
            "end": end,
            "interval": buckets.interval,
            "timezone": zone.key,
            "totals": Totals(
                conversations=total_conversations,
                messages=total_messages,
                unique_visitors=len(all_visitors),
                avg_messages_per_conversation=round(total_messages / total_conversations, 3)
                if total_conversations
                else 0.0,
                answer_latency_ms_p50=percentile(latencies, 0.5),
                answer_latency_ms_p95=percentile(latencies, 0.95),
                feedback_up=up,
                feedback_down=down,
                feedback_ratio=round(up / (up + down), 4) if up + down else None,
                idk_rate=round(unknown / answers, 4) if answers else None,
            ).model_dump(),
            "series": [
                Bucket(
                    start=bucket,
                    conversations=conversations.get(bucket, 0),
                    messages=messages.get(bucket, 0),
                    unique_visitors=len(visitors.get(bucket, ())),
                ).model_dump()
                for bucket in buckets.starts
            ],
            "top_questions": [
                QuestionCount(question=q, count=n).model_dump()
                for q, n in sorted(questions.items(), key=lambda item: (-item[1], item[0]))[:TOP]
            ],
            "unanswered_questions": [
                UnansweredQuestion.model_validate(
                    {"question": q, "count": n, "reasons": sorted(unanswered[q])}
                ).model_dump()
                for q, n in sorted(unanswered_count.items(), key=lambda i: (-i[1], i[0]))[:TOP]
            ],
        }
        # Cached in its JSON form, so bucket starts keep the caller's UTC offset.
        return ChatbotAnalytics.model_validate(result).model_dump(mode="json")

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
        for name, (collection, field, _) in sources.items():
            counts: dict[datetime, int] = defaultdict(int)
            async for row in self._repository.times(collection, field, start, end):
                counts[buckets.key(row[field])] += 1
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
