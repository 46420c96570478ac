"""SCOUT runs independent searches concurrently: proved with events, not with timings.

Each fake provider blocks until the test (or the other searches) release it, so a scout
that ran the searches one by one would never finish: a guard turns such a deadlock into a
clear failure instead of a hang. Nothing asserts on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from nomosx.config import PipelineSettings
from nomosx.errors import ConfigError, SourceError
from nomosx.models import Source
from nomosx.pipeline.scout import ProviderScout
from tests.factories import make_source

QUESTION = "Does a carbon tax reduce emissions?"
EXTRA = ["carbon pricing emissions", "carbon tax CO2", "emissions trading"]
DEADLOCK_GUARD = 10.0  # seconds: only reached when searches do not overlap


async def until(condition: Callable[[], bool], turns: int = 1000) -> None:
    """Yield to the event loop until ``condition`` holds, for at most ``turns`` turns (no
    I/O is involved: every task that can progress does within a few turns)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held: the searches did not overlap")


class _Expander:
    """Returns the question and ``EXTRA``, once ``release`` is set (set: at once)."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.release = asyncio.Event()
        if not blocked:
            self.release.set()
        self.started = False
        self.cancelled = False

    async def expand(self, question: str) -> list[str]:
        self.started = True
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return [question, *EXTRA]


class _Gated:
    """A provider whose searches wait for ``release``, counting those in flight."""

    def __init__(self, name: str, release: Callable[[_Gated], Awaitable[None]]) -> None:
        self.name = name
        self._release = release
        self.queries: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
        self.queries.append(query)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self._release(self)
        finally:
            self.in_flight -= 1
        return [make_source(f"doi:10.1/{self.name}-{len(self.queries)}", title=query)]


async def test_a_remote_providers_queries_are_all_in_flight_at_once() -> None:
    everyone = asyncio.Event()

    async def barrier(provider: _Gated) -> None:
        if provider.in_flight == 1 + len(EXTRA):
            everyone.set()
        async with asyncio.timeout(DEADLOCK_GUARD):
            await everyone.wait()

    remote = _Gated("openalex", barrier)
    scout = ProviderScout([remote], limit=5, expander=_Expander(), query_concurrency=4)  # type: ignore[list-item]
    result = await scout.scout(QUESTION)
    assert remote.peak == 4
    # the sources stay in query order, whatever order the searches finished in
    assert [s.title for s in result.sources] == [QUESTION, *EXTRA]
    assert result.found == {"openalex": 4}


async def test_query_concurrency_bounds_the_searches_in_flight() -> None:
    release = asyncio.Event()

    async def gate(provider: _Gated) -> None:
        await release.wait()

    remote = _Gated("crossref", gate)
    scout = ProviderScout([remote], limit=5, expander=_Expander(), query_concurrency=2)  # type: ignore[list-item]
    running = asyncio.create_task(scout.scout(QUESTION))
    await until(lambda: remote.in_flight == 2)
    for _ in range(20):  # every chance for a third search to start: none may
        await asyncio.sleep(0)
    assert remote.in_flight == 2 and len(remote.queries) == 2
    release.set()
    result = await running
    assert remote.peak == 2 and len(result.sources) == 4


async def test_the_library_and_the_question_do_not_wait_for_the_expansion() -> None:
    async def free(provider: _Gated) -> None:
        return None

    library, remote = _Gated("library", free), _Gated("openalex", free)
    expander = _Expander(blocked=True)
    scout = ProviderScout([library, remote], limit=5, expander=expander)  # type: ignore[list-item]
    running = asyncio.create_task(scout.scout(QUESTION))
    # the model has not answered: the library is done and the question searched remotely
    await until(lambda: library.queries == [QUESTION] and remote.queries == [QUESTION])
    assert expander.started and not running.done()
    expander.release.set()
    result = await running
    assert library.queries == [QUESTION]
    assert remote.queries == [QUESTION, *EXTRA]
    assert result.found == {"library": 1, "openalex": 4}


async def test_a_failing_query_fails_its_provider_with_the_first_error_in_query_order() -> None:
    second_failed = asyncio.Event()

    class _Failing:
        name = "semanticscholar"

        async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
            if query == EXTRA[1]:  # fails first in time...
                second_failed.set()
                raise SourceError("semanticscholar: HTTP 503")
            if query == EXTRA[0]:  # ...but this one comes first in query order
                await second_failed.wait()
                raise SourceError("semanticscholar: HTTP 429")
            return [make_source(f"doi:10.1/{query}")]

    library = _Gated("library", lambda provider: asyncio.sleep(0))
    scout = ProviderScout(
        [library, _Failing()],  # type: ignore[list-item]
        limit=5,
        expander=_Expander(),
        query_concurrency=4,
    )
    result = await scout.scout(QUESTION)
    assert result.failures == {"semanticscholar": "semanticscholar: HTTP 429"}
    assert result.found == {"library": 1}  # reported, never fatal


async def test_one_at_a_time_a_failing_query_stops_the_providers_searches() -> None:
    class _Recording:
        name = "arxiv"

        def __init__(self) -> None:
            self.queries: list[str] = []

        async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
            self.queries.append(query)
            if query == EXTRA[0]:
                raise KeyError("a bug in a provider")
            return []

    remote = _Recording()
    library = _Gated("library", lambda provider: asyncio.sleep(0))
    scout = ProviderScout(
        [library, remote],  # type: ignore[list-item]
        limit=5,
        expander=_Expander(),
        query_concurrency=1,
    )
    result = await scout.scout(QUESTION)
    assert remote.queries == [QUESTION, EXTRA[0]]  # the searches after it never started
    assert result.failures["arxiv"] == "internal error: KeyError"


async def test_an_expander_that_crashes_fails_the_remote_providers_only() -> None:
    class _Crashing:
        async def expand(self, question: str) -> list[str]:
            raise SourceError("the expander is down")

    async def free(provider: _Gated) -> None:
        return None

    library, remote = _Gated("library", free), _Gated("openalex", free)
    scout = ProviderScout([library, remote], limit=5, expander=_Crashing())  # type: ignore[list-item]
    result = await scout.scout(QUESTION)
    assert result.found == {"library": 1}
    assert result.failures == {"openalex": "the expander is down"}


async def test_cancelling_the_scout_cancels_the_expansion_and_the_searches() -> None:
    never = asyncio.Event()

    async def blocked(provider: _Gated) -> None:
        await never.wait()

    remote = _Gated("openalex", blocked)
    expander = _Expander(blocked=True)
    scout = ProviderScout([remote], limit=5, expander=expander)  # type: ignore[list-item]
    running = asyncio.create_task(scout.scout(QUESTION))
    await until(lambda: expander.started and remote.in_flight == 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert expander.cancelled and remote.in_flight == 0


def test_query_concurrency_is_a_setting_of_at_least_one() -> None:
    assert PipelineSettings().query_concurrency == 4
    with pytest.raises(ValueError, match="query_concurrency"):
        PipelineSettings(query_concurrency=0)
    with pytest.raises(ConfigError, match="at least 1"):
        ProviderScout([_Gated("library", lambda p: asyncio.sleep(0))], limit=5, query_concurrency=0)  # type: ignore[list-item]
