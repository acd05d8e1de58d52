"""Who is calling: the current user from a bearer access token, and the admin check."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.apikeys.repository import ApiKeyRepository
from app.apikeys.service import ApiKeyService, looks_like_api_key
from app.core.db import Document
from app.core.resources import ResourcesDep
from app.core.security import decode_access_token
from app.core.throttle import FailureCounter
from app.users.errors import AuthenticationError, ForbiddenError
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import Role, UserStatus
from app.users.service import AuthService

bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /api/auth/login")
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A chatbot's API key (chat and retrieval only)"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyHeaderDep = Annotated[str | None, Depends(api_key_scheme)]


async def get_api_key_service(resources: ResourcesDep) -> ApiKeyService:
    return ApiKeyService(ApiKeyRepository(resources.db))


async def get_auth_service(request: Request, resources: ResourcesDep) -> AuthService:
    throttle: FailureCounter = request.app.state.login_throttle
    return AuthService(
        UserRepository(resources.db, resources.cache, resources.reads),
        RefreshTokenRepository(resources.db),
        resources.settings,
        throttle,
    )


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]
AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


def presented_api_key(
    bearer: HTTPAuthorizationCredentials | None, header: str | None
) -> str | None:
    if header:
        return header
    if bearer is not None and looks_like_api_key(bearer.credentials):
        return bearer.credentials
    return None


async def current_user(
    resources: ResourcesDep, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> Document:
    """The active user behind the access token; checked on every request, so a suspension or a
    password change takes effect at once. An API key here is refused: keys serve bots only.
    (Runs on almost every request: its collaborators are built here, not as dependencies.)"""
    key_secret = presented_api_key(bearer, api_key)
    if key_secret is not None:
        keys = ApiKeyService(ApiKeyRepository(resources.db))
        if await keys.authenticate(key_secret) is None:
            raise AuthenticationError("Invalid or revoked API key")
        raise ForbiddenError("API keys only authenticate a chatbot's chat and retrieval endpoints")
    if bearer is None:
        raise AuthenticationError()
    claims = decode_access_token(resources.settings, bearer.credentials)
    if claims is None:
        raise AuthenticationError("Invalid or expired access token")
    user = await UserRepository(resources.db, resources.cache, resources.reads).by_id(
        claims.user_id
    )
    if user is None or user["token_version"] != claims.token_version:
        raise AuthenticationError("Invalid or expired access token")
    if user["status"] != UserStatus.ACTIVE:
        raise AuthenticationError("This account is suspended")
    return user


CurrentUser = Annotated[Document, Depends(current_user)]


async def admin_user(user: CurrentUser) -> Document:
    if user["role"] != Role.ADMIN:
        raise ForbiddenError("Administrators only")
    return user


AdminUser = Annotated[Document, Depends(admin_user)]
