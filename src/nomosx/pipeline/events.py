"""Progress events of a pipeline run, independent of how they are shown (CLI, SSE)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

STAGES: tuple[str, ...] = ("scout", "index", "rank", "read", "analyse", "guard", "edit")


@dataclass(frozen=True, slots=True)
class StageEvent:
    stage: str
    status: Literal["start", "end"]
    counts: dict[str, int] = field(default_factory=dict)
    duration_ms: float | None = None


EventHandler = Callable[[StageEvent], Awaitable[None]]
