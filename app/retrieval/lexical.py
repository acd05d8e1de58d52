"""Okapi BM25 as arrays: for every term, the chunks that hold it and their precomputed BM25
weights, so a query is a few vector additions. Headings and titles count twice."""

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.retrieval.analysis import terms

K1 = 1.2
B = 0.75
HEADING_WEIGHT = 2  # a heading's words count this many times

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class Scores:
    bm25: Floats  # per chunk
    coverage: Floats  # per chunk: the IDF-weighted share of the question's terms it holds, 0..1


@dataclass(frozen=True, slots=True)
class LexicalIndex:
    vocabulary: dict[str, int]
    starts: npt.NDArray[np.int64]  # term t's postings are [starts[t], starts[t + 1])
    chunks: Ints  # posting → chunk position
    weights: Floats  # posting → BM25 weight of the term in that chunk (IDF included)
    idf: Floats  # per term
    size: int  # chunks

    @classmethod
    def build(cls, fields: list[tuple[str, str]]) -> "LexicalIndex":
        """`fields`: per chunk, (heading and title text, body text)."""
        counts = []
        for heading, body in fields:
            tally = Counter(terms(body))
            for term in terms(heading):
                tally[term] += HEADING_WEIGHT
            counts.append(tally)
        size = len(counts)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float32)
        average = float(lengths.mean()) if size else 1.0
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        freqs: list[int] = []
        for position, tally in enumerate(counts):
            for term, count in tally.items():
                rows.append(vocabulary.setdefault(term, len(vocabulary)))
                cols.append(position)
                freqs.append(count)
        term_ids = np.array(rows, dtype=np.int32)
        order = np.argsort(term_ids, kind="stable")
        term_ids, chunk_ids = term_ids[order], np.array(cols, dtype=np.int32)[order]
        tf = np.array(freqs, dtype=np.float32)[order]
        df = np.bincount(term_ids, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log1p((size - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = K1 * (1 - B + B * lengths[chunk_ids] / (average or 1.0))
        weights = (idf[term_ids] * tf * (K1 + 1) / (tf + norm)).astype(np.float32)
        starts = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(df.astype(np.int64), out=starts[1:])
        return cls(vocabulary, starts, chunk_ids, weights, idf, size)

    def score(self, question_terms: list[str]) -> Scores:
        bm25 = np.zeros(self.size, dtype=np.float32)
        covered = np.zeros(self.size, dtype=np.float32)
        # A term no chunk holds weighs as much as the rarest possible one.
        unseen = math.log1p((self.size + 0.5) / 0.5)
        total = 0.0
        for term in question_terms:
            term_id = self.vocabulary.get(term)
            if term_id is None:
                total += unseen
                continue
            idf = float(self.idf[term_id])
            total += idf
            span = slice(self.starts[term_id], self.starts[term_id + 1])
            bm25[self.chunks[span]] += self.weights[span]
            covered[self.chunks[span]] += idf
        return Scores(bm25, covered / total if total else covered)
