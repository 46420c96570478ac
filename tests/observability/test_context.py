"""Request ids and bound fields."""

from __future__ import annotations

import asyncio
import re

from nomosx.observability.context import (
    bind,
    bound_fields,
    current_request_id,
    new_request_id,
    request_id,
)


def test_new_request_id_is_32_hex_characters_and_unique() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)


def test_bind_sets_and_restores_fields_and_the_request_id() -> None:
    assert current_request_id() is None
    with bind(request_id="req-1", run_id="r1") as fields:
        assert fields == {"request_id": "req-1", "run_id": "r1"}
        assert request_id.get() == "req-1"
        with bind(run_id="r2", agent="analyst", provider=None):
            assert bound_fields() == {"request_id": "req-1", "run_id": "r2", "agent": "analyst"}
        assert bound_fields() == {"request_id": "req-1", "run_id": "r1"}
    assert current_request_id() is None
    assert bound_fields() == {}


def test_bind_restores_on_error() -> None:
    try:
        with bind(request_id="req-err"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert current_request_id() is None
    assert bound_fields() == {}


async def test_tasks_created_while_bound_keep_the_fields() -> None:
    seen: list[tuple[str | None, dict[str, object]]] = []

    async def job() -> None:
        await asyncio.sleep(0)
        seen.append((current_request_id(), bound_fields()))

    with bind(request_id="req-task"):
        task = asyncio.create_task(job())
    later = asyncio.create_task(job())
    await asyncio.gather(task, later)
    assert seen[0] == ("req-task", {"request_id": "req-task"})
    assert seen[1] == (None, {})
    await asyncio.to_thread(lambda: None)
