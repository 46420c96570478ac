"""Dense vectors of sources: the ``VectorStore`` interface, on Qdrant or on faiss
(``nomosx.vectors.faiss``, imported on demand)."""

from nomosx.vectors.base import VectorFilter, VectorHit, VectorPoint, VectorStore, collection_name
from nomosx.vectors.factory import open_vector_store
from nomosx.vectors.qdrant import QdrantVectorStore

__all__ = [
    "QdrantVectorStore",
    "VectorFilter",
    "VectorHit",
    "VectorPoint",
    "VectorStore",
    "collection_name",
    "open_vector_store",
]
