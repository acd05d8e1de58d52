"""`botsmith analytics backfill` and `botsmith analytics check`: a bot's hourly rollups rebuilt
from its raw messages, or compared with them."""

from app.analytics.repository import RollupRepository
from app.analytics.rollups import backfill, check
from app.core.config import load_settings
from app.core.indexes import ensure_indexes
from app.core.resources import close_resources, open_resources


async def _chatbots(repository: RollupRepository, chatbot_id: str | None) -> list[str]:
    return [chatbot_id] if chatbot_id else await repository.chatbot_ids()


async def run_backfill(chatbot_id: str | None) -> str:
    """Rebuilds the rollups of one bot (or of every bot); returns a summary."""
    resources = open_resources(load_settings())
    try:
        await ensure_indexes(resources.db)
        repository = RollupRepository(resources.db)
        lines = []
        for bot in await _chatbots(repository, chatbot_id):
            lines.append(f"{bot}: {await backfill(repository, bot)} hours rebuilt")
        return "\n".join(lines) or "no chatbots"
    finally:
        await close_resources(resources)


async def run_check(chatbot_id: str | None) -> tuple[str, bool]:
    """Compares the rollups with the raw messages: (report, whether they agree)."""
    resources = open_resources(load_settings())
    try:
        repository = RollupRepository(resources.db)
        differences: list[str] = []
        bots = await _chatbots(repository, chatbot_id)
        for bot in bots:
            differences += await check(repository, bot)
        if differences:
            header = f"rollups disagree with the raw messages ({len(differences)} differences):"
            hint = "rebuild with: botsmith analytics backfill" + (
                f" --chatbot {chatbot_id}" if chatbot_id else ""
            )
            return "\n".join([header, *differences, hint]), False
        return f"rollups agree with the raw messages ({len(bots)} chatbots)", True
    finally:
        await close_resources(resources)
