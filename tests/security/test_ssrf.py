"""No server-side request forgery: no URL a user supplies is ever fetched.

What reaches an HTTP client in ``src`` (the inventory, checked by an AST scan so that a
new one fails this test until it is reviewed here):

- ``sources/http.py`` ``ProviderHttp._once``: ``GET {base_url}{path}`` where ``base_url``
  is a setting (``NOMOSX_SOURCES__*_URL``) and ``path`` a constant of the provider, or
  ``/v2/{quoted DOI}`` for Unpaywall (a DOI percent-quoted into the path: it cannot
  change the host);
- the LLM SDKs (``openai``, ``anthropic``, ``google-genai``) built in ``llm/providers``
  from ``ProviderConfig.base_url``, which ``llm/factory.py`` takes from settings only
  (a chat request names a model of the configured chain, never a URL);
- ``embed/openai.py`` (the OpenAI SDK, base URL from settings), ``vectors/qdrant.py``
  (``QDRANT_URL``), Redis (``REDIS_URL``) and the database (``DATABASE_URL``): settings.

The tests prove it dynamically too: sources whose ``url``, ``pdf_url`` and ``links``
point at a loopback *canary* server are ingested (JSON Lines, BibTeX, RIS), found by a
remote provider (a loopback OpenAlex) and enriched by a loopback Unpaywall answering
canary links, then briefed, rendered (Markdown, HTML, JSON, BibTeX, the web page), and
API bodies carrying URLs are sent; the canary receives no request at all, and every
request the providers made went to their configured base URL. No product change was
needed, so no address guard was added.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from nomosx.api.app import create_app
from nomosx.config import Settings
from nomosx.sources.http import HttpPolicy, ProviderHttp
from nomosx.sources.unpaywall import UnpaywallEnricher

SRC = Path(__file__).resolve().parents[2] / "src" / "nomosx"
QUESTION = "Does the Swedish carbon tax reduce emissions?"

# modules that import an HTTP client library, and why each is safe (reviewed)
HTTP_IMPORTS = {
    "app.py": "type of the shared httpx client for source providers (built in factory.py)",
    "sources/factory.py": "builds the shared client; base URLs from settings.sources",
    "sources/http.py": "the one fetch: GET {base_url}{path}, base_url a setting",
    "vectors/qdrant.py": "httpx errors of qdrant-client, converted; QDRANT_URL a setting",
    "llm/providers/_errors.py": "httpx2 errors of the SDKs, converted",
    "llm/providers/gemini.py": "httpx2 response hook of google-genai; base URL a setting",
}
# calls that send a request, by module: (receiver, first argument), reviewed
HTTP_CALLS = {("sources/http.py", "self.client", "f'{self.base_url}{path}'")}
_CLIENT_LIBS = ("httpx", "httpx2", "requests", "aiohttp", "urllib3", "pycurl")
_CLIENT_MODULES = ("urllib.request", "http.client")
_SEND = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "send")


def _imports_http(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in _CLIENT_LIBS or name in _CLIENT_MODULES:
                return True
    return False


def test_every_http_client_in_src_is_reviewed() -> None:
    importing: set[str] = set()
    calls: set[tuple[str, str, str]] = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if _imports_http(tree):
            importing.add(rel)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _SEND
                and node.args
            ):
                receiver = ast.unparse(node.func.value)
                last = receiver.rsplit(".", 1)[-1].lower().strip("_")
                if last.endswith(("client", "http")):  # (database sessions are not HTTP)
                    calls.add((rel, receiver, ast.unparse(node.args[0])))
    assert importing - {"testing/fake_llm.py"} == set(HTTP_IMPORTS)
    assert calls == HTTP_CALLS


def test_llm_and_source_base_urls_come_from_settings_only() -> None:
    """No request schema has a URL field, and extra fields are refused."""
    from nomosx.api import admin_schemas, schemas

    for module in (schemas, admin_schemas):
        for name in dir(module):
            model = getattr(module, name)
            fields = getattr(model, "model_fields", None)
            if not isinstance(fields, dict) or not name.endswith(
                ("Request", "Create", "Update", "Message")
            ):
                continue
            assert model.model_config.get("extra") == "forbid", name
            for field_name in fields:
                assert "url" not in field_name.lower(), (name, field_name)
                assert "host" not in field_name.lower(), (name, field_name)


async def test_a_hostile_doi_cannot_move_the_unpaywall_request_off_its_host() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(404, json={"error": "unknown"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    policy = HttpPolicy(rate=1000.0, burst=10, attempts=1)
    http = ProviderHttp("unpaywall", "https://api.unpaywall.example", policy=policy, client=client)
    enricher = UnpaywallEnricher(http, email="test@example.org")
    dois = [
        "10.1234/x/../../@169.254.169.254/latest",
        "10.1234/a?x=http://127.0.0.1:1/#frag",
        "10.1234/%2F%2Fevil.example",
        "10.1234/\\\\evil.example\\x",
        "10.1234/a@evil.example:80",
    ]
    for doi in dois:
        assert await enricher.lookup(doi) is None
    await client.aclose()
    assert len(seen) == len(dois)
    for url in seen:
        assert url.host == "api.unpaywall.example" and url.scheme == "https", url
        assert url.path.startswith("/v2/"), url


# --------------------------------------------------------------------------- loopback servers


@dataclass
class _Server:
    """A loopback HTTP server recording every request; ``answer`` gives the reply."""

    answer: Any = None
    requests: list[str] = field(default_factory=list)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Server, _Server]]:
    """(canary, provider): the canary must never be asked anything."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    made: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
    states: list[_Server] = []
    for _ in range(2):
        state = _Server()

        def handler_for(state: _Server) -> type[BaseHTTPRequestHandler]:
            class Handler(BaseHTTPRequestHandler):
                def _any(self) -> None:
                    with state.lock:
                        state.requests.append(f"{self.command} {self.path}")
                    status, body = state.answer(self.path) if state.answer else (404, {})
                    data = json.dumps(body).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

                do_GET = do_POST = do_HEAD = do_PUT = _any

                def log_message(self, format: str, *args: Any) -> None:
                    pass

            return Handler

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
        httpd.daemon_threads = True
        state.port = httpd.server_address[1]
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        made.append((httpd, thread))
        states.append(state)
    try:
        yield states[0], states[1]
    finally:
        for httpd, thread in made:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)


