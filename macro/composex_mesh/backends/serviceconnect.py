"""``Backend: ServiceConnect``: Amazon ECS Service Connect from the same plan as App Mesh (SPEC §4).

Every ECS node's service gets a ``ServiceConnectConfiguration``: the namespace, the proxy's logs, and one Service
Connect service (an "endpoint") per listener it publishes under a service's name, backed by a named port mapping
of its container. Security groups are opened as for App Mesh. What Service Connect cannot express is an error at
the key that asks for it, never a silent drop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from troposphere import ecs

from .. import model
from ..checks import match_protocols
from ..errors import ErrorCollector
from ..jsoncopy import deepcopy
from ..network import render_ingress
from ..plan import NodePlan, Plan, RouterPlan, ServicePlan, Value
from ..resolve import CLOUD_MAP_SERVICE_TYPE
from .base import Rendered, add_depends_on, build
from .serviceconnect_tls import ServiceConnectTls, render_tls

PROXY_LOG_PREFIX = "service-connect"
APP_PROTOCOLS = ("http", "http2", "grpc")
_CLOUD_MAP_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")
_CLOUD_MAP_RULE = "lowercase letters, digits, '_' and '-', at most 64 characters, not starting with '-'"

CANARY_HINT = (
    "For a canary or a new version, deploy it in the same ECS service with a deployment Strategy "
    "(BLUE_GREEN, with test traffic header rules on the client alias, or CANARY/LINEAR)."
)
PROXY_HINT = "Service Connect manages its proxy (image, version and settings); remove it."
_ENVOY_HINTS = {
    "Image": PROXY_HINT,
    "LogLevel": f"{PROXY_HINT} The proxy logs to the app container's log group (stream prefix {PROXY_LOG_PREFIX}).",
    "Tracing": f"{PROXY_HINT} For traces, instrument the application (e.g. AWS Distro for OpenTelemetry).",
    "Environment": PROXY_HINT,
}
_MATCH_HINTS = {
    "Prefix": "path prefixes",
    "Path": "paths",
    "Method": "methods",
    "Scheme": "schemes",
    "Headers": "headers",
    "QueryParameters": "query parameters",
    "ServiceName": "gRPC services",
    "MethodName": "gRPC methods",
    "Metadata": "gRPC metadata",
    "Port": "ports",
}


@dataclass(frozen=True)
class Endpoint:
    """A node's listener published under a service's name: one entry of the node's Service Connect ``Services``."""

    service: ServicePlan
    node: NodePlan
    listener: model.Listener
    client_port: int
    route: model.Route | None
    route_path: str | None
    discovery_name: str = ""

    @property
    def origin(self) -> str:
        return f"Services.{self.service.name}"

    @property
    def name_path(self) -> str:
        """Where the service's Cloud Map name comes from: its DnsName, or its name."""
        return f"{self.origin}.DnsName" if self.service.service.dns_name is not None else self.origin


