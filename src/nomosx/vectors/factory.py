"""Opening the vector store the settings ask for."""

from __future__ import annotations

from pathlib import Path

from nomosx.vectors.qdrant import QdrantVectorStore

__all__ = ["open_vector_store"]


async def open_vector_store(
    url: str | None, api_key: str | None, path: Path, collection: str
) -> QdrantVectorStore:
    """A Qdrant server when ``url`` is set (``QDRANT_URL``), else Qdrant local mode on the
    folder ``path``. Local mode raises ``VectorStoreLocked`` when another process holds the
    folder; a server is not contacted until the first call (``ensure``)."""
    if url:
        return await QdrantVectorStore.server(url, collection, api_key=api_key)
    return await QdrantVectorStore.local(path, collection)
