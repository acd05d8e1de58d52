"""`botsmith create-admin`: the first administrator, created from the command line."""

from app.core.config import load_settings
from app.core.indexes import ensure_indexes
from app.core.resources import close_resources, open_resources
from app.core.security import hash_password, utcnow
from app.users.repository import UserRepository
from app.users.schemas import AdminAccount, Role, UserStatus
from app.users.service import new_user_document


class AccountMissingError(Exception):
    """The account does not exist and no password was given to create it."""


async def create_admin(account: AdminAccount) -> str:
    """Creates the administrator, or promotes (and reactivates) an existing account."""
    # The API's own clients and cache, so that running workers see a promotion at once.
    resources = open_resources(load_settings())
    try:
        await ensure_indexes(resources.db)
        users = UserRepository(resources)
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
        await close_resources(resources)
