"""Embeddings from an OpenAI-compatible /embeddings endpoint (OpenAI, vLLM, Ollama, TEI …)."""

import httpx

from app.core.config import Settings


class EmbeddingsError(Exception):
    """The embeddings endpoint failed; retrieval carries on with BM25 alone."""


class EmbeddingsClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.embeddings_base_url is not None
        self._http = http
        self._url = str(settings.embeddings_base_url).rstrip("/") + "/embeddings"
        key = settings.embeddings_api_key
        self._headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}
        self._model = settings.embeddings_model
        self._batch = settings.embeddings_batch_size

    @classmethod
    def configured(cls, http: httpx.AsyncClient, settings: Settings) -> "EmbeddingsClient | None":
        return cls(http, settings) if settings.embeddings_base_url is not None else None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = texts[start : start + self._batch]
            try:
                response = await self._http.post(
                    self._url,
                    json={"model": self._model, "input": batch},
                    headers=self._headers,
                    timeout=60,
                )
                response.raise_for_status()
                data = sorted(response.json()["data"], key=lambda item: item["index"])
            except (httpx.HTTPError, KeyError, ValueError) as error:
                raise EmbeddingsError(f"the embeddings endpoint failed: {error}") from error
            if len(data) != len(batch):
                raise EmbeddingsError("the embeddings endpoint returned a different count")
            vectors += [[float(x) for x in item["embedding"]] for item in data]
        return vectors
