"""Hourly activity rollups of a chatbot: counters kept per UTC hour at write time, so analytics
read one document per hour instead of every message.

A rollup document holds one writer's counts for (chatbot, hour). Each process writes its own
documents and serialises its writes to each one, because FerretDB applies `$inc` as a read and a
write that concurrent updates of one document interleave (counts are lost; measured). The writer
name changes every hour (`open_until`), so a writer's document stops changing an hour later and
the compaction round folds it into its UTC day's single compacted document (writer "", `hour` the
day's start), whose hours are packed in one compressed field (`compacted_documents`). MongoDB
would take concurrent `$inc` upserts; the sharding costs it nothing but a few documents per hour.

Recording is best effort: a failed rollup write is logged (at most once a minute) and counted in
`botsmith_rollup_writes_total{result="failed"}`, never failing the chat turn that stored the
message; `botsmith analytics check` reports the difference and `backfill` repairs it.

Latencies go into fixed buckets of two significant digits (exact below 100 ms, then steps of 10,
100, ... ms): a percentile read from merged hours is the lower edge of the bucket holding the
nearest-rank sample, so it is exact below 100 ms and at most 10 % (one step) under the true value
above. Visitors are kept as short hashes so their union over hours gives exact unique counts.
"""

import hashlib
import json
import logging
import re
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bson import Binary
from prometheus_client import Counter as MetricCounter
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from app.core.db import Document, MongoDatabase, upsert
from app.core.writers import this_process

logger = logging.getLogger(__name__)

COLLECTION = "analytics_hours"
COMPACTED = ""  # the writer name of an hour's compacted (or backfilled) document
ERASED_QUESTION = "(erased on request)"  # a question's text once a visitor who asked it is erased
HOUR = timedelta(hours=1)
COMPACT_BATCH = 500  # documents folded per call of compact()
REWRITE_ATTEMPTS = 5  # compare-and-set tries of a compacted day's rewrite
WARNING_INTERVAL_SECONDS = 60.0

ROLLUP_WRITES = MetricCounter(
    "botsmith_rollup_writes",
    "Rollup writes of chat turns, ratings and agent replies, by result (stored, failed).",
    ["result"],
)

# The counters of an hour.
MESSAGES = "messages"
ANSWERS = "answers"
UNKNOWN_ANSWERS = "unknown_answers"
CONVERSATIONS = "conversations"
FEEDBACK_UP = "feedback_up"
FEEDBACK_DOWN = "feedback_down"
RESOLVED = "resolved"
COUNTERS = (MESSAGES, ANSWERS, UNKNOWN_ANSWERS, CONVERSATIONS, FEEDBACK_UP, FEEDBACK_DOWN, RESOLVED)
# The counters of one (normalised) question in an hour.
QUESTION_COUNTERS = ("asked", "unanswered", "no_answer", "thumbs_down", "resolved")


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour holding `moment`."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """The start of the UTC day holding `moment`."""
    return hour_of(moment).replace(hour=0)


def latency_bucket(milliseconds: float) -> int:
    """The lower edge of the latency's bucket: two significant digits (137 -> 130)."""
    value = max(0, int(milliseconds))
    if value < 100:
        return value
    step: int = 10 ** (len(str(value)) - 2)
    return value - value % step


