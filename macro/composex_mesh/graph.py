"""The service graph of a plan, for ``composex-mesh graph``: a small model, then a Mermaid and a Graphviz writer.

The model holds what a reviewer needs: the nodes (ECS or DNS, with their ports), the routers and each route's
match and weighted targets, the services with the DNS names clients call, and an arrow for each backend a node
lists (who may call whom). With a backend's rendering it also holds what that backend makes of each part, and
which parts it would refuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import model
from .backends.base import Rendered
from .errors import SectionError
from .plan import NodePlan, Plan

VertexKind = Literal["ecs", "dns", "router", "service", "external", "backend"]
ArrowKind = Literal["calls", "serves", "routes"]

_PLUMBING = ("AWS::IAM::", "AWS::EC2::SecurityGroupIngress", "AWS::ServiceDiscovery::Instance", "AWS::Logs::")
"""Generated resources left out of the picture: grants, network rules and log groups, not parts of the graph."""
_HTTP = ("http", "http2")
_ORIGIN = re.compile(r"^(Nodes|Routers|Services)\.([A-Za-z0-9_-]+)(.*)$")
_KIND_OF_SECTION = {"Nodes": "node", "Routers": "router", "Services": "service"}


@dataclass
class Vertex:
    """A box of the picture: ``lines[0]`` is its title."""

    key: str
    kind: VertexKind
    lines: list[str]
    refused: bool = False


@dataclass
class Arrow:
    """An arrow from one vertex to another."""

    source: str
    target: str
    kind: ArrowKind
    origin: str
    """The section path it is drawn from: ``Nodes.a.Backends[0]``, ``Routers.r.Routes[1]``, ``Services.s``."""
    label: str = ""
    refused: bool = False


@dataclass
class Graph:
    """The service graph: vertices and arrows in a stable order, and what the chosen backend refuses."""

    vertices: list[Vertex] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    backend: str | None = None
    refusals: list[SectionError] = field(default_factory=list)


@dataclass(frozen=True)
class BackendView:
    """A backend's rendering of the plan, and the errors it found (what it cannot express)."""

    backend: str
    rendered: Rendered
    errors: Sequence[SectionError]


# ------------------------------------------------------------------------------------------------ model


def build_graph(plan: Plan, view: BackendView | None = None) -> Graph:
    """The graph of ``plan``; with ``view``, annotated with what that backend makes of it."""
    graph = Graph(backend=view.backend if view else None)
    section = plan.section
    for name, node in plan.nodes.items():
        graph.vertices.append(_node_vertex(node))
        for index, called in enumerate(node.node.backends):
            origin = f"Nodes.{name}.Backends[{index}]"
            graph.arrows.append(Arrow(f"node:{name}", f"service:{called}", "calls", origin, "calls"))
    for name, router in plan.routers.items():
        listeners = ", ".join(f"{item.port}/{item.protocol}" for item in router.listeners)
        graph.vertices.append(Vertex(f"router:{name}", "router", [f"router {name}", listeners]))
        several = len(router.router.routes) > 1
        for index, route in enumerate(router.router.routes):
            match = describe_route(route, router.protocol)
            label = f"#{index} {match}" if several else match
            origin = f"Routers.{name}.Routes[{index}]"
            for target, weight in route.targets.items():
                arrow = Arrow(f"router:{name}", f"node:{target}", "routes", origin, f"{label} · weight {weight}")
                graph.arrows.append(arrow)
    for name, service in section.services.items():
        vertex = _service_vertex(plan, name, service)
        if vertex is None:
            continue
        graph.vertices.append(vertex)
        provider = f"node:{service.node}" if service.node else f"router:{service.router}" if service.router else None
        if provider is not None:
            graph.arrows.append(Arrow(vertex.key, provider, "serves", f"Services.{name}"))
    known = {vertex.key for vertex in graph.vertices}
    graph.arrows = [arrow for arrow in graph.arrows if arrow.source in known and arrow.target in known]
    if view is not None:
        _annotate(graph, plan, view)
    return graph


