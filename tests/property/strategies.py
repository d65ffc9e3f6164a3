"""Hypothesis strategies: macro events with valid meshes of random shape, and broken ones.

- ``valid_events(backend=...)``: a template built by ``builders.TemplateBuilder`` with 1-5 ECS nodes (``awsvpc``
  Fargate task definitions, services, security groups, roles and Cloud Map services in every form users
  write them), DNS nodes, routers with weighted routes on http/http2/grpc/tcp, services, backends, and
  intrinsics where users put them (``Ref``, ``Fn::GetAtt`` as ``["A", "B"]`` and ``"A.B"``, ``Fn::Sub``,
  ``Fn::If``), plus unrelated resources, outputs, conditions, mappings and metadata that must come back intact.
  Most expand; the few that do not (a rare generated-ID clash, say) still obey every invariant.
- ``broken_events()``: a valid event with 1-4 mutations: a key deleted, renamed (typo, unicode, intrinsic
  look-alike, ``Fn::Transform``/``Fn::ForEach``), a value retyped, a name left dangling, a number pushed out of
  range, a scalar replaced by an intrinsic (some of them malformed), in the section or in the resources it
  references, or in the event itself (parameters, parameter values, region).
- ``fuzz_events()``: both, with heavier and wider mutations (the standing fuzz target).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from composex_mesh.plan import pascal

from .builders import SECTION, Port, TemplateBuilder, ref
from .invariants import SCHEMA_KEYS

PROTOCOLS = ("http", "http2", "grpc", "tcp")
DURATIONS = ("250ms", "1s", "2s", "5s", "15s", "30s", "1m", "5m", "1h")
WHOLE_SECONDS = ("1s", "2s", "5s", "15s", "30s", "1m", "5m")
PORTS = (80, 443, 3000, 5432, 6379, 8080, 8443, 9000, 9090, 50051)
HTTP_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error", "connection-error")
GRPC_EVENTS = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
CANARY = "-cnry7q"
"""Appears in users' property values (images, environment, descriptions): logs must never show it."""


@dataclass(frozen=True)
class Generated:
    """An event and what the generator meant by it."""

    event: dict[str, Any]
    backend: str
    lint_clean: bool = False
    """True when the template around the section is plain CloudFormation that cfn-lint accepts."""


# -- names ----------------------------------------------------------------------------------------------

plain_names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True)
spec_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True)
"""Anything SPEC §2 allows (letters, digits, '-', '_'), for App Mesh (Service Connect wants lowercase)."""


