"""Answer providers. The offline one composes a grounded answer from the retrieved passages, so
the product works with no external service."""

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.retrieval.bm25 import tokenize
from app.retrieval.schemas import RetrievedChunk

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class AnswerRequest:
    question: str
    passages: list[RetrievedChunk]  # numbered from 1 in citations
    system_prompt: str
    max_tokens: int


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
