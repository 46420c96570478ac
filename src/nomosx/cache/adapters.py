"""Typed views of the cache for its users: embeddings and JSON API responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from nomosx.cache.base import Cache, Namespace
from nomosx.cache.codec import decode_json, decode_vector, encode_json, encode_vector
from nomosx.cache.keys import canonical_json, make_key


class EmbeddingCache:
    """Embeddings by (model, text), stored as packed float32 in namespace ``emb``."""

    def __init__(self, cache: Cache, model: str, *, schema: int = 1) -> None:
        self.cache = cache
        self.model = model
        self.schema = schema

    def key(self, text: str) -> str:
        return make_key({"model": self.model, "text": text}, schema=self.schema)

    async def get_many(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32] | None]:
        keys = [self.key(t) for t in texts]
        found = await self.cache.get_many(Namespace.EMB, keys)
        return [decode_vector(found[k]) if k in found else None for k in keys]

    async def set_many(
        self, texts: Sequence[str], vectors: Sequence[npt.NDArray[np.floating]]
    ) -> None:
        await self.cache.set_many(
            Namespace.EMB,
            {self.key(t): encode_vector(v) for t, v in zip(texts, vectors, strict=True)},
        )


async def cached_json(
    cache: Cache,
    namespace: str,
    payload: Any,
    compute: Callable[[], Awaitable[Any]],
    *,
    ttl: float | None = None,
    schema: int = 1,
) -> Any:
    """``compute()``'s JSON-able result, cached under a key over ``payload`` (single-flight)."""
    import json

    async def produce() -> bytes:
        return encode_json(canonical_json(await compute()))

    blob = await cache.get_or_compute(namespace, make_key(payload, schema=schema), produce, ttl)
    return json.loads(decode_json(blob))
