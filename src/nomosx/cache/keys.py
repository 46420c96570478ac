"""Cache keys: ``v{schema}:{sha256}`` over a canonical JSON of everything that changes the
value, so that two values differing in any parameter can never share a key."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(payload: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def make_key(payload: Any, *, schema: int = 1) -> str:
    return f"v{schema}:{hashlib.sha256(canonical_json(payload)).hexdigest()}"
