"""The standing fuzz target of the macro handler: ``python -m tests.fuzz.fuzz_handler --minutes N``.

It draws events from ``tests.property.strategies.fuzz_events()`` (valid meshes of random shape, and meshes
mutated in the section, in the resources it references, anywhere in the template and in the event), calls
``composex_mesh.handler.lambda_handler`` and checks every invariant of ``tests/property/invariants.py``.

Hypothesis drives it, in chunks of examples with a fresh seed each, until the time is up. A failure with a
new *signature* (the broken rule, and for an ``Internal error`` the exception and the line of the macro
that raised it) is shrunk to a minimal event and saved under ``tests/fuzz/findings/`` as JSON
(``{signature, rule, detail, event}``); a failure whose signature is known is counted, not shrunk again.
``tests/fuzz/test_fuzz.py`` replays every saved finding, and runs this target for a few seconds in CI.

Exit status: 0 when nothing failed, 1 when something did (the findings are listed).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from composex_mesh.transform import Context, expand
from tests.property.invariants import InvariantError, check_event, json_copy
from tests.property.strategies import Generated, fuzz_events

FINDINGS_DIR = Path(__file__).resolve().parent / "findings"
CHUNK = 250
SHRINK_GRACE = 60.0
"""Seconds a shrink in progress may go on past the end of the run."""


@dataclass
class Report:
    """What a fuzz run did."""

    tried: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    """Signature -> how many generated events failed with it."""
    saved: dict[str, Path] = field(default_factory=dict)
    """Signature -> the finding file of its (shrunk) event."""

    def summary(self) -> str:
        lines = [
            f"fuzz: {self.tried} events in {self.seconds:.0f}s ({self.tried / max(self.seconds, 1e-9):.0f}/s); "
            + ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items())),
            f"fuzz: {len(self.failures)} distinct failure(s), {sum(self.failures.values())} failing event(s)",
        ]
        lines.extend(
            f"  {count:6d}  {signature}  -> {self.saved.get(signature, '-')}"
            for signature, count in self.failures.most_common()
        )
        return "\n".join(lines)


def signature(event: Any, error: InvariantError) -> str:
    """What tells two failures apart: the rule, and where the macro raised for an internal error."""
    if error.rule != "internal-error":
        detail = re.sub(r"^\[.*?\] ", "", error.detail.splitlines()[0])  # the path names the user's parts
        detail = re.sub(r"\[.*?\]|'[^']*'|\"[^\"]*\"|\d+", "_", detail)[:120]
        return f"{error.rule}: {detail}"
    where = _raising_frame(event)
    kind = error.detail.split(":", 2)[1].strip() if error.detail.count(":") >= 2 else error.detail
    return f"internal-error: {kind} at {where}"


def _raising_frame(event: Any) -> str:
    """The innermost frame of the macro (or of troposphere) in the traceback ``expand()`` gives for ``event``."""
    fragment = event.get("fragment") if isinstance(event, Mapping) else None
    if not isinstance(fragment, Mapping):
        return "the handler"
    params = event.get("params")
    values = event.get("templateParameterValues")
    context = Context(
        region=str(event.get("region") or "us-east-1"),
        params=params if isinstance(params, Mapping) else {},
        template_parameter_values=values if isinstance(values, Mapping) else {},
    )
    try:
        expand(copy.deepcopy(fragment), context)
    except RecursionError:
        return "RecursionError (deep nesting)"
    except Exception as raised:
        frames = traceback.extract_tb(raised.__traceback__)
        ours = [frame for frame in frames if "composex_mesh" in frame.filename]
        callers = [frame for frame in ours if Path(frame.filename).name != "base.py"]  # base.build: generic
        ours = callers or ours
        if ours:
            frame = ours[-1]
            where = f"{Path(frame.filename).name}:{frame.name}:{frame.lineno}"
            if frames[-1] is not frame:  # raised in a library (troposphere) called from there
                where += f" (in {Path(frames[-1].filename).parent.name}/{Path(frames[-1].filename).name})"
            return where
    return "the handler"


def save_finding(directory: Path, sig: str, error: InvariantError, event: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(sig.encode()).hexdigest()[:10]
    path = directory / f"{error.rule}-{digest}.json"
    record = {"signature": sig, "rule": error.rule, "detail": error.detail[:4000], "event": event}
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=repr) + "\n", encoding="utf-8")
    return path


def _run_chunk(
    report: Report, chunk_seed: int, deadline: float, shrink: bool, size: int = CHUNK
) -> tuple[str, InvariantError, Any] | None:
    """``size`` events from ``chunk_seed``; the first new failure is shrunk and returned with its signature."""
    target: dict[str, Any] = {}

    @settings(
        max_examples=size,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink] if shrink else [Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @seed(chunk_seed)
    @given(fuzz_events())
    def fuzz_once(generated: Generated) -> None:
        now = time.monotonic()
        if now >= deadline and (not target or now >= deadline + SHRINK_GRACE):
            return  # time is up: passing ends the chunk (and a shrink, with the smallest event so far)
        report.tried += 1
        event = generated.event
        try:
            outcome = check_event(event)
        except InvariantError as error:
            sig = signature(event, error)
            report.failures[sig] += 1
            if sig in report.saved or target.get("signature", sig) != sig:
                return  # known, or not the one being shrunk now: counted, not raised
            target.update(signature=sig, error=error, event=json_copy(event))
            raise
        report.outcomes[outcome.status] += 1

    with contextlib.redirect_stdout(io.StringIO()):  # Powertools prints metrics on stdout
        try:
            fuzz_once()
        except InvariantError:
            pass
        except Exception as error:  # a Hypothesis or harness problem must not stop the run
            print(f"fuzz: seed {chunk_seed}: {type(error).__name__}: {error}", file=sys.stderr)
    if not target:
        return None
    return target["signature"], target["error"], target["event"]


def run(
    seconds: float,
    *,
    start_seed: int = 0,
    findings: Path = FINDINGS_DIR,
    progress: bool = False,
    shrink: bool = True,
    max_events: int | None = None,
) -> Report:
    """Fuzz the handler for ``seconds`` (or ``max_events`` events, if fewer); returns what was tried and found.

    The same ``start_seed`` gives the same events in the same order: with ``max_events``, a run that is not
    cut short by the time is reproducible.
    """
    report = Report()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    last_progress = started
    macro_logger = logging.getLogger("composex-mesh")
    level = macro_logger.level
    macro_logger.setLevel(logging.CRITICAL)  # internal errors are logged with a traceback: we collect them instead
    chunk = 0
    try:
        while time.monotonic() < deadline and (max_events is None or report.tried < max_events):
            size = CHUNK if max_events is None else min(CHUNK, max_events - report.tried)
            found = _run_chunk(report, start_seed + chunk, deadline, shrink, size)
            if found is not None:
                sig, error, event = found
                report.saved[sig] = save_finding(findings, sig, error, event)
                if progress:
                    print(f"fuzz: new failure {sig} -> {report.saved[sig]}", file=sys.stderr)
            chunk += 1
            now = time.monotonic()
            if progress and now - last_progress > 30:
                last_progress = now
                print(
                    f"fuzz: {report.tried} events, {now - started:.0f}s, {len(report.failures)} distinct failure(s)",
                    file=sys.stderr,
                )
    finally:
        macro_logger.setLevel(level)
        report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to fuzz (default 1)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="first seed (default: the time)")
    parser.add_argument("--findings", type=Path, default=FINDINGS_DIR, help="where to save failing events")
    parser.add_argument("--no-shrink", action="store_true", help="save failing events as found, unshrunk")
    arguments = parser.parse_args(argv)
    print(f"fuzz: {arguments.minutes} minute(s) from seed {arguments.seed}", file=sys.stderr)
    report = run(
        arguments.minutes * 60,
        start_seed=arguments.seed,
        findings=arguments.findings,
        progress=True,
        shrink=not arguments.no_shrink,
    )
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
