"""Reports how many generated events the property tests ran, and how they ended."""

from __future__ import annotations

from typing import Any

from .invariants import TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY.checked:
        outcomes = ", ".join(f"{count} {name}" for name, count in sorted(TALLY.outcomes.items()))
        terminalreporter.write_line(f"property tests: {TALLY.checked} generated events checked ({outcomes})")
