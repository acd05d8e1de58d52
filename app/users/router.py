"""Registration, sessions and the caller's own account."""

from fastapi import APIRouter, status

from app.audit.dependencies import AuditTrailDep
from app.core.errors import problem_responses
from app.users.dependencies import AuthServiceDep, ClientAddress, CurrentUser
from app.users.schemas import (
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserOut,
    UserUpdate,
)
from app.users.service import user_out

auth_router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])


@auth_router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(409, 422),
)
async def register(body: RegisterRequest, auth: AuthServiceDep) -> UserOut:
    return await auth.register(body)


@auth_router.post(
    "/login",
    responses=problem_responses(401, 429),
)
async def login(
    body: LoginRequest, client: ClientAddress, auth: AuthServiceDep, audit: AuditTrailDep
) -> TokenPair:
    return await auth.login(body, client, audit)


@auth_router.post("/refresh", responses=problem_responses(401))
async def refresh(body: RefreshRequest, auth: AuthServiceDep) -> TokenPair:
    """Trades a refresh token for a new pair; the old refresh token stops working."""
    return await auth.refresh(body.refresh_token)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, auth: AuthServiceDep, audit: AuditTrailDep) -> None:
    """Revokes the refresh token (idempotent)."""
    await auth.logout(body.refresh_token, audit)


@users_router.get("/me", responses=problem_responses(401))
async def read_me(user: CurrentUser) -> UserOut:
    return user_out(user)


@users_router.patch("/me", responses=problem_responses(401, 403, 409, 422, 429))
async def update_me(
    body: UserUpdate, user: CurrentUser, auth: AuthServiceDep, audit: AuditTrailDep
) -> UserOut:
    """Changes the name or the email; a new email takes `current_password` and ends every
    session, this one included (log in again with the new email)."""
    return await auth.update_profile(user, body, audit)


@users_router.post("/me/password", responses=problem_responses(400, 401, 429))
async def change_password(
    body: PasswordChangeRequest, user: CurrentUser, auth: AuthServiceDep, audit: AuditTrailDep
) -> TokenPair:
    """Changes the password; every earlier access and refresh token stops working."""
    return await auth.change_password(user, body, audit)
