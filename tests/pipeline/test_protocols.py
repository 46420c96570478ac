"""The built-in stages satisfy the stage protocols (checked by mypy on this file)."""

from __future__ import annotations

from nomosx.pipeline.analyse import ExtractiveAnalyst
from nomosx.pipeline.edit import BriefEditor
from nomosx.pipeline.guard import CitationGuard
from nomosx.pipeline.protocols import Analyst, Editor, Guard, Reader
from nomosx.pipeline.read import SentenceReader


def test_built_in_stages_implement_the_protocols() -> None:
    reader: Reader = SentenceReader()
    analyst: Analyst = ExtractiveAnalyst()
    guard: Guard = CitationGuard()
    editor: Editor = BriefEditor()
    assert analyst.name == "extractive"
    assert all(callable(m) for m in (reader.read, analyst.analyse, guard.guard, editor.render))