def normalise_question(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: 'How do I return?' ~ 'how do i return'."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def short_hash(text: str) -> str:
    """16 hex digits: a field name and set member that reveals nothing and does not collide."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class QuestionTally:
    text: str = ""
    message_id: str | None = None  # a question message of this kind (the latest recorded)
    counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: "QuestionTally") -> None:
        self.text = other.text or self.text
        self.message_id = other.message_id or self.message_id
        self.counts.update(other.counts)


@dataclass(slots=True)
class HourTally:
    """An hour's counts (or a change to them: counts may be negative), mergeable."""

    counts: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)
    visitors: set[str] = field(default_factory=set)
    questions: dict[str, QuestionTally] = field(default_factory=dict)

    def question(self, text: str) -> QuestionTally:
        """The tally of a question (any spelling of it), created empty."""
        normalised = normalise_question(text)
        key = short_hash(normalised)
        if key not in self.questions:
            self.questions[key] = QuestionTally(text=normalised)
        return self.questions[key]

    def merge(self, other: "HourTally") -> None:
        self.counts.update(other.counts)
        self.latency.update(other.latency)
        self.visitors |= other.visitors
        for key, question in other.questions.items():
            self.questions.setdefault(key, QuestionTally()).merge(question)

    def add_fields(self, fields: Document) -> None:
        """Adds a document's counters (unpacked); the hot loop of every analytics read."""
        counts, latency, questions = self.counts, self.latency, self.questions
        for name in COUNTERS:
            if value := fields.get(name):
                counts[name] += int(value)
        for bucket, n in fields.get("latency", {}).items():
            if n:
                latency[int(bucket)] += int(n)
        self.visitors.update(fields.get("visitors", ()))
        for key, entry in fields.get("questions", {}).items():
            question = questions.get(key)
            if question is None:
                question = questions[key] = QuestionTally(text=str(entry.get("text") or ""))
            if entry.get("message_id"):
                question.message_id = entry["message_id"]
            tallied = question.counts
            for name in QUESTION_COUNTERS:
                if value := entry.get(name):
                    tallied[name] += int(value)

    @classmethod
    def from_fields(cls, fields: Document) -> "HourTally":
        tally = cls()
        tally.add_fields(fields)
        return tally

    def fields(self) -> Document:
        """The counters as fields (what a writer's document holds)."""
        # Zeros are left out: they cost every read and add nothing.
        questions: Document = {}
        for key, q in self.questions.items():
            entry: Document = {n: c for n, c in q.counts.items() if c}
            if entry:
                entry["text"] = q.text
                if q.message_id:
                    entry["message_id"] = q.message_id
                questions[key] = entry
        return {
            **{name: count for name, count in self.counts.items() if count},
            "latency": {str(k): n for k, n in sorted(self.latency.items()) if n},
            "visitors": sorted(self.visitors),
            "questions": questions,
        }

    def update(self) -> Document:
        """This change as one MongoDB update: `$inc` the counts, `$set` texts, `$addToSet`."""
        increments: dict[str, int] = {n: c for n, c in self.counts.items() if c}
        increments |= {f"latency.{k}": n for k, n in self.latency.items() if n}
        texts: dict[str, str] = {}
        for key, question in self.questions.items():
            increments |= {f"questions.{key}.{n}": c for n, c in question.counts.items() if c}
            texts[f"questions.{key}.text"] = question.text
            if question.message_id:
                texts[f"questions.{key}.message_id"] = question.message_id
        update: Document = {}
        if increments:
            update["$inc"] = increments
        if texts:
            update["$set"] = texts
        if self.visitors:
            update["$addToSet"] = {"visitors": {"$each": sorted(self.visitors)}}
        return update


class _FailureLog:
    """The first failed rollup write of each minute is logged; every one is counted."""

    last_logged = -float("inf")

    @classmethod
    def record(cls, error: PyMongoError) -> None:
        ROLLUP_WRITES.labels(result="failed").inc()
        now = time.monotonic()
        if now - cls.last_logged >= WARNING_INTERVAL_SECONDS:
            cls.last_logged = now
            logger.warning(
                "rollup write failed, analytics undercount until `botsmith analytics backfill`: %s",
                error,
            )


class RollupWriter:
    """Adds changes to a chatbot's hourly rollups; each call is one upsert."""

    def __init__(self, db: MongoDatabase) -> None:
        self._rollups = db[COLLECTION]

    async def add(self, chatbot_id: str, moment: datetime, change: HourTally) -> None:
        update = change.update()
        if not update:
            return
        writer = this_process()
        # Renamed each UTC hour, so older documents stop changing and can be compacted.
        epoch = hour_of(datetime.now(UTC))
        name, open_until = f"{writer.name}-{epoch:%Y%m%d%H}", epoch + HOUR
        hour = hour_of(moment)
        query = {"chatbot_id": chatbot_id, "hour": hour, "writer": name}
        update = {**update, "$set": {**update.get("$set", {}), "open_until": open_until}}
        async with writer.serialised((chatbot_id, hour, name)):
            await upsert(self._rollups, query, update)

    async def record(self, chatbot_id: str, moment: datetime, change: HourTally) -> bool:
        """`add`, for a write already stored: a database error is logged and counted, not
        raised (the rollups stay short until a backfill); returns whether it was recorded."""
        try:
            await self.add(chatbot_id, moment, change)
        except PyMongoError as error:
            _FailureLog.record(error)
            return False
        ROLLUP_WRITES.labels(result="stored").inc()
        return True


