"""Answer providers. The offline one composes a grounded answer from the retrieved passages, so
the product works with no external service."""

import asyncio
import json
import logging
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from app.retrieval.analysis import query_terms, split_sentences, terms
from app.retrieval.schemas import RetrievedChunk
from app.retrieval.static_model import static_embedder

logger = logging.getLogger(__name__)

# A sentence that starts like this depends on the one before it.
_LEANS_BACK = re.compile(
    r"^(?:it|this|these|those|that|they|them|such|he|she|there|however|also|"
    r"otherwise|therefore|thus|then|but|so|in that case|in this case)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage: int  # the passage's number, from 1
    order: int
    text: str
    terms: set[str]
    heading: set[str]


@dataclass(frozen=True)
class AnswerRequest:
    question: str
    passages: list[RetrievedChunk]  # numbered from 1 in citations
    system_prompt: str
    max_tokens: int
    history: list[dict[str, str]] = field(default_factory=list)  # earlier turns, oldest first


class AnswerProvider(Protocol):
    def stream(self, request: AnswerRequest) -> AsyncIterator[str]: ...


class OfflineProvider:
    """Extractive answers: the passage sentences that best answer the question (its content
    terms, weighted by rarity among the passages, and their vector similarity to it), each with
    the sentence before it when it leans on that one ("It lasts…"), in passage order, each
    followed by its citation marker; streamed word by word."""

    max_sentences = 3
    heading_weight = 0.3
    closeness_weight = 1.0
    rank_weight = 0.3
    keep_ratio = 0.6  # a further sentence scores at least this share of the best one

    def compose(self, request: AnswerRequest) -> str:
        sentences = [
            _Sentence(number, order, text.strip(), set(terms(text)), set(terms(passage.heading)))
            for number, passage in enumerate(request.passages, start=1)
            for order, text in enumerate(split_sentences(passage.content))
        ]
        wanted = query_terms(request.question)
        if not sentences or not wanted:
            return ""
        held = [sum(t in s.terms for s in sentences) for t in wanted]
        weight = dict(
            zip(wanted, (math.log(1 + len(sentences) / (1 + n)) for n in held), strict=True)
        )
        total = sum(weight.values())
        vectors = static_embedder().embed([request.question] + [s.text for s in sentences])
        closeness = vectors[1:] @ vectors[0]
        passages = len(request.passages)

        def score(position: int) -> float:
            sentence = sentences[position]
            found = sum(weight[t] for t in wanted if t in sentence.terms) / total
            context = sum(weight[t] for t in wanted if t in sentence.heading) / total
            earlier = (passages - sentence.passage) / passages
            return (
                found
                + self.heading_weight * context
                + self.closeness_weight * float(closeness[position])
                + self.rank_weight * earlier
            )

        scores = [score(position) for position in range(len(sentences))]
        ranked = sorted(range(len(sentences)), key=lambda p: -scores[p])
        best = scores[ranked[0]]
        chosen: set[int] = set()
        for position in ranked[: self.max_sentences]:
            if chosen and scores[position] < self.keep_ratio * best:
                break
            chosen.add(position)
            sentence, before = sentences[position], position - 1
            if (
                _LEANS_BACK.match(sentence.text)
                and before >= 0
                and sentences[before].passage == sentence.passage
            ):
                chosen.add(before)
        return " ".join(f"{sentences[p].text} [{sentences[p].passage}]" for p in sorted(chosen))

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        words = self.compose(request).split(" ")
        for position, word in enumerate(words):
            yield word if position == 0 else " " + word
            await asyncio.sleep(0)  # let other requests run between tokens


def _with_context(passage: RetrievedChunk, number: int) -> str:
    """The best passage with the text around it in its source; the others as they are."""
    if number != 1:
        return passage.content
    return "\n".join(
        part
        for part in (
            f"(before: {passage.before})" if passage.before else "",
            passage.content,
            f"(after: {passage.after})" if passage.after else "",
        )
        if part
    )


@dataclass(slots=True)
class TokenUsage:
    """The tokens one call to the model cost: as the server reports them (OpenAI's
    `stream_options.include_usage`), else estimated from the text sent and received."""

    prompt: int = 0
    completion: int = 0
    reported: bool = False

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def estimate_tokens(characters: int) -> int:
    """About four characters a token, as OpenAI's tokenizers average on English text."""
    return math.ceil(characters / 4)


class ProviderError(Exception):
    """The model provider failed or timed out; `timeout` tells which. The message is shown to
    callers, so it never carries the provider's own words (they are logged instead)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class OpenAICompatibleProvider:
    """Streams from any server speaking OpenAI's /chat/completions (OpenAI, vLLM, Ollama, …).

    The system prompt carries the bot's own prompt and the numbered passages; the recent turns
    of the conversation follow, then the question.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        model: str,
        temperature: float,
        timeout: float,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._model = model
        self._temperature = temperature
        self._timeout = timeout

    def messages(self, request: AnswerRequest) -> list[dict[str, str]]:
        passages = "\n\n".join(
            f"[{number}] {passage.title} — {passage.heading}\n{_with_context(passage, number)}"
            for number, passage in enumerate(request.passages, start=1)
        )
        system = (
            f"{request.system_prompt}\n\nAnswer only from the passages below and cite them as "
            f"[n]. If they do not contain the answer, say you don't know.\n\n{passages}"
        )
        return [
            {"role": "system", "content": system},
            *request.history,
            {"role": "user", "content": request.question},
        ]

    async def stream(
        self, request: AnswerRequest, usage: TokenUsage | None = None
    ) -> AsyncIterator[str]:
        """The answer token by token; `usage` receives what the call cost once the server
        accepted it (so far, if it fails midway)."""
        usage = usage if usage is not None else TokenUsage()
        messages = self.messages(request)
        payload = {
            "model": self._model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": self._temperature,
            "max_tokens": request.max_tokens,
        }
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._http.stream(
                    "POST", self._url, json=payload, headers=self._headers
                ) as response,
            ):
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")[:300]
                    logger.warning("model provider answered %s: %s", response.status_code, body)
                    raise ProviderError(f"the model provider answered {response.status_code}")
                usage.prompt = estimate_tokens(sum(len(m["content"]) for m in messages))
                received = 0
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    reported = chunk.get("usage")
                    if reported:
                        usage.prompt = int(reported.get("prompt_tokens") or 0)
                        usage.completion = int(reported.get("completion_tokens") or 0)
                        usage.reported = True
                    choices = chunk.get("choices") or [{}]
                    text = (choices[0].get("delta") or {}).get("content")
                    if text:
                        received += len(text)
                        if not usage.reported:
                            usage.completion = estimate_tokens(received)
                        yield text
        except TimeoutError:
            raise ProviderError(
                f"the model provider did not finish within {self._timeout:g} s", timeout=True
            ) from None
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("model provider failed: %r", error)
            raise ProviderError("the model provider failed") from error
