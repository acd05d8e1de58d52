"""Who is calling: the access rules every transport (HTTP dependencies, the WebSocket) applies.

Credentials are checked here once: an access token names an active user whose token version
still matches; an API key is live (not revoked) and serves its own chatbot only.
"""

from app.core.resources import Resources
from app.core.security import API_KEY_MARKER, decode_access_token, sha256_hex, utcnow
from app.users.documents import ApiKeyDocument, UserDocument
from app.users.errors import AuthenticationError, ForbiddenError
from app.users.repository import ApiKeyRepository, UserRepository
from app.users.schemas import Role, UserStatus

INVALID_TOKEN = "Invalid or expired access token"
INVALID_KEY = "Invalid or revoked API key"


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(API_KEY_MARKER)


def presented_api_key(bearer_token: str | None, header: str | None) -> str | None:
    """The API key a caller sent: in `X-API-Key`, or as a bearer token that looks like a key."""
    if header:
        return header
    if bearer_token is not None and looks_like_api_key(bearer_token):
        return bearer_token
    return None


async def user_for_access_token(resources: Resources, token: str) -> UserDocument:
    """The active user behind an access token. Checked on every use, so a suspension or a
    password change takes effect at once."""
    claims = decode_access_token(resources.settings, token)
    if claims is None:
        raise AuthenticationError(INVALID_TOKEN)
    user = await UserRepository(resources).by_id(claims.user_id)
    if user is None or user["token_version"] != claims.token_version:
        raise AuthenticationError(INVALID_TOKEN)
    if user["status"] != UserStatus.ACTIVE:
        raise AuthenticationError("This account is suspended")
    return user


async def api_key_for_secret(resources: Resources, secret: str) -> ApiKeyDocument:
    """The live key this secret belongs to, with its last use recorded."""
    keys = ApiKeyRepository(resources.db)
    digest = sha256_hex(secret)
    key = await keys.live_by_hash(digest)
    if key is None:
        raise AuthenticationError(INVALID_KEY)
    await keys.touch(key["id"], utcnow())
    resources.verified_keys.add(digest)  # from now on the key is its own rate-limit identity
    return key


async def account_user(
    resources: Resources, bearer_token: str | None, api_key_header: str | None
) -> UserDocument:
    """The user for account endpoints: an access token only. A valid API key is refused with
    403 (keys serve a bot's chat and retrieval), an invalid one with 401."""
    key_secret = presented_api_key(bearer_token, api_key_header)
    if key_secret is not None:
        await api_key_for_secret(resources, key_secret)
        raise ForbiddenError("API keys only authenticate a chatbot's chat and retrieval endpoints")
    if bearer_token is None:
        raise AuthenticationError()
    return await user_for_access_token(resources, bearer_token)


def require_admin(user: UserDocument) -> UserDocument:
    if user["role"] != Role.ADMIN:
        raise ForbiddenError("Administrators only")
    return user
