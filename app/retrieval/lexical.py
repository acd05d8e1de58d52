"""Okapi BM25 over segments: each segment (one source's chunks, or a part of them) holds, per
term, the chunks that contain it and how often; a query adds up the segments' postings with
the collection-wide statistics (chunk count, document frequency, average length). Headings and
titles count twice."""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.retrieval.analysis import terms

K1 = 1.2
B = 0.75
HEADING_WEIGHT = 2  # a heading's words count this many times

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int32]
Offsets = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Postings:
    """One segment's inverted index."""

    vocabulary: dict[str, int]
    starts: Offsets  # term t's postings are [starts[t], starts[t + 1])
    chunks: Ints  # posting → the chunk's position in the segment
    counts: Floats  # posting → how often the term occurs in that chunk
    lengths: Floats  # per chunk: its number of terms

    @classmethod
    def build(cls, fields: list[tuple[str, str]]) -> "Postings":
        """`fields`: per chunk, (heading and title text, body text)."""
        occurrences: list[str] = []
        lengths = np.zeros(len(fields), dtype=np.int64)
        for position, (heading, body) in enumerate(fields):
            found = terms(body) + terms(heading) * HEADING_WEIGHT
            occurrences += found
            lengths[position] = len(found)
        vocabulary = {term: n for n, term in enumerate(dict.fromkeys(occurrences))}
        term_ids = np.fromiter(map(vocabulary.__getitem__, occurrences), np.int64, len(occurrences))
        chunk_ids = np.repeat(np.arange(len(fields), dtype=np.int64), lengths)
        # One posting per (term, chunk) pair, sorted by term then chunk, with its count.
        stride = max(len(fields), 1)
        pairs, counts = np.unique(term_ids * stride + chunk_ids, return_counts=True)
        posting_terms = pairs // stride
        starts = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        np.cumsum(np.bincount(posting_terms, minlength=len(vocabulary)), out=starts[1:])
        return cls(
            vocabulary,
            starts,
            (pairs % stride).astype(np.int32),
            counts.astype(np.float32),
            lengths.astype(np.float32),
        )

    def frequency(self, term: str) -> int:
        """How many of the segment's chunks contain the term."""
        term_id = self.vocabulary.get(term)
        return 0 if term_id is None else int(self.starts[term_id + 1] - self.starts[term_id])


@dataclass(frozen=True, slots=True)
class Scores:
    bm25: Floats  # per chunk
    coverage: Floats  # per chunk: the IDF-weighted share of the question's terms it holds, 0..1


def score(segments: list[Postings], question_terms: list[str]) -> Scores:
    """BM25 and term coverage of every chunk of the segments, laid end to end."""
    sizes = [len(segment.lengths) for segment in segments]
    total = sum(sizes)
    bm25 = np.zeros(total, dtype=np.float32)
    covered = np.zeros(total, dtype=np.float32)
    if not total:
        return Scores(bm25, covered)
    average = float(sum(float(s.lengths.sum()) for s in segments)) / total or 1.0
    weight_sum = 0.0
    for term in question_terms:
        frequency = sum(segment.frequency(term) for segment in segments)
        # A term no chunk holds weighs as much as the rarest possible one.
        idf = math.log1p((total - frequency + 0.5) / (frequency + 0.5))
        weight_sum += idf
        offset = 0
        for segment, size in zip(segments, sizes, strict=True):
            term_id = segment.vocabulary.get(term)
            if term_id is not None:
                span = slice(segment.starts[term_id], segment.starts[term_id + 1])
                chunks, counts = segment.chunks[span], segment.counts[span]
                norm = K1 * (1 - B + B * segment.lengths[chunks] / average)
                bm25[offset + chunks] += idf * counts * (K1 + 1) / (counts + norm)
                covered[offset + chunks] += idf
            offset += size
    return Scores(bm25, covered / weight_sum if weight_sum else covered)
