"""Retry delays: exponential backoff with full jitter, honouring ``Retry-After``."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from nomosx.errors import AuthenticationFailed, BadRequest, LLMError, RateLimited


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` per provider; delay before retry k (1-based) is
    ``uniform(0, min(max_delay, base * 2**(k-1)))`` (full jitter), or the provider's
    ``Retry-After`` when it gave one (capped by ``max_retry_after``: a longer wait moves on
    to the next provider instead)."""

    attempts: int = 3
    base: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def retryable(self, error: LLMError) -> bool:
        if isinstance(error, BadRequest | AuthenticationFailed):
            return False
        return not (
            isinstance(error, RateLimited)
            and error.retry_after is not None
            and error.retry_after > self.max_retry_after
        )

    def delay(self, attempt: int, error: LLMError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        ceiling = min(self.max_delay, self.base * 2.0 ** (attempt - 1))
        return self.jitter() * ceiling
