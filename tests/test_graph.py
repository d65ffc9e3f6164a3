"""``composex-mesh graph``: the service graph as Mermaid and Graphviz DOT, checked for structure and rendered."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from composex_mesh import graph as graph_module
from composex_mesh.cli import main
from composex_mesh.graph import dot_text, mermaid_id, mermaid_text, value_text
from tests.test_cli import TEMPLATE, _two_errors, _with

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "sam" / "examples").glob("*.yaml"))
QUICKSTART = ROOT / "sam" / "examples" / "quickstart.yaml"

# Names with "-" and "_", a node named like a Mermaid keyword, a DNS node, paths with "/" and a header
# value with every character Mermaid or DOT would read as syntax.
AWKWARD_SECTION = """\
Composex::AppMesh:
  Nodes:
    front_end:
      Service: FrontendService
      Backends: [api, orders-db]
    end:
      Service: ApiService
    orders-db:
      Hostname: db-1.corp.example.com
      Listeners: [{Port: 5432, Protocol: tcp}]
  Routers:
    api-v2:
      Routes:
        - Match:
            Path: {Exact: /v2/items}
            Method: GET
            Headers: [{Name: x-tag, Exact: 'a"b#c<d>|e&f\\g'}]
          Targets: {end: 1}
        - Match: {Prefix: /}
          Targets: {end: 1}
  Services:
    api: {Router: api-v2}
    orders-db: {Node: orders-db, DnsName: orders.corp.internal}
