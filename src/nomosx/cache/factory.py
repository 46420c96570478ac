"""Chooses the cache backend from settings: Redis when ``REDIS_URL`` is set, else the
embedded SQLite file in the data directory; ``None`` when caching is disabled."""

from __future__ import annotations

from nomosx.cache.base import Cache
from nomosx.config import Settings


def build_cache(settings: Settings) -> Cache | None:
    if not settings.cache.enabled:
        return None
    if settings.redis_url:
        from nomosx.cache.redis import RedisCache

        return RedisCache.from_settings(settings.redis_url, settings.cache)
    from nomosx.cache.embedded import EmbeddedCache

    return EmbeddedCache.from_settings(settings.data_dir, settings.cache)
