"""HTTP dependencies of the API keys domain."""

from typing import Annotated

from fastapi import Depends

from app.apikeys.service import ApiKeyService
from app.container import ContainerDep
from app.users.repository import ApiKeyRepository


async def get_api_key_service(container: ContainerDep) -> ApiKeyService:
    return ApiKeyService(
        ApiKeyRepository(container.resources.db), container.settings.max_api_keys_per_chatbot
    )


ApiKeyServiceDep = Annotated[ApiKeyService, Depends(get_api_key_service)]
