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


class _Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.queries: list[str] = []

    async def search(self, query: str, limit: int, filters: object = None) -> list[Source]:
        self.queries.append(query)
        return [make_source(f"doi:10.1/{self.name}{len(self.queries)}")]


async def test_remote_providers_search_the_expanded_queries() -> None:
    from nomosx.errors import ProviderUnavailable
    from nomosx.pipeline.expand import LLMQueryExpander
    from nomosx.testing.models import Answer, Raise, ScriptedModel

    model = ScriptedModel(
        "openai",
        "gpt-4o-mini",
        [
            Answer('{"queries": ["carbon pricing emissions", "  carbon   tax CO2 ", 7, "x", "y"]}'),
            Raise(ProviderUnavailable("down")),
        ],
    )
    library, remote = _Recorder("library"), _Recorder("openalex")
    scout = ProviderScout([library, remote], limit=5, expander=LLMQueryExpander(model))  # type: ignore[list-item]
    result = await scout.scout("Does a carbon tax reduce emissions?")
    assert library.queries == ["Does a carbon tax reduce emissions?"]
    assert remote.queries == [
        "Does a carbon tax reduce emissions?",
        "carbon pricing emissions",
        "carbon tax CO2",
        "x",
    ]
    assert result.found == {"library": 1, "openalex": 4}
    assert model.requests[0].agent == "scout"
    # the model failing: the question alone
    remote.queries.clear()
    await scout.scout("Another question?")
    assert remote.queries == ["Another question?"]
