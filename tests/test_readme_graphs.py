"""The README's Mermaid graphs are what ``composex-mesh graph`` prints today, and every example has one."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from composex_mesh.cli import main
from tests.test_graph import parse_mermaid

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_BLOCK = re.compile(r"<!-- composex-mesh graph (?P<args>[^\n]*?) -->\n```mermaid\n(?P<graph>.*?)```\n", re.S)
BLOCKS = [(match["args"], match["graph"]) for match in _BLOCK.finditer(README.read_text(encoding="utf-8"))]


def test_the_readme_has_graph_blocks() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize(("args", "graph"), BLOCKS, ids=[args for args, _ in BLOCKS])
def test_readme_graph_is_what_the_command_prints(
    args: str, graph: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["graph", *shlex.split(args)]) == 0
    printed = capsys.readouterr().out
    assert printed == graph, (
        f"README.md's block for `composex-mesh graph {args}` is stale; replace it with:\n```mermaid\n{printed}```"
    )
    parse_mermaid(graph)


@pytest.mark.parametrize("example", sorted((ROOT / "sam" / "examples").glob("*.yaml")), ids=lambda path: path.name)
def test_every_example_has_its_graph_in_the_readme(example: Path) -> None:
    relative = example.relative_to(ROOT).as_posix()
    assert relative in [args for args, _ in BLOCKS], (
        f"README.md has no graph of {relative}: add, where the README presents it,\n"
        f"<!-- composex-mesh graph {relative} -->\n```mermaid\n(the output of composex-mesh graph {relative})```"
    )
