"""HTTP dependencies of the quotas domain."""

from typing import Annotated

from fastapi import Depends

from app.container import ContainerDep
from app.quotas.service import QuotaService


async def get_quota_service(container: ContainerDep) -> QuotaService:
    return QuotaService(container.resources)


QuotaServiceDep = Annotated[QuotaService, Depends(get_quota_service)]
