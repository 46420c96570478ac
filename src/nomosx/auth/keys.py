"""API keys: ``nx_`` and 43 random URL-safe characters (256 bits), stored as SHA-256.

A key this random needs no slow hash: guessing one is hopeless, and SHA-256 lets a request
find its key with one indexed lookup. The first 11 characters are kept in clear as the
key's prefix so that people can tell their keys apart in listings.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "nx_"
PREFIX_CHARS = 11


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_CHARS]


def looks_like_key(value: str) -> bool:
    """Cheap shape check before any lookup (and no database work for junk headers)."""
    return value.startswith(PREFIX) and 20 <= len(value) <= 128 and value.isascii()
