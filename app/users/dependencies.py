"""HTTP dependencies of the users domain: the caller's credentials and address, the current
user, the admin check and the auth service. The rules themselves are in `app.users.access`."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.container import ContainerDep
from app.core.middleware import ClientIdentity
from app.users.access import account_user, require_admin
from app.users.documents import UserDocument
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.service import AuthService

bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /api/auth/login")
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A chatbot's API key (chat and retrieval only)"
)

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyHeaderDep = Annotated[str | None, Depends(api_key_scheme)]


def bearer_token(bearer: HTTPAuthorizationCredentials | None) -> str | None:
    return bearer.credentials if bearer is not None else None


async def get_auth_service(container: ContainerDep) -> AuthService:
    resources = container.resources
    return AuthService(
        UserRepository(resources),
        RefreshTokenRepository(resources.db),
        resources.settings,
        container.login_throttle,
    )


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def client_address(request: Request, container: ContainerDep) -> str:
    """The caller's address as rate limits see it: X-Forwarded-For counts only when the peer
    is one of TRUSTED_PROXIES."""
    return ClientIdentity(container.settings).client_address(request.scope)


ClientAddress = Annotated[str, Depends(client_address)]


async def current_user(
    container: ContainerDep, bearer: BearerDep, api_key: ApiKeyHeaderDep
) -> UserDocument:
    return await account_user(container.resources, bearer_token(bearer), api_key)


CurrentUser = Annotated[UserDocument, Depends(current_user)]


async def admin_user(user: CurrentUser) -> UserDocument:
    return require_admin(user)


AdminUser = Annotated[UserDocument, Depends(admin_user)]
