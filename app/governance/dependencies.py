"""HTTP dependencies of the governance domain: the erasure service."""

from typing import Annotated

from fastapi import Depends

from app.container import ContainerDep
from app.governance.repository import ErasureRepository
from app.governance.service import ErasureService
from app.users.dependencies import get_auth_service
from app.users.repository import UserRepository


async def get_erasure_service(container: ContainerDep) -> ErasureService:
    auth = await get_auth_service(container)
    resources = container.resources
    return ErasureService(ErasureRepository(resources.db), auth, UserRepository(resources))


ErasureServiceDep = Annotated[ErasureService, Depends(get_erasure_service)]
