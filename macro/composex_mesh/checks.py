"""Rules of the section that span several keys and need no template: exactly-one-of, references, protocols."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import model
from .errors import ErrorCollector
from .fields import did_you_mean, fields_of, indexed

HTTP_PROTOCOLS = ("http", "http2")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_HEALTH_CHECK_BOUNDS = {"Interval": (5_000, 300_000, "5s", "300s"), "Timeout": (2_000, 60_000, "2s", "60s")}
_HTTP_MATCH_KEYS = ("Prefix", "Path", "Method", "Scheme", "Headers", "QueryParameters")
_GRPC_MATCH_KEYS = ("ServiceName", "MethodName", "Metadata")
_NO_PLAIN_TEXT = {
    "ServiceConnect": "Service Connect speaks TLS 1.3, server side only, and with Tls every connection is encrypted: "
    "there is no plain-text fallback to migrate with. Remove Mode (STRICT is what Service Connect does).",
    "VpcLattice": "A VPC Lattice listener is HTTP or HTTPS, with no plain-text fallback on an HTTPS one. Remove Mode.",
}
_ARN_HEAD = r"^arn:aws(?:-[a-z]+)*:"
_UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
_ARNS = {
    "acm-pca": (
        re.compile(_ARN_HEAD + r"acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/" + _UUID + "$"),
        "arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID, the ARN of an AWS Private CA",
    ),
    "acm": (
        re.compile(_ARN_HEAD + r"acm:[a-z0-9-]+:\d{12}:certificate/" + _UUID + "$"),
        "arn:aws:acm:REGION:ACCOUNT:certificate/ID, the ARN of an ACM certificate",
    ),
    "kms": (
        re.compile(_ARN_HEAD + r"kms:[a-z0-9-]+:\d{12}:key/(?:" + _UUID + r"|mrk-[0-9a-f]{32})$"),
        "arn:aws:kms:REGION:ACCOUNT:key/ID, the ARN of a KMS key (not an alias: IAM grants a key by its key ARN)",
    ),
}


def check_section(section: model.Section, errors: ErrorCollector, broken: frozenset[str] = frozenset()) -> None:
    """Check every cross-key rule of SPEC §2 that the template is not needed for.

    ``broken`` names parts that exist but failed to parse: references to them are not reported again.
    """
    if section.backend == "AppMesh":  # Service Connect and Lattice have no mesh: their backends check Mesh
        _check_mesh(section.mesh, errors)
    _check_namespace(section, errors)
    check_backend_keys(section, section.backend, "", errors)
    _check_tls(section, errors)
    _check_envoy_environment(section.envoy.environment, errors)
    for name, node in section.nodes.items():
        _check_node(name, node, section, errors, broken)
    for name, router in section.routers.items():
        _check_router(name, router, section, errors, broken)
    for name, service in section.services.items():
        _check_service(name, service, section, errors, broken)


def _check_reference(
    path: str,
    name: str,
    pool: Mapping[str, object],
    kind: str,
    errors: ErrorCollector,
    broken: frozenset[str],
    nodes: Mapping[str, object] | None = None,
) -> None:
    if name not in pool and name not in broken:
        section_key = {"node": "Nodes", "router": "Routers", "service": "Services"}[kind]
        hint = did_you_mean(name, pool)
        if not hint and nodes is not None and name in nodes:
            example = f"{{{name}: {{Node: {name}}}}}"
            hint = f" '{name}' is a node: list a service that it provides (e.g. Services: {example})."
        errors.add_check(path, f"'{name}' is not a {kind} under {section_key}.{hint}")


def _exactly_one(path: str, given: Iterable[tuple[str, object]], errors: ErrorCollector) -> None:
    present = [key for key, value in given if value not in (None, (), {})]
    names = [key for key, _ in given]
    if len(present) != 1:
        choices = " or ".join(names)
        found = "none" if not present else " and ".join(present)
        errors.add_check(path, f"needs exactly one of {choices}; found {found}.")


def check_backend_keys(value: Any, backend: str, path: str, errors: ErrorCollector) -> None:
    """Keys that only some backends take are errors under the others, naming the backends that take them."""
    if isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            check_backend_keys(item, backend, f"{path}[{index}]", errors)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            check_backend_keys(item, backend, f"{path}.{name}", errors)
        return
    if not dataclasses.is_dataclass(value) or isinstance(value, (type, model.Duration)):
        return
    for spec in fields_of(type(value)):
        item = getattr(value, spec.attribute)
        item_path = f"{path}.{spec.key}" if path else spec.key
        if spec.backends and backend not in spec.backends and item != spec.default:
            takers = " and ".join(f"Backend: {name}" for name in spec.backends)
            hint = spec.elsewhere.get(backend, "")
            errors.add_check(item_path, f"is for {takers} only, not {backend}.{' ' + hint if hint else ''} Remove it.")
        else:
            check_backend_keys(item, backend, item_path, errors)


def _check_arn(path: str, value: Any, service: str, errors: ErrorCollector) -> None:
    """A literal ARN of ``service`` has its documented shape; intrinsics (parameters, imports) are taken as given."""
    pattern, shape = _ARNS[service]
    if isinstance(value, str) and not pattern.match(value):
        errors.add_check(path, f"'{value[:100]}' is not an ARN of the form {shape}.")


def _check_tls(section: model.Section, errors: ErrorCollector) -> None:
    """The section's Tls and the listeners' Tls: ARN shapes, one source per certificate, what each backend needs."""
    tls = section.tls
    listener_tls = [
        (f"Nodes.{name}.Listeners[{index}].Tls", listener.tls)
        for name, node in section.nodes.items()
        for index, listener in indexed(node.listeners)
        if listener.tls is not None
    ]
    for path, item in listener_tls:
        certificate = item.certificate
        given = (("Acm", certificate.acm), ("Sds", certificate.sds), ("File", certificate.file))
        _exactly_one(f"{path}.Certificate", given, errors)
        if certificate.acm is not None:
            _check_arn(f"{path}.Certificate.Acm", certificate.acm, "acm", errors)
            if section.backend == "AppMesh" and tls is not None and tls.certificate_authority is None:
                errors.add_check(
                    f"{path}.Certificate.Acm",
                    "needs Tls.CertificateAuthority: clients trust an ACM private certificate through the AWS "
                    "Private CA that issued it. Give that CA's ARN.",
                )
        if tls is None and section.backend == "AppMesh":  # elsewhere a listener's Tls is an error of its own
            errors.add_check(
                path,
                "needs Tls at the top of the section: it says what the clients trust (Tls.CertificateAuthority, "
                "or Tls.Mutual).",
            )
    if tls is None:
        return
    if tls.certificate_authority is not None:
        _check_arn("Tls.CertificateAuthority", tls.certificate_authority, "acm-pca", errors)
    elif section.backend == "ServiceConnect" or (section.backend == "AppMesh" and tls.mutual is None):
        trust = " (or, on AppMesh, Tls.Mutual: its Trust is then what clients trust)" * (section.backend == "AppMesh")
        errors.add_check(
            "Tls.CertificateAuthority",
            f"is required: the ARN of the AWS Private CA that issues the certificates and that clients trust{trust}.",
        )
    if tls.kms_key is not None:
        _check_arn("Tls.KmsKey", tls.kms_key, "kms", errors)
    if tls.mode == "PERMISSIVE" and section.backend != "AppMesh":
        errors.add_check(
            "Tls.Mode",
            f"PERMISSIVE is for Backend: AppMesh only, not {section.backend}. {_NO_PLAIN_TEXT[section.backend]}",
        )
    mutual = tls.mutual
    if mutual is not None:
        _exactly_one("Tls.Mutual", (("Sds", mutual.sds), ("File", mutual.file)), errors)
        if mutual.sds is not None and mutual.file is None and mutual.trust is None:
            errors.add_check(
                "Tls.Mutual.Trust", "is required with Sds: the SDS secret of the trust bundle, e.g. spiffe://corp."
            )
        if mutual.file is not None and mutual.trust is not None:
            errors.add_check("Tls.Mutual.Trust", "goes with Sds; with File, write the bundle's path as File.Trust.")


def _check_namespace(section: model.Section, errors: ErrorCollector) -> None:
    given = section.namespace
    if not isinstance(given, model.NamespaceRef):
        return
    _exactly_one("Namespace", (("Id", given.id), ("Arn", given.arn)), errors)


def _check_mesh(mesh: model.Mesh, errors: ErrorCollector) -> None:
    if mesh.existing and mesh.name is None:
        errors.add_check("Mesh.Name", "is required when Existing is true: it names the mesh to join.")
    if mesh.owner is not None and not mesh.existing:
        errors.add_check(
            "Mesh.Owner",
            "needs Existing: true: a shared mesh is made by its owner's account, and this stack joins it.",
        )
    if mesh.owner is not None and not _ACCOUNT_ID.match(mesh.owner):
        errors.add_check("Mesh.Owner", f"'{mesh.owner}' is not an AWS account ID (12 digits).")


ENVOY_VARIABLES_SET_BY_THE_MACRO = {
    "APPMESH_RESOURCE_ARN": "the virtual node of each task",
    "APPMESH_VIRTUAL_NODE_NAME": "the virtual node of each task, as APPMESH_RESOURCE_ARN",
    "ENVOY_LOG_LEVEL": "Envoy.LogLevel",
    "ENABLE_ENVOY_XRAY_TRACING": "Envoy.Tracing",
}
"""Envoy variables the macro sets itself, and what decides them instead."""
ENVOY_PROXY_PORTS = (15000, 15001)
"""ProxyIngressPort and ProxyEgressPort: envoy listens there, so its admin interface cannot."""


def _check_envoy_environment(environment: Mapping[str, object], errors: ErrorCollector) -> None:
    for name, value in environment.items():
        path = f"Envoy.Environment.{name}"
        if name in ENVOY_VARIABLES_SET_BY_THE_MACRO:
            errors.add_check(
                path, f"is set by the macro ({ENVOY_VARIABLES_SET_BY_THE_MACRO[name]}): remove it from Environment."
            )
        elif name == "ENVOY_ADMIN_ACCESS_PORT":
            port = _port_number(value)
            if port is None or port in ENVOY_PROXY_PORTS:
                errors.add_check(
                    path,
                    "must be a port number written as a literal, 1 to 65535 and not 15000 or 15001 (envoy's proxy "
                    "ports), e.g. \"9901\": envoy's health check command is built from it.",
                )


def _port_number(value: object) -> int | None:
    """``value`` as a port number, when it is one written plainly (``9901`` or ``"9901"``, ASCII digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 65535 else None


def _check_node(
    name: str, node: model.Node, section: model.Section, errors: ErrorCollector, broken: frozenset[str]
) -> None:
    path = f"Nodes.{name}"
    _exactly_one(path, (("Service", node.service), ("Hostname", node.hostname)), errors)
    if node.hostname is not None and node.service is None:
        if not node.listeners:
            errors.add_check(f"{path}.Listeners", "is required for a DNS node (one with Hostname).")
        if node.backends:
            errors.add_check(f"{path}.Backends", "is for ECS nodes only: a DNS node has no envoy to call through.")
        if node.container is not None:
            errors.add_check(f"{path}.Container", "is for ECS nodes only (nodes with Service).")
        if node.cloud_map_attributes:
            errors.add_check(f"{path}.CloudMapAttributes", "is for ECS nodes only: a DNS node is found by DNS.")
    elif node.service is not None and node.security_groups:
        errors.add_check(
            f"{path}.SecurityGroups",
            "is for DNS nodes only: an ECS node uses the security groups of its service's NetworkConfiguration.",
        )
    seen_backends: set[str] = set()
    for index, backend in indexed(node.backends):
        backend_path = f"{path}.Backends[{index}]"
        if backend in seen_backends:
            errors.add_check(backend_path, f"'{backend}' is listed twice.")
        seen_backends.add(backend)
        _check_reference(backend_path, backend, section.services, "service", errors, broken, section.nodes)
    for index, listener in indexed(node.listeners):
        _check_listener(f"{path}.Listeners[{index}]", listener, errors)
    seen_ports: set[int] = set()  # a set: a list made this check quadratic in the number of listeners
    for index, listener in indexed(node.listeners):
        if listener.port in seen_ports:
            errors.add_check(
                f"{path}.Listeners[{index}].Port", f"{listener.port} is already a listener port of this node."
            )
        seen_ports.add(listener.port)


def _check_listener(path: str, listener: model.Listener, errors: ErrorCollector) -> None:
    protocol = listener.protocol
    health = listener.health_check
    if health is not None:
        checked = health.protocol or protocol
        if health.path is not None and checked not in HTTP_PROTOCOLS:
            errors.add_check(f"{path}.HealthCheck.Path", f"is for http and http2 health checks, not {checked}.")
        for key, duration in (("Interval", health.interval), ("Timeout", health.timeout)):
            low, high, low_text, high_text = _HEALTH_CHECK_BOUNDS[key]
            if duration is not None and not low <= duration.milliseconds <= high:
                errors.add_check(
                    f"{path}.HealthCheck.{key}",
                    f"{duration.text} is out of range: it must be from {low_text} to {high_text}.",
                )
    timeout = listener.timeout
    if timeout is not None and timeout.per_request is not None and protocol == "tcp":
        errors.add_check(
            f"{path}.Timeout.PerRequest",
            "is for http, http2 and grpc listeners; a tcp listener takes only Idle.",
        )
    pool = listener.connection_pool
    if pool is not None:
        allowed = {
            "http": ("MaxConnections", "MaxPendingRequests"),
            "http2": ("MaxRequests",),
            "grpc": ("MaxRequests",),
            "tcp": ("MaxConnections",),
        }[protocol]
        given: tuple[tuple[str, int | None], ...] = (
            ("MaxConnections", pool.max_connections),
            ("MaxPendingRequests", pool.max_pending_requests),
            ("MaxRequests", pool.max_requests),
        )
        for key, value in given:
            if value is not None and key not in allowed:
                takers = {
                    "MaxConnections": "http and tcp",
                    "MaxPendingRequests": "http",
                    "MaxRequests": "http2 and grpc",
                }[key]
                errors.add_check(f"{path}.ConnectionPool.{key}", f"is for {takers} listeners, not {protocol}.")
        if protocol == "http" and pool.max_connections is None:
            errors.add_check(f"{path}.ConnectionPool.MaxConnections", "is required for an http connection pool.")
        if protocol == "tcp" and pool.max_connections is None:
            errors.add_check(f"{path}.ConnectionPool.MaxConnections", "is required for a tcp connection pool.")
        if protocol in ("http2", "grpc") and pool.max_requests is None:
            errors.add_check(f"{path}.ConnectionPool.MaxRequests", f"is required for an {protocol} connection pool.")


def match_protocols(match: model.Match) -> dict[str, str]:
    """The match keys a route uses, each with the protocol family it belongs to (``http`` or ``grpc``)."""
    used: dict[str, str] = {}
    values = {
        "Prefix": match.prefix,
        "Path": match.path,
        "Method": match.method,
        "Scheme": match.scheme,
        "Headers": match.headers,
        "QueryParameters": match.query_parameters,
        "ServiceName": match.service_name,
        "MethodName": match.method_name,
        "Metadata": match.metadata,
    }
    for key, value in values.items():
        if value not in (None, ()):
            used[key] = "http" if key in _HTTP_MATCH_KEYS else "grpc"
    return used


def _check_router(
    name: str, router: model.Router, section: model.Section, errors: ErrorCollector, broken: frozenset[str]
) -> None:
    path = f"Routers.{name}"
    listeners = router.listeners or ()
    for index, listener in indexed(listeners)[1:]:
        if listener.protocol != listeners[0].protocol:
            errors.add_check(
                f"{path}.Listeners[{index}].Protocol",
                f"'{listener.protocol}' differs from '{listeners[0].protocol}' of Listeners[0]: "
                "a router's listeners share one protocol.",
            )
    if listeners:  # with derived listeners, the resolver checks the routes once it knows the protocol
        check_routes(path, name, listeners, router.routes, errors)
    for index, route in indexed(router.routes):
        route_path = f"{path}.Routes[{index}]"
        if not route.targets:
            errors.add_check(f"{route_path}.Targets", "needs at least one node.")
        elif not any(weight > 0 for weight in route.targets.values()):
            errors.add_check(f"{route_path}.Targets", "needs at least one weight above 0.")
        for target in route.targets:
            _check_reference(f"{route_path}.Targets.{target}", target, section.nodes, "node", errors, broken)
        if route.match is not None:
            _check_match(f"{route_path}.Match", route.match, errors)


def _check_match(path: str, match: model.Match, errors: ErrorCollector) -> None:
    if match.prefix is not None and match.path is not None:
        errors.add_check(f"{path}.Path", "cannot be combined with Prefix: match a path by one of them.")
    if match.path is not None:
        _exactly_one(f"{path}.Path", (("Exact", match.path.exact), ("Regex", match.path.regex)), errors)
    if match.method_name is not None and match.service_name is None:
        errors.add_check(f"{path}.MethodName", "needs ServiceName: gRPC methods are matched within a service.")
    for key, headers in (("Headers", match.headers), ("Metadata", match.metadata)):
        for index, header in indexed(headers):
            options = (
                ("Exact", header.exact),
                ("Prefix", header.prefix),
                ("Suffix", header.suffix),
                ("Regex", header.regex),
                ("Range", header.range),
            )
            _exactly_one(f"{path}.{key}[{index}]", options, errors)
            if header.range is not None and header.range.start >= header.range.end:
                errors.add_check(f"{path}.{key}[{index}].Range", "Start must be below End.")
    families = set(match_protocols(match).values())
    if len(families) > 1:
        errors.add_check(
            path,
            "mixes http keys (Prefix, Path, Method, ...) with gRPC keys (ServiceName, MethodName, Metadata).",
        )


def _check_service(
    name: str, service: model.Service, section: model.Section, errors: ErrorCollector, broken: frozenset[str]
) -> None:
    path = f"Services.{name}"
    _exactly_one(path, (("Node", service.node), ("Router", service.router), ("External", service.external)), errors)
    if service.external is not None and service.dns_name is not None:
        errors.add_check(f"{path}.DnsName", "is for Node and Router services; an External service has its own DnsName.")
    if service.node is not None:
        _check_reference(f"{path}.Node", service.node, section.nodes, "node", errors, broken)
    if service.router is not None:
        _check_reference(f"{path}.Router", service.router, section.routers, "router", errors, broken)


def check_routes(
    path: str,
    router: str,
    listeners: tuple[model.RouterListener, ...],
    routes: tuple[model.Route, ...],
    errors: ErrorCollector,
) -> None:
    """Rules of a router's routes that depend on its protocol: match keys, ports, retries, timeouts, duplicates."""
    protocol = listeners[0].protocol
    family = "grpc" if protocol == "grpc" else "http" if protocol in HTTP_PROTOCOLS else "tcp"
    ports = [listener.port for listener in listeners]
    seen: dict[str, int] = {}
    for index, route in indexed(routes):
        route_path = f"{path}.Routes[{index}]"
        for key, key_family in match_protocols(route.match).items() if route.match else ():
            if key_family != family:
                errors.add_check(
                    f"{route_path}.Match.{key}",
                    f"is {'an' if key_family == 'http' else 'a'} {key_family} match key, "
                    f"but router '{router}' listens on {protocol}: "
                    "a router's routes all use its listener protocol.",
                )
        match_port = route.match.port if route.match else None
        if len(ports) > 1 and match_port is None:
            errors.add_check(f"{route_path}.Match.Port", f"is required: router '{router}' has several listeners.")
        if match_port is not None and match_port not in ports:
            errors.add_check(f"{route_path}.Match.Port", f"{match_port} is not a listener port of router '{router}'.")
        _check_route_policy(route_path, protocol, route, errors)
        signature = repr((route.match or model.Match(), route.priority))
        if signature in seen:
            errors.add_check(
                f"{route_path}.Match",
                f"is the same as the match of Routes[{seen[signature]}]: only the first of the two would ever match.",
            )
        seen.setdefault(signature, index)


def _check_route_policy(path: str, protocol: str, route: model.Route, errors: ErrorCollector) -> None:
    if route.retries is not None:
        if protocol == "tcp":
            errors.add_check(f"{path}.Retries", "is for http, http2 and grpc routes; App Mesh does not retry tcp.")
        else:
            allowed = set(model.HTTP_RETRY_EVENTS + model.TCP_RETRY_EVENTS)
            if protocol == "grpc":
                allowed |= set(model.GRPC_RETRY_EVENTS)
            for index, event in indexed(route.retries.events):
                if event not in allowed:
                    errors.add_check(
                        f"{path}.Retries.Events[{index}]",
                        f"'{event}' is a gRPC retry event; {protocol} routes take "
                        f"{', '.join(model.HTTP_RETRY_EVENTS + model.TCP_RETRY_EVENTS)}.",
                    )
            if not route.retries.events:
                errors.add_check(f"{path}.Retries.Events", "needs at least one event to retry on.")
    if route.timeout is not None and route.timeout.per_request is not None and protocol == "tcp":
        errors.add_check(
            f"{path}.Timeout.PerRequest", "is for http, http2 and grpc routes; a tcp route takes only Idle."
        )
