"""Administration: who may do what to which account."""

from datetime import datetime

from app.admin.repository import PlatformRepository
from app.admin.schemas import PlatformCounts, UserAdminUpdate
from app.chatbots.repository import ChatbotRepository
from app.core.errors import ConflictError, NotFoundError
from app.core.schemas import Page, page_of
from app.core.security import utcnow
from app.users.documents import UserDocument
from app.users.repository import RefreshTokenRepository, UserRepository
from app.users.schemas import Role, UserOut, UserStatus
from app.users.service import user_out


class AdminService:
    def __init__(
        self,
        users: UserRepository,
        tokens: RefreshTokenRepository,
        chatbots: ChatbotRepository,
        platform: PlatformRepository,
    ) -> None:
        self._users = users
        self._tokens = tokens
        self._chatbots = chatbots
        self._platform = platform

    async def list_users(
        self,
        *,
        status: UserStatus | None,
        role: Role | None,
        created_from: datetime | None,
        created_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[UserOut]:
        found = await self._users.list(
            status=status,
            role=role,
            created_from=created_from,
            created_to=created_to,
            cursor=cursor,
            limit=limit + 1,
        )
        return page_of(found, limit, user_out, "created_at")

    async def update_user(
        self, admin: UserDocument, user_id: str, request: UserAdminUpdate
    ) -> UserOut:
        fields = request.model_dump(exclude_none=True, mode="json")
        if user_id == admin["id"] and fields:
            raise ConflictError("Administrators cannot change their own role or status")
        target = await self._users.by_id(user_id)
        if target is None:
            raise NotFoundError("No such user")
        if not fields:
            return user_out(target)
        now = utcnow()
        updated = await self._users.update(user_id, {**fields, "updated_at": now})
        if updated is None:
            raise NotFoundError("No such user")
        if fields.get("status") == UserStatus.SUSPENDED:
            await self._tokens.revoke_all_for_user(user_id, now)
        return user_out(updated)

    async def counts(self) -> PlatformCounts:
        return PlatformCounts(
            users=await self._users.count(),
            chatbots=await self._chatbots.count(),
            conversations=await self._platform.count("conversations"),
            messages=await self._platform.count("messages"),
        )