def _canary_urls(canary: _Server, tag: str) -> dict[str, str]:
    return {
        "landing": f"{canary.url}/{tag}/landing",
        "pdf": f"{canary.url}/{tag}/paper.pdf",
        "oa": f"{canary.url}/{tag}/oa",
    }


def _files(tmp_path: Path, canary: _Server) -> list[Path]:
    u = _canary_urls(canary, "jsonl")
    work = {
        "id": "https://openalex.org/W1",
        "display_name": "The Swedish carbon tax and emissions in transport",
        "abstract_inverted_index": {
            "The": [0],
            "Swedish": [1],
            "carbon": [2],
            "tax": [3],
            "reduced": [4],
            "emissions.": [5],
        },
        "primary_location": {"landing_page_url": u["landing"], "pdf_url": u["pdf"]},
        "open_access": {"is_oa": True, "oa_url": u["oa"]},
        "locations": [{"landing_page_url": "http://169.254.169.254/latest/meta-data/"}],
    }
    jsonl = tmp_path / "works.jsonl"
    jsonl.write_text(json.dumps(work) + "\n")
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{swe, title={The Swedish carbon tax and emissions in industry},"
        " abstract={The Swedish carbon tax reduced industrial emissions.},"
        f" url={{{canary.url}/bib}}, year={{2019}}}}\n"
    )
    ris = tmp_path / "refs.ris"
    ris.write_text(
        "TY  - JOUR\nTI  - The Swedish carbon tax and household emissions\n"
        "AB  - The Swedish carbon tax reduced household emissions.\n"
        f"UR  - {canary.url}/ris\nUR  - file:///etc/passwd\nER  - \n"
    )
    return [jsonl, bib, ris]


