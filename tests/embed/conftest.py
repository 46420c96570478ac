from tests.cache.conftest import cache

__all__ = ["cache"]
