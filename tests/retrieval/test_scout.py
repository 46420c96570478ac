from __future__ import annotations

import pytest

from nomosx.errors import PipelineError, SourceError
from nomosx.models import Source
from nomosx.pipeline.scout import ProviderScout
from tests.factories import make_source


class _Fixed:
    def __init__(self, name: str, sources: list[Source]) -> None:
        self.name = name
        self.sources = sources

    async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
        return self.sources[:limit]


class _Broken:
    name = "broken"

    async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
        raise SourceError("HTTP 503 from the provider")


class _Buggy:
    name = "buggy"

    async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
        raise KeyError("a bug in a provider")


async def test_a_failing_provider_does_not_fail_the_run() -> None:
    good = _Fixed("library", [make_source("doi:10.1/a"), make_source("doi:10.1/b")])
    result = await ProviderScout([good, _Broken(), _Buggy()], limit=1).scout("q")  # type: ignore[list-item]
    assert [s.key for s in result.sources] == ["doi:10.1/a"]
    assert result.found == {"library": 1}
    assert result.failures["broken"] == "HTTP 503 from the provider"
    assert result.failures["buggy"].startswith("internal error: KeyError")


async def test_all_providers_failing_is_an_error() -> None:
    with pytest.raises(PipelineError, match=r"every source provider failed.*HTTP 503"):
        await ProviderScout([_Broken()], limit=5).scout("q")
    with pytest.raises(PipelineError, match="no source provider"):
        ProviderScout([], limit=5)
