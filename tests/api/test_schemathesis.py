"""Property-based tests of the whole HTTP API from its own OpenAPI document (schemathesis).

The schema is the one the app publishes; every operation is called with generated valid
and invalid requests against a real server (uvicorn, lifespan running, a small ingested
library, the OpenAI provider at a loopback fake). Every response must not be a 5xx, and,
except for the event streams, must conform to the schema: a documented status code, a
documented content type, and a body that validates against the response schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from nomosx.api.app import create_app
from nomosx.config import Settings
from nomosx.errors import NoSourcesError
from nomosx.testing.fake_llm import FakeLLMServer, Reply
from tests.api.server import LiveServer, chat_settings, live_server, small_library

STORED = "00000000-0000-4000-8000-000000000001"  # a brief written before the run
FAILED = "00000000-0000-4000-8000-000000000002"  # a brief whose run failed (no sources)
STREAMS = ("/api/chat/stream", "/api/briefs/{brief_id}/events")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


def _document() -> dict[str, Any]:
    """The app's OpenAPI document (no lifespan needed to build it), with the ids of the
    stored and the failed brief as examples of ``brief_id``, so that the generated
    requests reach those states too, not only 404s."""
    app = create_app(Settings(data_dir=Path("unused"), bundled_library=False))
    document = app.openapi()
    for path in ("/api/briefs/{brief_id}", "/api/briefs/{brief_id}/events"):
        for parameter in document["paths"][path]["get"]["parameters"]:
            if parameter["name"] == "brief_id":
                parameter["examples"] = {
                    "stored": {"value": STORED},
                    "failed": {"value": FAILED},
                }
    return document


SCHEMA = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    with FakeLLMServer(default=Reply("A short answer.")).in_thread() as fake:
        settings = chat_settings(data, fake, cache={"enabled": True})
        with live_server(settings) as server:
            server.ingest(small_library())
            app = server.nomosx
            server.run(app.brief("Do carbon taxes reduce emissions?", brief_id=STORED))
            with pytest.raises(NoSourcesError):
                server.run(
                    app.brief(
                        "Lattice gluon propagators in quantum chromodynamics?", brief_id=FAILED
                    )
                )
            yield server


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], api: LiveServer) -> None:
    checks = list(CHECKS)
    if case.operation.path not in STREAMS:
        checks.append(response_schema_conformance)
    case.call_and_validate(base_url=api.url, checks=checks, timeout=30)


@pytest.mark.parametrize("offset", [2**31 - 1, 2**63, 10**22])
def test_listing_far_past_the_end_is_no_server_error(api: LiveServer, offset: int) -> None:
    """Found by the run above with a random seed: an offset past SQL's 64-bit range."""
    case = SCHEMA["/api/briefs"]["GET"].Case(query={"offset": offset})
    response = case.call_and_validate(
        base_url=api.url, checks=[*CHECKS, response_schema_conformance], timeout=30
    )
    assert response.status_code in (200, 422)
