"""The owner's quotas and usage."""

from fastapi import APIRouter

from app.quotas.dependencies import QuotaServiceDep
from app.quotas.schemas import UsageOut
from app.users.dependencies import CurrentUser

router = APIRouter(tags=["quotas"])


@router.get("/usage")
async def get_usage(user: CurrentUser, service: QuotaServiceDep) -> UsageOut:
    """The caller's plan limits, what is used of each quota, and when the rates reset."""
    return await service.usage(user["id"])
