"""Builds the configured source providers from settings, sharing one HTTP client."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from nomosx.cache.base import Cache
from nomosx.config import Settings
from nomosx.errors import ConfigError
from nomosx.sources.base import SourceEnricher, SourceProvider
from nomosx.sources.http import USER_AGENT, HttpPolicy, ProviderHttp

REMOTE = ("openalex", "crossref", "semanticscholar", "arxiv")


def shared_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=settings.sources.timeout,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )


def build_remote(
    names: Sequence[str], settings: Settings, *, client: httpx.AsyncClient, cache: Cache | None
) -> list[SourceProvider]:
    """The remote providers named (``library`` is built by the application)."""
    conf = settings.sources
    providers: list[SourceProvider] = []
    for name in names:
        if name == "openalex":
            from nomosx.sources import openalex

            http = _http(name, conf.openalex_url, openalex.RATE, settings, client, cache)
            providers.append(openalex.OpenAlexProvider(http, mailto=conf.mailto))
        elif name == "crossref":
            from nomosx.sources import crossref

            # the polite pool (with a contact email) allows more than the public one
            rate = crossref.RATE if conf.mailto else crossref.PUBLIC_RATE
            http = _http(name, conf.crossref_url, rate, settings, client, cache)
            providers.append(crossref.CrossrefProvider(http, mailto=conf.mailto))
        elif name == "semanticscholar":
            from nomosx.sources import semanticscholar

            key = conf.semantic_scholar_api_key
            rate = semanticscholar.RATE_WITH_KEY if key else semanticscholar.RATE
            http = _http(name, conf.semanticscholar_url, rate, settings, client, cache)
            providers.append(
                semanticscholar.SemanticScholarProvider(
                    http, api_key=key.get_secret_value() if key else None
                )
            )
        elif name == "arxiv":
            from nomosx.sources import arxiv

            http = _http(name, conf.arxiv_url, arxiv.RATE, settings, client, cache)
            providers.append(arxiv.ArxivProvider(http))
        elif name != "library":
            known = ", ".join(("library", *REMOTE))
            raise ConfigError(f"unknown source provider {name!r} (known: {known})")
    return providers


def _http(
    name: str,
    base_url: str,
    rate: float,
    settings: Settings,
    client: httpx.AsyncClient,
    cache: Cache | None,
) -> ProviderHttp:
    policy = HttpPolicy(
        rate=rate, timeout=settings.sources.timeout, attempts=settings.sources.attempts
    )
    return ProviderHttp(name, base_url, policy=policy, client=client, cache=cache)


def build_enricher(
    settings: Settings, *, client: httpx.AsyncClient, cache: Cache | None
) -> SourceEnricher | None:
    """Unpaywall open-access links, when a contact email is configured (it requires one)."""
    conf = settings.sources
    if not conf.unpaywall or not conf.mailto:
        return None
    from nomosx.sources import unpaywall

    http = _http("unpaywall", conf.unpaywall_url, unpaywall.RATE, settings, client, cache)
    return unpaywall.UnpaywallEnricher(http, email=conf.mailto)