def _node_vertex(node: NodePlan) -> Vertex:
    ports = ", ".join(f"{item.port}/{item.protocol}" for item in node.listeners) or "no listeners"
    if node.ecs is not None:
        return Vertex(
            f"node:{node.name}",
            "ecs",
            [node.name, f"ECS {node.ecs.service_id}", f"container {node.ecs.container_name}", ports],
        )
    return Vertex(f"node:{node.name}", "dns", [node.name, f"DNS {value_text(node.node.hostname)}", ports])


def _service_vertex(plan: Plan, name: str, service: model.Service) -> Vertex | None:
    external = getattr(service, "external", None)  # Services.<s>.External (SPEC §2), where the model has it
    if external is not None:
        port = getattr(external, "port", None)
        protocol = getattr(external, "protocol", None)
        address = value_text(getattr(external, "dns_name", None))
        where = f"{address}:{port}" if port is not None else address
        return Vertex(f"service:{name}", "external", [name, f"{where}{f'/{protocol}' if protocol else ''}", "external"])
    resolved = plan.services.get(name)
    if resolved is None:
        return None
    ports = sorted(set(_service_ports(plan, service)))
    dns = value_text(resolved.dns_name)
    return Vertex(f"service:{name}", "service", [name, *([f"{dns}:{port}" for port in ports] or [dns])])


def _service_ports(plan: Plan, service: model.Service) -> Iterable[int]:
    if service.node is not None and service.node in plan.nodes:
        return (item.port for item in plan.nodes[service.node].listeners)
    if service.router is not None and service.router in plan.routers:
        return (item.port for item in plan.routers[service.router].listeners)
    return ()


def describe_route(route: model.Route, protocol: str) -> str:
    """A route's match and policy in a few words: ``prefix /api GET, header x-canary = yes, retries 2``."""
    match = route.match or model.Match()
    parts: list[str] = []
    if match.prefix is not None:
        parts.append(f"prefix {match.prefix}")
    if match.path is not None:
        parts.append(f"path {match.path.exact}" if match.path.exact is not None else f"path ~ {match.path.regex}")
    if match.service_name is not None:
        parts.append(f"{match.service_name}/{match.method_name or '*'}")
    elif match.method_name is not None:
        parts.append(f"method {match.method_name}")
    parts.extend(word for word in (match.method, match.scheme) if word)
    parts.extend(_header(kind, item) for kind, items in (("header", match.headers), ("metadata", match.metadata))
                 for item in items)
    parts.extend(f"?{item.name}={item.exact}" if item.exact is not None else f"?{item.name}"
                 for item in match.query_parameters)
    if match.port is not None:
        parts.append(f"port {match.port}")
    if not parts:
        parts.append("prefix /" if protocol in _HTTP else "any request" if protocol == "grpc" else "any connection")
    if route.priority is not None:
        parts.append(f"priority {route.priority}")
    if route.retries is not None:
        parts.append(f"retries {route.retries.max_retries}")
    if route.timeout is not None and route.timeout.per_request is not None:
        parts.append(f"timeout {route.timeout.per_request.text}")
    return ", ".join(parts)


def _header(kind: str, item: model.HeaderMatch) -> str:
    if item.range is not None:
        condition = f"in {item.range.start}..{item.range.end}"
    else:
        condition = next(
            (f"{word} {value}" for word, value in (("=", item.exact), ("prefix", item.prefix),
             ("suffix", item.suffix), ("~", item.regex)) if value is not None),
            "present",
        )
    return f"{kind} {item.name} {'not ' if item.invert else ''}{condition}"


