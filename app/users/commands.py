"""`botsmith create-admin`: the first administrator, created from the command line."""

from app.core.cache import Cache
from app.core.config import load_settings
from app.core.db import create_mongo_client
from app.core.indexes import ensure_indexes
from app.core.read_policy import ReadRouter
from app.core.redis import RedisCircuit, create_redis_client
from app.core.security import hash_password, utcnow
from app.users.repository import UserRepository
from app.users.schemas import AdminAccount, Role, UserStatus
from app.users.service import new_user_document


class AccountMissingError(Exception):
    """The account does not exist and no password was given to create it."""


async def create_admin(account: AdminAccount) -> str:
    """Creates the administrator, or promotes (and reactivates) an existing account."""
    settings = load_settings()
    mongo = create_mongo_client(settings)
    redis = create_redis_client(settings)
    try:
        db = mongo[settings.db_name]
        await ensure_indexes(db)
        # The API's cache, so that running workers see a promotion at once.
        cache = Cache(
            redis,
            RedisCircuit(settings.redis_retry_after_failure_seconds),
            enabled=settings.cache_enabled,
            ttl=settings.cache_ttl,
        )
        users = UserRepository(db, cache, ReadRouter(db, None))
        existing = await users.by_email(account.email)
        if existing is not None:
            fields: dict[str, object] = {
                "role": Role.ADMIN.value,
                "status": UserStatus.ACTIVE.value,
            }
            if account.password is not None:
                fields["password_hash"] = hash_password(account.password)
            await users.update(existing["id"], {**fields, "updated_at": utcnow()})
            return f"{account.email} is now an active administrator"
        if account.password is None:
            raise AccountMissingError(f"{account.email} has no account yet: give a password")
        document = new_user_document(account.email, account.password, account.name, Role.ADMIN)
        await users.insert(document)
        return f"administrator {account.email} created"
    finally:
        if redis is not None:
            await redis.aclose()
        await mongo.close()
