"""SCOUT with a remote provider beside the library: fan-out, merge, storage, failures."""

from __future__ import annotations

from pathlib import Path

from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.errors import SourceError
from nomosx.models import Source
from nomosx.sources.base import SearchFilters, SourceHealth
from tests.factories import make_source


class _Remote:
    """An in-process provider standing in for a remote API (its HTTP is tested apart)."""

    def __init__(self, name: str, sources: list[Source], *, broken: bool = False) -> None:
        self.name = name
        self.sources = sources
        self.broken = broken
        self.calls: list[tuple[str, int, SearchFilters | None]] = []

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        self.calls.append((query, limit, filters))
        if self.broken:
            raise SourceError(f"{self.name}: HTTP 503")
        return [s for s in self.sources if filters is None or filters.matches(s)][:limit]

    async def health(self) -> SourceHealth:
        return SourceHealth(self.name, "healthy")

    async def aclose(self) -> None:
        return None


def _papers() -> list[Source]:
    return [
        make_source(
            f"doi:10.5555/carbon{i}",
            provider="openalex",
            provider_ids={"openalex": f"W{i}"},
            title=f"Carbon tax and greenhouse gas emissions, evidence {i}",
            abstract="A carbon tax reduced greenhouse gas emissions by 5 percent.",
            year=2015 + i,
        )
        for i in range(4)
    ]


async def test_remote_sources_are_merged_stored_and_found_offline_later(tmp_path: Path) -> None:
    app = await NomosX.open(Settings(data_dir=tmp_path / "data"))
    try:
        await app.ensure_library()
        remote = _Remote("openalex", _papers())
        broken = _Remote("crossref", [], broken=True)
        app.providers.update({"openalex": remote, "crossref": broken})

        found, unique = await app.scout(
            "carbon tax emissions", ["library", "openalex", "crossref"], limit=10
        )
        assert found.failures == {"crossref": "crossref: HTTP 503"}
        assert found.found["openalex"] == 4
        assert {s.key for s in _papers()} <= {s.key for s in unique}
        stored = await app.sources.get_many([s.key for s in _papers()])
        assert len(stored) == 4  # kept in the library for later, offline runs

        filtered, _ = await app.scout(
            "carbon tax", ["openalex"], limit=10, filters=SearchFilters(year_from=2017)
        )
        assert remote.calls[-1][2] == SearchFilters(year_from=2017)
        assert filtered.found["openalex"] == 2

        # later, offline: the library alone finds what the remote provider brought
        hits = await app.search("carbon tax greenhouse gas emissions", 5)
        assert any(h.source.key.startswith("doi:10.5555/carbon") for h in hits)
        health = await app.library_provider.health()
        assert health.status == "healthy"
    finally:
        await app.close()


async def test_the_pipeline_stores_what_remote_providers_found(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        pipeline={"providers": ["library"], "query_concurrency": 2},
    )
    app = await NomosX.open(settings)
    try:
        await app.ensure_library()
        assert app.pipeline.scout.query_concurrency == 2  # the setting reaches SCOUT
        remote = _Remote("openalex", _papers())
        app.pipeline.scout.providers.append(remote)
        result = await app.brief("Does a carbon tax reduce greenhouse gas emissions?", fresh=True)
        index_stage = next(s for s in result.run.stages if s.name == "index")
        assert index_stage.counts.get("stored") == 4
        assert any(s.source.key.startswith("doi:10.5555/carbon") for s in result.brief.sources)
    finally:
        await app.close()


class _Enricher:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def enrich(self, sources: list[Source]) -> list[Source]:
        self.seen.extend(s.key for s in sources)
        return [s.model_copy(update={"open_access": True, "oa_status": "gold"}) for s in sources]


async def test_remote_sources_are_enriched_before_they_are_stored(tmp_path: Path) -> None:
    app = await NomosX.open(Settings(data_dir=tmp_path / "data"))
    try:
        await app.ensure_library()
        remote = _Remote(
            "openalex", [s.model_copy(update={"open_access": None}) for s in _papers()]
        )
        app.pipeline.scout.providers.append(remote)
        enricher = _Enricher()
        app.pipeline.enricher = enricher
        result = await app.brief("Does a carbon tax reduce greenhouse gas emissions?", fresh=True)
        index_stage = next(s for s in result.run.stages if s.name == "index")
        assert index_stage.counts["enriched"] == 4
        assert sorted(enricher.seen) == sorted(s.key for s in _papers())  # not library sources
        stored = await app.sources.get("doi:10.5555/carbon0")
        assert stored.oa_status == "gold"
    finally:
        await app.close()