async def hour_fields(
    db: MongoDatabase, chatbot_id: str, start: datetime, end: datetime
) -> AsyncIterator[tuple[datetime, Document]]:
    """(hour, counters) of each of the chatbot's rollup documents for the hours starting in
    [start, end); an hour may come more than once (one per writer not yet compacted)."""
    # No projection: FerretDB reads whole documents faster than it projects them.
    found = db[COLLECTION].find(
        {"chatbot_id": chatbot_id, "hour": {"$gte": day_of(start), "$lt": end}}, batch_size=1000
    )
    async for document in found:
        for hour, fields in unpack(document).items():
            if start <= hour < end:
                yield hour, fields


async def read_hours(
    db: MongoDatabase, chatbot_id: str, start: datetime, end: datetime
) -> dict[datetime, HourTally]:
    """The chatbot's merged tallies for the hours starting in [start, end)."""
    hours: dict[datetime, HourTally] = {}
    async for hour, fields in hour_fields(db, chatbot_id, start, end):
        hours.setdefault(hour, HourTally()).add_fields(fields)
    return hours


def pack(hours: dict[datetime, HourTally]) -> Binary:
    """A day's hours as one compressed field, keyed by the hour of the day."""
    body = {str(hour.hour): tally.fields() for hour, tally in sorted(hours.items())}
    return Binary(zlib.compress(json.dumps(body, separators=(",", ":")).encode()))


def unpack(document: Document) -> dict[datetime, Document]:
    """A rollup document's counters by hour: a writer's one hour, or a compacted day's hours."""
    if document["writer"] != COMPACTED:
        return {document["hour"].astimezone(UTC): document}
    day = document["hour"].astimezone(UTC)
    body: dict[str, Document] = json.loads(zlib.decompress(document["packed"]))
    return {day + int(hour) * HOUR: fields for hour, fields in body.items()}


def compacted_documents(chatbot_id: str, hours: dict[datetime, HourTally]) -> list[Document]:
    """One document per UTC day (`hour` is the day's start), its hours' counters packed in one
    field: FerretDB converts each field of a document it reads, so 720 hours of counters as
    fields took 1.2-2.5 s to read, and the same as 30 packed days a few milliseconds."""
    days: dict[datetime, dict[datetime, HourTally]] = {}
    for hour, tally in hours.items():
        days.setdefault(day_of(hour), {})[hour] = tally
    return [
        {
            "chatbot_id": chatbot_id,
            "hour": day,
            "writer": COMPACTED,
            "packed": pack(days[day]),
            "version": 0,
        }
        for day in sorted(days)
    ]


async def replace_hours(
    db: MongoDatabase, chatbot_id: str, hours: dict[datetime, HourTally]
) -> int:
    """Replaces every rollup of the chatbot with compacted days holding `hours`."""
    rollups = db[COLLECTION]
    await rollups.delete_many({"chatbot_id": chatbot_id})
    documents = compacted_documents(chatbot_id, hours)
    for start in range(0, len(documents), 500):
        await rollups.insert_many(documents[start : start + 500])
    return len(hours)


DayRewrite = Callable[[Document], Document | None]


class RollupConflict(PyMongoError):
    """A compacted day changed under every attempt to rewrite it; the caller tries again later."""


async def rewrite_day(
    rollups: AsyncCollection[Document], document: Document, rewrite: DayRewrite
) -> Document | None:
    """Applies `rewrite` (the update of a compacted day as read, None for none) only if nobody
    changed the day since it was read: a compare-and-set on its `version`, re-read and retried a
    few times when another round (compaction, forgetting visitors) rewrote it in between. Returns
    the day as last read, None if it is gone; raises RollupConflict if it changed every time.

    MongoDB applies the conditional update atomically. FerretDB's conditional updates are not
    atomic under concurrency, so there the check narrows the window in which a concurrent rewrite
    is lost to one round trip rather than closing it."""
    for _ in range(REWRITE_ATTEMPTS):
        update = rewrite(document)
        if update is None:
            return document
        version = document.get("version")
        expected = {"$exists": False} if version is None else version
        result = await rollups.update_one(
            {"_id": document["_id"], "version": expected},
            {**update, "$inc": {"version": 1}},
        )
        if result.modified_count:
            return document
        found = await rollups.find_one({"_id": document["_id"]})
        if found is None:
            return None
        document = found
    raise RollupConflict(f"rollup {document['_id']} changed under {REWRITE_ATTEMPTS} rewrites")


def _folding(hour: datetime, writer: str, fields: Document) -> DayRewrite:
    """The rewrite adding a writer's hour to its compacted day, unless the day holds it."""

    def fold(day: Document) -> Document | None:
        if writer in day.get("merged", []):
            return None
        hours = {h: HourTally.from_fields(f) for h, f in unpack(day).items()}
        hours.setdefault(hour, HourTally()).add_fields(fields)
        return {"$set": {"packed": pack(hours)}, "$push": {"merged": writer}}

    return fold


