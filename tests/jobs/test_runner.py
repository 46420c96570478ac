"""The job runner: what a try does before, and instead of, running the pipeline."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from nomosx.app import NomosX
from nomosx.errors import NoSourcesError
from nomosx.jobs.base import BriefJobRequest
from nomosx.jobs.runner import INTERRUPTED, LOST, make_runner
from nomosx.observability.metrics import Metrics
from nomosx.pipeline.events import StageEvent


class FakeApp:
    """The parts of ``NomosX`` the runner uses."""

    def __init__(self, *, stored: bool = False, brief: Any = None) -> None:
        self.stored = stored
        self.abandoned: list[tuple[str, str]] = []
        self.asked: list[dict[str, Any]] = []
        self.writing = asyncio.Event()
        self._brief = brief
        self.runs = SimpleNamespace(abandon_running=self._abandon)
        self.briefs = SimpleNamespace(exists=self._exists)

    async def _abandon(self, brief_id: str, reason: str) -> int:
        self.abandoned.append((brief_id, reason))
        return 1

    async def _exists(self, brief_id: str) -> bool:
        return self.stored

    async def brief(self, question: str, **options: Any) -> Any:
        self.asked.append({"question": question, **options})
        self.writing.set()
        if self._brief is not None:
            return await self._brief(options["on_event"])
        return SimpleNamespace(brief=SimpleNamespace(id=options["brief_id"]))


async def _ignore(event: StageEvent) -> None:
    return None


def _runner(app: FakeApp, metrics: Metrics | None = None) -> Any:
    return make_runner(cast(NomosX, app), metrics)


REQUEST = BriefJobRequest("b1", "Does tea help?", sources=4, owner_id="u1")


async def test_a_brief_stored_by_a_dead_try_is_not_written_again() -> None:
    app = FakeApp(stored=True)
    assert await _runner(app)(REQUEST, _ignore) == "b1"
    assert app.asked == []
    assert app.abandoned == [("b1", LOST)]


async def test_the_brief_is_written_under_its_id_for_its_owner_with_stage_metrics() -> None:
    seen: list[StageEvent] = []

    async def write(on_event: Any) -> Any:
        await on_event(StageEvent("scout", "end", counts={"sources": 2}, duration_ms=12.0))
        return SimpleNamespace(brief=SimpleNamespace(id="b1"))

    async def record(event: StageEvent) -> None:
        seen.append(event)

    app = FakeApp(brief=write)
    metrics = Metrics()
    assert await _runner(app, metrics)(REQUEST, record) == "b1"
    (asked,) = app.asked
    assert asked["question"] == "Does tea help?"
    assert (asked["brief_id"], asked["owner_id"], asked["sources"], asked["fresh"]) == (
        "b1",
        "u1",
        4,
        True,
    )
    assert [e.stage for e in seen] == ["scout"]
    assert 'nomosx_pipeline_stage_duration_seconds_count{stage="scout"} 1.0' in (
        metrics.render().decode()
    )


async def test_an_interrupted_try_marks_its_run_failed() -> None:
    async def stall(on_event: Any) -> Any:
        await asyncio.Event().wait()

    app = FakeApp(brief=stall)
    task = asyncio.create_task(_runner(app)(REQUEST, _ignore))
    await asyncio.wait_for(app.writing.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert app.abandoned == [("b1", LOST), ("b1", INTERRUPTED)]


async def test_the_question_s_failure_passes_through() -> None:
    async def nothing(on_event: Any) -> Any:
        raise NoSourcesError("nothing about tea")

    with pytest.raises(NoSourcesError):
        await _runner(FakeApp(brief=nothing))(REQUEST, _ignore)