def value_text(value: Any) -> str:
    """A value as a user reads it: literals as written, ``Ref`` and ``Fn::GetAtt`` as ``${X}``, joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, Mapping) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str):
            return f"${{{argument}}}"
        if function == "Fn::GetAtt" and isinstance(argument, list):
            return f"${{{'.'.join(map(str, argument))}}}"
        if function == "Fn::Sub":
            return value_text(argument[0] if isinstance(argument, list) and argument else argument)
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            separator, items = argument
            if isinstance(separator, str) and isinstance(items, list):
                return separator.join(value_text(item) for item in items)
        if function == "Fn::ImportValue":
            return f"import {value_text(argument)}"
    return "(computed at deploy time)"


def _annotate(graph: Graph, plan: Plan, view: BackendView) -> None:
    """What the backend makes of each part, and the parts it refuses."""
    vertices = {vertex.key: vertex for vertex in graph.vertices}
    backend = Vertex("backend", "backend", [f"backend {view.backend}"])
    for logical_id, resource in view.rendered.resources.items():
        kind = str(resource.get("Type", ""))
        if kind.startswith(_PLUMBING):
            continue
        target = vertices.get(_element(view.rendered.origins.get(logical_id, "")), backend)
        target.lines.append(f"{kind.removeprefix('AWS::')} {logical_id}")
    owners = {}
    for node in plan.nodes.values():
        if node.ecs is not None:
            owners[node.ecs.service_id] = owners[node.ecs.task_definition_id] = f"node:{node.name}"
    for logical_id, patched in sorted(view.rendered.patched.items()):
        owner = vertices.get(owners.get(logical_id, ""))
        changed = _changed_properties(plan.resources.get(logical_id), patched)
        if owner is not None and changed:
            owner.lines.append(f"patched {logical_id}: {', '.join(changed)}")
    refusal = f"✗ not expressible on {view.backend}"
    for error in view.errors:
        arrows = _arrows_of(graph, error.path)
        for arrow in arrows:
            if not arrow.refused:
                arrow.refused = True
                arrow.label = f"{arrow.label} {refusal}".strip()
        vertex = None if arrows else vertices.get(_element(error.path), backend)
        if vertex is not None and not vertex.refused:
            vertex.refused = True
            vertex.lines.append(refusal)
        graph.refusals.append(SectionError(error.path, f"not expressible on {view.backend}: {error.message}"))
    if len(backend.lines) > 1 or backend.refused:
        graph.vertices.append(backend)


def _element(path: str) -> str:
    """The vertex key a section path belongs to (``Nodes.a.Listeners[0]`` -> ``node:a``), or ``""``."""
    match = _ORIGIN.match(path)
    return f"{_KIND_OF_SECTION[match[1]]}:{match[2]}" if match else ""


def _arrows_of(graph: Graph, path: str) -> list[Arrow]:
    """The arrows drawn from the part an error's path names (a route, a backend entry) or from within it."""
    return [
        arrow
        for arrow in graph.arrows
        if arrow.kind != "serves"
        and (path == arrow.origin or path.startswith((f"{arrow.origin}.", f"{arrow.origin}[")))
    ]


def _changed_properties(original: Any, patched: Mapping[str, Any]) -> list[str]:
    before = original.get("Properties", {}) if isinstance(original, Mapping) else {}
    after = patched.get("Properties", {})
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    return sorted(key for key in after if before.get(key) != after[key])


# ---------------------------------------------------------------------------------------------- writers

