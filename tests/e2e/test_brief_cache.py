"""The brief cache: same question, settings and library state → the stored brief."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomosx.app import NomosX
from nomosx.cache.base import Namespace
from nomosx.config import Settings
from tests.cache.conftest import REDIS_HOST, REDIS_PORT, _flush, contract_db
from tests.factories import make_source

QUESTION = "Does vitamin D supplementation reduce the risk of fractures?"


@pytest.fixture(params=["embedded", "redis"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path, worker_id: str) -> Settings:
    if request.param == "redis":
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{contract_db(worker_id)}"
        await _flush(url)
        return Settings(data_dir=tmp_path / "data", redis_url=url)
    return Settings(data_dir=tmp_path / "data")


@pytest.mark.timeout(300)
async def test_repeated_brief_comes_from_the_cache(settings: Settings) -> None:
    app = await NomosX.open(settings)
    try:
        await app.ensure_library()
        first = await app.brief(QUESTION)
        assert not first.cached
        again = await app.brief("  does vitamin D supplementation REDUCE the risk of fractures? ")
        assert again.cached
        assert again.brief == first.brief
        assert again.run.id == first.run.id
        assert len(await app.list_briefs()) == 1  # nothing new was written

        fresh = await app.brief(QUESTION, fresh=True)
        assert not fresh.cached and fresh.brief.id != first.brief.id
        assert (await app.brief(QUESTION)).brief.id == fresh.brief.id  # the newest is cached

        other = await app.brief(QUESTION, sources=5)  # other settings: other brief
        assert not other.cached

        await app.sources.upsert_many(
            [make_source("doi:10.9/new", title="Vitamin D and fractures")]
        )
        changed = await app.brief(QUESTION)  # the library changed: written again
        assert not changed.cached

        assert app.cache is not None
        stats = await app.cache.stats()
        assert stats.namespaces["brief"].hits >= 2
        assert await app.cache.invalidate(Namespace.BRIEF) >= 1
        assert not (await app.brief(QUESTION)).cached
    finally:
        if app.cache is not None:
            await app.cache.clear()
        await app.close()
