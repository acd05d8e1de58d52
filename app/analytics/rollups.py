"""A bot's hourly rollups rebuilt from, and checked against, its raw conversations and messages
(`botsmith analytics backfill` and `check`), and the round that compacts them.

The recount applies the functions the chat turn records with (`app.chat.activity`) to the stored
documents, so a rollup that saw every write equals the recount. Backfill replaces the bot's rollups
with the recount: run it on data written before rollups existed, or to repair; a chat turn stored
while it runs may be counted twice or not at all (run `check` after, and backfill again if it
disagrees).
"""

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime

from app.analytics.repository import RollupRepository
from app.chat.activity import conversation_change, message_change, resolution_change
from app.chat.documents import MessageDocument
from app.core import rollups
from app.core.periodic import Periodic
from app.core.resources import Resources
from app.core.rollups import HourTally, hour_of
from app.core.security import utcnow

COMPACTION_SECONDS = 300.0
COMPACTION_BATCHES = 20  # of rollups.compact's batch, per round


def _non_zero(tally: HourTally) -> bool:
    return bool(
        any(tally.counts.values())
        or any(tally.latency.values())
        or tally.visitors
        or any(any(q.counts.values()) for q in tally.questions.values())
    )


async def _instants(
    messages: AsyncIterator[MessageDocument],
) -> AsyncIterator[list[MessageDocument]]:
    """Messages ordered by conversation and time, grouped by (conversation, timestamp), the
    questions of an instant first."""
    instant: list[MessageDocument] = []
    async for message in messages:
        if instant and (message["conversation_id"], message["timestamp"]) != (
            instant[0]["conversation_id"],
            instant[0]["timestamp"],
        ):
            yield sorted(instant, key=lambda m: m["role"] != "user")
            instant = []
        instant.append(message)
    if instant:
        yield sorted(instant, key=lambda m: m["role"] != "user")


async def recount(repository: RollupRepository, chatbot_id: str) -> dict[datetime, HourTally]:
    """The bot's hourly tallies computed from its stored documents."""
    hours: defaultdict[datetime, HourTally] = defaultdict(HourTally)
    async for conversation in repository.conversations(chatbot_id):
        hours[hour_of(conversation["started_at"])].merge(conversation_change(conversation))
    # Each answer is charged to the latest question before it in its conversation.
    current: str | None = None
    asked: str | None = None
    async for instant in _instants(repository.messages(chatbot_id)):
        if instant[0]["conversation_id"] != current:
            current, asked = instant[0]["conversation_id"], None
        for message in instant:
            question = None
            if message["role"] == "user":
                asked = message["content"]
            else:
                question = asked
            hours[hour_of(message["timestamp"])].merge(message_change(message, question))
    async for resolution in repository.resolutions(chatbot_id):
        if resolution["source_id"] is not None:
            change = resolution_change(resolution["question"])
            hours[hour_of(resolution["question_at"])].merge(change)
    return {hour: tally for hour, tally in hours.items() if _non_zero(tally)}


def differences(stored: HourTally, counted: HourTally) -> list[str]:
    """What differs between an hour's rollups and its recount, one line each."""
    lines = [
        f"{name}: rollups {stored.counts[name]}, messages {counted.counts[name]}"
        for name in rollups.COUNTERS
        if stored.counts[name] != counted.counts[name]
    ]
    for bucket in sorted(set(stored.latency) | set(counted.latency)):
        if stored.latency[bucket] != counted.latency[bucket]:
            lines.append(
                f"latency {bucket} ms: rollups {stored.latency[bucket]}, "
                f"messages {counted.latency[bucket]}"
            )
    if stored.visitors != counted.visitors:
        lines.append(
            f"visitors: rollups {len(stored.visitors)}, messages {len(counted.visitors)} "
            f"({len(stored.visitors ^ counted.visitors)} differ)"
        )
    for key in sorted(set(stored.questions) | set(counted.questions)):
        empty = rollups.QuestionTally()
        mine, theirs = stored.questions.get(key, empty), counted.questions.get(key, empty)
        for name in rollups.QUESTION_COUNTERS:
            if mine.counts[name] != theirs.counts[name]:
                text = theirs.text or mine.text
                lines.append(
                    f"question {text!r} {name}: rollups {mine.counts[name]}, "
                    f"messages {theirs.counts[name]}"
                )
    return lines


async def check(repository: RollupRepository, chatbot_id: str) -> list[str]:
    """Every difference between the bot's rollups and its recount (none: they agree)."""
    stored = await repository.hours(chatbot_id)
    counted = await recount(repository, chatbot_id)
    report = []
    for hour in sorted(set(stored) | set(counted)):
        mine, theirs = stored.get(hour, HourTally()), counted.get(hour, HourTally())
        if not (_non_zero(mine) or _non_zero(theirs)):
            continue
        for line in differences(mine, theirs):
            report.append(f"{chatbot_id} {hour:%Y-%m-%dT%H:00Z} {line}")
    return report


async def backfill(repository: RollupRepository, chatbot_id: str) -> int:
    """Replaces the bot's rollups with the recount; returns the hours written."""
    return await repository.replace_hours(chatbot_id, await recount(repository, chatbot_id))


def rollup_compaction(resources: Resources) -> Periodic:
    """Folds the per-process rollup documents of past hours into one document per hour."""

    async def job() -> int:
        done = 0
        for _ in range(COMPACTION_BATCHES):
            folded = await rollups.compact(resources.db, utcnow())
            done += folded
            if folded < rollups.COMPACT_BATCH:
                break
        return done

    return Periodic("analytics-rollup-compaction", COMPACTION_SECONDS, job)