_MERMAID_SHAPES = {
    "ecs": ('["', '"]'),
    "dns": ('[("', '")]'),
    "router": ('{{"', '"}}'),
    "service": ('(["', '"])'),
    "external": ('[/"', '"/]'),
    "backend": ('>"', '"]'),
}
_MERMAID_STYLES = {
    "ecs": "fill:#e8f1fb,stroke:#1f5fa8",
    "dns": "fill:#eef7ee,stroke:#2e7d32",
    "router": "fill:#fff4e0,stroke:#b26a00",
    "service": "fill:#f3e9f8,stroke:#6a3d9a",
    "external": "fill:#f2f2f2,stroke:#555555,stroke-dasharray:4",
    "backend": "fill:#ffffff,stroke:#555555",
}
_REFUSED_STYLE = "stroke:#c62828,stroke-width:2px,stroke-dasharray:4"
_MERMAID_ARROWS = {"calls": "==>", "serves": "-->", "routes": "-->"}
_MERMAID_ESCAPES = {"&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "|": "#124;"}
_MERMAID_SPECIAL = re.compile("[&\"<>#|]")


def mermaid_id(key: str) -> str:
    """A Mermaid node ID for a vertex key: letters, digits and ``_`` only (``node:orders-db`` ->
    ``node_orders_2ddb``), so no name can read as Mermaid syntax or a keyword such as ``end``."""
    return re.sub(r"[^A-Za-z0-9]", lambda char: "_" if char[0] == ":" else f"_{ord(char[0]):02x}", key)


def mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: its markup characters as entity codes."""
    return _MERMAID_SPECIAL.sub(lambda char: _MERMAID_ESCAPES[char[0]], text)


def to_mermaid(graph: Graph) -> str:
    """A Mermaid flowchart, left to right."""
    lines = ["flowchart LR"]
    for vertex in graph.vertices:
        opening, closing = _MERMAID_SHAPES[vertex.kind]
        label = "<br/>".join(mermaid_text(line) for line in vertex.lines)
        lines.append(f"    {mermaid_id(vertex.key)}{opening}{label}{closing}")
    refused_links = []
    for index, arrow in enumerate(graph.arrows):
        link = _MERMAID_ARROWS[arrow.kind]
        label = f'|"{mermaid_text(arrow.label)}"|' if arrow.label else ""
        lines.append(f"    {mermaid_id(arrow.source)} {link}{label} {mermaid_id(arrow.target)}")
        if arrow.refused:
            refused_links.append(str(index))
    for kind, style in _MERMAID_STYLES.items():
        members = [mermaid_id(vertex.key) for vertex in graph.vertices if vertex.kind == kind]
        if members:
            lines.append(f"    classDef {kind} {style}")
            lines.append(f"    class {','.join(members)} {kind}")
    refused = [mermaid_id(vertex.key) for vertex in graph.vertices if vertex.refused]
    if refused:
        lines.append(f"    classDef refused {_REFUSED_STYLE}")
        lines.append(f"    class {','.join(refused)} refused")
    if refused_links:
        lines.append(f"    linkStyle {','.join(refused_links)} {_REFUSED_STYLE}")
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {
    "ecs": "box",
    "dns": "cylinder",
    "router": "hexagon",
    "service": "box, style=rounded",
    "external": "parallelogram, style=dashed",
    "backend": "note",
}
_DOT_STYLES = {"calls": "penwidth=2", "serves": "", "routes": ""}


def dot_text(text: str) -> str:
    """A double-quoted DOT string: backslashes and quotes escaped, line breaks as ``\\n``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """A Graphviz digraph, left to right."""
    lines = ["digraph mesh {", "    rankdir=LR;"]
    lines.extend(f'    {kind} [fontname="Helvetica"];' for kind in ("node", "edge"))
    for vertex in graph.vertices:
        label = "\\n".join(dot_text(line)[1:-1] for line in vertex.lines)
        extra = ", color=red, penwidth=2" if vertex.refused else ""
        lines.append(f'    {dot_text(vertex.key)} [label="{label}", shape={_DOT_SHAPES[vertex.kind]}{extra}];')
    for arrow in graph.arrows:
        attributes = [f"label={dot_text(arrow.label)}"] if arrow.label else []
        if _DOT_STYLES[arrow.kind]:
            attributes.append(_DOT_STYLES[arrow.kind])
        if arrow.refused:
            attributes.extend(("color=red", "style=dashed"))
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"    {dot_text(arrow.source)} -> {dot_text(arrow.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
