"""``Backend: ServiceConnect``: Amazon ECS Service Connect from the same plan as App Mesh (SPEC §4).

Every ECS node's service gets a ``ServiceConnectConfiguration``: the namespace's ARN, the proxy's logs, access log
and log level, and one Service Connect service (an "endpoint") per (service, listener) it publishes, backed by a
named port mapping of whichever container maps the port. Security groups are opened as for App Mesh (on the
listener's IngressPort, if it has one; not at all for bridge-mode tasks, with a warning). What Service Connect
cannot express is an error at the key that asks for it, saying what Service Connect does instead; never a silent
drop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from troposphere import ecs

from .. import model
from ..checks import match_protocols
from ..deploy_view import Unknown
from ..errors import ErrorCollector
from ..jsoncopy import deepcopy
from ..network import render_ingress
from ..plan import EcsTarget, Edge, NodePlan, Plan, RouterPlan, ServicePlan, Value
from ..resolve import CLOUD_MAP_SERVICE_TYPE
from .base import Rendered, add_depends_on, build, canonical
from .serviceconnect_tls import ServiceConnectTls, render_tls

PROXY_LOG_PREFIX = "service-connect"
APP_PROTOCOLS = ("http", "http2", "grpc")
PROXY_LOG_LEVELS = ("debug", "info")
PROXY_LOG_DRIVERS = ("awslogs", "awsfirelens")
_CLOUD_MAP_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")
_CLOUD_MAP_RULE = "lowercase letters, digits, '_' and '-', at most 64 characters, not starting with '-'"
_CLIENT_ALIAS = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,126}$")
_CLIENT_ALIAS_RULE = "lowercase letters, digits, '_', '-' and '.', at most 127 characters, not starting with '-'"
_PORT_NAME = _CLOUD_MAP_NAME
_TEST_TRAFFIC_STRATEGIES = ("BLUE_GREEN", "LINEAR", "CANARY")

PROXY_HANDLES_FAILURES = (
    "the Service Connect proxy retries failed requests itself (twice, on connection failure or 503) and ejects "
    "failing tasks, without settings"
)
LATTICE_HINT = "VPC Lattice (Backend: VpcLattice) offers weighted and matched routing."
DEPLOYMENT_HINT = (
    "For a new version, use an ECS blue/green, linear or canary deployment (DeploymentConfiguration.Strategy), "
    "with the service's TestTraffic."
)
PROXY_HINT = "Service Connect runs and manages its proxy (image, version and settings); remove it."
_ENVOY_HINTS = {
    "Image": PROXY_HINT,
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
    listener_path: str
    """Where the listener is written: ``Nodes.<n>.Listeners[i]``, or ``Nodes.<n>.Service`` for derived ones."""
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


@dataclass
class PortIndex:
    """The port mappings of one task definition's containers, by port: the app container's first, then the others'."""

    mappings: dict[int, tuple[str, dict[str, Any]]]
    """Port -> (container name, its port mapping of that port)."""
    unreadable: list[tuple[str, Any]]
    """(container name, ContainerPort) of the mappings whose port the macro cannot read."""
    names: set[Any]
    """The names of all port mappings, including those the macro adds."""


