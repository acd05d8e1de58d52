"""The platform's LLM under its spend controls: a turn is admitted only while its owner's token
budget lasts (the chat service asks before anything is stored, so REST, SSE and WebSocket all get
the same 429), and every call names an allowed model, keeps within the max_tokens ceiling and is
charged to the owner what it cost. Chat turns and evaluation runs both go through it. The offline
provider costs nothing and is never metered."""

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import anyio

from app.chat.budget import BudgetExhaustedError, TokenBudget
from app.chat.providers import AnswerRequest, OpenAICompatibleProvider, ProviderError, TokenUsage
from app.chatbots.allowlist import ModelAllowlist
from app.chatbots.documents import ChatbotDocument
from app.core.config import Settings
from app.core.resources import Resources


def uses_platform_llm(settings: Settings, chatbot: ChatbotDocument) -> bool:
    """The bot answers through LLM_BASE_URL (and so costs tokens)."""
    return chatbot["model"]["provider"] == "openai" and settings.llm_base_url is not None


class OverBudgetError(ProviderError):
    """The model was not called: the owner's budget ran out (after the turn was admitted, or in
    an evaluation run)."""

    def __init__(self, refusal: BudgetExhaustedError) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class SpendControls:
    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self.models = ModelAllowlist(resources)
        self.budget = TokenBudget(resources)

    async def admit(self, chatbot: ChatbotDocument) -> None:
        """Raises BudgetExhaustedError (429) when the turn would call the LLM on a spent budget."""
        if uses_platform_llm(self._settings, chatbot):
            await self.budget.ensure_available(chatbot["user_id"])


class MeteredProvider:
    """The bot's answers from the platform's LLM: its model while allowed (the fallback model
    otherwise), max_tokens cut to the ceiling, the budget checked before the call and charged
    the call's tokens after it, also when it fails or the reader goes away."""

    def __init__(
        self,
        spend: SpendControls,
        chatbot: ChatbotDocument,
        open_provider: Callable[[str], OpenAICompatibleProvider],
    ) -> None:
        self._spend = spend
        self._chatbot = chatbot
        self._open_provider = open_provider

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        owner = self._chatbot["user_id"]
        policy = await self._spend.models.current()
        try:
            await self._spend.budget.ensure_available(owner)
        except BudgetExhaustedError as refusal:
            raise OverBudgetError(refusal) from None
        provider = self._open_provider(policy.effective(self._chatbot["model"]["model"]))
        bounded = replace(request, max_tokens=min(request.max_tokens, policy.max_tokens_ceiling))
        usage = TokenUsage()
        try:
            async for token in provider.stream(bounded, usage):
                yield token
        finally:
            # A reader that went away cancels this generator; what was spent is charged anyway.
            with anyio.CancelScope(shield=True):
                await self._spend.budget.charge(owner, usage.total)
