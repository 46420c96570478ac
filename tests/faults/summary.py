"""A pytest plugin (registered by ``tests/conftest.py``): the fault scenarios' lines in the
terminal summary, so that CI output shows them without ``-s``.

The lines travel in the reports' ``user_properties``, which pytest-xdist sends from its
workers to the controller, where the summary is written.
"""

from __future__ import annotations

import pytest

SCENARIO_KEY = "fault-scenario"

_LINES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _LINES.extend(str(v) for k, v in report.user_properties if k == SCENARIO_KEY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.section("fault injection scenarios")
        for line in _LINES:
            terminalreporter.write_line(line)
