"""One answer to one question, from the bot's knowledge and settings, with nothing stored: the
chat service streams it into a conversation, an evaluation run collects it."""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from app.chat.providers import AnswerProvider, AnswerRequest
from app.chat.schemas import Citation
from app.chatbots.documents import ChatbotDocument
from app.retrieval.schemas import RetrievedChunk
from app.retrieval.service import RetrievalService

I_DONT_KNOW = "I don't know the answer to that from the knowledge I have."


@dataclass(frozen=True, slots=True)
class Grounding:
    """What retrieval found for a question and what the answer may use."""

    hits: list[RetrievedChunk]  # best first, the bot's top_k
    passages: list[RetrievedChunk]  # what the answer may use, numbered from 1: all the hits
    # when the best one reaches the bot's threshold, none otherwise ("I don't know")

    @property
    def confidence(self) -> float:
        """The best hit's relevance: the answer is given when it reaches the threshold."""
        return max((hit.relevance for hit in self.hits), default=0.0)


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, collected (evaluation runs use it)."""

    grounding: Grounding
    text: str  # I_DONT_KNOW when not answered
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    latency_ms: int = 0


def citations_in(grounding: Grounding, answer: str) -> list[Citation]:
    """The passages the answer cites by their [n] marker, numbered from 1."""
    return [
        Citation(
            index=number,
            source_id=hit.source_id,
            chunk_id=hit.chunk_id,
            title=hit.title,
            url=hit.url,
            heading=hit.heading,
            relevance=hit.relevance,
        )
        for number, hit in enumerate(grounding.passages, start=1)
        if f"[{number}]" in answer
    ]


class Answerer:
    def __init__(
        self, retrieval: RetrievalService, providers: Callable[[ChatbotDocument], AnswerProvider]
    ) -> None:
        self._retrieval = retrieval
        self._providers = providers

    async def ground(self, chatbot: ChatbotDocument, question: str) -> Grounding:
        hits = await self._retrieval.retrieve(chatbot, question)
        answerable = any(hit.relevance >= chatbot["retrieval"]["score_threshold"] for hit in hits)
        return Grounding(hits, hits if answerable else [])

    async def stream(
        self,
        chatbot: ChatbotDocument,
        question: str,
        grounding: Grounding,
        history: list[dict[str, str]] | None = None,
    ) -> AsyncIterator[str]:
        """The model's answer token by token, or nothing when no passage is relevant enough;
        raises ProviderError if the model fails."""
        if not grounding.passages:
            return
        request = AnswerRequest(
            question=question,
            passages=grounding.passages,
            system_prompt=chatbot["system_prompt"],
            max_tokens=chatbot["model"]["max_tokens"],
            history=history or [],
        )
        async for token in self._providers(chatbot).stream(request):
            yield token

    async def answer(self, chatbot: ChatbotDocument, question: str) -> Answer:
        """The whole answer to a question asked with no conversation before it; raises
        ProviderError if the model fails."""
        started = time.perf_counter()
        grounding = await self.ground(chatbot, question)
        text = "".join([token async for token in self.stream(chatbot, question, grounding)])
        answered = bool(text.strip())
        latency_ms = round((time.perf_counter() - started) * 1000)
        if not answered:
            return Answer(grounding, I_DONT_KNOW, False, [], latency_ms)
        return Answer(grounding, text, True, citations_in(grounding, text), latency_ms)