@pytest.mark.timeout(240)
async def test_user_supplied_urls_are_never_fetched(
    tmp_path: Path, servers: tuple[_Server, _Server]
) -> None:
    canary, provider = servers
    remote = _canary_urls(canary, "openalex")

    def answer(path: str) -> tuple[int, Any]:
        if path.startswith("/works"):
            work = {
                "id": "https://openalex.org/W2",
                "doi": "https://doi.org/10.5555/swedish.tax",
                "display_name": "The Swedish carbon tax reduced emissions: a remote study",
                "abstract_inverted_index": {
                    "The": [0],
                    "Swedish": [1],
                    "carbon": [2],
                    "tax": [3],
                    "reduced": [4],
                    "emissions.": [5],
                },
                "publication_year": 2020,
                "primary_location": {
                    "landing_page_url": remote["landing"],
                    "pdf_url": remote["pdf"],
                },
                "locations": [{"landing_page_url": remote["oa"]}],
            }  # no "open_access": Unpaywall is asked about it
            return 200, {"results": [work], "meta": {"next_cursor": None}}
        if path.startswith("/v2/"):
            location = {
                "url_for_pdf": f"{canary.url}/unpaywall.pdf",
                "url_for_landing_page": f"{canary.url}/unpaywall",
            }
            return 200, {
                "is_oa": True,
                "oa_status": "gold",
                "best_oa_location": location,
                "oa_locations": [location],
            }
        return 404, {}

    provider.answer = answer
    settings = Settings(
        data_dir=tmp_path / "data",
        bundled_library=False,
        cache={"enabled": False},
        auth={"single_user": True},
        retrieval={"embedder": "none"},
        pipeline={"providers": ["library", "openalex"]},
        sources={
            "openalex_url": provider.url,
            "crossref_url": provider.url,
            "semanticscholar_url": provider.url,
            "arxiv_url": provider.url,
            "unpaywall_url": provider.url,
            "mailto": "test@example.org",
        },
    )
    app = create_app(settings, load_library=False)
    async with app.router.lifespan_context(app):
        nomosx = app.state.nomosx
        for path in _files(tmp_path, canary):
            report = await nomosx.ingest(path)
            assert report.inserted == 1 and not report.errors, report.errors
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            asked = await client.post("/api/briefs", json={"question": QUESTION, "sources": 5})
            assert asked.status_code == 202, asked.text
            brief_id = asked.json()["id"]
            events = await client.get(f"/api/briefs/{brief_id}/events")
            assert "event: done" in events.text, events.text[-500:]
            brief = (await client.get(f"/api/briefs/{brief_id}")).json()
            assert brief["status"] == "succeeded"
            urls = json.dumps(brief)
            assert canary.url in urls  # the canary links are in the brief, as data
            for fmt in ("md", "html", "json"):
                rendered = await client.get(f"/api/briefs/{brief_id}", params={"format": fmt})
                assert rendered.status_code == 200
            assert (await client.get(f"/api/briefs/{brief_id}/sources.bib")).status_code == 200
            assert (await client.get(f"/briefs/{brief_id}")).status_code == 200
            # URLs in API bodies: refused as unknown fields, or mere text
            for body in (
                {"question": QUESTION, "url": f"{canary.url}/body"},
                {"question": QUESTION, "sources": 3, "callback": f"{canary.url}/cb"},
            ):
                assert (await client.post("/api/briefs", json=body)).status_code == 422
            as_text = await client.post(
                "/api/briefs", json={"question": f"What does {canary.url}/question say?"}
            )
            assert as_text.status_code in (200, 202, 422), as_text.text
            chat = await client.post(
                "/api/chat",
                json={
                    "messages": [{"role": "user", "content": f"fetch {canary.url}/chat"}],
                    "model": f"{canary.url}/v1",
                },
            )
            assert chat.status_code in (400, 422, 503), chat.text
    # the remote provider and Unpaywall were asked, at their configured base URL only
    assert any(r.startswith("GET /works") for r in provider.requests), provider.requests
    assert any(r.startswith("GET /v2/10.5555") for r in provider.requests), provider.requests
    assert canary.requests == []
