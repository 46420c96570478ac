"""The process's secret registry and the redaction shared by logging and Sentry.

Two kinds of redaction, applied everywhere logs or error reports leave the process:

* **by value** — every string that contains a registered secret (an API key, the
  password of ``DATABASE_URL``…) has it replaced by ``[redacted]``. Settings feed the
  registry once at start-up: ``register_secrets(secrets_from_settings(settings))``.
* **by name** — a value stored under a secret-looking key (``api_key``, ``x-api-key``,
  ``access_token``, ``client_secret``, ``password``, ``authorization``, ``cookie``,
  ``dsn``…) is replaced whatever it is, except numbers and booleans (``max_tokens=512``
  is not a secret).

Whatever the registry holds, URL credentials (``scheme://user:password@host``) and
secret-looking query parameters (``?api_key=…``, ``&token=…``) are stripped from strings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from nomosx.config import Settings

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "clear_secrets",
    "is_secret_key",
    "known_secrets",
    "redact",
    "redact_value",
    "register_secrets",
    "secrets_from_settings",
]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted by value: replacing a 3-letter password everywhere
would mangle every log line. Key names and URL stripping still cover them."""

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_pattern: re.Pattern[str] | None = None

# scheme://user:password@  (the user part may be empty: redis://:password@host)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@'\"<>]*:[^/\s'\"<>]*@"
)
# ?api_key=…  &token=…  ;password=…  (the name is judged by ``is_secret_key``)
_QUERY_PARAM = re.compile(
    r"(?P<lead>(?:^|[?&;])(?P<name>[^=&#?;\s'\"<>]+)=)(?P<value>[^&#;\s'\"<>]+)"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


def register_secrets(values: Iterable[str | SecretStr | None]) -> None:
    """Add values to the registry (``None``, blanks and very short values are ignored).

    The percent-encoded and decoded forms are registered too, so a password is also
    caught where it appears inside a URL.
    """
    global _secrets, _pattern
    found: set[str] = set()
    for value in values:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if raw is None:
            continue
        raw = raw.strip()
        for form in (raw, quote(raw, safe=""), unquote(raw)):
            if len(form) >= MIN_SECRET_LENGTH:
                found.add(form)
    if not found:
        return
    with _lock:
        if found <= _secrets:
            return
        _secrets = _secrets | found
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (tests; a settings reload)."""
    global _secrets, _pattern
    with _lock:
        _secrets = frozenset()
        _pattern = None


def known_secrets() -> frozenset[str]:
    return _secrets


def redact(text: str) -> str:
    """``text`` without registered secrets, URL credentials or secret query parameters."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(r"\g<scheme>", text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_redact_param, text)
    return text


def _redact_param(match: re.Match[str]) -> str:
    if is_secret_key(match["name"]) and match["value"] != REDACTED:
        return match["lead"] + REDACTED
    return match[0]


def is_secret_key(name: str) -> bool:
    """Whether a field, header or parameter name looks like it holds a secret.

    The name is split into words (``_``, ``-``, ``.``, camelCase), so ``api_key``,
    ``X-Api-Key``, ``apiKey``, ``access_token``, ``client_secret``, ``db_password``,
    ``Authorization``, ``Set-Cookie`` and ``sentry_dsn`` match, while ``keywords``,
    ``tokenizer`` and ``author`` do not.
    """
    words = _SPLIT.split(_CAMEL.sub("_", name).lower())
    for word in words:
        if not word:
            continue
        if word.endswith(("key", "keys", "token", "tokens")):
            return True
        if any(part in word for part in ("secret", "passw", "credential", "authorization")):
            return True
        if word.startswith("cookie") or word in ("pwd", "dsn", "auth", "jwt", "sessionid"):
            return True
    return False


def redact_value(value: Any, *, _depth: int = 0) -> Any:
    """A copy of ``value`` with strings redacted and secret-named entries replaced.

    Dicts, lists and tuples are walked (copied, never mutated); a two-item list or tuple
    whose first item is a secret name (a header pair) has its second item replaced;
    other objects are returned as they are.
    """
    if isinstance(value, str):
        return redact(value)
    if _depth > 20:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                _redact_named(item)
                if isinstance(key, str) and is_secret_key(key)
                else redact_value(item, _depth=_depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        if _is_secret_pair(value):
            redacted_pair = [redact_value(value[0], _depth=_depth + 1), _redact_named(value[1])]
            return redacted_pair if isinstance(value, list) else tuple(redacted_pair)
        items = [redact_value(item, _depth=_depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _is_secret_pair(value: list[Any] | tuple[Any, ...]) -> bool:
    """A ``(name, value)`` pair under a secret name, as ASGI and WSGI carry headers
    (``[(b"authorization", b"Bearer …")]``, or their ``repr`` once Sentry serialised
    them: ``["b'cookie'", "b'session=…'"]``)."""
    if len(value) != 2:
        return False
    name = value[0]
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    return isinstance(name, str) and len(name) <= 80 and " " not in name and is_secret_key(name)


def _redact_named(value: Any) -> Any:
    """The value of a secret-named key: kept only when it cannot be a secret."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return REDACTED


def secrets_from_settings(settings: Settings) -> list[str]:
    """Every secret the settings hold: each ``SecretStr`` (API keys, the Sentry DSN and
    its secret key, the keys of OpenAI-compatible providers) and the passwords inside
    ``DATABASE_URL``, ``REDIS_URL`` and ``QDRANT_URL``."""
    found: list[str] = []
    _collect(settings, found)
    for url in (settings.database_url, settings.redis_url, settings.qdrant_url):
        if url:
            found.extend(_url_secrets(url))
    if settings.sentry_dsn is not None:
        found.extend(_url_secrets(settings.sentry_dsn.get_secret_value()))
    return list(dict.fromkeys(s for s in found if s))


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    return [password, unquote(password)] if password else []
