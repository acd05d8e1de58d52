"""Answer providers. The offline one composes a grounded answer from the retrieved passages, so
the product works with no external service."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from app.retrieval.bm25 import tokenize
from app.retrieval.schemas import RetrievedChunk

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


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
    """Picks the passage sentences that share the most terms with the question, in passage
    order, each followed by its citation marker; streams the result word by word."""

    max_sentences = 3

    def compose(self, request: AnswerRequest) -> str:
        wanted = set(tokenize(request.question))
        scored: list[tuple[int, int, int, str]] = []
        for number, passage in enumerate(request.passages, start=1):
            for order, sentence in enumerate(_SENTENCE.split(passage.content)):
                overlap = len(wanted & set(tokenize(sentence)))
                if overlap:
                    scored.append((overlap, number, order, sentence.strip()))
        best = sorted(scored, key=lambda item: (-item[0], item[1], item[2]))[: self.max_sentences]
        best.sort(key=lambda item: (item[1], item[2]))
        return " ".join(f"{sentence} [{number}]" for _, number, _, sentence in best)

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        words = self.compose(request).split(" ")
        for position, word in enumerate(words):
            yield word if position == 0 else " " + word
            await asyncio.sleep(0)  # let other requests run between tokens


class ProviderError(Exception):
    """The model provider failed or timed out; `timeout` tells which."""

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
            f"[{number}] {passage.title} — {passage.heading}\n{passage.content}"
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

    async def stream(self, request: AnswerRequest) -> AsyncIterator[str]:
        payload = {
            "model": self._model,
            "messages": self.messages(request),
            "stream": True,
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
                    raise ProviderError(
                        f"the model provider answered {response.status_code}: {body}"
                    )
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line.removeprefix("data:").strip()
                    if data == "[DONE]":
                        return
                    choices = json.loads(data).get("choices") or [{}]
                    text = (choices[0].get("delta") or {}).get("content")
                    if text:
                        yield text
        except TimeoutError:
            raise ProviderError(
                f"the model provider did not finish within {self._timeout:g} s", timeout=True
            ) from None
        except (httpx.HTTPError, ValueError) as error:
            raise ProviderError(f"the model provider failed: {error}") from error