class ServiceConnectRenderer:
    """Renders a plan into Service Connect configurations; one instance per expansion."""

    def __init__(self, plan: Plan, errors: ErrorCollector) -> None:
        self.plan = plan
        self.errors = errors
        self.rendered = Rendered()
        self.single_targets: dict[str, str] = {}
        """Router name -> the ECS node its only route sends everything to."""
        self.tls: ServiceConnectTls | None = None

    def render(self) -> Rendered:
        self._check_section()
        endpoints = self._name_endpoints(self._endpoints())
        self._check_unpublished_timeouts(endpoints)
        if self.errors:
            return self.rendered
        self.tls = render_tls(self.plan, self.rendered, self.errors)
        for node in self.plan.nodes.values():
            self._configure(node, [item for item in endpoints if item.node.name == node.name])
        render_ingress(self.plan, self.rendered, self.errors)
        self._order_services()
        return self.rendered

    # -- what Service Connect cannot express ------------------------------------------------------------

    def _check_section(self) -> None:
        self._check_mesh()
        self._check_envoy()
        for node in self.plan.nodes.values():
            if node.ecs is None:
                self._check_dns_node(node)
            else:
                self._check_ecs_node(node)
        for router in self.plan.routers.values():
            self._check_router(router)

    def _check_mesh(self) -> None:
        mesh = self.plan.section.mesh
        if mesh.name is not None:
            self.errors.add(
                "Mesh.Name", "Service Connect has no mesh to name: the namespace groups the services; remove it."
            )
        if mesh.egress_filter == "ALLOW_ALL":
            self.errors.add(
                "Mesh.EgressFilter",
                "ALLOW_ALL: Service Connect does not filter egress; the tasks' security groups do. Remove it and "
                "allow the outbound traffic in the security groups (the macro opens only the mesh's own ports).",
            )
        if mesh.existing:
            self.errors.add(
                "Mesh.Existing",
                "Service Connect has no mesh to join: services of other stacks join the same Cloud Map namespace "
                "(Namespace: {Id, Name}).",
            )
        if mesh.owner is not None:
            self.errors.add(
                "Mesh.Owner",
                "Service Connect has no shared meshes: services connect within one Cloud Map namespace; remove it.",
            )

    def _check_envoy(self) -> None:
        envoy = self.plan.section.envoy
        if envoy is _DEFAULT_ENVOY:  # the parser leaves an absent Envoy at the class default object
            return
        written = [
            key for attribute, key in _ENVOY_KEYS if getattr(envoy, attribute) != getattr(_DEFAULT_ENVOY, attribute)
        ]
        for key in written:
            self.errors.add(f"Envoy.{key}", _ENVOY_HINTS[key])
        if not written:
            self.errors.add("Envoy", PROXY_HINT)

    def _check_dns_node(self, node: NodePlan) -> None:
        names = [name for name, service in self.plan.section.services.items() if service.node == node.name]
        for name in names:
            self.errors.add(
                f"Services.{name}.Node",
                f"names DNS node '{node.name}': Service Connect only publishes ECS services of the namespace. "
                "Have clients call its Hostname directly, and remove this service.",
            )
        targeted = any(
            node.name in route.targets for router in self.plan.routers.values() for route in router.router.routes
        )
        if not names and not targeted:
            self.errors.add(
                f"Nodes.{node.name}.Hostname",
                "DNS nodes have no place in Service Connect, which only connects ECS services: remove this node.",
            )

    def _check_ecs_node(self, node: NodePlan) -> None:
        assert node.ecs is not None
        service_id = node.ecs.service_id
        if "ServiceConnectConfiguration" in self.plan.view.properties(service_id):
            self.errors.add(
                f"Nodes.{node.name}.Service",
                f"ECS service '{service_id}' already has a ServiceConnectConfiguration; remove it: "
                "the macro writes it from this section.",
            )
        for index, listener in enumerate(node.node.listeners or ()):
            path = f"Nodes.{node.name}.Listeners[{index}]"
            if listener.health_check is not None:
                self.errors.add(
                    f"{path}.HealthCheck",
                    "Service Connect takes no health check of its own: give the container a HealthCheck in the "
                    "task definition instead; ECS replaces the tasks whose essential containers turn unhealthy.",
                )
            if listener.connection_pool is not None:
                self.errors.add(
                    f"{path}.ConnectionPool",
                    "Service Connect takes no connection pool settings: its proxy manages connections; remove it.",
                )
            if listener.outlier_detection is not None:
                self.errors.add(
                    f"{path}.OutlierDetection",
                    "Service Connect's proxy applies its own outlier detection, which takes no settings; remove it.",
                )

    def _check_router(self, router: RouterPlan) -> None:
        path = f"Routers.{router.name}"
        routes = router.router.routes
        for index, route in enumerate(routes):
            self._check_route(router, f"{path}.Routes[{index}]", route)
        if len(routes) > 1:
            self.errors.add(
                f"{path}.Routes",
                f"has {len(routes)} routes: Service Connect sends every request for a name to one ECS service, "
                f"with no routes. Keep one route with one target. {CANARY_HINT}",
            )
            return
        targets = list(routes[0].targets)
        if len(targets) == 1 and targets[0] in self.plan.nodes and self.plan.nodes[targets[0]].is_ecs:
            self.single_targets[router.name] = targets[0]

    def _check_route(self, router: RouterPlan, path: str, route: model.Route) -> None:
        if len(route.targets) > 1:
            self.errors.add(
                f"{path}.Targets",
                f"splits traffic between {', '.join(route.targets)}: Service Connect sends every request for a "
                f"name to one ECS service. {CANARY_HINT}",
            )
        for target in route.targets:
            node = self.plan.nodes.get(target)
            if node is not None and not node.is_ecs:
                self.errors.add(
                    f"{path}.Targets.{target}",
                    f"is DNS node '{target}': Service Connect only sends traffic to ECS services of the namespace.",
                )
        for key in _match_keys(route.match):
            hint = "; route test traffic of a new version by header with ECS blue/green deployments" * (
                key == "Headers"
            )
            self.errors.add(
                f"{path}.Match.{key}",
                f"Service Connect does not route by {_MATCH_HINTS[key]}: every request for a name goes to one ECS "
                f"service. Give each variant its own service name{hint}, or remove the match.",
            )
        if route.retries is not None:
            self.errors.add(
                f"{path}.Retries",
                "Service Connect's proxy retries failed requests on its own and takes no retry policy; remove it.",
            )
        if route.priority is not None:
            self.errors.add(f"{path}.Priority", "Service Connect has no routes to order; remove it.")

    # -- endpoints --------------------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        """Every (service, listener) to publish, in section order; a listener is published once."""
        endpoints: list[Endpoint] = []
        published: dict[tuple[str, int], str] = {}
        for service in self.plan.services.values():
            for endpoint in self._service_endpoints(service):
                key = (endpoint.node.name, endpoint.listener.port)
                if key in published:
                    self.errors.add(
                        endpoint.origin,
                        f"publishes port {key[1]} of node '{key[0]}', which service '{published[key]}' already "
                        "publishes: Service Connect gives a port of a task one name. Keep one of the two services, "
                        "or serve this one on another port.",
                    )
                    continue
                published[key] = service.name
                endpoints.append(endpoint)
        return endpoints

    def _service_endpoints(self, service: ServicePlan) -> list[Endpoint]:
        node_name, router_name = service.service.node, service.service.router
        if node_name is not None:
            node = self.plan.nodes[node_name]
            if node.ecs is None:
                return []  # reported by _check_dns_node
            if not node.listeners:
                self.errors.add(
                    f"Services.{service.name}.Node",
                    f"node '{node_name}' has no listeners (no Listeners, and no PortMappings on its container): "
                    "Service Connect has no port to publish.",
                )
            return [Endpoint(service, node, item, item.port, None, None) for item in node.listeners]
        assert router_name is not None
        if router_name not in self.single_targets:
            return []  # reported by _check_router
        router = self.plan.routers[router_name]
        node = self.plan.nodes[self.single_targets[router_name]]
        listener = next(item for item in node.listeners if item.protocol == router.protocol)
        route_path = f"Routers.{router_name}.Routes[0]"
        return [Endpoint(service, node, listener, router.listeners[0].port, router.router.routes[0], route_path)]

    def _name_endpoints(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """Give each endpoint its Cloud Map name: the service's label, then ``label-port`` for further ports."""
        named: list[Endpoint] = []
        seen: dict[str, str] = {}
        taken = self.plan.cloud_map_names
        for endpoint in endpoints:
            label = endpoint.service.cloud_map_label
            first = all(item.service.name != endpoint.service.name for item in named)
            name = label if first else f"{label}-{endpoint.listener.port}"
            if not _CLOUD_MAP_NAME.match(name):
                self.errors.add(
                    endpoint.name_path,
                    f"'{name}' cannot be a Service Connect discovery name ({_CLOUD_MAP_RULE}): rename the service "
                    "or set its DnsName.",
                )
            elif name in seen:
                self.errors.add(
                    endpoint.name_path,
                    f"its Service Connect discovery name '{name}' is also that of service '{seen[name]}'.",
                )
            elif name in taken:
                self.errors.add(
                    endpoint.name_path,
                    f"its Service Connect discovery name '{name}' is the Name of {CLOUD_MAP_SERVICE_TYPE} "
                    f"'{taken[name]}' in the same namespace, and Service Connect creates its own Cloud Map service "
                    f"of that name. Rename one of them (DnsName sets this service's name), or drop '{taken[name]}'.",
                )
            seen.setdefault(name, endpoint.service.name)
            named.append(replace(endpoint, discovery_name=name))
        return named

    def _check_unpublished_timeouts(self, endpoints: list[Endpoint]) -> None:
        """Timeouts belong to published endpoints: one on a listener no service publishes would be lost."""
        published = {(item.node.name, item.listener.port) for item in endpoints}
        unsure = {  # targets of routers that failed above: whether they would publish is unknown
            target
            for router in self.plan.routers.values()
            if router.name not in self.single_targets
            for route in router.router.routes
            for target in route.targets
        }
        for node in self.plan.nodes.values():
            if not node.is_ecs or node.name in unsure:
                continue
            for index, listener in enumerate(node.node.listeners or ()):
                if listener.timeout is not None and (node.name, listener.port) not in published:
                    self.errors.add(
                        f"Nodes.{node.name}.Listeners[{index}].Timeout",
                        "is on a listener that no service publishes: Service Connect sets timeouts per published "
                        "port. Publish the listener with a service, or remove the timeout.",
                    )

    # -- rendering --------------------------------------------------------------------------------------

    def _configure(self, node: NodePlan, endpoints: list[Endpoint]) -> None:
        """Write the node's ``ServiceConnectConfiguration``, naming the ports it publishes."""
        ecs_target = node.ecs
        if ecs_target is None:
            return
        task_id = ecs_target.task_definition_id
        view = self.plan.view
        task = deepcopy(dict(self.plan.resources[task_id]))
        containers: list[dict[str, Any]] = view.raw_at(task, ("Properties", "ContainerDefinitions"))
        app = view.raw_at(containers, (ecs_target.container_index,))
        services = [self._service_entry(item, containers, app) for item in endpoints]
        if task != self.plan.resources[task_id]:  # only a task definition whose port mappings changed is patched
            self.rendered.patch(task_id, task)
        config: dict[str, Any] = {"Enabled": True, "Namespace": self._namespace()}
        if services:
            config["Services"] = services
        log = _proxy_log_configuration(app)
        if log is not None:
            config["LogConfiguration"] = log
        typed = build(ecs.Service, ecs_target.service_id, {"ServiceConnectConfiguration": config})
        service = self.rendered.patch(ecs_target.service_id, self.plan.resources[ecs_target.service_id])
        service.setdefault("Properties", {})["ServiceConnectConfiguration"] = typed["Properties"][
            "ServiceConnectConfiguration"
        ]
        if services and self.tls is not None and self.tls.depends_on:
            add_depends_on(service, *self.tls.depends_on)

    def _namespace(self) -> Value:
        """The namespace's ARN when the template makes it, else its name."""
        namespace = self.plan.namespace
        if namespace.logical_id is not None:
            return {"Fn::GetAtt": [namespace.logical_id, "Arn"]}
        return namespace.name

    def _service_entry(
        self, endpoint: Endpoint, containers: list[dict[str, Any]], app: dict[str, Any]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "PortName": self._port_name(endpoint, containers, app),
            "DiscoveryName": endpoint.discovery_name,
            "ClientAliases": [{"DnsName": endpoint.service.dns_name, "Port": endpoint.client_port}],
        }
        timeout = self._timeout(endpoint)
        if timeout:
            entry["Timeout"] = timeout
        if self.tls is not None:
            entry["Tls"] = self.tls.configuration
        return entry

    def _port_name(self, endpoint: Endpoint, containers: list[dict[str, Any]], app: dict[str, Any]) -> Value:
        """The name of the app container's port mapping of the listener: the user's, or one the macro adds."""
        listener = endpoint.listener
        path = self._listener_path(endpoint.node, listener)
        assert endpoint.node.ecs is not None
        container_name = endpoint.node.ecs.container_name
        found = next((item for item in endpoint.node.ecs.port_mappings if item.port == listener.port), None)
        if found is None:
            mapping: dict[str, Any] = {"ContainerPort": listener.port, "Protocol": "tcp"}
            self.plan.view.raw_at(app, ()).setdefault("PortMappings", [])
            self.plan.view.raw_at(app, ("PortMappings",)).append(mapping)
            given = None
        else:
            mapping = self.plan.view.raw_at(app, ("PortMappings", found.index))
            given = found.app_protocol
            if found.protocol != "tcp":
                self.errors.add(
                    path, f"port {listener.port} of container '{container_name}' is not tcp; Service Connect needs tcp."
                )
        app_protocol = listener.protocol if listener.protocol in APP_PROTOCOLS else None
        if given is None and "AppProtocol" not in mapping and app_protocol is not None:
            mapping["AppProtocol"] = app_protocol
        elif given is not None and given != app_protocol:
            self.errors.add(
                f"{path}.Protocol" if endpoint.node.node.listeners is not None else path,
                f"is {listener.protocol}, but the port mapping of port {listener.port} in container '{container_name}' "
                f"has AppProtocol {given}: make them agree.",
            )
        if "Name" not in mapping:
            mapping["Name"] = self._new_port_name(listener, containers, path)
        return mapping["Name"]

    def _new_port_name(self, listener: model.Listener, containers: list[dict[str, Any]], path: str) -> str:
        name = f"{listener.protocol}-{listener.port}"
        used = {
            item.get("Name")
            for container in containers
            for item in container.get("PortMappings") or ()
            if isinstance(item, Mapping)
        }
        if name in used:
            self.errors.add(
                path,
                f"the macro would name the port mapping of port {listener.port} '{name}', but another port mapping "
                "has that name: name this port mapping yourself in the task definition.",
            )
        return name

    def _timeout(self, endpoint: Endpoint) -> dict[str, int]:
        """The listener's timeouts, overridden by those of the route that serves the service, in whole seconds."""
        sources = [(self._listener_path(endpoint.node, endpoint.listener) + ".Timeout", endpoint.listener.timeout)]
        if endpoint.route is not None:
            sources.append((f"{endpoint.route_path}.Timeout", endpoint.route.timeout))
        values: dict[str, int] = {}
        for path, timeout in sources:
            if timeout is None:
                continue
            for key, field_path, value in (
                ("PerRequestTimeoutSeconds", f"{path}.PerRequest", timeout.per_request),
                ("IdleTimeoutSeconds", f"{path}.Idle", timeout.idle),
            ):
                if value is None:
                    continue
                if value.milliseconds % 1000:
                    self.errors.add(field_path, f"{value.text}: Service Connect takes timeouts in whole seconds.")
                values[key] = value.seconds
        return values

    def _listener_path(self, node: NodePlan, listener: model.Listener) -> str:
        given = node.node.listeners
        if given is None:
            return f"Nodes.{node.name}.Service"
        return f"Nodes.{node.name}.Listeners[{given.index(listener)}]"

    def _order_services(self) -> None:
        """Consumers' ECS services wait for their providers': a task only reaches endpoints older than itself."""
        calls: dict[str, set[str]] = {}
        for edge in self.plan.edges:
            if edge.consumer != edge.provider and self.plan.nodes[edge.provider].is_ecs:
                calls.setdefault(edge.consumer, set()).add(edge.provider)
        warned: set[frozenset[str]] = set()
        for consumer in (name for name in self.plan.nodes if name in calls):
            providers = calls[consumer]
            consumer_ecs = self.plan.nodes[consumer].ecs
            assert consumer_ecs is not None
            for provider in sorted(providers):
                provider_ecs = self.plan.nodes[provider].ecs
                assert provider_ecs is not None
                if not _reaches(calls, provider, consumer):
                    service = self.rendered.patch(consumer_ecs.service_id, self.plan.resources[consumer_ecs.service_id])
                    add_depends_on(service, provider_ecs.service_id)
                elif frozenset((consumer, provider)) not in warned:
                    warned.add(frozenset((consumer, provider)))
                    self.rendered.warnings.append(
                        f"[Nodes.{consumer}] calls node '{provider}', which calls it back: CloudFormation cannot "
                        "create either ECS service first, and a Service Connect task only reaches the endpoints "
                        f"that existed when it started. After the first deployment, redeploy "
                        f"'{consumer_ecs.service_id}' and '{provider_ecs.service_id}' once."
                    )


_DEFAULT_ENVOY = next(item.default for item in fields(model.Section) if item.name == "envoy")
_ENVOY_KEYS = [(item.name, item.metadata["key"]) for item in fields(model.Envoy)]


def _match_keys(match: model.Match | None) -> list[str]:
    """The match keys of a route, except the match-everything ``Prefix: /``."""
    if match is None:
        return []
    keys = [key for key in match_protocols(match) if not (key == "Prefix" and match.prefix == "/")]
    if match.port is not None:
        keys.append("Port")
    return keys


def _proxy_log_configuration(app: Mapping[str, Any]) -> dict[str, Any] | None:
    """The proxy's logs: to the app container's awslogs group and region, stream prefix ``service-connect``."""
    log = app.get("LogConfiguration")
    options = log.get("Options") if isinstance(log, Mapping) else None
    if not isinstance(log, Mapping) or log.get("LogDriver") != "awslogs" or not isinstance(options, Mapping):
        return None
    if "awslogs-group" not in options:
        return None
    copied = {key: options[key] for key in ("awslogs-group", "awslogs-region") if key in options}
    return {"LogDriver": "awslogs", "Options": {**copied, "awslogs-stream-prefix": PROXY_LOG_PREFIX}}


def _reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """True when ``goal`` can be reached from ``start`` along ``graph``'s edges."""
    stack, seen = [start], {start}
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        for following in graph.get(current, ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return False


def render_service_connect(plan: Plan, errors: ErrorCollector) -> Rendered:
    """Render ``plan`` on ECS Service Connect."""
    return ServiceConnectRenderer(plan, errors).render()
