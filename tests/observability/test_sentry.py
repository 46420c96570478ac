"""Sentry: events reach a loopback Sentry server, tagged, with no secret in them."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI, Request

from nomosx.config import Settings
from nomosx.observability.context import bind
from nomosx.observability.logging import get_logger, setup_logging
from nomosx.observability.secrets import REDACTED, known_secrets, register_secrets
from nomosx.observability.sentry import init_sentry, job_scope, scrub_event, tag_scope

SECRET = "sk-secret-123"
COOKIE_VALUE = "cookie-value-42"
DB_PASSWORD = "pg-password-9"


@dataclass
class Envelope:
    path: str
    headers: dict[str, str]
    raw: bytes  # the body as sent, decompressed

    def items(self) -> list[tuple[dict[str, Any], Any]]:
        """(item header, payload) pairs; JSON payloads parsed."""
        lines = self.raw.split(b"\n", 1)
        rest = lines[1] if len(lines) > 1 else b""
        out: list[tuple[dict[str, Any], Any]] = []
        while rest.strip():
            header_line, _, rest = rest.partition(b"\n")
            header = json.loads(header_line)
            length = header.get("length")
            if length is None:
                payload_bytes, _, rest = rest.partition(b"\n")
            else:
                payload_bytes, rest = rest[:length], rest[length + 1 :]
            try:
                payload: Any = json.loads(payload_bytes)
            except ValueError:
                payload = payload_bytes
            out.append((header, payload))
        return out

    def payloads(self, item_type: str) -> list[Any]:
        return [payload for header, payload in self.items() if header.get("type") == item_type]


@dataclass
class SentryServer:
    """A loopback stand-in for Sentry's ingest: records every envelope POSTed to it."""

    port: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dsn(self, project: int = 1) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/{project}"

    def payloads(self, item_type: str) -> list[Any]:
        with self.lock:
            return [p for envelope in self.envelopes for p in envelope.payloads(item_type)]

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)


