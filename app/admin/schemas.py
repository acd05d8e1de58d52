"""Admin views: user management and platform counts."""

from pydantic import BaseModel

from app.core.schemas import RequestModel
from app.users.schemas import Role, UserStatus


class UserAdminUpdate(RequestModel):
    role: Role | None = None
    status: UserStatus | None = None


class PlatformCounts(BaseModel):
    users: int
    chatbots: int
    conversations: int
    messages: int
