"""Embeddings from OpenAI's ``/v1/embeddings`` (or a compatible server), on the official SDK.

Inputs go in batches (``batch`` texts per request); vectors come back as base64 float32
and are re-normalised (OpenAI's are unit length already; compatible servers' may not be).
SDK errors are converted into the NomosX ``LLMError`` tree as for chat models.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

import numpy as np
import openai

from nomosx.embed.base import EmbeddingKind, Vectors, normalise
from nomosx.llm.providers._base import PLACEHOLDER_KEY
from nomosx.llm.providers._errors import ErrorContext, from_openai, malformed_reply
from nomosx.llm.providers.config import ProviderConfig
from nomosx.llm.providers.openai import OPENAI_BASE_URL

__all__ = ["DEFAULT_OPENAI_EMBEDDING_MODEL", "OpenAIEmbedder"]

DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


class OpenAIEmbedder:
    def __init__(
        self,
        config: ProviderConfig,
        model: str = DEFAULT_OPENAI_EMBEDDING_MODEL,
        *,
        dim: int | None = None,
        batch: int = 256,
        concurrency: int = 4,
    ) -> None:
        self.config = config
        self._model = model
        self._dim = dim or _DIMENSIONS.get(model, 1536)
        self._send_dimensions = dim is not None
        self.batch = batch
        self._limit = asyncio.Semaphore(concurrency)
        self._ctx = ErrorContext(provider=config.name, model=model, secret=config.api_key)
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key or PLACEHOLDER_KEY,
            base_url=config.base_url or OPENAI_BASE_URL,
            max_retries=2,
            timeout=config.timeout,
        )
        self.tokens = 0

    @property
    def model(self) -> str:
        suffix = f"@{self._dim}" if self._send_dimensions else ""
        return f"{self.config.name}:{self._model}{suffix}"

    @property
    def dim(self) -> int:
        return self._dim

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        chunks = [list(texts[i : i + self.batch]) for i in range(0, len(texts), self.batch)]
        parts = await asyncio.gather(*(self._embed_batch(chunk) for chunk in chunks))
        return normalise(np.concatenate(parts))

    async def _embed_batch(self, texts: list[str]) -> Vectors:
        # the API refuses empty strings; a single space embeds as "nothing"
        inputs = [t if t.strip() else " " for t in texts]
        async with self._limit:
            try:
                if self._send_dimensions:
                    reply = await self._client.embeddings.create(
                        model=self._model,
                        input=inputs,
                        encoding_format="base64",
                        dimensions=self._dim,
                    )
                else:
                    reply = await self._client.embeddings.create(
                        model=self._model, input=inputs, encoding_format="base64"
                    )
            except openai.OpenAIError as exc:
                raise from_openai(exc, self._ctx, self.config.timeout) from None
        if len(reply.data) != len(inputs):
            raise malformed_reply(self._ctx, f"{len(reply.data)} embeddings for {len(inputs)}")
        out = np.zeros((len(inputs), self._dim), dtype=np.float32)
        for item in reply.data:
            raw = item.embedding
            vector = (
                np.frombuffer(base64.b64decode(raw), dtype="<f4")
                if isinstance(raw, str)
                else np.asarray(raw, dtype=np.float32)
            )
            if vector.shape != (self._dim,) or not 0 <= item.index < len(inputs):
                raise malformed_reply(
                    self._ctx, f"embedding {item.index} has {vector.shape[0]} dimensions"
                )
            out[item.index] = vector
        if reply.usage is not None:
            self.tokens += reply.usage.total_tokens
        return out

    async def aclose(self) -> None:
        await self._client.close()
