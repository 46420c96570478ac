"""Compact value encodings: embeddings as packed little-endian float32, models as JSON.

A 384-dimension embedding is 1,536 bytes packed (a JSON list of the same floats is about
7,500). JSON payloads over 1 KiB are zlib-compressed; the first byte says which form a
value is in, so a reader never guesses.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_RAW = b"j"
_ZLIB = b"z"
_COMPRESS_OVER = 1024


def encode_vector(vector: Sequence[float] | npt.NDArray[np.floating]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def decode_vector(blob: bytes) -> npt.NDArray[np.float32]:
    if len(blob) % 4:
        raise ValueError(f"an embedding is a whole number of float32s, not {len(blob)} bytes")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def encode_json(data: bytes) -> bytes:
    if len(data) > _COMPRESS_OVER:
        return _ZLIB + zlib.compress(data, 6)
    return _RAW + data


def decode_json(blob: bytes) -> bytes:
    tag, body = blob[:1], blob[1:]
    if tag == _ZLIB:
        return zlib.decompress(body)
    if tag == _RAW:
        return body
    raise ValueError("not a NomosX-encoded JSON value")


def encode_model(model: BaseModel) -> bytes:
    return encode_json(model.model_dump_json().encode())


def decode_model(blob: bytes, cls: type[M]) -> M:
    return cls.model_validate_json(decode_json(blob))