async def compact(db: MongoDatabase, now: datetime, batch: int = COMPACT_BATCH) -> int:
    """Folds writers' documents that stopped changing into their day's compacted document; runs
    in one process at a time (the compaction round's lease). Safe to repeat after a crash: the
    compacted document lists the writers it holds, and a writer's document is deleted after. A
    writer's document that could not be folded (its day written meanwhile) waits for the next
    round."""
    rollups = db[COLLECTION]
    closed = rollups.find(
        {"writer": {"$ne": COMPACTED}, "open_until": {"$lt": now - timedelta(minutes=5)}}
    ).limit(batch)
    done = 0
    async for document in closed:
        chatbot_id, hour = document["chatbot_id"], document["hour"].astimezone(UTC)
        day, writer = day_of(hour), f"{document['writer']}@{hour:%H}"
        compacted = await rollups.find_one(
            {"chatbot_id": chatbot_id, "hour": day, "writer": COMPACTED}
        )
        if compacted is None:
            (new,) = compacted_documents(chatbot_id, {hour: HourTally.from_fields(document)})
            try:
                await rollups.insert_one({**new, "merged": [writer]})
            except DuplicateKeyError:
                continue  # a backfill or another fold wrote the day meanwhile: next round
        else:
            try:
                folded = await rewrite_day(rollups, compacted, _folding(hour, writer, document))
            except RollupConflict:
                folded = None
            if folded is None:
                continue  # the day changed (or went) meanwhile: next round
        await rollups.delete_one({"_id": document["_id"]})
        done += 1
    return done


async def forget_visitors(db: MongoDatabase, chatbot_id: str, visitors: list[str]) -> int:
    """Takes visitors' hashes out of the bot's rollups (writers' and compacted documents);
    returns how many documents changed. Raises RollupConflict if a compacted day kept changing
    (the erasure round tries again)."""
    rollups = db[COLLECTION]
    if not visitors:
        return 0
    # FerretDB ignores `$pull` with `$in`; `$pullAll` works on both.
    result = await rollups.update_many(
        {"chatbot_id": chatbot_id, "visitors": {"$in": visitors}},
        {"$pullAll": {"visitors": visitors}},
    )
    changed = result.modified_count
    gone = set(visitors)

    def without_visitors(document: Document) -> Document | None:
        hours = {h: HourTally.from_fields(f) for h, f in unpack(document).items()}
        if not any(tally.visitors & gone for tally in hours.values()):
            return None
        for tally in hours.values():
            tally.visitors -= gone
        return {"$set": {"packed": pack(hours)}}

    async for document in rollups.find({"chatbot_id": chatbot_id, "writer": COMPACTED}):
        if without_visitors(document) is not None and await rewrite_day(
            rollups, document, without_visitors
        ):
            changed += 1
    return changed


async def forget_questions(db: MongoDatabase, chatbot_id: str, questions: list[str]) -> int:
    """Replaces the text (and the example message) of these questions in the bot's rollups by
    ERASED_QUESTION, in writers' and compacted documents: an erased visitor's words leave the
    analytics, their counts stay (another visitor's same question loses its text too). Returns
    how many documents changed; raises RollupConflict as forget_visitors does."""
    rollups = db[COLLECTION]
    keys = {short_hash(normalise_question(question)) for question in questions}
    changed = 0
    for key in sorted(keys):
        result = await rollups.update_many(
            {
                "chatbot_id": chatbot_id,
                "writer": {"$ne": COMPACTED},
                f"questions.{key}.text": {"$exists": True},
            },
            {
                "$set": {f"questions.{key}.text": ERASED_QUESTION},
                "$unset": {f"questions.{key}.message_id": ""},
            },
        )
        changed += result.modified_count

    def without_texts(document: Document) -> Document | None:
        hours = {h: HourTally.from_fields(f) for h, f in unpack(document).items()}
        erased = [
            question
            for tally in hours.values()
            for key, question in tally.questions.items()
            if key in keys and (question.text != ERASED_QUESTION or question.message_id)
        ]
        if not erased:
            return None
        for question in erased:
            question.text, question.message_id = ERASED_QUESTION, None
        return {"$set": {"packed": pack(hours)}}

    if keys:
        async for document in rollups.find({"chatbot_id": chatbot_id, "writer": COMPACTED}):
            if without_texts(document) is not None and await rewrite_day(
                rollups, document, without_texts
            ):
                changed += 1
    return changed
