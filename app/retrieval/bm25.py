"""Okapi BM25 over one chatbot's chunks, in memory: built once per knowledge version."""

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

_TOKEN = re.compile(r"[\w']+")
# Common English words carry no signal for retrieval.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)
K1 = 1.5
B = 0.75


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(token: str) -> str:
    """A light suffix strip so that 'returns', 'returned' and 'returning' meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)]
    return token


def tokenize(text: str) -> list[str]:
    return [
        _stem(token.strip("'"))
        for token in _TOKEN.findall(_fold(text))
        if token.strip("'") and token not in STOPWORDS
    ]


@dataclass(frozen=True, slots=True)
class Hit:
    index: int
    score: float  # BM25, for ranking
    coverage: float  # the IDF-weighted share of the query's terms the text contains, 0..1


class Bm25Index:
    def __init__(self, texts: list[str]) -> None:
        self.size = len(texts)
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for position, text in enumerate(texts):
            counts = Counter(tokenize(text))
            self._lengths.append(sum(counts.values()))
            for term, count in counts.items():
                self._postings[term].append((position, count))
        self._average = (sum(self._lengths) / self.size) if self.size else 0.0
        self._idf = {
            term: math.log(1 + (self.size - len(docs) + 0.5) / (len(docs) + 0.5))
            for term, docs in self._postings.items()
        }

    def search(self, query: str, limit: int) -> list[Hit]:
        scores: dict[int, float] = defaultdict(float)
        covered: dict[int, float] = defaultdict(float)
        # A term no chunk contains weighs as much as the rarest possible one.
        unseen = math.log(1 + (self.size + 0.5) / 0.5)
        terms = set(tokenize(query))
        total = sum(self._idf.get(term, unseen) for term in terms)
        for term in terms:
            idf = self._idf.get(term)
            if idf is None:
                continue
            for position, count in self._postings[term]:
                norm = K1 * (1 - B + B * self._lengths[position] / (self._average or 1))
                scores[position] += idf * count * (K1 + 1) / (count + norm)
                covered[position] += idf
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [Hit(position, score, covered[position] / total) for position, score in best]