class ServiceConnectRenderer:
    """Renders a plan into Service Connect configurations; one instance per expansion."""

    def __init__(self, plan: Plan, errors: ErrorCollector) -> None:
        self.plan = plan
        self.errors = errors
        self.rendered = Rendered()
        self.single_targets: dict[str, str] = {}
        """Router name -> the ECS node its only route sends everything to."""
        self.tls: ServiceConnectTls | None = None
        self.proxy_log_level: str | None = None

    def render(self) -> Rendered:
        self._check_section()
        endpoints = self._name_endpoints(self._endpoints())
        self._check_unpublished_listener_keys(endpoints)
        if self.errors:
            return self.rendered
        self.tls = render_tls(self.plan, self.rendered, self.errors)
        by_node: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            by_node.setdefault(endpoint.node.name, []).append(endpoint)
        for node in self.plan.nodes.values():
            self._configure(node, by_node.get(node.name, []))
        render_ingress(self._network_plan(endpoints), self.rendered, self.errors)
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
            self.rendered.warnings.append(
                "[Mesh.Name] is not used: Service Connect has no mesh to name; the namespace groups the services."
            )
        if mesh.egress_filter == "DROP_ALL":
            self.rendered.warnings.append(
                "[Mesh.EgressFilter] DROP_ALL: Service Connect does not filter egress; only the security groups "
                "restrict who calls whom (the macro opens each consumer's groups to its providers' ports)."
            )
        if mesh.existing:
            self.errors.add(
                "Mesh.Existing",
                "Service Connect has no mesh to join: services of other stacks join the same Cloud Map namespace. "
                "Write Namespace: {Id, Name} (or {Arn, Name} for one shared with this account) and remove it.",
            )
        if mesh.owner is not None:
            self.errors.add(
                "Mesh.Owner",
                "Service Connect has no shared meshes: a namespace shared from another account through AWS RAM is "
                "joined by its ARN. Write Namespace: {Arn, Name} and remove it.",
            )

    def _check_envoy(self) -> None:
        envoy = self.plan.section.envoy
        if envoy is _DEFAULT_ENVOY:  # the parser leaves an absent Envoy at the class default object
            return
        for attribute, key in _ENVOY_KEYS:
            if key != "LogLevel" and getattr(envoy, attribute) != getattr(_DEFAULT_ENVOY, attribute):
                self.errors.add(f"Envoy.{key}", _ENVOY_HINTS[key])
        if envoy.log_level in PROXY_LOG_LEVELS:
            self.proxy_log_level = envoy.log_level
        else:
            self.errors.add(
                "Envoy.LogLevel",
                f"{envoy.log_level}: the Service Connect proxy's log level is debug or info; write one of them.",
            )

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
        path = f"Nodes.{node.name}"
        service_id = node.ecs.service_id
        service = self.plan.view.properties(service_id)
        given = service.get("ServiceConnectConfiguration")
        if given is not None and not _only_disabled(given):
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' already has a ServiceConnectConfiguration: the macro writes it (one that "
                "only says Enabled: false is replaced). Remove it; the section's AccessLog, Envoy.LogLevel, "
                "TestTraffic and IngressPort keys set what it could add.",
            )
        controller = service.get("DeploymentController")
        kind = self._known(controller.get("Type")) if isinstance(controller, Mapping) else None
        if kind not in (None, "ECS"):
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' has DeploymentController {_describe(kind)}: Service Connect runs only "
                "under the ECS deployment controller. Remove DeploymentController (or set Type: ECS); for "
                "blue/green, linear or canary deployments set DeploymentConfiguration.Strategy.",
            )
        task_id = node.ecs.task_definition_id
        task = self.plan.view.properties(task_id)
        compatibilities = self._known(task.get("RequiresCompatibilities"))
        fargate_only = isinstance(compatibilities, list) and compatibilities and set(compatibilities) == {"FARGATE"}
        if "Memory" not in task and not fargate_only:
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' has no task-level Memory: on EC2, Service Connect needs it to make room "
                "for its proxy container. Set Memory on the task definition.",
            )
        for index, listener in enumerate(node.node.listeners or ()):
            listener_path = f"{path}.Listeners[{index}]"
            if listener.health_check is not None:
                self.errors.add(
                    f"{listener_path}.HealthCheck",
                    "Service Connect takes no health check of its own: give the container a HealthCheck in the "
                    "task definition instead (ECS replaces the tasks whose essential containers turn unhealthy); "
                    f"{PROXY_HANDLES_FAILURES}.",
                )
            if listener.connection_pool is not None:
                self.errors.add(
                    f"{listener_path}.ConnectionPool",
                    f"Service Connect takes no connection pool settings: {PROXY_HANDLES_FAILURES}. Remove it.",
                )
            if listener.outlier_detection is not None:
                self.errors.add(
                    f"{listener_path}.OutlierDetection",
                    f"Service Connect takes no outlier detection settings: {PROXY_HANDLES_FAILURES}. Remove it.",
                )

    def _check_router(self, router: RouterPlan) -> None:
        path = f"Routers.{router.name}"
        routes = router.router.routes
        for index, route in enumerate(routes):
            self._check_route(router, f"{path}.Routes[{index}]", route)
        if len(routes) > 1:
            self.errors.add(
                f"{path}.Routes",
                f"has {len(routes)} routes: Service Connect sends every request for a name to one ECS service. "
                f"Keep one route with one target. {DEPLOYMENT_HINT} {LATTICE_HINT}",
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
                f"name to one ECS service. {DEPLOYMENT_HINT} {LATTICE_HINT}",
            )
        for target in route.targets:
            node = self.plan.nodes.get(target)
            if node is not None and not node.is_ecs:
                self.errors.add(
                    f"{path}.Targets.{target}",
                    f"is DNS node '{target}': Service Connect only sends traffic to ECS services of the namespace.",
                )
        for key in _match_keys(route.match):
            hint = (
                " To send test requests to a new revision, write TestTraffic on the service."
                if key == "Headers"
                else ""
            )
            self.errors.add(
                f"{path}.Match.{key}",
                f"Service Connect does not route by {_MATCH_HINTS[key]}: every request for a name goes to one ECS "
                f"service. Give each variant its own service name, or remove the match.{hint} {LATTICE_HINT}",
            )
        if route.retries is not None:
            self.errors.add(
                f"{path}.Retries", f"Service Connect takes no retry policy: {PROXY_HANDLES_FAILURES}. Remove it."
            )
        if route.priority is not None:
            self.errors.add(f"{path}.Priority", "Service Connect has no routes to order; remove it.")

    # -- endpoints --------------------------------------------------------------------------------------

    def _endpoints(self) -> list[Endpoint]:
        """Every (service, listener) to publish, in section order; several services may share a listener."""
        endpoints: list[Endpoint] = []
        for service in self.plan.services.values():
            endpoints.extend(self._service_endpoints(service))
        return endpoints

    def _service_endpoints(self, service: ServicePlan) -> list[Endpoint]:
        if service.is_external:  # another stack publishes it; consumers are clients of the namespace
            return []
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
            return [
                Endpoint(service, node, item, _listener_path(node, index), item.port, None, None)
                for index, item in enumerate(node.listeners)
            ]
        assert router_name is not None
        if router_name not in self.single_targets:
            return []  # reported by _check_router
        router = self.plan.routers[router_name]
        node = self.plan.nodes[self.single_targets[router_name]]
        index, listener = next((i, item) for i, item in enumerate(node.listeners) if item.protocol == router.protocol)
        route_path = f"Routers.{router_name}.Routes[0]"
        return [
            Endpoint(
                service,
                node,
                listener,
                _listener_path(node, index),
                router.listeners[0].port,
                router.router.routes[0],
                route_path,
            )
        ]

    def _name_endpoints(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """Give each endpoint its Cloud Map name: the service's label, then ``label-port`` for further ports."""
        named: list[Endpoint] = []
        seen: dict[str, str] = {}
        services_named: set[str] = set()
        taken = self.plan.cloud_map_names
        for endpoint in endpoints:
            label = endpoint.service.cloud_map_label
            first = endpoint.service.name not in services_named
            services_named.add(endpoint.service.name)
            if first and not self._check_service(endpoint):
                continue  # its DnsName is reported; the discovery name derived from it would be reported twice
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

    def _check_service(self, endpoint: Endpoint) -> bool:
        """A written DnsName must be a client alias (False if not); TestTraffic needs an http, http2 or grpc port."""
        service = endpoint.service
        dns_name = service.service.dns_name
        if dns_name is not None and not _CLIENT_ALIAS.match(dns_name):
            lower = f" Write it in lowercase: '{dns_name.lower()}'." if _CLIENT_ALIAS.match(dns_name.lower()) else ""
            self.errors.add(
                f"{endpoint.origin}.DnsName",
                f"'{_shorten(dns_name)}' cannot be a Service Connect client alias ({_CLIENT_ALIAS_RULE}).{lower}",
            )
            return False
        rule = service.service.test_traffic
        if rule is None:
            return True
        if endpoint.listener.protocol not in APP_PROTOCOLS:
            self.errors.add(
                f"{endpoint.origin}.TestTraffic",
                f"matches a header, but port {endpoint.listener.port} of node '{endpoint.node.name}' is tcp: "
                "test traffic rules need an http, http2 or grpc listener.",
            )
            return True
        assert endpoint.node.ecs is not None
        provider = endpoint.node.ecs.service_id
        configuration = self.plan.view.properties(provider).get("DeploymentConfiguration")
        strategy = self._known(configuration.get("Strategy")) if isinstance(configuration, Mapping) else None
        if strategy not in _TEST_TRAFFIC_STRATEGIES:
            self.rendered.warnings.append(
                f"[{endpoint.origin}.TestTraffic] applies only during blue/green, linear or canary deployments of "
                f"ECS service '{provider}', whose DeploymentConfiguration.Strategy is {_describe(strategy)}: set it "
                "to BLUE_GREEN, LINEAR or CANARY."
            )
        return True

    def _check_unpublished_listener_keys(self, endpoints: list[Endpoint]) -> None:
        """Timeouts and ingress ports belong to published endpoints: on a listener no service publishes, lost."""
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
                if (node.name, listener.port) in published:
                    continue
                for key, value, what in (
                    ("Timeout", listener.timeout, "timeouts"),
                    ("IngressPort", listener.ingress_port, "ingress ports"),
                ):
                    if value is not None:
                        self.errors.add(
                            f"Nodes.{node.name}.Listeners[{index}].{key}",
                            f"is on a listener that no service publishes: Service Connect sets {what} per published "
                            f"port. Publish the listener with a service, or remove the {key}.",
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
        containers: list[Any] = view.raw_at(task, ("Properties", "ContainerDefinitions"))
        app: dict[str, Any] = view.raw_at(containers, (ecs_target.container_index,))
        ports = self._port_index(ecs_target, app, containers)
        services = [self._service_entry(item, app, ports) for item in endpoints]
        if task != self.plan.resources[task_id]:  # only a task definition whose port mappings changed is patched
            self.rendered.patch(task_id, task)
        config: dict[str, Any] = {"Enabled": True, "Namespace": self._namespace()}
        if services:
            config["Services"] = services
        log = self._proxy_log_configuration(node, view.deployed(app.get("LogConfiguration")))
        if log is not None:
            config["LogConfiguration"] = log
        access_log = self.plan.section.access_log
        if access_log.enabled and log is not None:
            config["AccessLogConfiguration"] = {"Format": access_log.format.upper()}
        elif access_log.enabled and access_log is not _DEFAULT_ACCESS_LOG:
            self.rendered.warnings.append(
                f"[Nodes.{node.name}] gets no access log: Service Connect writes it to the proxy's log "
                f"configuration, and container '{ecs_target.container_name}' has none to copy. Give it a "
                "LogConfiguration "
                "(awslogs or awsfirelens)."
            )
        if self.proxy_log_level is not None:
            config["ContainerConfigurations"] = [{"LogLevel": self.proxy_log_level}]
        typed = build(ecs.Service, ecs_target.service_id, {"ServiceConnectConfiguration": config})
        service = self.rendered.patch(ecs_target.service_id, self.plan.resources[ecs_target.service_id])
        service.setdefault("Properties", {})["ServiceConnectConfiguration"] = typed["Properties"][
            "ServiceConnectConfiguration"
        ]
        if services and self.tls is not None and self.tls.depends_on:
            add_depends_on(service, *self.tls.depends_on)

    def _namespace(self) -> Value:
        """The namespace's ARN: ``GetAtt Arn`` when the template makes it, else as given or built from its Id."""
        namespace = self.plan.namespace
        if namespace.logical_id is not None:
            return {"Fn::GetAtt": [namespace.logical_id, "Arn"]}
        if namespace.arn is not None:
            return namespace.arn
        arn = "arn:${AWS::Partition}:servicediscovery:${AWS::Region}:${AWS::AccountId}:namespace/"
        if isinstance(namespace.id, str) and "${" not in namespace.id:
            return {"Fn::Sub": arn + namespace.id}
        return {"Fn::Sub": [arn + "${NamespaceId}", {"NamespaceId": namespace.id}]}

    def _service_entry(self, endpoint: Endpoint, app: dict[str, Any], ports: PortIndex) -> dict[str, Any]:
        alias: dict[str, Any] = {"DnsName": endpoint.service.dns_name, "Port": endpoint.client_port}
        rule = endpoint.service.service.test_traffic
        if rule is not None:
            alias["TestTrafficRules"] = {"Header": {"Name": rule.header, "Value": {"Exact": rule.exact}}}
        entry: dict[str, Any] = {
            "PortName": self._port_name(endpoint, app, ports),
            "DiscoveryName": endpoint.discovery_name,
            "ClientAliases": [alias],
        }
        if endpoint.listener.ingress_port is not None:
            entry["IngressPortOverride"] = endpoint.listener.ingress_port
        timeout = self._timeout(endpoint)
        if timeout:
            entry["Timeout"] = timeout
        if self.tls is not None:
            entry["Tls"] = self.tls.configuration
        return entry

    def _port_index(self, ecs_target: EcsTarget, app: dict[str, Any], containers: list[Any]) -> PortIndex:
        """Index the task's port mappings once: finding a port is then constant time, whatever the task's size.

        The app container's come from the plan (read and checked by the resolver); the other containers'
        (sidecars) are read here, as deployed.
        """
        view = self.plan.view
        index = PortIndex(mappings={}, unreadable=[], names=set())
        app_mappings = view.raw_at(app, ("PortMappings",)) if "PortMappings" in app else []
        for item in ecs_target.port_mappings:
            index.mappings.setdefault(item.port, (ecs_target.container_name, view.raw_at(app_mappings, (item.index,))))
        sidecars = [view.raw_at(containers, (i,)) for i, _ in view.items(containers) if i != ecs_target.container_index]
        for container in [app, *sidecars]:
            if not isinstance(container, dict) or "PortMappings" not in container:
                continue
            name = str(self._known(container.get("Name")))
            written = view.raw_at(container, ("PortMappings",))
            for position, deployed in view.items(written):
                if not isinstance(deployed, Mapping):
                    continue
                mapping = view.raw_at(written, (position,))
                if "Name" in deployed:
                    index.names.add(canonical(self._known(deployed["Name"])))
                if container is app or "ContainerPort" not in deployed:  # a ContainerPortRange: not one port
                    continue
                port = _literal_port(self._known(deployed["ContainerPort"]))
                if port is None:
                    index.unreadable.append((name, deployed["ContainerPort"]))
                else:
                    index.mappings.setdefault(port, (name, mapping))
        return index

    def _port_name(self, endpoint: Endpoint, app: dict[str, Any], ports: PortIndex) -> Value:
        """The name of the port mapping of the listener: the user's, or one the macro adds to the app container."""
        listener = endpoint.listener
        path = endpoint.listener_path
        found = ports.mappings.get(listener.port)
        if found is None:
            for container, value in ports.unreadable:
                self.errors.add(
                    path,
                    f"a port mapping of container '{container}' has a ContainerPort that the macro cannot read "
                    f"({_describe(value)}): write it as a number or a parameter, so that the macro can find (or "
                    f"add) the port mapping of port {listener.port}.",
                )
            ports.unreadable.clear()  # reported once
            mapping: dict[str, Any] = {"ContainerPort": listener.port, "Protocol": "tcp"}
            app.setdefault("PortMappings", [])
            self.plan.view.raw_at(app, ("PortMappings",)).append(mapping)
            container = str(app["Name"])
            ports.mappings[listener.port] = (container, mapping)
        else:
            container, mapping = found
        if str(self._known(mapping.get("Protocol", "tcp"))).lower() != "tcp":
            self.errors.add(
                path, f"port {listener.port} of container '{container}' is not tcp; Service Connect needs tcp."
            )
        app_protocol = listener.protocol if listener.protocol in APP_PROTOCOLS else None
        given = self._known(mapping.get("AppProtocol"))
        if given is None and app_protocol is not None:
            mapping["AppProtocol"] = app_protocol
        elif given is not None and str(given).lower() != app_protocol:
            self.errors.add(
                f"{path}.Protocol" if endpoint.node.node.listeners is not None else path,
                f"is {listener.protocol}, but the port mapping of port {listener.port} in container '{container}' "
                f"has AppProtocol {given}: make them agree.",
            )
        if "Name" not in mapping:
            mapping["Name"] = self._new_port_name(listener, ports, path)
            return mapping["Name"]
        name = self._known(mapping["Name"])
        if isinstance(name, str) and not _PORT_NAME.match(name):
            self.errors.add(
                path,
                f"the port mapping of port {listener.port} in container '{container}' is named '{_shorten(name)}', "
                f"which cannot be a Service Connect port name ({_CLOUD_MAP_RULE}): rename it.",
            )
        return mapping["Name"]

    def _new_port_name(self, listener: model.Listener, ports: PortIndex, path: str) -> str:
        name = f"{listener.protocol}-{listener.port}"
        if canonical(name) in ports.names:
            self.errors.add(
                path,
                f"the macro would name the port mapping of port {listener.port} '{name}', but another port mapping "
                "has that name: name this port mapping yourself in the task definition.",
            )
        ports.names.add(canonical(name))
        return name

    def _timeout(self, endpoint: Endpoint) -> dict[str, int]:
        """The listener's timeouts, overridden by those of the route that serves the service, in whole seconds."""
        sources = [(endpoint.listener_path + ".Timeout", endpoint.listener.timeout)]
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

    def _proxy_log_configuration(self, node: NodePlan, log: Any) -> dict[str, Any] | None:
        """The proxy's logs, from the app container's: awslogs (stream prefix ``service-connect``) or awsfirelens."""
        if log is None:
            return None
        assert node.ecs is not None
        driver = self._known(log.get("LogDriver")) if isinstance(log, Mapping) else None
        options = log.get("Options") if isinstance(log, Mapping) else None
        if driver == "awsfirelens" and isinstance(log, Mapping):
            return {key: deepcopy(log[key]) for key in ("LogDriver", "Options", "SecretOptions") if key in log}
        if driver == "awslogs" and isinstance(options, Mapping) and "awslogs-group" in options:
            copied = {key: options[key] for key in ("awslogs-group", "awslogs-region") if key in options}
            return {"LogDriver": "awslogs", "Options": {**copied, "awslogs-stream-prefix": PROXY_LOG_PREFIX}}
        what = "awslogs without an awslogs-group" if driver == "awslogs" else f"the log driver {_describe(driver)}"
        self.rendered.warnings.append(
            f"[Nodes.{node.name}] container '{node.ecs.container_name}' logs with {what}; the macro passes only "
            "awslogs (with "
            "a group) and awsfirelens configurations on to the Service Connect proxy, so the proxy's logs and access "
            "log are not kept. Log the container with awslogs or through FireLens to keep them."
        )
        return None

    def _network_plan(self, endpoints: list[Endpoint]) -> Plan:
        """The plan as the security groups see it: ingress ports moved by IngressPort, no rules for bridge tasks."""
        moved = {
            (item.node.name, item.listener.port): item.listener.ingress_port
            for item in endpoints
            if item.listener.ingress_port is not None
        }
        edges: list[Edge] = []
        warned: set[tuple[str, str]] = set()
        for edge in self.plan.edges:
            port = edge.port if edge.external else moved.get((edge.provider, edge.port), edge.port)
            ends = (edge.consumer,) if edge.external else (edge.consumer, edge.provider)  # External: another stack's
            bridged = [name for name in ends if self._in_bridge_mode(name)]
            if not bridged:
                edges.append(replace(edge, port=port))
                continue
            if (edge.consumer, edge.provider) not in warned:
                warned.add((edge.consumer, edge.provider))
                self.rendered.warnings.append(
                    f"[Nodes.{edge.consumer}] calls node '{edge.provider}', but '{bridged[0]}' runs in bridge mode: "
                    "its tasks have no security groups of their own (they use their container instances'), so the "
                    "macro makes no ingress rule for this call. Open it in the instances' security groups (in "
                    "bridge mode the provider's proxy listens on an ephemeral host port unless its listener sets "
                    "IngressPort)."
                )
        return replace(self.plan, edges=tuple(sorted(set(edges))))

    def _conditional_apart(self, consumer_id: str, provider_id: str) -> bool:
        """True when the provider's ECS service has a Condition the consumer's does not share."""
        condition = self.plan.resources[provider_id].get("Condition")
        return condition is not None and condition != self.plan.resources[consumer_id].get("Condition")

    def _in_bridge_mode(self, name: str) -> bool:
        ecs_target = self.plan.nodes[name].ecs
        return ecs_target is not None and ecs_target.network_mode == "bridge"

    def _order_services(self) -> None:
        """Consumers' ECS services wait for their providers': a task only reaches endpoints older than itself."""
        calls: dict[str, set[str]] = {}
        for edge in self.plan.edges:
            if not edge.external and edge.consumer != edge.provider and self.plan.nodes[edge.provider].is_ecs:
                calls.setdefault(edge.consumer, set()).add(edge.provider)
        warned: set[frozenset[str]] = set()
        for consumer in (name for name in self.plan.nodes if name in calls):
            providers = calls[consumer]
            consumer_ecs = self.plan.nodes[consumer].ecs
            assert consumer_ecs is not None
            for provider in sorted(providers):
                provider_ecs = self.plan.nodes[provider].ecs
                assert provider_ecs is not None
                if self._conditional_apart(consumer_ecs.service_id, provider_ecs.service_id):
                    continue  # a DependsOn on a resource that may not exist fails the deploy (cfn-lint E3005)
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

    def _known(self, value: Any) -> Any:
        """The literal value this deploy (SPEC §7: parameters, Fn::If, Fn::Sub...), or None where it is not known."""
        result = self.plan.view.known(value)
        return None if isinstance(result, Unknown) else result


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


_DEFAULT_ACCESS_LOG = next(item.default for item in fields(model.Section) if item.name == "access_log")


def _listener_path(node: NodePlan, index: int) -> str:
    return f"Nodes.{node.name}.Service" if node.node.listeners is None else f"Nodes.{node.name}.Listeners[{index}]"


def _only_disabled(configuration: Any) -> bool:
    """A ServiceConnectConfiguration that only turns Service Connect off: the macro may replace it."""
    return (
        isinstance(configuration, Mapping)
        and set(configuration) == {"Enabled"}
        and configuration["Enabled"] in (False, "false", "False")
    )


def _describe(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, str):
        return f"'{_shorten(value)}'"
    if isinstance(value, Mapping) and len(value) == 1:
        function = str(next(iter(value)))
        return f"a {function}" if function == "Ref" else f"an {function}"
    return "a value of the wrong type"


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _literal_port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


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
