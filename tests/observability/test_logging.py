"""structlog set-up: JSON lines, context fields, stdlib routing, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys

import pytest
import structlog

from nomosx.observability.context import bind
from nomosx.observability.logging import get_logger, reset_logging, setup_logging
from nomosx.observability.secrets import REDACTED, register_secrets

from .conftest import LogReader

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


def _ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if h.get_name() == "nomosx-structlog"]


def test_json_lines_carry_the_standard_fields_and_bound_context(
    read_json_logs: LogReader,
) -> None:
    setup_logging(json=True)
    log = get_logger("nomosx.test")
    with bind(request_id="req-1", run_id="r1"):
        log.info("brief done", sources=7)
    log.info("outside")
    first, second = read_json_logs()
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]
    assert first["event"] == "brief done"
    assert first["level"] == "info"
    assert first["logger"] == "nomosx.test"
    assert ISO_UTC.match(first["timestamp"])
    assert first["request_id"] == "req-1"
    assert first["run_id"] == "r1"
    assert first["sources"] == 7
    assert "request_id" not in second


def test_stdlib_records_come_out_in_the_same_format(read_json_logs: LogReader) -> None:
    setup_logging(json=True)
    with bind(request_id="req-2"):
        logging.getLogger("nomosx.x").warning("cache %s refused", "GET", extra={"op": "get"})
        logging.getLogger("uvicorn.error").info("Started server process")
    warning, uvicorn = read_json_logs()
    assert warning["event"] == "cache GET refused"
    assert warning["level"] == "warning"
    assert warning["logger"] == "nomosx.x"
    assert warning["request_id"] == "req-2"
    assert warning["op"] == "get"
    assert ISO_UTC.match(warning["timestamp"])
    assert "message" not in warning  # set by pytest's own capture handler
    assert uvicorn["logger"] == "uvicorn.error"
    assert uvicorn["request_id"] == "req-2"


async def test_fields_follow_a_task_started_while_bound(read_json_logs: LogReader) -> None:
    setup_logging(json=True)
    log = get_logger("nomosx.jobs")

    async def job() -> None:
        await asyncio.sleep(0)
        log.info("job ran")
        logging.getLogger("nomosx.jobs.std").info("stdlib in job")

    with bind(request_id="req-3"):
        task = asyncio.create_task(job())
    await task
    lines = read_json_logs()
    assert [line["event"] for line in lines] == ["job ran", "stdlib in job"]
    assert all(line["request_id"] == "req-3" for line in lines)


def test_exceptions_are_one_string_field(read_json_logs: LogReader) -> None:
    setup_logging(json=True)
    register_secrets(["sk-secret-123"])
    log = get_logger("nomosx.test")
    try:
        raise ValueError("provider refused sk-secret-123")
    except ValueError:
        log.exception("call failed")
        logging.getLogger("nomosx.std").exception("std failed")
    try:
        raise KeyError("k")
    except KeyError as exc:
        error = exc
    log.error("given explicitly", exc_info=error)
    try:
        raise OSError("disk")
    except OSError:
        log.error("as a tuple", exc_info=sys.exc_info())
    log.error("no exception here", exc_info=True)
    structlog_line, std_line, explicit, as_tuple, nothing = read_json_logs()
    for line in (structlog_line, std_line):
        assert isinstance(line["exception"], str)
        assert "Traceback" in line["exception"]
        assert f"ValueError: provider refused {REDACTED}" in line["exception"]
        assert line["level"] == "error"
    assert "KeyError" in explicit["exception"]
    assert "OSError: disk" in as_tuple["exception"]
    assert "exception" not in nothing


def test_secrets_are_redacted_by_name_and_by_value(
    read_json_logs: LogReader, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(json=True)
    register_secrets(["sk-secret-123", "pg-password-9"])
    log = get_logger("nomosx.test")

    class Leaky:
        def __repr__(self) -> str:
            return "Leaky(sk-secret-123)"

    log.info(
        "calling sk-secret-123",
        api_key="zzz-not-registered",
        authorization="Bearer abc",
        cookie="session=1",
        dsn="https://k@sentry/1",
        password="hunter2",
        client_secret="cs",
        headers={"X-Api-Key": "k", "Accept": "json"},
        input_tokens=12,
        url="postgresql://app:pg-password-9@db:5432/x",
        endpoint="https://api.example.org/v1?token=abc&q=1",
        obj=Leaky(),
    )
    logging.getLogger("nomosx.x").warning("db at %s", "postgresql://app:other@db/x")
    raw = capsys.readouterr().err
    assert "sk-secret-123" not in raw
    assert "pg-password-9" not in raw
    for leaked in ("zzz-not-registered", "Bearer abc", "hunter2", "session=1", "other@"):
        assert leaked not in raw
    line, std = (json.loads(x) for x in raw.splitlines())
    assert line["event"] == f"calling {REDACTED}"
    for key in ("api_key", "authorization", "cookie", "dsn", "password", "client_secret"):
        assert line[key] == REDACTED
    assert line["headers"] == {"X-Api-Key": REDACTED, "Accept": "json"}
    assert line["input_tokens"] == 12
    assert line["url"] == "postgresql://db:5432/x"
    assert line["endpoint"] == f"https://api.example.org/v1?token={REDACTED}&q=1"
    assert line["obj"] == f"Leaky({REDACTED})"
    assert std["event"] == "db at postgresql://db/x"


def test_setup_is_idempotent(read_json_logs: LogReader) -> None:
    setup_logging(json=True)
    setup_logging(json=True, level="debug")
    assert len(_ours()) == 1
    get_logger("nomosx.test").debug("once")
    assert [line["event"] for line in read_json_logs()] == ["once"]
    assert logging.getLogger().level == logging.DEBUG


def test_level_filters_both_kinds_of_records(read_json_logs: LogReader) -> None:
    setup_logging(json=True, level="WARNING")
    get_logger("nomosx.test").info("hidden")
    logging.getLogger("nomosx.x").info("hidden too")
    get_logger().warning("shown")
    lines = read_json_logs()
    assert [line["event"] for line in lines] == ["shown"]
    assert lines[0]["logger"] == __name__


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging(json=True, level="LOUD")


def test_uvicorn_loggers_are_routed_through_ours(read_json_logs: LogReader) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.NullHandler())
    access.propagate = False
    setup_logging(json=True)
    assert access.handlers == []
    assert access.propagate
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/x?token=t", "1.1", 200)
    (line,) = read_json_logs()
    assert line["event"] == f'127.0.0.1:5000 - "GET /x?token={REDACTED} HTTP/1.1" 200'


def test_console_renderer_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(json=False)
    register_secrets(["sk-secret-123"])
    log = get_logger("nomosx.test")
    with bind(request_id="req-4"):
        log.info("hello", api_key="sk-secret-123", count=3)
        try:
            raise RuntimeError("bad key sk-secret-123")
        except RuntimeError:
            log.exception("failed")
    err = capsys.readouterr().err
    assert "hello" in err
    assert "request_id=req-4" in err
    assert f"api_key={REDACTED}" in err
    assert "count=3" in err
    assert "RuntimeError" in err
    assert "sk-secret-123" not in err
    assert "\x1b[" not in err  # no colours when stderr is not a terminal


def test_reset_logging_removes_our_handler() -> None:
    setup_logging(json=True)
    reset_logging()
    assert _ours() == []
    assert not structlog.is_configured()
