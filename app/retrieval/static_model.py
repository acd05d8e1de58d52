"""Offline sentence vectors from the 256-dimension static token embeddings shipped inside the
wordllama wheel: a text's vector is the mean of its tokens' vectors. Nothing is downloaded;
the weights are memory-mapped, so every process on a machine shares one copy."""

import importlib.util
import json
import struct
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

Matrix = npt.NDArray[np.float32]
_BATCH = 256  # texts tokenized and pooled at a time
_WEIGHTS = "weights/l2_supercat_256.safetensors"
# The wheel keeps its tokenizer under tokenizers/ (its own loader looks in tokenizer/).
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the wordllama package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class StaticEmbedder:
    def __init__(self, weights: Path, tokenizer: Path) -> None:
        with weights.open("rb") as file:
            (header_size,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(header_size))["embedding.weight"]
        if header["dtype"] != "F16":
            raise RuntimeError(f"unexpected weight type {header['dtype']}")
        start = 8 + header_size + header["data_offsets"][0]
        self._table = np.memmap(
            weights, dtype=np.float16, mode="r", offset=start, shape=tuple(header["shape"])
        )
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.dimensions = int(self._table.shape[1])

    def embed(self, texts: list[str]) -> Matrix:
        """Unit rows, one per text (zeros for a text with no token)."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), _BATCH):
            encodings = self._tokenizer.encode_batch(
                texts[start : start + _BATCH], add_special_tokens=False
            )
            counts = np.array([len(e.ids) for e in encodings])
            if not counts.sum():
                continue
            ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
            np.clip(ids, 0, self._table.shape[0] - 1, out=ids)
            # Token counts per text over the batch's distinct tokens, times their vectors.
            distinct, column = np.unique(ids, return_inverse=True)
            row = np.repeat(np.arange(len(encodings)), counts)
            tally = np.bincount(
                row * len(distinct) + column, minlength=len(encodings) * len(distinct)
            ).reshape(len(encodings), len(distinct))
            sums = tally.astype(np.float32) @ self._table[distinct].astype(np.float32)
            out[start : start + len(encodings)] = sums / np.maximum(counts, 1)[:, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


@cache
def static_embedder() -> StaticEmbedder:
    """The process's embedder, loaded on first use."""
    root = _package_dir()
    return StaticEmbedder(root / _WEIGHTS, root / _TOKENIZER)