def _handler(server: SentryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding:
                self.send_response(415)
                self.end_headers()
                return
            if not (self.path.startswith("/api/") and self.path.endswith("/envelope/")):
                self.send_response(404)
                self.end_headers()
                return
            with server.lock:
                server.envelopes.append(Envelope(self.path, dict(self.headers), body))
            payload = b'{"id": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def sentry_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentryServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    state = SentryServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-sentry", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        # close the SDK's connections before the server goes away
        client = sentry_sdk.get_client()
        if client.is_active():
            client.close(timeout=2.0)
        sentry_sdk.get_global_scope().set_client(None)
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _settings(server: SentryServer, **extra: Any) -> Settings:
    return Settings(
        env="test",
        openai_api_key=SECRET,
        sentry_dsn=server.dsn(),
        database_url=f"postgresql://nomosx:{DB_PASSWORD}@db:5432/nomosx",
        **extra,
    )


def _flush() -> None:
    sentry_sdk.flush(timeout=10.0)


def _assert_no_secret(raw: bytes) -> None:
    assert known_secrets(), "the settings' secrets were not registered"
    for secret in known_secrets():
        assert secret.encode() not in raw, f"{secret!r} leaked into an envelope"
    for leaked in (b"Bearer sk-", COOKIE_VALUE.encode(), DB_PASSWORD.encode(), b"sk-secret"):
        assert leaked not in raw


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/briefs/{brief_id}")
    async def fail(brief_id: str, request: Request) -> dict[str, str]:
        token = request.headers["authorization"].removeprefix("Bearer ")
        with tag_scope(
            agent="analyst", question="Does X?", run_id="r1", provider="openai", sources=7
        ):
            get_logger("nomosx.test").info("about to fail", api_key=token, url=str(request.url))
            raise RuntimeError(f"provider refused key {token}")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_an_error_in_a_route_reaches_sentry_tagged_and_scrubbed(
    sentry_server: SentryServer,
) -> None:
    settings = _settings(sentry_server)
    assert init_sentry(settings, release="nomosx@0.1.0", traces_sample_rate=1.0)
    assert SECRET in known_secrets() and DB_PASSWORD in known_secrets()
    assert not sentry_sdk.get_client().should_send_default_pii()
    setup_logging(json=True)
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://nomosx.test") as client:
        with bind(request_id="req-42"):
            response = await client.get(
                f"/briefs/b1?api_key={SECRET}&page=2",
                headers={
                    "Authorization": f"Bearer {SECRET}",
                    "Cookie": f"session={COOKIE_VALUE}",
                    "X-Api-Key": SECRET,
                    "X-Upstream-Token": "tok-abcdef",
                    "Accept": "application/json",
                },
            )
    assert response.status_code == 500
    _flush()

    raw = sentry_server.raw()
    import re as _re

    for m in _re.finditer(rb"cookie-value-42", raw):
        print("LEAK", raw[max(0, m.start() - 300) : m.end() + 100])
    _assert_no_secret(raw)
    assert b"tok-abcdef" not in raw
    assert all(e.path == "/api/1/envelope/" for e in sentry_server.envelopes)
    # the SDK gzips envelopes by default; the server above decompresses them
    assert {e.headers.get("Content-Encoding") for e in sentry_server.envelopes} == {"gzip"}

    (event,) = sentry_server.payloads("event")
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == f"provider refused key {REDACTED}"
    assert event["release"] == "nomosx@0.1.0"
    assert event["environment"] == "test"
    tags = event["tags"]
    assert tags["agent"] == "analyst"
    assert tags["question"] == "Does X?"
    assert tags["run_id"] == "r1"
    assert tags["provider"] == "openai"
    assert tags["sources"] == "7"
    request = event["request"]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    for name in ("authorization", "cookie", "x-api-key", "x-upstream-token"):
        assert headers.get(name) in (REDACTED, "", None), name
    assert headers["accept"] == "application/json"
    assert not request.get("cookies")
    assert request["query_string"] == f"api_key={REDACTED}&page=2"
    crumbs = event["breadcrumbs"]["values"]
    assert any(crumb.get("message") == "about to fail" for crumb in crumbs)

    (transaction,) = sentry_server.payloads("transaction")
    assert transaction["release"] == "nomosx@0.1.0"
    assert transaction["transaction"] == "/briefs/{brief_id}"


async def test_a_logged_exception_reaches_sentry_scrubbed(sentry_server: SentryServer) -> None:
    assert init_sentry(_settings(sentry_server), release="r", traces_sample_rate=0.0)
    setup_logging(json=True)
    log = get_logger("nomosx.jobs")
    with job_scope(agent="reader", run_id="r9", question="q" * 300):
        try:
            raise ValueError(f"upstream said: bad key {SECRET}")
        except ValueError:
            log.exception("job failed", password=DB_PASSWORD)
    _flush()
    _assert_no_secret(sentry_server.raw())
    (event,) = sentry_server.payloads("event")
    assert event["logger"] == "nomosx.jobs"
    assert event["level"] == "error"
    assert event["logentry"]["formatted"] == "job failed"
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["tags"]["agent"] == "reader"
    assert event["tags"]["run_id"] == "r9"
    assert event["tags"]["question"] == "q" * 200
    assert "agent" not in sentry_sdk.get_isolation_scope()._tags


async def test_a_successful_request_sends_a_clean_transaction(
    sentry_server: SentryServer,
) -> None:
    init_sentry(_settings(sentry_server), release="r", traces_sample_rate=1.0)
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://nomosx.test") as client:
        response = await client.get(
            f"/ok?token={SECRET}", headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert response.status_code == 200
    _flush()
    _assert_no_secret(sentry_server.raw())
    (transaction,) = sentry_server.payloads("transaction")
    assert transaction["request"]["query_string"] == f"token={REDACTED}"


def test_without_a_dsn_nothing_is_initialised() -> None:
    assert not init_sentry(Settings(), release="r", traces_sample_rate=1.0)
    assert not init_sentry(Settings(sentry_dsn="  "), release="r", traces_sample_rate=1.0)
    assert not sentry_sdk.get_client().is_active()
    assert known_secrets() == frozenset()


def test_tag_scope_restores_tags_after_a_normal_exit() -> None:
    with sentry_sdk.isolation_scope() as scope:
        tag_scope(agent="scout", run_id="r1")
        with tag_scope(agent="analyst", provider="anthropic", sources=3, request_id="req"):
            assert scope._tags["agent"] == "analyst"
            assert scope._tags["sources"] == "3"
            assert scope._tags["request_id"] == "req"
        assert scope._tags == {"agent": "scout", "run_id": "r1"}
        with pytest.raises(RuntimeError), tag_scope(agent="editor"):
            raise RuntimeError("kept for the error report")
        assert scope._tags["agent"] == "editor"
        register_secrets([SECRET])
        tag_scope(question=f"is {SECRET} valid?")
        assert scope._tags["question"] == f"is {REDACTED} valid?"


def test_scrub_event_covers_every_part_of_an_event() -> None:
    register_secrets([SECRET])
    event: dict[str, Any] = {
        "message": f"failed with {SECRET}",
        "request": {
            "url": "https://user:pw@api.example.org/x",
            "headers": {"Authorization": "Basic abc", "Set-Cookie": "a=b", "Accept": "*/*"},
            "cookies": {"session": COOKIE_VALUE},
            "query_string": [["api_key", "k1"], ["page", "2"], "junk"],
            "data": {"password": "p", "question": "why?"},
            "env": {"REMOTE_ADDR": "127.0.0.1"},
        },
        "extra": {"client_secret": "cs", "note": SECRET},
        "contexts": {"llm": {"api_key": "k2", "model": "gpt"}},
        "tags": {"agent": "analyst"},
        "user": {"id": "u1"},
        "breadcrumbs": {
            "values": [{"data": {"token": "t", "url": f"https://x/?key={SECRET}"}}, "junk"]
        },
        "spans": [{"data": {"db.password": "p", "db.system": "postgresql"}}],
        "exception": {
            "values": [
                {
                    "type": "RuntimeError",
                    "value": SECRET,
                    "stacktrace": {"frames": [{"vars": {"api_key": "'k3'", "n": "1"}}]},
                }
            ]
        },
        "threads": {"values": [{"stacktrace": {"frames": [{"vars": {"secret": "x"}}]}}]},
        "fingerprint": [SECRET, 1],
        SECRET: "a key that is a secret",
    }
    scrubbed: dict[str, Any] = dict(scrub_event(event, {}))  # type: ignore[arg-type]
    assert SECRET not in json.dumps(scrubbed)
    request = scrubbed["request"]
    assert request["url"] == "https://api.example.org/x"
    assert request["headers"] == {
        "Authorization": REDACTED,
        "Set-Cookie": REDACTED,
        "Accept": "*/*",
    }
    assert request["cookies"] == {}
    assert request["query_string"] == [["api_key", REDACTED], ["page", "2"]]
    assert request["data"] == {"password": REDACTED, "question": "why?"}
    assert scrubbed["extra"] == {"client_secret": REDACTED, "note": REDACTED}
    assert scrubbed["contexts"] == {"llm": {"api_key": REDACTED, "model": "gpt"}}
    assert scrubbed["breadcrumbs"]["values"][0]["data"] == {
        "token": REDACTED,
        "url": f"https://x/?key={REDACTED}",
    }
    assert scrubbed["spans"][0]["data"] == {"db.password": REDACTED, "db.system": "postgresql"}
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"] == {"api_key": REDACTED, "n": "1"}
    assert scrubbed["threads"]["values"][0]["stacktrace"]["frames"][0]["vars"] == {
        "secret": REDACTED
    }
    assert scrubbed["fingerprint"] == [REDACTED, 1]
    assert scrubbed[REDACTED] == "a key that is a secret"


def test_scrub_event_accepts_a_query_given_as_a_dict() -> None:
    event: dict[str, Any] = {"request": {"query_string": {"token": "t", "q": "x"}}}
    scrubbed: dict[str, Any] = dict(scrub_event(event, {}))  # type: ignore[arg-type]
    assert scrubbed["request"]["query_string"] == [["token", REDACTED], ["q", "x"]]
