from __future__ import annotations

import httpx
import pytest

from nomosx.config import Settings
from nomosx.errors import ConfigError
from nomosx.sources import arxiv, semanticscholar
from nomosx.sources.factory import build_enricher, build_remote


async def test_providers_and_their_published_rates_from_settings() -> None:
    settings = Settings(sources={"mailto": "team@example.org"})
    async with httpx.AsyncClient() as client:
        providers = build_remote(
            ["library", "openalex", "crossref", "semanticscholar", "arxiv"],
            settings,
            client=client,
            cache=None,
        )
        assert [p.name for p in providers] == ["openalex", "crossref", "semanticscholar", "arxiv"]
        rates = {p.name: p.http.bucket.rate for p in providers}  # type: ignore[attr-defined]
        assert rates["arxiv"] == arxiv.RATE == pytest.approx(1 / 3)
        assert rates["semanticscholar"] == semanticscholar.RATE
        assert build_enricher(settings, client=client, cache=None) is not None
        assert build_enricher(Settings(), client=client, cache=None) is None  # needs an email
        with pytest.raises(ConfigError, match="unknown source provider 'scholar'"):
            build_remote(["scholar"], settings, client=client, cache=None)
