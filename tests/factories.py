"""Builders of realistic domain objects for tests."""

from __future__ import annotations

from typing import Any

from nomosx.models import Author, Institution, Source


def make_source(key: str = "doi:10.1000/abc", **fields: Any) -> Source:
    values: dict[str, Any] = {
        "key": key,
        "provider": "openalex",
        "provider_ids": {"openalex": "W" + str(abs(hash(key)) % 10**9)},
        "doi": key.removeprefix("doi:") if key.startswith("doi:") else None,
        "title": "Carbon taxes and emissions: evidence from British Columbia",
        "abstract": (
            "We study the carbon tax introduced in British Columbia in 2008. "
            "Emissions fell by 5 to 15 percent relative to the rest of Canada. "
            "The tax had no significant effect on aggregate employment."
        ),
        "year": 2019,
        "venue": "Journal of Environmental Economics",
        "type": "article",
        "authors": [
            Author(
                name="Ada Lovelace",
                orcid="0000-0002-1825-0097",
                institutions=[
                    Institution(name="University of London", ror="https://ror.org/04cw6st05")
                ],
            ),
            Author(name="Charles Babbage"),
        ],
        "citation_count": 120,
        "open_access": True,
        "oa_status": "gold",
        "url": "https://example.org/paper",
        "topics": ["carbon pricing", "climate policy"],
        "language": "en",
        "raw": {"id": "https://openalex.org/W1"},
    }
    values.update(fields)
    return Source(**values)