"""
AWKWARD = re.sub(r"(?ms)^Composex::AppMesh:\n.*?(?=^Resources:)", lambda _: AWKWARD_SECTION, TEMPLATE)
assert "front_end:" in AWKWARD


def _graph(tmp_path: Path, text: str, *options: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text, encoding="utf-8")
    status = main(["graph", str(path), *options])
    out, err = capsys.readouterr()
    return status, out, err


# ------------------------------------------------------------------------------------ Mermaid structure

_SHAPES = r'(\["|\[\("|\{\{"|\(\["|\[/"|>")([^"]*)("\]|"\)\]|"\}\}|"\]\)|"/\]|"\])'
_VERTEX = re.compile(rf"^    ([A-Za-z0-9_]+){_SHAPES}$")
_ARROW = re.compile(r'^    ([A-Za-z0-9_]+) (==>|-->)(?:\|"([^"|]*)"\|)? ([A-Za-z0-9_]+)$')
_STYLE = re.compile(r"^    (classDef [a-z]+ [^ ]+|class [A-Za-z0-9_,]+ [a-z]+|linkStyle [0-9,]+ [^ ]+)$")


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The flowchart's vertices (ID -> label) and arrows (source, target, label); fails on any other line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR" and text.endswith("\n")
    vertices: dict[str, str] = {}
    arrows: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if vertex := _VERTEX.match(line):
            assert vertex[1] not in vertices, f"vertex defined twice: {line}"
            vertices[vertex[1]] = vertex[3]
        elif arrow := _ARROW.match(line):
            assert arrow[1] in vertices and arrow[4] in vertices, f"arrow to an undefined vertex: {line}"
            arrows.append((arrow[1], arrow[4], arrow[3] or ""))
        else:
            assert _STYLE.match(line), f"not a line of the flowchart grammar used: {line!r}"
    for label in [*vertices.values(), *(label for _, _, label in arrows)]:
        assert not re.search(r'[<>"|&]', re.sub(r"<br/>|#(?:quot|lt|gt|amp|35|124);", "", label)), label
    return vertices, arrows


def _unescape(label: str) -> list[str]:
    entities = {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#amp;": "&", "#35;": "#", "#124;": "|"}
    lines = label.split("<br/>")
    return [re.sub(r"#(?:quot|lt|gt|amp|35|124);", lambda entity: entities[entity[0]], line) for line in lines]


def test_quickstart_graph_shows_nodes_router_services_and_calls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(QUICKSTART)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    vertices, arrows = parse_mermaid(out)
    labels = {vertex: _unescape(label) for vertex, label in vertices.items()}
    assert labels["node_frontend"] == ["frontend", "ECS FrontendService", "container web", "8080/http"]
    assert labels["node_clock"][:2] == ["clock", "ECS ClockService"]
    assert labels["router_time"] == ["router time", "8080/http"]
    assert labels["service_time"] == ["time", "time.mesh.internal:8080"]
    assert labels["service_front"] == ["front", "front.mesh.internal:8080"]
    assert sorted(arrows) == [
        ("node_frontend", "service_time", "calls"),
        ("router_time", "node_clock", "prefix / · weight 3"),
        ("router_time", "node_watch", "prefix / · weight 1"),
        ("service_front", "node_frontend", ""),
        ("service_time", "router_time", ""),
    ]


def test_awkward_names_and_values_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _graph(tmp_path, AWKWARD, capsys=capsys)
    assert status == 0, err
    vertices, arrows = parse_mermaid(out)
    assert set(vertices) == {
        "node_front_5fend",
        "node_end",
        "node_orders_2ddb",
        "router_api_2dv2",
        "service_api",
        "service_orders_2ddb",
    }
    labels = {vertex: _unescape(label) for vertex, label in vertices.items()}
    assert labels["node_orders_2ddb"] == ["orders-db", "DNS db-1.corp.example.com", "5432/tcp"]
    assert labels["service_orders_2ddb"] == ["orders-db", "orders.corp.internal:5432"]
    routes = sorted(_unescape(label)[0] for source, _, label in arrows if source == "router_api_2dv2")
    assert routes == [
        '#0 path /v2/items, GET, header x-tag = a"b#c<d>|e&f\\g · weight 1',
        "#1 prefix / · weight 1",
    ]


def test_dot_output_is_valid_graphviz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _graph(tmp_path, AWKWARD, "--format", "dot", capsys=capsys)
    assert status == 0
    assert out.startswith("digraph mesh {\n    rankdir=LR;\n") and out.endswith("}\n")
    assert '"node:orders-db" [label="orders-db\\nDNS db-1.corp.example.com\\n5432/tcp", shape=cylinder];' in out
    assert '"router:api-v2" -> "node:end" [label="#1 prefix / · weight 1"];' in out
    assert 'header x-tag = a\\"b#c<d>|e&f\\\\g · weight 1' in out
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): the DOT text was checked, not drawn")
    result = subprocess.run([dot, "-Tsvg"], input=out, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert "orders&#45;db" in result.stdout or "orders-db" in result.stdout


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_graph_is_deterministic(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _graph(tmp_path, AWKWARD, "--format", fmt, "--backend", "AppMesh", capsys=capsys)
    second = _graph(tmp_path, AWKWARD, "--format", fmt, "--backend", "AppMesh", capsys=capsys)
    assert first == second and first[0] == 0


def test_bad_input_gives_the_errors_of_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(_two_errors(), encoding="utf-8")
    assert main(["render", str(path)]) == 1
    rendered = capsys.readouterr()
    assert main(["graph", str(path)]) == 1
    drawn = capsys.readouterr()
    assert drawn.out == "" and drawn.err == rendered.err
    assert f"{path}:15:23: [Nodes.frontend.Backends[1]]" in drawn.err


def test_a_backend_refusal_fails_graph_as_it_fails_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = QUICKSTART.read_text(encoding="utf-8").replace("Transform: ComposeXMesh", "Transform: ComposeXMesh\n", 1)
    text = text.replace("  Mesh:\n    EgressFilter: DROP_ALL", "  Backend: ServiceConnect", 1)
    status, out, err = _graph(tmp_path, text, capsys=capsys)
    assert status == 1 and out == ""
    assert "[Routers.time.Routes[0].Targets] splits traffic between clock, watch" in err


def test_backend_view_marks_what_service_connect_cannot_express(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(QUICKSTART), "--backend", "ServiceConnect"]) == 0
    out, err = capsys.readouterr()
    _, arrows = parse_mermaid(out)
    refused = [(source, target) for source, target, label in arrows if "✗ not expressible on ServiceConnect" in label]
    assert refused == [("router_time", "node_clock"), ("router_time", "node_watch")]
    index = [line for line in out.splitlines() if line.startswith("    linkStyle ")]
    assert index == ["    linkStyle 1,2 stroke:#c62828,stroke-width:2px,stroke-dasharray:4"]
    assert re.search(  # the quickstart also writes EgressFilter: DROP_ALL, which Service Connect warns about (SPEC §4)
        rf"^{re.escape(str(QUICKSTART))}:\d+:11: warning: \[Routers\.time\.Routes\[0\]\.Targets\] not expressible on "
        r"ServiceConnect: splits traffic between clock, watch: .*$",
        err,
        re.MULTILINE,
    )


def test_backend_view_lists_what_app_mesh_makes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(QUICKSTART), "--backend", "AppMesh"]) == 0
    vertices, _ = parse_mermaid(capsys.readouterr().out)
    labels = {vertex: _unescape(label) for vertex, label in vertices.items()}
    assert "AppMesh::VirtualNode FrontendVirtualNode" in labels["node_frontend"]
    assert "patched ClockTaskDefinition: ContainerDefinitions, ProxyConfiguration, TaskRoleArn" in labels["node_clock"]
    assert labels["router_time"][2:] == ["AppMesh::VirtualRouter TimeVirtualRouter", "AppMesh::Route TimeRoute1"]
    assert "AppMesh::VirtualService TimeVirtualService" in labels["service_time"]
    assert labels["backend"] == ["backend AppMesh", "AppMesh::Mesh ComposeXMesh"]
    assert not any(line.startswith(("IAM::", "EC2::")) for lines in labels.values() for line in lines)


def test_backend_view_overrides_the_sections_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Composex::AppMesh:\n", "Composex::AppMesh:\n  Backend: AppMesh\n")
    status, out, err = _graph(tmp_path, text, "--backend", "ServiceConnect", capsys=capsys)
    assert status == 0 and err == ""
    assert "patched FrontendService: ServiceConnectConfiguration" in out
    assert "AppMesh::" not in out


def test_graph_without_the_section_is_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _graph(tmp_path, "Resources:\n  A: {Type: AWS::S3::Bucket}\n", capsys=capsys)
    assert status == 1 and out == ""
    assert err.endswith("no Composex::AppMesh section: there is no graph to draw\n")


def test_external_services_are_drawn_from_the_model() -> None:
    """``Services.<s>.External`` (SPEC §2), read wherever the model has it."""
    external = SimpleNamespace(dns_name="payments.corp.internal", port=8443, protocol="http")
    plan: Any = SimpleNamespace(services={}, nodes={}, routers={})
    service: Any = SimpleNamespace(node=None, router=None, external=external)
    vertex = graph_module._service_vertex(plan, "payments", service)
    assert vertex is not None and vertex.kind == "external"
    assert vertex.lines == ["payments", "payments.corp.internal:8443/http", "external"]
    mermaid = graph_module.to_mermaid(graph_module.Graph(vertices=[vertex]))
    assert '    service_payments[/"payments<br/>payments.corp.internal:8443/http<br/>external"/]' in mermaid


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a.b", "a.b"),
        ({"Ref": "Host"}, "${Host}"),
        ({"Fn::GetAtt": ["Db", "Endpoint.Address"]}, "${Db.Endpoint.Address}"),
        ({"Fn::Join": ["", ["time.", {"Ref": "Domain"}]]}, "time.${Domain}"),
        ({"Fn::Sub": ["${Name}.corp", {"Name": "x"}]}, "${Name}.corp"),
        ({"Fn::ImportValue": "DbHost"}, "import DbHost"),
        ({"Fn::If": ["C", "a", "b"]}, "(computed at deploy time)"),
    ],
)
def test_values_read_as_written(value: Any, text: str) -> None:
    assert value_text(value) == text


def test_escapers() -> None:
    assert mermaid_id("node:end") == "node_end" and mermaid_id("node:a-b.c") == "node_a_2db_2ec"
    assert mermaid_text('a"b<c>#|&') == "a#quot;b#lt;c#gt;#35;#124;#amp;"
    assert dot_text('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


# ------------------------------------------------------------------------------------ Mermaid CLI render

MMDC = os.environ.get("COMPOSEX_MMDC") or shutil.which("mmdc")
CHROMIUM = os.environ.get("COMPOSEX_CHROMIUM", "/usr/bin/chromium")


def _mermaid_cases(tmp_path: Path) -> dict[str, str]:
    awkward = tmp_path / "awkward.yaml"
    awkward.write_text(AWKWARD, encoding="utf-8")
    cases: list[tuple[str, list[str]]] = [(path.stem, [str(path)]) for path in EXAMPLES]
    cases += [(f"{path.stem}-{backend}", [str(path), "--backend", backend]) for path in EXAMPLES for backend in
              ("AppMesh", "ServiceConnect", "VpcLattice")]
    cases.append(("awkward", [str(awkward)]))
    graphs = {}
    for name, argv in cases:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["graph", *argv]) == 0, err.getvalue()
        graphs[name] = out.getvalue()
    return graphs


@pytest.mark.skipif(MMDC is None, reason="the Mermaid CLI (mmdc) is not installed: npm install @mermaid-js/mermaid-cli "
                    "with PUPPETEER_SKIP_DOWNLOAD=1, and put its bin on PATH or in COMPOSEX_MMDC")
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} for the Mermaid CLI "
                    "(apt-get install chromium, or set COMPOSEX_CHROMIUM)")
def test_mermaid_cli_renders_every_graph(tmp_path: Path) -> None:
    assert MMDC is not None
    config = tmp_path / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": CHROMIUM, "args": ["--no-sandbox"], "headless": True}))
    graphs = _mermaid_cases(tmp_path)
    for name, text in graphs.items():
        parse_mermaid(text)
        source, target = tmp_path / f"{name}.mmd", tmp_path / f"{name}.svg"
        source.write_text(text, encoding="utf-8")
        result = subprocess.run(
            [MMDC, "--quiet", "-p", str(config), "-i", str(source), "-o", str(target)],
            capture_output=True, text=True, check=False, timeout=180,
        )
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"
        svg = target.read_text(encoding="utf-8")
        assert "Syntax error" not in svg and "<svg" in svg, name
        for label in parse_mermaid(text)[0].values():
            assert _unescape(label)[0] in svg, (name, label)  # the title: a section name, or "backend X"
    assert 'header x-tag = a"b#c&lt;d&gt;|e&amp;f\\g' in (tmp_path / "awkward.svg").read_text(encoding="utf-8")


def test_backend_view_lists_what_vpc_lattice_makes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(ROOT / "sam" / "examples" / "quickstart-lattice.yaml"), "--backend", "VpcLattice"]) == 0
    vertices, _ = parse_mermaid(capsys.readouterr().out)
    labels = {vertex: _unescape(label) for vertex, label in vertices.items()}
    assert any(line.startswith("VpcLattice::Service ") for line in labels["service_time"])
    assert any(line.startswith("VpcLattice::Listener ") for line in labels["service_time"])
    assert any(line.startswith("VpcLattice::Rule ") for line in labels["router_time"])
    assert "patched ClockService: VpcLatticeConfigurations" in labels["node_clock"]
    assert any(line.startswith("VpcLattice::ServiceNetwork ") for line in labels["backend"])
