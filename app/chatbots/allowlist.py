"""The models bots may use on the platform's LLM key and the ceiling of their `max_tokens`.

One document in `platform_settings`, set by administrators and read through the shared cache (a
write invalidates it on every pod). Until an administrator sets it, the deployment's settings
decide: LLM_ALLOWED_MODELS (or LLM_MODEL alone) and LLM_MAX_TOKENS_CEILING. The rules bind bots
answering with the platform's LLM (`provider: openai`); the offline provider costs nothing.

A bot whose model was removed later keeps answering, with the fallback model (LLM_MODEL when it
is still allowed, else the list's first) and `max_tokens` cut to the ceiling: visitors are not
cut off, and the platform never pays for a model it no longer allows.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.config import Settings
from app.core.db import Document, upsert
from app.core.errors import UnprocessableError
from app.core.resources import Resources

_KEY = "llm_models"
_CACHE_NAMESPACE = "platform-settings"


class ModelNotAllowedError(UnprocessableError):
    def __init__(self, model: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"model.model {model!r} is not allowed on this platform; "
            f"allowed models: {', '.join(allowed)}"
        )


class MaxTokensAboveCeilingError(UnprocessableError):
    def __init__(self, max_tokens: int, ceiling: int) -> None:
        super().__init__(
            f"model.max_tokens {max_tokens} is above this platform's ceiling of {ceiling}"
        )


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    models: tuple[str, ...]  # never empty
    max_tokens_ceiling: int
    default_model: str  # LLM_MODEL: what a bot naming no model uses
    updated_at: datetime | None  # None: the deployment's settings, never set by an admin

    def resolve(self, model: str) -> str:
        return model or self.default_model

    @property
    def fallback(self) -> str:
        return self.default_model if self.default_model in self.models else self.models[0]

    def effective(self, model: str) -> str:
        """The model a turn uses: the bot's while it is allowed, the fallback otherwise."""
        resolved = self.resolve(model)
        return resolved if resolved in self.models else self.fallback

    def check(self, model: str, max_tokens: int) -> None:
        """Raises a 422 naming the allowed models, or the ceiling, when a setting is outside."""
        if self.resolve(model) not in self.models:
            raise ModelNotAllowedError(self.resolve(model), self.models)
        if max_tokens > self.max_tokens_ceiling:
            raise MaxTokensAboveCeilingError(max_tokens, self.max_tokens_ceiling)


def _policy(settings: Settings, stored: Document) -> ModelPolicy:
    models = tuple(stored.get("models") or settings.llm_allowed_models or (settings.llm_model,))
    return ModelPolicy(
        models=models,
        max_tokens_ceiling=int(stored.get("max_tokens_ceiling") or settings.llm_max_tokens_ceiling),
        default_model=settings.llm_model,
        updated_at=stored.get("updated_at"),
    )


class ModelAllowlist:
    """Reads and replaces the policy; the only code that touches `platform_settings`."""

    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self._collection = resources.db["platform_settings"]
        self._cache = resources.cache

    async def current(self) -> ModelPolicy:
        async def load() -> Document:
            # Cached even when absent, so an unset policy costs no read per turn.
            return await self._collection.find_one({"id": _KEY}, {"_id": 0}) or {"id": _KEY}

        stored = await self._cache.get_or_load(_CACHE_NAMESPACE, _KEY, load)
        return _policy(self._settings, stored or {})

    async def replace(
        self, models: list[str], max_tokens_ceiling: int, admin_id: str, now: datetime
    ) -> ModelPolicy:
        fields: dict[str, Any] = {
            "models": models,
            "max_tokens_ceiling": max_tokens_ceiling,
            "updated_by": admin_id,
            "updated_at": now,
        }
        await upsert(self._collection, {"id": _KEY}, {"$set": fields, "$setOnInsert": {"id": _KEY}})
        await self._cache.invalidate(_CACHE_NAMESPACE, _KEY)
        return _policy(self._settings, fields)
