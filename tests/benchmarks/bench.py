"""ComposeXMesh benchmark: prints a table of warm and cold costs on generated meshes (``meshgen.py``).

    .venv/bin/python tests/benchmarks/bench.py [--quick] [--repeat N] [--cold-repeat N]

Measures, on this machine, in one run (so the floors and baselines share its conditions):

- warm expansion through ``handler.lambda_handler`` (5 to 40 nodes, quotas on) and through ``expand()``
  with ``Context(check_quotas=False)`` (100 and 200 nodes: past CloudFormation's 500 resources), the median
  of repeated runs, beside the JSON floor (``json.loads`` of the fragment's text + ``json.dumps`` of the
  output fragment) and their ratio;
- resources added (and per node), tracemalloc peak of one call, and the ru_maxrss growth of one call in a
  fresh process;
- cold start: fresh interpreters (medians): bare ``python -c pass``, ``import troposphere`` + powertools
  ``Logger`` (the floor any troposphere/powertools macro pays), ``import composex_mesh.handler``, and that
  import plus a first 5-node expansion (what a cold Lambda invocation really pays);
- whole-process ``composex-mesh render`` of a 20-node YAML template (median wall time);

then checks the targets (README, Performance). Not a pytest test: ``tests/test_bench_smoke.py`` keeps it alive.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
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
SCALING_SIZES = (100, 200)
RENDER_NODES = 20
COLD_EVENT_NODES = 5

TARGET_IMPORT_RATIO = 1.5
TARGET_FLOOR_RATIO_40 = 10.0
TARGET_SCALING_RATIO = 2.5
TARGET_PEAK_MB_40 = 64.0


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
    """Median of ``repeat`` back-to-back runs, as warm invocations come: no collection in between (a full
    one empties the allocator's arenas and makes the next run page memory in again)."""
    times = []
    gc.collect()
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass
class WarmRow:
    nodes: int
    edges: int
    path: str
    resources_in: int
    resources_added: int
    expand_ms: float
    floor_ms: float
    peak_mb: float
    rss_mb: float | None
    no_gc_ms: float | None = None
    """The same median with the cyclic GC off: what is left once CPython's collections are taken out."""

    @property
    def ratio(self) -> float:
        return self.expand_ms / self.floor_ms

    @property
    def added_per_node(self) -> float:
        return self.resources_added / self.nodes


def expansion_call(nodes: int, through_handler: bool) -> tuple[Callable[[], dict[str, Any]], dict[str, Any]]:
    """A zero-argument call that expands an ``n``-node event (returns the output fragment), and the event."""
    event = meshgen.event(nodes)
    if through_handler:
        handler = _handler()

        def call() -> dict[str, Any]:
            with _quiet_stdout():
                answer = handler.lambda_handler(event, None)
            if answer["status"] != "success":
                raise RuntimeError(answer.get("errorMessage"))
            return answer["fragment"]  # type: ignore[no-any-return]

        return call, event

    from composex_mesh.transform import Context, expand

    context = Context(
        region=event["region"],
        account_id=event["accountId"],
        template_parameter_values=event["templateParameterValues"],
        check_quotas=False,
    )
    return (lambda: expand(event["fragment"], context).fragment), event


def _without_gc(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        gc.disable()
        try:
            return call()
        finally:
            gc.enable()

    return run


def warm_row(nodes: int, repeat: int, through_handler: bool = True, rss: bool = True, no_gc: bool = False) -> WarmRow:
    call, event = expansion_call(nodes, through_handler)
    output = call()  # the first call imports the backend
    fragment_text = json.dumps(event["fragment"])
    expand_s = _median_seconds(call, repeat)
    no_gc_s = _median_seconds(_without_gc(call), repeat) if no_gc else None
    floor_s = _median_seconds(lambda: (json.loads(fragment_text), json.dumps(output)), max(repeat, 20))
    gc.collect()
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return WarmRow(
        nodes=nodes,
        edges=meshgen.edge_count(nodes),
        path="handler" if through_handler else "expand()",
        resources_in=len(event["fragment"]["Resources"]),
        resources_added=len(output["Resources"]) - len(event["fragment"]["Resources"]),
        expand_ms=expand_s * 1000,
        floor_ms=floor_s * 1000,
        peak_mb=peak / 2**20,
        rss_mb=_rss_growth(nodes, through_handler) if rss else None,
        no_gc_ms=None if no_gc_s is None else no_gc_s * 1000,
    )


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

warm, _ = expansion_call(1, {through_handler!r})
warm()
call, _ = expansion_call({nodes!r}, {through_handler!r})
before = peak_kb()
call()
print(peak_kb() - before)
"""


def _rss_growth(nodes: int, through_handler: bool) -> float | None:
    """Growth of the peak RSS over one expansion in a fresh process (event built, backend imported first)."""
    if sys.platform not in ("linux", "darwin"):
        return None
    code = _RSS_CHILD.format(root=str(ROOT), nodes=nodes, through_handler=through_handler)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1]) / 1024


# ------------------------------------------------------------------------------------------------- cold


def _python(workdir: Path) -> list[str]:
    """A fresh interpreter whose bytecode cache is its own: written on the first run, then read, for every
    module alike (the Lambda artifact ships .pyc; ``PYTHONDONTWRITEBYTECODE`` would make only the editable
    ``composex_mesh`` compile from source on every start)."""
    return [sys.executable, "-X", f"pycache_prefix={workdir / 'pycache'}"]


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def _wall(argv: list[str], repeat: int) -> float:
    """Median wall time of a fresh process, in ms."""
    times = []
    environment = _environment()
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT, env=environment
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def cold_rows(repeat: int, workdir: Path) -> dict[str, float]:
    """Cold start medians, in ms; the commands are interleaved so that drift hits them alike."""
    event_path = workdir / "event.json"
    event_path.write_text(json.dumps(meshgen.event(COLD_EVENT_NODES)))
    python = _python(workdir)
    commands = {
        "python -c pass": [*python, "-c", "pass"],
        "import troposphere + powertools Logger": [
            *python,
            "-c",
            "import troposphere; from aws_lambda_powertools import Logger",
        ],
        "import composex_mesh.handler": [*python, "-c", "import composex_mesh.handler"],
        f"import handler + first {COLD_EVENT_NODES}-node expansion": [
            *python,
            "-c",
            "import json, sys; from composex_mesh import handler; "
            f"answer = handler.lambda_handler(json.load(open({str(event_path)!r})), None); "
            "sys.exit(answer['status'] != 'success')",
        ],
    }
    for argv in commands.values():  # warm the file cache, write the bytecode cache
        _wall(argv, 1)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            samples[name].append(_wall(argv, 1))
    return {name: statistics.median(values) for name, values in samples.items()}


def render_ms(repeat: int, workdir: Path) -> tuple[float, int]:
    """Median wall time of ``composex-mesh render`` of a 20-node YAML template, and the template's size."""
    from composex_mesh.yaml_io import dump_template

    path = workdir / f"mesh{RENDER_NODES}.yaml"
    text = dump_template(meshgen.cli_template(RENDER_NODES), "yaml")
    path.write_text(text)
    values = meshgen.event(RENDER_NODES)["templateParameterValues"]
    argv = [
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
    _wall(argv, 1)
    return _wall(argv, repeat), len(text.encode())


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
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 30)
    cold_repeat = args.cold_repeat or (3 if args.quick else 7)

    print(
        f"ComposeXMesh benchmark - Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; warm medians of {repeat}, cold medians of {cold_repeat}"
    )
    rows = [warm_row(n, repeat) for n in HANDLER_SIZES]
    rows += [warm_row(n, max(5, repeat // 2), through_handler=False, no_gc=True) for n in SCALING_SIZES]
    print()
    print(
        _table(
            [
                "nodes",
                "edges",
                "path",
                "res. in",
                "added",
                "added/node",
                "expand ms",
                "floor ms",
                "ratio",
                "ms/node",
                "peak MB",
                "RSS +MB",
            ],
            [
                [
                    str(row.nodes),
                    str(row.edges),
                    row.path,
                    str(row.resources_in),
                    str(row.resources_added),
                    f"{row.added_per_node:.2f}",
                    f"{row.expand_ms:.2f}",
                    f"{row.floor_ms:.2f}",
                    f"{row.ratio:.1f}x",
                    f"{row.expand_ms / row.nodes:.3f}",
                    f"{row.peak_mb:.1f}",
                    "-" if row.rss_mb is None else f"{row.rss_mb:.1f}",
                ]
                for row in rows
            ],
        )
    )
    print("floor: json.loads(fragment text) + json.dumps(output fragment); 100 and 200 nodes: expand(), quotas off")

    with tempfile.TemporaryDirectory(prefix="composex-mesh-bench-") as tmp:
        cold = cold_rows(cold_repeat, Path(tmp))
        render, render_bytes = render_ms(cold_repeat, Path(tmp))
    bare = cold["python -c pass"]
    base = cold["import troposphere + powertools Logger"]
    print()
    print(
        _table(
            ["cold start (fresh interpreter)", "wall ms", "vs troposphere+Logger", "net of bare python"],
            [
                [name, f"{ms:.1f}", f"{ms / base:.2f}x", "-" if ms == bare else f"{(ms - bare) / (base - bare):.2f}x"]
                for name, ms in cold.items()
            ],
        )
    )
    print(f"composex-mesh render, {RENDER_NODES} nodes ({render_bytes} bytes of YAML): {render:.1f} ms wall")

    by_nodes = {row.nodes: row for row in rows}
    import_ratio = cold["import composex_mesh.handler"] / base
    cold_call_ratio = cold[f"import handler + first {COLD_EVENT_NODES}-node expansion"] / base
    scaling = by_nodes[200].expand_ms / by_nodes[100].expand_ms
    scaling_no_gc = (by_nodes[200].no_gc_ms or 0.0) / (by_nodes[100].no_gc_ms or 1.0)
    work_ratio = (200 + meshgen.edge_count(200)) / (100 + meshgen.edge_count(100))
    print()
    print("targets:")
    print(
        f"  handler import <= {TARGET_IMPORT_RATIO}x troposphere+Logger: {import_ratio:.2f}x "
        f"{_check(import_ratio <= TARGET_IMPORT_RATIO)} (import + first expansion: {cold_call_ratio:.2f}x)"
    )
    print(
        f"  40 nodes <= {TARGET_FLOOR_RATIO_40:.0f}x JSON floor: {by_nodes[40].ratio:.1f}x "
        f"{_check(by_nodes[40].ratio <= TARGET_FLOOR_RATIO_40)}"
    )
    print(
        f"  200 vs 100 nodes <= {TARGET_SCALING_RATIO}x: {scaling:.2f}x {_check(scaling <= TARGET_SCALING_RATIO)} "
        f"(nodes+edges grow {work_ratio:.2f}x; with the cyclic GC off: {scaling_no_gc:.2f}x)"
    )
    print(
        f"  40 nodes peak < {TARGET_PEAK_MB_40:.0f} MB: {by_nodes[40].peak_mb:.1f} MB tracemalloc"
        + ("" if by_nodes[40].rss_mb is None else f", {by_nodes[40].rss_mb:.1f} MB RSS growth")
        + f" {_check(by_nodes[40].peak_mb < TARGET_PEAK_MB_40)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
