"""Sentry error tracking, with every event scrubbed of credentials before it is sent.

``init_sentry(settings, release=..., traces_sample_rate=...)`` turns Sentry on when
``SENTRY_DSN`` is set. Every error and transaction passes through ``scrub_event``, which
removes credential headers, cookies and secret query parameters, redacts values under
secret-looking keys, and replaces every registered secret value (the registry of
``nomosx.observability.secrets``, fed from the settings) wherever it appears.

``tag_scope(agent=..., run_id=...)`` labels what is running, so that an error report
says which agent, question, run, LLM provider and how many sources were involved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.integrations.starlette import StarletteIntegration

from nomosx.observability.secrets import (
    REDACTED,
    is_secret_key,
    redact,
    redact_value,
    register_secrets,
    secrets_from_settings,
)

if TYPE_CHECKING:
    from sentry_sdk._types import Event, Hint

    from nomosx.config import Settings

__all__ = ["TagScope", "init_sentry", "job_scope", "scrub_event", "tag_scope"]

QUESTION_TAG_LENGTH = 200
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)


def init_sentry(settings: Settings, *, release: str, traces_sample_rate: float) -> bool:
    """Start Sentry when ``settings.sentry_dsn`` is set; returns whether it was started.

    The settings' secrets are registered for redaction first (``register_secrets``), so
    they never leave in an event even if the caller forgot to register them.
    """
    dsn = settings.sentry_dsn.get_secret_value().strip() if settings.sentry_dsn else ""
    if not dsn:
        return False
    register_secrets(secrets_from_settings(settings))
    # An access log line per request is noise as a breadcrumb.
    ignore_logger("uvicorn.access")
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=settings.env,
        traces_sample_rate=traces_sample_rate,
        # No ``send_default_pii=False``: sentry-sdk 2.75 deprecates the option (a
        # DeprecationWarning) and leaving it unset means the same thing: no PII, and the
        # SDK's own EventScrubber stays on underneath ``scrub_event``.
        integrations=[
            StarletteIntegration(),
            FastApiIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        # Trace headers (sentry-trace, baggage) go to no one: the default, every host,
        # would send them to OpenAI, OpenAlex, Crossref... with each request.
        trace_propagation_targets=[],
    )
    return True


def scrub_event(event: Event, hint: Hint) -> Event:
    """Remove credentials from a Sentry event (errors and transactions alike).

    * request: ``Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Api-Key`` and every
      header whose name looks secret are redacted; cookies are dropped; secret query
      parameters and secret-named body fields are redacted;
    * ``extra``, ``contexts``, ``tags``, breadcrumb data, span data and the local
      variables of stack frames: values under secret-looking keys are redacted;
    * everywhere: every registered secret value, URL credentials and secret query
      parameters inside strings.
    """
    data = cast(dict[str, Any], event)
    request = data.get("request")
    if isinstance(request, dict):
        _scrub_request(request)
    for key in ("extra", "contexts", "tags", "user"):
        if isinstance(data.get(key), dict):
            data[key] = redact_value(data[key])
    for crumb in _items(data.get("breadcrumbs")):
        if isinstance(crumb.get("data"), dict):
            crumb["data"] = redact_value(crumb["data"])
    for span in _items(data.get("spans")):
        if isinstance(span.get("data"), dict):
            span["data"] = redact_value(span["data"])
    for frame in _frames(data):
        if isinstance(frame.get("vars"), dict):
            frame["vars"] = redact_value(frame["vars"])
    return cast("Event", _redact_strings(data))


def _scrub_request(request: dict[str, Any]) -> None:
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {
            name: (
                REDACTED
                if isinstance(name, str)
                and (name.lower() in _SENSITIVE_HEADERS or is_secret_key(name))
                else value
            )
            for name, value in headers.items()
        }
    if "cookies" in request:
        request["cookies"] = {}
    query = request.get("query_string")
    if isinstance(query, str):
        request["query_string"] = redact(query)
    elif isinstance(query, list | dict):
        pairs = query.items() if isinstance(query, dict) else query
        request["query_string"] = [
            [name, REDACTED if isinstance(name, str) and is_secret_key(name) else value]
            for name, value in (
                pair for pair in pairs if isinstance(pair, list | tuple) and len(pair) == 2
            )
        ]
    for key in ("data", "env"):
        if isinstance(request.get(key), dict):
            request[key] = redact_value(request[key])


def _items(value: Any) -> Iterator[dict[str, Any]]:
    """The dicts of a Sentry list, given bare or as ``{"values": [...]}``."""
    if isinstance(value, dict):
        value = value.get("values")
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _frames(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("exception", "threads"):
        for item in _items(data.get(key)):
            stacktrace = item.get("stacktrace")
            if isinstance(stacktrace, dict):
                yield from _items(stacktrace.get("frames"))


def _redact_strings(value: Any) -> Any:
    """Every string in a JSON-like value, redacted (dict keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            (redact(key) if isinstance(key, str) else key): _redact_strings(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_strings(item) for item in value]
    return value


class TagScope:
    """Sentry tags set on the isolation scope (the request's, or the job's).

    The tags are set as soon as ``tag_scope(...)`` is called. Used as a context manager,
    the previous values come back when the block ends normally; when it ends with an
    exception they stay, so that the error report of that exception carries them.
    """

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags
        self._scope = sentry_sdk.get_isolation_scope()
        current: dict[str, Any] = getattr(self._scope, "_tags", {})
        self._previous = {name: current.get(name) for name in tags}
        self._scope.set_tags(tags)

    def __enter__(self) -> TagScope:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            return
        for name, value in self._previous.items():
            if value is None:
                self._scope.remove_tag(name)
            else:
                self._scope.set_tag(name, value)


def tag_scope(
    *,
    agent: str | None = None,
    question: str | None = None,
    run_id: str | None = None,
    provider: str | None = None,
    sources: int | None = None,
    request_id: str | None = None,
) -> TagScope:
    """Tag what is running: ``tag_scope(agent="analyst", run_id=run.id)`` or
    ``with tag_scope(provider="openai"): ...``. ``None`` arguments are left alone; the
    question is redacted and cut to 200 characters."""
    tags: dict[str, str] = {}
    if agent is not None:
        tags["agent"] = agent
    if question is not None:
        tags["question"] = redact(question)[:QUESTION_TAG_LENGTH]
    if run_id is not None:
        tags["run_id"] = str(run_id)
    if provider is not None:
        tags["provider"] = provider
    if sources is not None:
        tags["sources"] = str(sources)
    if request_id is not None:
        tags["request_id"] = request_id
    return TagScope(tags)


@contextmanager
def job_scope(
    *,
    agent: str | None = None,
    question: str | None = None,
    run_id: str | None = None,
    provider: str | None = None,
    sources: int | None = None,
    request_id: str | None = None,
) -> Iterator[sentry_sdk.Scope]:
    """A fresh isolation scope for a background job, tagged; tags set inside the job
    do not leak into the request that started it (``create_task`` shares its scope).
    Capture the job's failure inside the block so that the report carries the tags."""
    with sentry_sdk.isolation_scope() as scope:
        tag_scope(
            agent=agent,
            question=question,
            run_id=run_id,
            provider=provider,
            sources=sources,
            request_id=request_id,
        )
        yield scope
