"""ComposeXMesh benchmark: what users feel, on generated meshes (``meshgen.py``), as a table with its targets.

    .venv/bin/python tests/benchmarks/bench.py [--quick] [--repeat N] [--cold-repeat N] [--ecs-composex-python PATH]

Measured on this machine, in one run (so floors and baselines share its conditions):

- **cold start**: fresh interpreters (medians, interleaved): bare ``python -c pass``, ``import troposphere`` +
  the Powertools ``Logger`` (the floor any troposphere/Powertools macro pays), and ``import
  composex_mesh.handler`` + a first 5-node expansion (what a cold Lambda invocation pays).
  Target: within 2x of troposphere + Logger.
- **warm** expansions through ``handler.lambda_handler`` (5 to 40 nodes, quotas on): median of repeated runs,
  beside the JSON floor (``json.loads`` of the fragment's text + ``json.dumps`` of the output) and their
  ratio; resources added, tracemalloc peak of one call, ru_maxrss growth of one call in a fresh process.
  Targets: 40 nodes within 25x of the floor, peak under 64 MB.
- **the largest template the quotas allow**: the most nodes whose output stays within 500 resources, expanded
  by a fresh interpreter (import + expansion, the cold case) and warm. Target: under 1 s.
- **whole-process render**: ``composex-mesh render`` of a 20-node YAML template, against ECS ComposeX's
  ``ecs-compose-x render`` of the same graph (``meshgen.compose_file``: a docker-compose file with its
  ``x-appmesh`` extension), run offline by ``ecs_composex_offline.py`` with the interpreter that
  ``--ecs-composex-python`` (or ``$ECS_COMPOSEX_PYTHON``) names: a throwaway virtualenv outside the repository
  (see that script for the versions). Target: at least 10x faster.

Not a pytest test: ``tests/test_bench_smoke.py`` keeps it alive.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a script: make ``tests.benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from tests.benchmarks import meshgen  # noqa: E402

HANDLER_SIZES = (5, 10, 20, 40)
RENDER_NODES = 20
COLD_EVENT_NODES = 5
MAX_RESOURCES = 500

TARGET_COLD_RATIO = 2.0
TARGET_FLOOR_RATIO_40 = 25.0
TARGET_PEAK_MB_40 = 64.0
TARGET_QUOTA_SECONDS = 1.0
TARGET_RENDER_SPEEDUP = 10.0


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The handler logs and emits metrics on stdout: send them to /dev/null, as a cost still paid."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _handler() -> Any:
    """``composex_mesh.handler``, its powertools Logger bound to /dev/null (it binds sys.stdout at import)."""
    if "composex_mesh.handler" not in sys.modules:
        sink = open(os.devnull, "w")  # noqa: SIM115 - the Logger keeps writing to it for the process's life
        with contextlib.redirect_stdout(sink):
            import composex_mesh.handler  # noqa: F401
    return sys.modules["composex_mesh.handler"]


def _median_seconds(function: Callable[[], Any], repeat: int) -> float:
    """Median CPU time of ``repeat`` back-to-back runs, as warm invocations come (CPU time, not wall time: on a
    shared machine, other processes' load stretches the wall clock but not the work done)."""
    times = []
    gc.collect()
    for _ in range(repeat):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return statistics.median(times)


@dataclass
class WarmRow:
    nodes: int
    edges: int
    resources_in: int
    resources_added: int
    expand_ms: float
    floor_ms: float
    peak_mb: float
    rss_mb: float | None

    @property
    def ratio(self) -> float:
        return self.expand_ms / self.floor_ms


def expansion_call(nodes: int) -> tuple[Callable[[], dict[str, Any]], dict[str, Any]]:
    """A zero-argument call that expands an ``n``-node event through the handler (returns the output fragment),
    and the event."""
    event = meshgen.event(nodes)
    handler = _handler()

    def call() -> dict[str, Any]:
        with _quiet_stdout():
            answer = handler.lambda_handler(event, None)
        if answer["status"] != "success":
            raise RuntimeError(answer.get("errorMessage"))
        return answer["fragment"]  # type: ignore[no-any-return]

    return call, event


def warm_row(nodes: int, repeat: int, rss: bool = True) -> WarmRow:
    call, event = expansion_call(nodes)
    output = call()  # the first call imports the backend
    fragment_text = json.dumps(event["fragment"])
    expand_s = _median_seconds(call, repeat)
    floor_s = _median_seconds(lambda: (json.loads(fragment_text), json.dumps(output)), max(repeat, 20))
    gc.collect()
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return WarmRow(
        nodes=nodes,
        edges=meshgen.edge_count(nodes),
        resources_in=len(event["fragment"]["Resources"]),
        resources_added=len(output["Resources"]) - len(event["fragment"]["Resources"]),
        expand_ms=expand_s * 1000,
        floor_ms=floor_s * 1000,
        peak_mb=peak / 2**20,
        rss_mb=_rss_growth(nodes) if rss else None,
    )


def largest_within_quota() -> tuple[int, int]:
    """The most nodes whose processed template keeps within CloudFormation's 500 resources, and that count."""
    from composex_mesh.transform import Context, expand

    best = (0, 0)
    for nodes in range(1, 100):
        event = meshgen.event(nodes)
        values = event["templateParameterValues"]
        context = Context(region=event["region"], template_parameter_values=values, check_quotas=False)
        total = len(expand(event["fragment"], context).fragment["Resources"])
        if total > MAX_RESOURCES:
            break
        best = (nodes, total)
    return best


_RSS_CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from tests.benchmarks.bench import expansion_call

def peak_kb():
    # VmHWM: this process's own high-water mark; ru_maxrss can inherit the parent's across fork and exec.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)

warm, _ = expansion_call(1)
warm()
call, _ = expansion_call({nodes!r})
before = peak_kb()
call()
print(peak_kb() - before)
"""


def _rss_growth(nodes: int) -> float | None:
    """Growth of the peak RSS over one expansion in a fresh process (event built, backend imported first)."""
    if sys.platform not in ("linux", "darwin"):
        return None
    code = _RSS_CHILD.format(root=str(ROOT), nodes=nodes)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


# ------------------------------------------------------------------------------------------------- cold


def _python(workdir: Path) -> list[str]:
    """A fresh interpreter whose bytecode cache is its own: written on the first run, then read, for every
    module alike (the Lambda artifact ships .pyc)."""
    return [sys.executable, "-X", f"pycache_prefix={workdir / 'pycache'}"]


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Cost:
    """A fresh process's median wall time and CPU time (user + system), in ms."""

    wall_ms: float
    cpu_ms: float


def _run(argv: list[str], cwd: Path) -> Cost:
    """One fresh process: its wall time and the CPU time it used (``RUSAGE_CHILDREN`` before and after)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=cwd, env=_environment())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Cost(wall * 1000, cpu * 1000)


def _interleaved_medians(commands: dict[str, list[str]], repeat: int, cwd: Path = ROOT) -> dict[str, Cost]:
    """Median costs of each command; one warm-up run each, then rounds, so that drift hits them alike."""
    for argv in commands.values():  # warm the file cache, write the bytecode cache
        _run(argv, cwd)
    samples: dict[str, list[Cost]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            samples[name].append(_run(argv, cwd))
    return {
        name: Cost(statistics.median(c.wall_ms for c in costs), statistics.median(c.cpu_ms for c in costs))
        for name, costs in samples.items()
    }


def _expand_file_command(python: list[str], event_path: Path) -> list[str]:
    return [
        *python,
        "-c",
        "import json, sys; from composex_mesh import handler; "
        f"answer = handler.lambda_handler(json.load(open({str(event_path)!r})), None); "
        "sys.exit(answer['status'] != 'success')",
    ]


COLD_BARE = "python -c pass"
COLD_BASE = "import troposphere + powertools Logger"
COLD_FIRST = f"import handler + first {COLD_EVENT_NODES}-node expansion"


def cold_rows(repeat: int, workdir: Path, quota_nodes: int) -> dict[str, Cost]:
    """Cold start medians, in ms, and the fresh-process expansion of the largest template within the quota."""
    small = workdir / "event-small.json"
    small.write_text(json.dumps(meshgen.event(COLD_EVENT_NODES)))
    large = workdir / "event-quota.json"
    large.write_text(json.dumps(meshgen.event(quota_nodes)))
    python = _python(workdir)
    commands = {
        COLD_BARE: [*python, "-c", "pass"],
        COLD_BASE: [*python, "-c", "import troposphere; from aws_lambda_powertools import Logger"],
        COLD_FIRST: _expand_file_command(python, small),
        f"import handler + {quota_nodes}-node expansion": _expand_file_command(python, large),
    }
    return _interleaved_medians(commands, repeat)


def render_rows(repeat: int, workdir: Path, ecs_composex_python: str | None) -> dict[str, Cost]:
    """Median wall ms of ``composex-mesh render`` of a 20-node template and, when given, of ECS ComposeX's
    ``render`` of the same graph."""
    from composex_mesh.yaml_io import dump_template

    path = workdir / f"mesh{RENDER_NODES}.yaml"
    path.write_text(dump_template(meshgen.cli_template(RENDER_NODES), "yaml"))
    values = meshgen.event(RENDER_NODES)["templateParameterValues"]
    commands = {
        "composex-mesh render": [
            *_python(workdir),
            "-m",
            "composex_mesh",
            "render",
            str(path),
            "--region",
            "eu-west-1",
            "--parameter",
            f"VpcId={values['VpcId']}",
            "--parameter",
            f"PrivateSubnets={','.join(values['PrivateSubnets'])}",
            "--quiet",
        ]
    }
    if ecs_composex_python:
        compose = workdir / "docker-compose.yml"
        compose.write_text(json.dumps(meshgen.compose_file(RENDER_NODES), indent=2))
        commands["ecs-compose-x render"] = [
            ecs_composex_python,
            str(Path(__file__).with_name("ecs_composex_offline.py")),
            "render",
            "-n",
            "bench",
            "-f",
            str(compose),
            "-d",
            str(workdir / "ecs-composex-out"),
            "--format",
            "json",
        ]
    return _interleaved_medians(commands, repeat, cwd=workdir)


# ------------------------------------------------------------------------------------------------ report


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines.extend("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows)
    return "\n".join(lines)


def _check(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a rough table in seconds)")
    parser.add_argument("--repeat", type=int, help="warm runs per size (default 30, quick 5)")
    parser.add_argument("--cold-repeat", type=int, help="fresh processes per cold measure (default 7, quick 3)")
    parser.add_argument(
        "--ecs-composex-python",
        default=os.environ.get("ECS_COMPOSEX_PYTHON"),
        help="python of a virtualenv with ECS ComposeX, to compare render with (default: $ECS_COMPOSEX_PYTHON)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 30)
    cold_repeat = args.cold_repeat or (3 if args.quick else 7)

    print(
        f"ComposeXMesh benchmark - Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; warm medians of {repeat}, cold medians of {cold_repeat}"
    )
    quota_nodes, quota_resources = largest_within_quota()
    rows = [warm_row(n, repeat) for n in (*HANDLER_SIZES, quota_nodes)]
    print()
    print(
        _table(
            ["nodes", "edges", "res. in", "added", "expand ms", "floor ms", "ratio", "peak MB", "RSS +MB"],
            [
                [
                    str(row.nodes),
                    str(row.edges),
                    str(row.resources_in),
                    str(row.resources_added),
                    f"{row.expand_ms:.2f}",
                    f"{row.floor_ms:.2f}",
                    f"{row.ratio:.1f}x",
                    f"{row.peak_mb:.1f}",
                    "-" if row.rss_mb is None else f"{row.rss_mb:.1f}",
                ]
                for row in rows
            ],
        )
    )
    print("warm, through the handler, CPU time; floor: json.loads(fragment text) + json.dumps(output fragment)")

    with tempfile.TemporaryDirectory(prefix="composex-mesh-bench-") as tmp:
        cold = cold_rows(cold_repeat, Path(tmp), quota_nodes)
        render = render_rows(cold_repeat, Path(tmp), args.ecs_composex_python)
    base = cold[COLD_BASE].cpu_ms
    print()
    print(
        _table(
            ["fresh process", "wall ms", "CPU ms", "CPU vs troposphere+Logger"],
            [
                [name, f"{cost.wall_ms:.1f}", f"{cost.cpu_ms:.1f}", f"{cost.cpu_ms / base:.2f}x"]
                for name, cost in {**cold, **render}.items()
            ],
        )
    )
    print(f"render: {RENDER_NODES} nodes; largest within the quota: {quota_nodes} nodes, {quota_resources} resources")
    print("targets are judged on CPU time (user + system): the wall time also holds other processes' load")

    by_nodes = {row.nodes: row for row in rows}
    cold_ratio = cold[COLD_FIRST].cpu_ms / base
    quota_cold_s = cold[f"import handler + {quota_nodes}-node expansion"].cpu_ms / 1000
    print()
    print("targets:")
    print(
        f"  cold start (import + first {COLD_EVENT_NODES}-node expansion) <= {TARGET_COLD_RATIO:.0f}x "
        f"troposphere+Logger: {cold_ratio:.2f}x {_check(cold_ratio <= TARGET_COLD_RATIO)}"
    )
    print(
        f"  warm 40 nodes <= {TARGET_FLOOR_RATIO_40:.0f}x JSON floor: {by_nodes[40].ratio:.1f}x "
        f"{_check(by_nodes[40].ratio <= TARGET_FLOOR_RATIO_40)}"
    )
    print(
        f"  40 nodes peak < {TARGET_PEAK_MB_40:.0f} MB: {by_nodes[40].peak_mb:.1f} MB tracemalloc"
        + ("" if by_nodes[40].rss_mb is None else f", {by_nodes[40].rss_mb:.1f} MB RSS growth")
        + f" {_check(by_nodes[40].peak_mb < TARGET_PEAK_MB_40)}"
    )
    print(
        f"  {quota_resources} resources (the quota's largest) < {TARGET_QUOTA_SECONDS:.0f} s: "
        f"{quota_cold_s:.2f} s in a fresh process, {by_nodes[quota_nodes].expand_ms / 1000:.2f} s warm "
        f"{_check(quota_cold_s < TARGET_QUOTA_SECONDS)}"
    )
    if "ecs-compose-x render" in render:
        speedup = render["ecs-compose-x render"].cpu_ms / render["composex-mesh render"].cpu_ms
        print(
            f"  render >= {TARGET_RENDER_SPEEDUP:.0f}x faster than ECS ComposeX: {speedup:.1f}x "
            f"{_check(speedup >= TARGET_RENDER_SPEEDUP)}"
        )
    else:
        print("  render vs ECS ComposeX: skipped (pass --ecs-composex-python PATH)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
