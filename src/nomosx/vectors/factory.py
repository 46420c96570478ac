"""Opening the vector store the settings ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from nomosx.vectors.base import VectorStore
from nomosx.vectors.qdrant import QdrantVectorStore

__all__ = ["Backend", "open_vector_store"]

Backend = Literal["qdrant", "faiss"]


async def open_vector_store(
    url: str | None,
    api_key: str | None,
    path: Path,
    collection: str,
    *,
    backend: Backend = "qdrant",
) -> VectorStore:
    """``qdrant``: a Qdrant server when ``url`` is set (``QDRANT_URL``), else Qdrant local
    mode on the folder ``path``; a server is not contacted until the first call
    (``ensure``). ``faiss``: a faiss index in the folder ``path`` (``url`` and ``api_key``
    are not used), for large libraries without a Qdrant server. A local folder raises
    ``VectorStoreLocked`` when another process holds it."""
    if backend == "faiss":
        from nomosx.vectors.faiss import FaissVectorStore  # faiss loads its own BLAS: lazily

        return await FaissVectorStore.open(path, collection)
    if backend != "qdrant":
        raise ValueError(f"unknown vector store backend {backend!r}: use 'qdrant' or 'faiss'")
    if url:
        return await QdrantVectorStore.server(url, collection, api_key=api_key)
    return await QdrantVectorStore.local(path, collection)
