"""The erasures collection, and the deletions that retention and erasure make across the other
domains' collections.

Like a chatbot's purge (`ChatbotRepository.purge`), these deletions reach into collections other
domains own, because they must cover all of them. Every delete is bounded: it takes at most
`batch` documents (found by `_id`, then deleted by `_id`), so a large backlog is many short
writes, and the caller records its progress between them.
"""

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument

from app.analytics.repository import RESOLUTIONS
from app.core.db import Document, MongoDatabase, delete_batch, without_id
from app.core.ratelimit import route_policies
from app.core.redis import RedisClient
from app.core.resources import Resources
from app.core.rollups import forget_questions, forget_visitors, short_hash
from app.governance.documents import ErasureDocument, ErasureStatus
from app.quotas.counters import quota_key
from app.users.schemas import UserStatus

ERASURES = "erasures"
# Never swept by an erasure: the receipts themselves, and the security log, which keeps its
# entries (identifiers, never personal details) for AUDIT_RETENTION_DAYS.
KEPT_COLLECTIONS = frozenset({ERASURES, "audit_log"})
# Redis keys are erased only inside namespaces the subject owns (an id the owner typed, such as
# a session id, never reaches another account's or an address's keys): a visitor's session
# counters under its bot's owner, an account's keys under its own hash tag or identity.
_CACHE_PREFIX = "botsmith:cache:v2:"  # app.core.cache's keys: <prefix><namespace>:<key>
_ACCOUNT_CACHES = ("user", "plan", "llm-budget")  # cached by the account's id
_UNFINISHED = [ErasureStatus.PENDING.value, ErasureStatus.RUNNING.value]


class ErasureRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._erasures = db[ERASURES]

    async def insert(self, erasure: ErasureDocument) -> None:
        await self._erasures.insert_one(cast("Document", erasure))

    async def withdraw(self, erasure_id: str) -> None:
        """Removes an erasure that has not started (its request was refused)."""
        await self._erasures.delete_one({"id": erasure_id, "status": ErasureStatus.PENDING.value})

    async def get(self, erasure_id: str) -> ErasureDocument | None:
        found = await self._erasures.find_one({"id": erasure_id}, {"_id": 0})
        return cast("ErasureDocument | None", found)

    async def unfinished_for(self, query: dict[str, Any]) -> ErasureDocument | None:
        """An erasure of the same subject still under way (the subject is stored until done)."""
        found = await self._erasures.find_one({**query, "status": {"$in": _UNFINISHED}}, {"_id": 0})
        return cast("ErasureDocument | None", found)

    async def unfinished(self, limit: int) -> list[ErasureDocument]:
        found = self._erasures.find({"status": {"$in": _UNFINISHED}}, {"_id": 0})
        oldest = await found.sort([("requested_at", 1), ("id", 1)]).limit(limit).to_list()
        return cast("list[ErasureDocument]", oldest)

    async def start(self, erasure_id: str, now: datetime) -> None:
        await self._erasures.update_one(
            {"id": erasure_id, "status": ErasureStatus.PENDING.value},
            {"$set": {"status": ErasureStatus.RUNNING.value, "updated_at": now}},
        )

    async def count(self, erasure_id: str, collection: str, deleted: int, now: datetime) -> None:
        await self._erasures.update_one(
            {"id": erasure_id},
            {"$inc": {f"counts.{collection}": deleted}, "$set": {"updated_at": now}},
        )

    async def add_sessions(self, erasure_id: str, session_ids: Sequence[str]) -> None:
        await self._erasures.update_one(
            {"id": erasure_id},
            {"$addToSet": {"subject.session_ids": {"$each": list(session_ids)}}},
        )

    async def finish(self, erasure_id: str, now: datetime) -> None:
        """Done: the subject's ids go, the receipt stays."""
        await self._erasures.update_one(
            {"id": erasure_id},
            {
                "$set": {
                    "status": ErasureStatus.DONE.value,
                    "done_at": now,
                    "updated_at": now,
                    "error": None,
                    "failures": 0,
                },
                "$unset": {"subject": ""},
            },
        )

    async def record_failure(
        self, erasure_id: str, error: str, now: datetime, max_failures: int | None
    ) -> ErasureDocument | None:
        """Counts a failed round; the erasure fails (its subject removed; a new request starts
        over) after `max_failures` in a row, or never with None."""
        updated = without_id(
            await self._erasures.find_one_and_update(
                {"id": erasure_id},
                {"$inc": {"failures": 1}, "$set": {"error": error, "updated_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        )
        if updated is not None and max_failures is not None and updated["failures"] >= max_failures:
            await self._erasures.update_one(
                {"id": erasure_id},
                {"$set": {"status": ErasureStatus.FAILED.value}, "$unset": {"subject": ""}},
            )
        return cast("ErasureDocument | None", updated)


class StoredData:
    """Bounded deletions across the database and Redis, for retention and erasure."""

    def __init__(self, resources: Resources) -> None:
        self._db = resources.db
        self._redis: RedisClient | None = resources.redis
        self._cache = resources.cache
        self._rate_classes = sorted(route_policies(resources.settings))
        self.batch = resources.settings.retention_batch_size

    async def collections(self) -> list[str]:
        """Every collection an erasure sweeps: all of them but the receipts and the audit log."""
        names = await self._db.list_collection_names()
        swept = (name for name in names if name not in KEPT_COLLECTIONS)
        return sorted(name for name in swept if not name.startswith("system."))

    async def delete_batch(self, collection: str, query: dict[str, Any]) -> int:
        """Deletes at most one batch of the matching documents; returns how many."""
        return await delete_batch(self._db[collection], query, self.batch)

    # Conversations, and what hangs off them

    async def conversation_ids(self, query: dict[str, Any]) -> list[str]:
        found = self._db["conversations"].find(query, {"_id": 0, "id": 1}).limit(self.batch)
        return [document["id"] for document in await found.to_list()]

    async def end_user_sessions(self, chatbot_id: str, end_user_id: str) -> list[str]:
        sessions = await self._db["conversations"].distinct(
            "session_id", {"chatbot_id": chatbot_id, "end_user_id": end_user_id}
        )
        return [session for session in sessions if isinstance(session, str)]

    async def forget_questions(self, chatbot_id: str, conversation_ids: list[str]) -> int:
        """Takes the questions asked in these conversations out of the analytics: their texts
        in the hourly rollups, and the owner's answers to them recorded by analytics (the Q&A
        source made from an answer is the owner's and stays). Returns the documents changed."""
        asked = self._db["messages"].find(
            {"conversation_id": {"$in": conversation_ids}, "role": "user"},
            {"_id": 0, "id": 1, "content": 1},
        )
        questions = await asked.to_list()
        changed = await forget_questions(
            self._db, chatbot_id, [question["content"] for question in questions]
        )
        resolved = await self._db[RESOLUTIONS].delete_many(
            {"message_id": {"$in": [question["id"] for question in questions]}}
        )
        return changed + resolved.deleted_count

    async def forget_visitors(self, chatbot_id: str, session_ids: Sequence[str]) -> int:
        """Takes the sessions' hashes out of the bot's hourly rollups (their unique-visitor
        sets, compacted days included); returns how many rollups changed."""
        hashes = [short_hash(session) for session in session_ids]
        return await forget_visitors(self._db, chatbot_id, hashes)

    # The account itself

    async def delete_user(self, user_id: str) -> int:
        result = await self._db["users"].delete_one({"id": user_id})
        await self._cache.invalidate("user", user_id)
        return result.deleted_count

    # Redis

    async def chatbot_owner(self, chatbot_id: str) -> str | None:
        """The bot's owner (whose namespace holds its visitors' quota counters), or None."""
        found = await self._db["chatbots"].find_one({"id": chatbot_id}, {"_id": 0, "user_id": 1})
        return None if found is None else cast("str", found["user_id"])

    async def account_active(self, user_id: str) -> bool:
        """True while the account exists and is not suspended: its erasure waits until then."""
        found = await self._db["users"].find_one({"id": user_id}, {"_id": 0, "status": 1})
        return found is not None and found.get("status") != UserStatus.SUSPENDED.value

    async def delete_session_keys(self, owner_id: str, chatbot_id: str, session_id: str) -> int:
        """Deletes the session's hourly quota counters on this bot; returns how many."""
        prefix = quota_key(owner_id, "session", chatbot_id, session_id, "hour") + ":"
        return await self._delete_keys_under(prefix, whole_part=True)

    async def delete_account_keys(self, user_id: str) -> int:
        """Deletes the keys in the account's own namespaces (quota counters, LLM token counters,
        rate-limit windows, password attempts, cached documents); returns how many."""
        if self._redis is None:
            return 0
        deleted = 0
        for prefix in account_key_prefixes(user_id, self._rate_classes):
            deleted += await self._delete_keys_under(prefix)
        exact = account_keys(user_id)
        for start in range(0, len(exact), self.batch):
            deleted += await self._redis.delete(*exact[start : start + self.batch])
        return deleted

    async def _delete_keys_under(self, prefix: str, *, whole_part: bool = False) -> int:
        """Deletes the keys that start with `prefix` (`whole_part`: and end with one more key
        part, no `:` in it); returns how many."""
        if self._redis is None:
            return 0
        deleted = 0
        doomed: list[str] = []
        async for raw in self._redis.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            rest = key.removeprefix(prefix)
            if rest == key or (whole_part and (not rest or ":" in rest)):
                continue
            doomed.append(key)
            if len(doomed) >= self.batch:
                deleted += await self._redis.delete(*doomed)
                doomed.clear()
        if doomed:
            deleted += await self._redis.delete(*doomed)
        return deleted


def account_key_prefixes(user_id: str, rate_classes: Sequence[str]) -> list[str]:
    """Prefixes of the Redis namespaces that belong to one account: each holds the account's
    id as its hash tag (or rate-limit identity), so no other account's key starts with them."""
    prefixes = [
        quota_key(user_id) + ":",
        f"botsmith:llm-tokens:{{{user_id}}}:",  # app.chat.budget's counters
    ]
    prefixes += [f"botsmith:rl:{{{rate_class}:user:{user_id}}}:" for rate_class in rate_classes]
    return prefixes


def account_keys(user_id: str) -> list[str]:
    """The account's single keys: its password attempts, its cached documents and their
    loading locks (which name the account for a few seconds after a load)."""
    cached = [f"{_CACHE_PREFIX}{namespace}:{user_id}" for namespace in _ACCOUNT_CACHES]
    locks = [f"{key}:lock" for key in cached]
    return [f"botsmith:password-attempts:account:{user_id}", *cached, *locks]


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis SCAN pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def naming(members: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    """A `$regex` matching a compact JSON text (a webhook body) with a member among `members`
    whose whole string value is one of `values`: `"session_id":"a"`, never a text merely
    containing "a"."""
    names = "|".join(re.escape(json.dumps(member)) for member in members)
    strings = "|".join(re.escape(json.dumps(value, ensure_ascii=False)) for value in values)
    return {"$regex": f"(?:{names}):(?:{strings})"}
