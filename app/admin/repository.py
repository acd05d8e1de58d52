"""Platform-wide counts over the product's collections."""

from app.core.read_policy import ReadRouter


class PlatformRepository:
    def __init__(self, reads: ReadRouter) -> None:
        self._db = reads.database("analytics")

    async def count(self, collection: str) -> int:
        return await self._db[collection].count_documents({})
