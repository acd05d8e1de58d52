"""The only code that touches the credentials: the users, refresh_tokens and api_keys
collections."""

from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from app.core.db import Document, MongoDatabase, is_duplicate_key, without_id
from app.core.resources import Resources
from app.core.schemas import after_cursor
from app.users.documents import ApiKeyDocument, RefreshTokenDocument, StoredUser, UserDocument
from app.users.errors import EmailTakenError
from app.users.schemas import Role, UserStatus

# What request handling needs of a user; the password hash stays out of the cache.
_PUBLIC = {"_id": 0, "password_hash": 0}


class UserRepository:
    """Users by id are read through the cache (every authenticated request needs one);
    every write here invalidates the entry, so a suspension applies at once."""

    def __init__(self, resources: Resources) -> None:
        self._users = resources.db["users"]  # auth reads: always the primary
        self._listing = resources.reads.database("listing")["users"]
        self._cache = resources.cache

    async def insert(self, user: StoredUser) -> None:
        try:
            await self._users.insert_one(cast("Document", user))
        except OperationFailure as error:
            if is_duplicate_key(error):
                raise EmailTakenError() from None
            raise

    async def by_id(self, user_id: str) -> UserDocument | None:
        return cast(
            "UserDocument | None",
            await self._cache.get_or_load(
                "user", user_id, lambda: self._users.find_one({"id": user_id}, _PUBLIC)
            ),
        )

    async def password_hash(self, user_id: str) -> str | None:
        user = await self._users.find_one({"id": user_id}, {"_id": 0, "password_hash": 1})
        return user["password_hash"] if user else None

    async def by_email(self, email: str) -> StoredUser | None:
        return cast("StoredUser | None", await self._users.find_one({"email": email}, {"_id": 0}))

    async def update(
        self, user_id: str, fields: dict[str, Any], *, bump_token_version: bool = False
    ) -> StoredUser | None:
        """Sets the fields; bumping the token version voids every access token issued before."""
        change: dict[str, Any] = {"$set": fields}
        if bump_token_version:
            change["$inc"] = {"token_version": 1}
        try:
            updated = without_id(
                await self._users.find_one_and_update(
                    {"id": user_id}, change, return_document=ReturnDocument.AFTER
                )
            )
        except OperationFailure as error:
            if is_duplicate_key(error):
                raise EmailTakenError() from None
            raise
        await self._cache.invalidate("user", user_id)
        return cast("StoredUser | None", updated)

    async def promote_to_admin(
        self, user_id: str, password_hash: str | None, now: datetime
    ) -> None:
        """An active administrator; the token version moves on, so no earlier access token
        works any more."""
        fields: dict[str, object] = {
            "role": Role.ADMIN.value,
            "status": UserStatus.ACTIVE.value,
            "updated_at": now,
        }
        if password_hash is not None:
            fields["password_hash"] = password_hash
        await self._users.update_one(
            {"id": user_id}, {"$set": fields, "$inc": {"token_version": 1}}
        )
        await self._cache.invalidate("user", user_id)

    async def list(
        self,
        *,
        status: UserStatus | None,
        role: Role | None,
        created_from: datetime | None,
        created_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> list[UserDocument]:
        query: dict[str, Any] = {}
        if status is not None:
            query["status"] = status.value
        if role is not None:
            query["role"] = role.value
        created: dict[str, datetime] = {}
        if created_from is not None:
            created["$gte"] = created_from
        if created_to is not None:
            created["$lt"] = created_to
        if created:
            query["created_at"] = created
        query.update(after_cursor(cursor))
        found = self._listing.find(query, _PUBLIC).sort([("created_at", -1), ("id", -1)])
        return cast("list[UserDocument]", await found.limit(limit).to_list())

    async def count(self) -> int:
        return await self._listing.count_documents({})


class RefreshTokenRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._tokens = db["refresh_tokens"]

    async def insert(self, token: RefreshTokenDocument) -> None:
        await self._tokens.insert_one(cast("Document", token))

    async def consume(self, token_hash: str, now: datetime) -> RefreshTokenDocument | None:
        """Atomically revokes a live token and returns it; None when unknown, used or expired."""
        consumed = without_id(
            await self._tokens.find_one_and_update(
                {"token_hash": token_hash, "revoked_at": None, "expires_at": {"$gt": now}},
                {"$set": {"revoked_at": now}},
            )
        )
        return cast("RefreshTokenDocument | None", consumed)

    async def by_hash(self, token_hash: str) -> RefreshTokenDocument | None:
        found = await self._tokens.find_one({"token_hash": token_hash}, {"_id": 0})
        return cast("RefreshTokenDocument | None", found)

    async def revoke_family(self, family_id: str, now: datetime) -> None:
        await self._tokens.update_many(
            {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )

    async def revoke_all_for_user(self, user_id: str, now: datetime) -> None:
        await self._tokens.update_many(
            {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )


class ApiKeyRepository:
    def __init__(self, db: MongoDatabase) -> None:
        self._keys = db["api_keys"]

    async def insert(self, key: ApiKeyDocument) -> None:
        await self._keys.insert_one(cast("Document", key))

    async def list_for_chatbot(
        self, chatbot_id: str, cursor: str | None, limit: int
    ) -> list[ApiKeyDocument]:
        query = {"chatbot_id": chatbot_id, "revoked_at": None, **after_cursor(cursor)}
        found = self._keys.find(query, {"_id": 0}).sort([("created_at", -1), ("id", -1)])
        return cast("list[ApiKeyDocument]", await found.limit(limit).to_list())

    async def count_live(self, chatbot_id: str) -> int:
        return await self._keys.count_documents({"chatbot_id": chatbot_id, "revoked_at": None})

    async def remove_unused(self, key_id: str) -> None:
        """Takes back a key that was just inserted and never handed out (over a cap)."""
        await self._keys.delete_one({"id": key_id})

    async def revoke(self, chatbot_id: str, key_id: str, now: datetime) -> bool:
        result = await self._keys.update_one(
            {"id": key_id, "chatbot_id": chatbot_id, "revoked_at": None},
            {"$set": {"revoked_at": now}},
        )
        return result.modified_count == 1

    async def live_by_hash(self, key_hash: str) -> ApiKeyDocument | None:
        found = await self._keys.find_one({"key_hash": key_hash, "revoked_at": None}, {"_id": 0})
        return cast("ApiKeyDocument | None", found)

    async def touch(self, key_id: str, now: datetime) -> None:
        await self._keys.update_one({"id": key_id}, {"$set": {"last_used_at": now}})