TLS_CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def unique_names(count: int, names: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """Names that also differ as logical-ID stems and as DNS labels."""
    return st.lists(names, min_size=count, max_size=count, unique_by=lambda name: pascal(name).lower())


# -- the pieces of a mesh -------------------------------------------------------------------------------


@st.composite
def health_checks(draw: st.DrawFn, protocol: str) -> dict[str, Any]:
    check: dict[str, Any] = {}
    if protocol in ("http", "http2") and draw(st.booleans()):
        check["Path"] = draw(st.sampled_from(["/", "/health", "/ping"]))
    if draw(st.booleans()):
        check["Interval"] = draw(st.sampled_from(["5s", "10s", "30s", "5m"]))
    if draw(st.booleans()):
        check["Timeout"] = draw(st.sampled_from(["2s", "5s", "60s"]))
    if draw(st.booleans()):
        check["HealthyThreshold"] = draw(st.integers(2, 10))
    if draw(st.booleans()):
        check["UnhealthyThreshold"] = draw(st.integers(2, 10))
    return check


@st.composite
def listener_options(draw: st.DrawFn, protocol: str, service_connect: bool, published: bool) -> dict[str, Any]:
    """HealthCheck, Timeout, ConnectionPool, OutlierDetection as the backend allows them."""
    options: dict[str, Any] = {}
    if service_connect:
        if published and draw(st.booleans()):
            timeout = {"Idle": draw(st.sampled_from(WHOLE_SECONDS))}
            if protocol != "tcp" and draw(st.booleans()):
                timeout["PerRequest"] = draw(st.sampled_from(WHOLE_SECONDS))
            options["Timeout"] = timeout
        return options
    if draw(st.booleans()):
        options["HealthCheck"] = draw(health_checks(protocol))
    if draw(st.booleans()):
        timeout = {}
        if protocol != "tcp" and draw(st.booleans()):
            timeout["PerRequest"] = draw(st.sampled_from(DURATIONS))
        if draw(st.booleans()) or not timeout:
            timeout["Idle"] = draw(st.sampled_from(DURATIONS))
        options["Timeout"] = timeout
    if draw(st.booleans()):
        if protocol == "http":
            pool: dict[str, Any] = {"MaxConnections": draw(st.integers(1, 10_000))}
            if draw(st.booleans()):
                pool["MaxPendingRequests"] = draw(st.integers(1, 10_000))
        elif protocol == "tcp":
            pool = {"MaxConnections": draw(st.integers(1, 10_000))}
        else:
            pool = {"MaxRequests": draw(st.integers(1, 10_000))}
        options["ConnectionPool"] = pool
    if draw(st.booleans()):
        options["OutlierDetection"] = {
            "MaxServerErrors": draw(st.integers(1, 100)),
            "Interval": draw(st.sampled_from(DURATIONS)),
            "BaseEjectionDuration": draw(st.sampled_from(DURATIONS)),
            "MaxEjectionPercent": draw(st.integers(0, 100)),
        }
    return options


@st.composite
def http_match(draw: st.DrawFn, index: int) -> dict[str, Any] | None:
    kind = draw(st.sampled_from(["none", "prefix", "exact", "regex"]))
    match: dict[str, Any] = {}
    if kind == "prefix":
        match["Prefix"] = f"/r{index}"
    elif kind == "exact":
        match["Path"] = {"Exact": f"/p{index}"}
    elif kind == "regex":
        match["Path"] = {"Regex": f"^/x{index}/.*$"}
    if draw(st.booleans()):
        match["Method"] = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    if draw(st.integers(0, 3)) == 0:
        match["Scheme"] = draw(st.sampled_from(["http", "https"]))
    if draw(st.booleans()):
        match["Headers"] = [draw(header_match(index))]
    if draw(st.integers(0, 3)) == 0:
        parameter: dict[str, Any] = {"Name": f"q{index}"}
        if draw(st.booleans()):
            parameter["Exact"] = "yes"
        match["QueryParameters"] = [parameter]
    return match or None


@st.composite
def header_match(draw: st.DrawFn, index: int) -> dict[str, Any]:
    header: dict[str, Any] = {"Name": f"x-h{index}"}
    kind = draw(st.sampled_from(["Exact", "Prefix", "Suffix", "Regex", "Range"]))
    if kind == "Range":
        start = draw(st.integers(0, 1000))
        header["Range"] = {"Start": start, "End": start + draw(st.integers(1, 1000))}
    else:
        header[kind] = draw(st.sampled_from(["a", "beta", "v2", "^[a-z]+$"]))
    if draw(st.booleans()):
        header["Invert"] = draw(st.booleans())
    return header


@st.composite
def grpc_match(draw: st.DrawFn, index: int) -> dict[str, Any] | None:
    if draw(st.integers(0, 3)) == 0:
        return None
    match: dict[str, Any] = {"ServiceName": f"pkg.v1.Service{index}"}
    if draw(st.booleans()):
        match["MethodName"] = draw(st.sampled_from(["Get", "List", "Watch"]))
    if draw(st.booleans()):
        match["Metadata"] = [draw(header_match(index))]
    return match


@st.composite
def retries(draw: st.DrawFn, protocol: str) -> dict[str, Any]:
    events = HTTP_EVENTS + (GRPC_EVENTS if protocol == "grpc" else ())
    return {
        "MaxRetries": draw(st.integers(0, 5)),
        "PerRetryTimeout": draw(st.sampled_from(DURATIONS)),
        "Events": draw(st.lists(st.sampled_from(events), min_size=1, max_size=3, unique=True)),
    }


@st.composite
def routes(
    draw: st.DrawFn, protocol: str, eligible: list[str], router_ports: list[int], service_connect: bool
) -> list[dict[str, Any]]:
    """1-3 routes (Service Connect: one route, one target, nothing else), each unique by match and priority."""
    if service_connect:
        route: dict[str, Any] = {"Targets": {draw(st.sampled_from(eligible)): draw(st.integers(1, 100))}}
        if protocol in ("http", "http2") and draw(st.booleans()):
            route["Match"] = {"Prefix": "/"}
        if protocol != "tcp" and draw(st.booleans()):
            route["Timeout"] = {"PerRequest": draw(st.sampled_from(WHOLE_SECONDS))}
        return [route]
    result = []
    for index in range(draw(st.integers(1, 3))):
        targets = draw(st.lists(st.sampled_from(eligible), min_size=1, max_size=3, unique=True))
        weights = [draw(st.integers(0, 100)) for _ in targets]
        if not any(weights):
            weights[0] = draw(st.integers(1, 100))
        route = {"Targets": dict(zip(targets, weights, strict=True))}
        match: dict[str, Any] | None
        if protocol in ("http", "http2"):
            match = draw(http_match(index))
        elif protocol == "grpc":
            match = draw(grpc_match(index))
        else:
            match = None
        if len(router_ports) > 1:
            match = {**(match or {}), "Port": draw(st.sampled_from(router_ports))}
        if match is not None:
            route["Match"] = match
        if protocol != "tcp" and draw(st.booleans()):
            route["Retries"] = draw(retries(protocol))
        if draw(st.booleans()):
            timeout = {"Idle": draw(st.sampled_from(DURATIONS))}
            if protocol != "tcp" and draw(st.booleans()):
                timeout["PerRequest"] = draw(st.sampled_from(DURATIONS))
            route["Timeout"] = timeout
        # Two routes with the same match would shadow each other (an error): a distinct priority tells them apart.
        distinct = match is not None and any(
            key in match for key in ("Prefix", "Path", "Headers", "QueryParameters", "ServiceName")
        )
        if draw(st.booleans()) or (index > 0 and not distinct):
            route["Priority"] = index * 10 + draw(st.integers(0, 9))
        result.append(route)
    return result


# -- a whole mesh ---------------------------------------------------------------------------------------


@st.composite
def valid_builders(
    draw: st.DrawFn, backend: str | None = None, lint_clean: bool = False
) -> tuple[TemplateBuilder, str]:
    """A builder holding a valid mesh, and its backend (``AppMesh`` or ``ServiceConnect``)."""
    chosen = backend or draw(st.sampled_from(["AppMesh", "AppMesh", "ServiceConnect"]))
    service_connect = chosen == "ServiceConnect"
    written: Any = draw(st.sampled_from(["ServiceConnect", "param"] if service_connect else ["default", "AppMesh"]))
    builder = TemplateBuilder(
        namespace_name=draw(st.sampled_from(["corp.internal", "mesh.local", "svc.example"])),
        namespace=draw(st.sampled_from(["implicit", "logical-id", "external", "parameter-name"])),
        backend=written,
        region=draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"])),
    )
    n_ecs = draw(st.integers(1, 5))
    n_dns = 0 if service_connect else draw(st.integers(0, 2))
    names = draw(unique_names(n_ecs + n_dns, plain_names if service_connect or lint_clean else spec_names))
    ecs_names, dns_names = names[:n_ecs], names[n_ecs:]

    # Each node's listeners: (port, protocol).
    node_listeners: dict[str, list[tuple[int, str]]] = {}
    for name in names:
        low = 0 if service_connect and name in ecs_names else 1
        count = draw(st.integers(low, 2))
        ports = draw(st.lists(st.sampled_from(PORTS), min_size=count, max_size=count, unique=True))
        node_listeners[name] = [(port, draw(st.sampled_from(PROTOCOLS))) for port in ports]

    # Routers over the nodes' protocols.
    routers: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None]] = {}
    router_names = draw(unique_names(draw(st.integers(0, 3)), plain_names))
    published: set[tuple[str, int]] = set()
    for router_name in router_names:
        protocols = sorted({protocol for items in node_listeners.values() for _, protocol in items})
        if not protocols:
            break
        protocol = draw(st.sampled_from(protocols))
        eligible = [
            name
            for name, items in node_listeners.items()
            if any(item_protocol == protocol for _, item_protocol in items)
            and (not service_connect or name in ecs_names)
        ]
        if service_connect:
            eligible = [
                name
                for name in eligible
                if (name, next(port for port, p in node_listeners[name] if p == protocol)) not in published
            ]
        if not eligible:
            continue
        listener_count = 1 if service_connect else draw(st.integers(0, 2))
        router_ports = draw(
            st.lists(
                st.sampled_from(PORTS), min_size=max(1, listener_count), max_size=max(1, listener_count), unique=True
            )
        )
        router_routes = draw(routes(protocol, eligible, router_ports if listener_count else [], service_connect))
        targets = {target for route in router_routes for target in route["Targets"]}
        shapes = {tuple(node_listeners[target]) for target in targets}
        derivable = len(shapes) == 1 and len(next(iter(shapes))) == 1
        listeners: list[dict[str, Any]] | None
        if listener_count == 0 and derivable:
            listeners = None
        else:
            listeners = [{"Port": port, "Protocol": protocol} for port in router_ports[: max(1, listener_count)]]
            if listener_count < 2:
                for route in router_routes:
                    if "Match" in route and "Port" in route["Match"]:
                        del route["Match"]["Port"]
                        if not route["Match"]:
                            del route["Match"]
        if service_connect:
            (target,) = targets
            published.add((target, next(port for port, p in node_listeners[target] if p == protocol)))
        routers[router_name] = (protocol, router_routes, listeners)

    # Services: on routers, then on nodes.
    services: dict[str, dict[str, Any]] = {}
    label_taken: set[str] = set()
    service_pool = draw(unique_names(len(routers) + len(names), plain_names))
    pool = iter(service_pool)
    for router_name in routers:
        if draw(st.integers(0, 4)) > 0:
            services[next(pool)] = {"Router": router_name}
    for name in names:
        if not node_listeners[name] or (service_connect and name not in ecs_names):
            continue
        if service_connect and any((name, port) in published for port, _ in node_listeners[name]):
            continue
        if draw(st.booleans()):
            services[next(pool)] = {"Node": name}
            published.update((name, port) for port, _ in node_listeners[name])
    served_ports: set[tuple[str, int]] = set()
    for service in services.values():
        if "Node" in service:
            served_ports.update((service["Node"], port) for port, _ in node_listeners[service["Node"]])
        else:
            protocol, router_routes, _ = routers[service["Router"]]
            for route in router_routes:
                for target in route["Targets"]:
                    # Service Connect publishes the target's first listener of the router's protocol.
                    served_ports.add((target, next(port for port, p in node_listeners[target] if p == protocol)))
    for service_name, service in services.items():
        label = service_name.lower()
        if draw(st.integers(0, 3)) == 0:
            label = f"{service_name.lower()}-dns"
            if label not in label_taken and label not in {s.lower() for s in services}:
                service["DnsName"] = f"{label}.{builder.namespace_name}"
            else:
                label = service_name.lower()
        label_taken.add(label)

    # Mesh and envoy settings.
    if not service_connect:
        mesh_kind = draw(st.sampled_from(["none", "named", "filter", "existing", "shared"]))
        if mesh_kind == "named":
            builder.section["Mesh"] = {
                "Name": draw(
                    st.sampled_from(
                        [
                            {"Fn::Sub": "${AWS::StackName}-mesh"},
                            ref("AWS::StackName"),
                            "my-mesh",
                            {"Fn::Join": ["-", [ref("AWS::StackName"), "m"]]},
                        ]
                    )
                )
            }
        elif mesh_kind == "filter":
            builder.section["Mesh"] = {"EgressFilter": draw(st.sampled_from(["DROP_ALL", "ALLOW_ALL"]))}
        elif mesh_kind in ("existing", "shared"):
            builder.section["Mesh"] = {"Name": "shared-mesh", "Existing": draw(st.sampled_from([True, "true"]))}
            if mesh_kind == "shared":
                builder.section["Mesh"]["Owner"] = "111122223333"
        if draw(st.integers(0, 2)) == 0:
            envoy: dict[str, Any] = {}
            if draw(st.booleans()):
                envoy["LogLevel"] = draw(st.sampled_from(["debug", "info", "warning", "off"]))
            if draw(st.booleans()):
                envoy["Tracing"] = "XRay"
            if draw(st.booleans()):
                envoy["Environment"] = {"ENVOY_ADMIN_ACCESS_PORT": "9902", "EXTRA": ref("AWS::Region")}
            if draw(st.integers(0, 3)) == 0:
                envoy["Image"] = {"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/envoy:v1"}
            builder.section["Envoy"] = envoy

    if chosen in ("AppMesh", "ServiceConnect") and draw(st.integers(0, 3)) == 0:  # encryption in transit, SPEC §9
        tls: dict[str, Any] = {"CertificateAuthority": draw(st.sampled_from([TLS_CA, {"Fn::ImportValue": "MeshCa"}]))}
        if not service_connect:
            tls["Mode"] = draw(st.sampled_from(["STRICT", "PERMISSIVE"]))
            if draw(st.booleans()):
                tls["Mutual"] = {"Sds": "spiffe://corp.internal/ns/mesh", "Trust": "spiffe://corp.internal"}
        builder.section["Tls"] = tls

    # The nodes' resources and section entries.
    service_names = list(services)
    for index, name in enumerate(ecs_names):
        stem = f"E{index}"
        explicit = draw(st.booleans()) or not node_listeners[name]
        served = {port for (node, port) in served_ports if node == name}
        mappings = [
            Port(port, protocol, app_protocol=not explicit or draw(st.booleans()))
            for port, protocol in node_listeners[name]
        ]
        if explicit and not service_connect and draw(st.booleans()):
            mappings = []  # App Mesh needs no port mappings when the node lists its listeners
        listeners = None
        if explicit:
            listeners = []
            for port, protocol in node_listeners[name]:
                options = draw(listener_options(protocol, service_connect, port in served))
                listeners.append({"Port": port, "Protocol": protocol, **options})
        if explicit and not node_listeners[name]:
            listeners = None if not mappings else listeners
        backends = draw(st.lists(st.sampled_from(service_names), unique=True, max_size=3)) if service_names else []
        registry = None if service_connect else draw(st.sampled_from(["list", "string", None]))
        builder.add_ecs_node(
            name,
            stem,
            mappings,
            explicit_listeners=listeners,
            sidecars=draw(st.integers(0, 2)),
            name_container=draw(st.booleans()),
            task_role=draw(st.sampled_from(["list", "string", "none", "external"])),
            execution_role=draw(st.sampled_from(["list", "string", "none", "external"])),
            security_groups=tuple(
                draw(
                    st.lists(
                        st.sampled_from(["list", "string", "ref", "literal"] if not lint_clean else ["list", "string"]),
                        min_size=1,
                        max_size=2,
                    )
                )
            )
            if draw(st.integers(0, 5))
            else ("parameter",),
            registry=registry,
            discovery_name=name.lower() if draw(st.booleans()) else f"{name.lower()}-registered",
            log=draw(st.booleans()),
            network_mode=draw(st.sampled_from(["literal", "literal", "parameter"])),
            backends=backends,
            marker=CANARY,
            # DependsOn what a Ref already waits for: cfn-lint warns (W3005), so not in lint-clean templates.
            service_depends_on=None if lint_clean else draw(st.sampled_from([None, None, "string", "list"])),
            container_depends_on=draw(st.booleans()),
        )
    for index, name in enumerate(dns_names):
        builder.add_dns_node(
            name,
            f"D{index}",
            [{"Port": port, "Protocol": protocol} for port, protocol in node_listeners[name]],
            hostname=draw(st.sampled_from(["getatt-list", "getatt-string", "sub", "if", "literal", "parameter"])),
            security_groups=tuple(draw(st.lists(st.sampled_from(["logical-id", "literal"]), max_size=2))),
            marker=CANARY,
        )
    for router_name, (_protocol, router_routes, listeners) in routers.items():
        builder.add_router(router_name, router_routes, listeners)
    for service_name, service in services.items():
        builder.add_service(service_name, **_service_kwargs(service))
    return builder, chosen


