"""Defensive readers for loosely typed record values, and author-name handling."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_COMMA = re.compile(r"\s*,\s*")
_DIGITS = re.compile(r"[0-9]{1,18}")


def text(value: object) -> str | None:
    """A non-blank string, stripped, or ``None``."""
    if isinstance(value, str) and (stripped := value.strip()):
        return stripped
    return None


def integer(value: object) -> int | None:
    """An ``int`` (not a ``bool``), or a string of digits, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(stripped := value.strip()):
        return int(stripped)
    return None


def boolean(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (OpenAlex uses ``null`` freely)."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def unique(values: Iterable[str | None]) -> list[str]:
    """The distinct non-blank strings of ``values``, first occurrence first."""
    seen: dict[str, None] = {}
    for value in values:
        if value and (stripped := value.strip()):
            seen.setdefault(stripped, None)
    return list(seen)


def top_level(value: str) -> str:
    """``value`` with every character inside ``{...}`` masked, same length, for splitting."""
    out: list[str] = []
    depth = 0
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
        elif depth:
            out.append("\0")
            continue
        out.append(ch)
    return "".join(out)


def split_top_level(value: str, separator: re.Pattern[str]) -> list[str]:
    """Split ``value`` on ``separator`` where it occurs outside braces."""
    parts: list[str] = []
    start = 0
    for match in separator.finditer(top_level(value)):
        parts.append(value[start : match.start()])
        start = match.end()
    parts.append(value[start:])
    return parts


def person_name(name: str) -> str:
    """``First Last`` from ``Last, First`` or ``Last, Jr, First``; other forms unchanged."""
    parts = [part for part in split_top_level(name.strip(), _COMMA) if part]
    if len(parts) == 2:
        return f"{parts[1]} {parts[0]}"
    if len(parts) >= 3:
        return f"{' '.join(parts[2:])} {parts[0]} {parts[1]}"
    return name.strip()
