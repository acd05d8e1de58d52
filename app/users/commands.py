"""`botsmith create-admin`: the first administrator, created from the command line."""

from app.core.config import load_settings
from app.core.indexes import ensure_indexes
from app.core.resources import close_resources, open_resources
from app.core.security import hash_password, utcnow
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import AdminAccount, Role
from app.users.service import new_user_document


class AccountMissingError(Exception):
    """The account does not exist and no password was given to create it."""


class AccountExistsError(Exception):
    """The account exists, and promoting it was not asked for."""


async def create_admin(account: AdminAccount, *, promote_existing: bool = False) -> str:
    """Creates the administrator; an account that exists already (anyone may have registered
    it) is promoted only when asked, and then every session it had ends."""
    # The API's own clients and cache, so that running workers see a promotion at once.
    resources = open_resources(load_settings())
    try:
        await ensure_indexes(resources.db)
        users = UserRepository(resources)
        existing = await users.by_email(account.email)
        if existing is not None:
            if not promote_existing:
                raise AccountExistsError(
                    f"{account.email} already has an account; to make it an administrator "
                    "(ending its sessions), pass --promote-existing"
                )
            now = utcnow()
            password_hash = hash_password(account.password) if account.password else None
            await users.promote_to_admin(existing["id"], password_hash, now)
            # Tokens issued before the promotion might be someone else's: none of them stays.
            await RefreshTokenRepository(resources.db).revoke_all_for_user(existing["id"], now)
            return f"{account.email} is now an active administrator; its earlier sessions ended"
        if account.password is None:
            raise AccountMissingError(f"{account.email} has no account yet: give a password")
        document = new_user_document(account.email, account.password, account.name, Role.ADMIN)
        await users.insert(document)
        return f"administrator {account.email} created"
    finally:
        await close_resources(resources)