def _service_kwargs(service: dict[str, Any]) -> dict[str, Any]:
    return {"node": service.get("Node"), "router": service.get("Router"), "dns_name": service.get("DnsName")}


json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
"""Text as JSON carries it: no lone surrogates (a CloudFormation event is valid UTF-8)."""
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    json_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(json_text, children, max_size=4),
    ),
    max_leaves=12,
)
"""Any JSON value (what a fragment may hold), kept small."""


@st.composite
def surroundings(draw: st.DrawFn, builder: TemplateBuilder) -> None:
    """Unrelated parts of a template that must come back intact: resources, outputs, conditions, metadata."""
    for index in range(draw(st.integers(0, 3))):
        builder.resources[f"Other{index}Topic"] = {
            "Type": draw(st.sampled_from(["AWS::SNS::Topic", "AWS::SQS::Queue", "Custom::Thing", "AWS::ECS::Service"])),
            "Properties": draw(st.dictionaries(st.sampled_from(["A", "B", "Tags", "Name"]), json_values, max_size=3)),
            **({"Condition": "Always"} if draw(st.booleans()) else {}),
        }
    if draw(st.booleans()):
        builder.conditions["Always"] = {"Fn::Equals": ["a", "a"]}
    else:
        builder.conditions.setdefault("Always", {"Fn::Equals": [ref("AWS::Region"), "us-east-1"]})
    if draw(st.booleans()):
        builder.outputs["Cluster"] = {"Value": ref("ClusterXr"), "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-c"}}}
    if draw(st.booleans()):
        builder.extra_top_level["Mappings"] = {"M": {"us-east-1": {"K": draw(json_values)}}}
    if draw(st.booleans()):
        builder.extra_top_level["Metadata"] = {"Owner": f"team{CANARY}", "Any": draw(json_values)}
    if draw(st.booleans()):
        builder.extra_top_level["Rules"] = {"R": {"Assertions": [{"Assert": {"Fn::Equals": ["a", "a"]}}]}}


