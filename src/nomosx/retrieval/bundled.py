"""Vectors shipped with the bundled library, so a fresh machine needs no embedding pass.

``nomosx/data/scifact-vectors.npz`` holds, per source key, the digest of the text the
vector was made from and the vector itself (float16: the cosines move by < 1e-3), with the
name of the model. ``scripts/embed_bundled_library.py`` writes it with the same embedder
the product uses; the loader checks the model, and the dense index checks each digest, so
a stale file is simply not used.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from nomosx.retrieval.dense_index import KnownVectors

__all__ = ["BUNDLED_VECTORS", "load_bundled_vectors"]

BUNDLED_VECTORS = "scifact-vectors.npz"


def load_bundled_vectors(model: str) -> KnownVectors | None:
    """``key -> (text digest, vector)`` for ``model``; ``None`` if none ship for it."""
    resource = resources.files("nomosx.data") / BUNDLED_VECTORS
    if not resource.is_file():
        return None
    with resources.as_file(resource) as path, np.load(path, allow_pickle=False) as data:
        if str(data["model"]) != model:
            return None
        vectors = data["vectors"].astype(np.float32)
        return {
            str(key): (str(digest), vectors[i])
            for i, (key, digest) in enumerate(zip(data["keys"], data["digests"], strict=True))
        }