@st.composite
def valid_events(draw: st.DrawFn, backend: str | None = None, lint_clean: bool = False) -> Generated:
    builder, chosen = draw(valid_builders(backend, lint_clean))
    if not lint_clean:
        draw(surroundings(builder))
    order = list(builder.resources)
    if draw(st.booleans()):
        order = draw(st.permutations(order))
    event = builder.event(section_position=draw(st.integers(0, 6)), order=order)
    return Generated(event, chosen, lint_clean)


# -- mutations --------------------------------------------------------------------------------------------

ODD_KEYS = (
    "",
    " ",
    "Fn::GetAtt",
    "Ref",
    "Condition",
    "Fn::Transform",
    "Fn::ForEach::Nodes",
    "Fn::If",
    "nœud",
    "\u202eevil",
    "名前",
    "a.b",
    "x[0]",
    "[Nodes.x] fake",
    "Nodes",
    "__proto__",
    "n" * 256,
)
CLOUDFORMATION_KEYS = (
    "DependsOn",
    "Condition",
    "Properties",
    "Type",
    "Metadata",
    "ServiceRegistries",
    "ServiceConnectConfiguration",
    "NetworkConfiguration",
    "TaskDefinition",
    "NetworkMode",
    "ContainerDefinitions",
    "ProxyConfiguration",
    "TaskRoleArn",
    "ExecutionRoleArn",
    "PortMappings",
    "LogConfiguration",
    "Name",
    "NamespaceId",
    "SecurityGroups",
    "AppProtocol",
    "ContainerPort",
    "Memory",
    "FirelensConfiguration",
)
"""Keys of the user's resources the macro reads or writes: inserted with odd values by the mutations."""
ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    65536,
    101,
    1001,
    2**63,
    10**30,
    8080.0,
    0.5,
    "",
    " ",
    "8080",
    "abc",
    "ALLOW_ALL",
    "nœud",
    "Fn::GetAtt",
    "9" * 5000,
    [],
    {},
    [None],
    {"Ref": "AWS::NoValue"},
    {"Ref": "AWS::StackName"},
    {"Ref": ["not", "a", "name"]},
    {"Ref": {"Fn::Sub": "x"}},
    {"Ref": 5},
    {"Fn::GetAtt": ["Missing", "Arn"]},
    {"Fn::GetAtt": "Missing.Arn"},
    {"Fn::GetAtt": []},
    {"Fn::GetAtt": [5, None]},
    {"Fn::Sub": "${AWS::StackName}-x"},
    {"Fn::Sub": ["${A}", {"A": "b"}]},
    {"Fn::If": ["Always", "a", {"Ref": "AWS::NoValue"}]},
    {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://bucket/x.yaml"}}},
    {"Fn::ForEach::Loop": ["X", ["a", "b"], {"${X}": {"Service": "x"}}]},
    {"Ref": "x", "Fn::GetAtt": "y"},
    {"Condition": "Always"},
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (tuple of keys and indexes) in a JSON value, the value itself included."""
    found = [prefix]
    stack = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        for key, child in children:
            found.append((*path, key))
            stack.append(((*path, key), child))
    return sorted(found, key=lambda path: json.dumps([str(part) for part in path]))


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        root = root[part]
    return root


def _names_in(section: Any) -> list[str]:
    names: list[str] = []
    if isinstance(section, dict):
        for key in ("Nodes", "Routers", "Services"):
            part = section.get(key)
            if isinstance(part, dict):
                names.extend(str(name) for name in part)
    return names


@st.composite
def mutate(draw: st.DrawFn, root: Any, names: list[str]) -> Any:
    """One mutation somewhere in ``root`` (a copy is returned)."""
    root = copy.deepcopy(root)
    paths = _paths(root)
    path = draw(st.sampled_from(paths))
    operator = draw(
        st.sampled_from(["delete", "retype", "rename", "dangle", "intrinsic", "number", "list", "insert", "swap"])
    )
    if not path:
        return draw(st.sampled_from(ODD_VALUES)) if operator in ("retype", "delete") else root
    parent, key = _get(root, path[:-1]), path[-1]
    value = parent[key]
    if operator == "delete":
        del parent[key]
    elif operator == "retype":
        parent[key] = draw(st.one_of(st.sampled_from(ODD_VALUES), json_values))
    elif operator == "rename" and isinstance(parent, dict):
        new_key = draw(
            st.one_of(st.sampled_from(ODD_KEYS), st.sampled_from([str(key).lower(), f"{key}x", str(key)[:-1] or "k"]))
        )
        del parent[key]
        parent[new_key] = value
    elif operator == "dangle":
        parent[key] = draw(
            st.sampled_from([f"{value}x" if isinstance(value, str) else "missing", "missing", *names[:8]])
        )
    elif operator == "intrinsic":
        target = value if isinstance(value, str) else "Missing"
        parent[key] = draw(
            st.sampled_from(
                [
                    {"Ref": target},
                    {"Fn::GetAtt": [target, "Arn"]},
                    {"Fn::GetAtt": f"{target}.Arn"},
                    {"Fn::Sub": f"${{{target}}}"},
                    {"Fn::If": ["Always", value, {"Ref": "AWS::NoValue"}]},
                    {"Fn::Transform": {"Name": "AWS::Include"}},
                    {"Ref": [target]},
                ]
            )
        )
    elif operator == "number":
        parent[key] = draw(
            st.sampled_from([0, -1, 65535, 65536, 100, 101, 1000, 1001, 2**31, 10**20, "42", "x", 1.5, True])
        )
    elif operator == "list":
        if isinstance(value, list) and value:
            value.append(copy.deepcopy(value[0]) if draw(st.booleans()) else draw(st.sampled_from(ODD_VALUES)))
        else:
            parent[key] = [value]
    elif operator == "insert" and isinstance(value, dict):
        keys = ODD_KEYS + CLOUDFORMATION_KEYS + tuple(sorted(SCHEMA_KEYS))
        value[draw(st.sampled_from(keys))] = draw(st.one_of(st.sampled_from(ODD_VALUES), json_values))
    elif operator == "swap":
        other = _get(root, draw(st.sampled_from(paths)))
        parent[key] = copy.deepcopy(other)
    return root


@st.composite
def broken_events(draw: st.DrawFn, max_mutations: int = 4, wide: bool = False) -> Generated:
    """A valid event, then mutations: mostly in the section, some in the resources and the event itself."""
    generated = draw(valid_events())
    event = copy.deepcopy(generated.event)
    fragment = event["fragment"]
    for _ in range(draw(st.integers(1, max_mutations))):
        names = _names_in(fragment.get(SECTION))
        where = draw(
            st.sampled_from(["section"] * 6 + ["resources"] * 2 + ["event"] + (["template"] * 2 if wide else []))
        )
        if where == "section" and SECTION in fragment:
            fragment[SECTION] = draw(mutate(fragment[SECTION], names))
        elif where == "resources" and isinstance(fragment.get("Resources"), dict):
            section = fragment.get(SECTION)
            nodes = section.get("Nodes") if isinstance(section, dict) else None
            referenced = [
                node.get("Service")
                for node in (nodes.values() if isinstance(nodes, dict) else ())
                if isinstance(node, dict) and isinstance(node.get("Service"), str)
            ]
            resources = fragment["Resources"]
            candidates = sorted({*[item for item in referenced if item in resources], *list(resources)[:4]})
            candidates += [item for item in resources if item.endswith(("Td", "Ns", "Disc", "Sg", "Tr", "Xr", "Db"))]
            logical_id = draw(st.sampled_from(sorted(set(candidates)))) if candidates else None
            if logical_id is not None:
                resources[logical_id] = draw(mutate(resources[logical_id], names))
        elif where == "template":
            event["fragment"] = draw(mutate(fragment, names))
            if not isinstance(event["fragment"], dict):
                break
            fragment = event["fragment"]
        else:
            part = draw(st.sampled_from(["params", "templateParameterValues", "region", "requestId"]))
            event[part] = draw(
                st.one_of(
                    st.sampled_from(
                        [
                            {"Backend": "ServiceConnect"},
                            {"Backend": "Mesh"},
                            {"Unknown": 1},
                            {"Backend": {"Ref": "X"}},
                            [],
                            None,
                            {"VpcId": {"Ref": "VpcId"}, "NetworkMode": ["awsvpc"], "NamespaceName": 5},
                            "eu-west-3",
                            "cn-north-1",
                            "us-gov-west-1",
                            "",
                        ]
                    ),
                    json_values,
                )
            )
    return Generated(event, generated.backend)


def fuzz_events() -> st.SearchStrategy[Generated]:
    """The standing fuzz target's inputs: valid meshes, and broken ones with up to 8 mutations anywhere."""
    return st.one_of(valid_events(), broken_events(), broken_events(max_mutations=8, wide=True))
