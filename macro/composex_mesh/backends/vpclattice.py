"""``Backend: VpcLattice``: Amazon VPC Lattice from the same plan as App Mesh (SPEC §8).

One service network (or an existing one) with the VPC associated behind a clients security group; per service a
Lattice service under the name the clients call (``CustomDomainName`` and a Cloud Map CNAME to the Lattice domain),
listeners and rules with the routes' weights and matches, and IP target groups that the ECS services register their
tasks in (``VpcLatticeConfigurations``, through an ECS infrastructure role). Plain TCP, which Lattice does not
carry, is delivered directly, as on Service Connect. What Lattice cannot express is an error at the key that asks
for it, saying what Lattice offers instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from troposphere import ec2, ecs, iam, logs, servicediscovery, vpclattice

from .. import model
from ..errors import ErrorCollector
from ..iam import trusted_by
from ..jsoncopy import deepcopy
from ..network import MAX_DESCRIPTION, render_ingress
from ..plan import NodePlan, Plan, RouterPlan, ServicePlan, Value, shorten
from ..resolve import CLOUD_MAP_SERVICE_TYPE, ROLE_TYPE, ref_target
from .base import Rendered, build, canonical
from .ports import new_port_name

LATTICE_SOURCE_RANGE = "169.254.171.0/24"
"""The link-local range VPC Lattice sends requests and health checks to its targets from."""
INFRASTRUCTURE_POLICY = "AmazonECSInfrastructureRolePolicyForVpcLattice"
NETWORK_ID = "LatticeServiceNetwork"
VPC_ASSOCIATION_ID = "LatticeVpcAssociation"
CLIENTS_GROUP_ID = "LatticeClientsSecurityGroup"
INFRASTRUCTURE_ROLE_ID = "LatticeInfrastructureRole"
ACCESS_LOG_GROUP_ID = "LatticeAccessLogGroup"
ACCESS_LOG_RETENTION_DAYS = 30
CLOUD_MAP_TTL = 60

MAX_TARGET_GROUPS_PER_ECS_SERVICE = 5
MAX_TARGETS_PER_RULE = 10
MAX_HEADER_MATCHES = 5
MAX_HEADER_NAME = 40
MAX_HEADER_VALUE = 128
MAX_PATH = 128
LISTENERS_PER_SERVICE = 2
RULES_PER_LISTENER = 10
"""Lattice's default quotas (adjustable): a service's listeners, a listener's rules. Exceeding them is a warning."""

PROTOCOL_VERSIONS = {"http": "HTTP1", "http2": "HTTP2", "grpc": "GRPC"}
HEALTH_CHECK_VERSIONS = {"http": "HTTP1", "http2": "HTTP2", "grpc": "HTTP2"}
DEFAULT_HEALTH_CHECK_CODES = "200-499"
LATTICE_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "TRACE")
_PATH = re.compile(r"^/[a-zA-Z0-9@:%_+.~#?&/=-]*$")
_NETWORK_NAME = re.compile(r"^(?!servicenetwork-)(?![-])(?!.*[-]$)(?!.*[-]{2})[a-z0-9-]{3,63}$")
_NETWORK_REF = re.compile(
    r"^((sn-[0-9a-z]{17})|(arn:[a-z0-9\-]+:vpc-lattice:[a-zA-Z0-9\-]+:\d{12}:servicenetwork/sn-[0-9a-z]{17}))$"
)
_NAME_LIMIT = 63

ENVOY_HINT = (
    "VPC Lattice runs no sidecar: its managed data plane routes, balances and checks health outside the task; "
    "remove it."
)
_ENVOY_HINTS = {
    "Image": ENVOY_HINT,
    "LogLevel": f"{ENVOY_HINT} Lattice's access logs go to Lattice.AccessLogs (or a log group the macro makes).",
    "Tracing": f"{ENVOY_HINT} For traces, instrument the application (e.g. AWS Distro for OpenTelemetry).",
    "Environment": ENVOY_HINT,
}
_HEADER_KINDS = (("Suffix", "suffix"), ("Regex", "regex"), ("Range", "range"))


def lattice_name(text: str, reserved: str) -> str:
    """A readable Lattice name: ``[a-z0-9-]``, 3 to 63, not starting with ``reserved``; a stable hash when long."""
    name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")
    if name.startswith(reserved) or len(name) < 3:
        name = f"cxm-{name}".strip("-")
    if len(name) > _NAME_LIMIT:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{name[: _NAME_LIMIT - 9].rstrip('-')}-{digest}"
    return name


@dataclass(frozen=True)
class TargetGroupPlan:
    """An IP target group: one (Lattice service, node, port)."""

    logical_id: str
    node: NodePlan
    listener: model.Listener
    origin: str


@dataclass
class LatticeService:
    """A service of the section carried by a VPC Lattice service."""

    service: ServicePlan
    logical_id: str
    listeners: list[tuple[int, str]] = field(default_factory=list)
    """(port, protocol) of each Lattice listener, in order."""
    groups: list[TargetGroupPlan] = field(default_factory=list)
    https: bool = False

    @property
    def origin(self) -> str:
        return f"Services.{self.service.name}"


class VpcLatticeRenderer:
    """Renders a plan into VPC Lattice; one instance per expansion."""

    def __init__(self, plan: Plan, errors: ErrorCollector) -> None:
        self.plan = plan
        self.errors = errors
        self.rendered = Rendered()
        self.section = plan.section
        self.lattice = plan.section.lattice
        mesh = plan.section.mesh
        self.existing_network = mesh.existing
        self.network: Value = mesh.arn if mesh.existing else {"Fn::GetAtt": [NETWORK_ID, "Arn"]}
        self.services: dict[str, LatticeService] = {}
        self.direct: dict[str, NodePlan] = {}
        """Services delivered without Lattice (tcp, DNS nodes) -> their provider."""
        self.registered: dict[str, str] = {}
        """ECS node name -> the direct (tcp) service whose Cloud Map service it registers with."""
        self.target_groups: dict[str, list[TargetGroupPlan]] = {}
        """ECS node name -> its target groups."""
        self.vpc: Value = None

    def render(self) -> Rendered:
        self._check_plan()
        if self.errors:
            return self.rendered
        self._network()
        for item in self.services.values():
            self._lattice_service(item)
        for name, provider in self.direct.items():
            self._direct_name(self.plan.services[name], provider)
        self._register_tasks()
        self._lattice_ingress()
        self._direct_ingress()
        if self.lattice.auth == "AWS_IAM":
            self._auth()
            self.rendered.warnings.append(
                "[Lattice.Auth] AWS_IAM: every caller must sign its requests with SigV4 (service vpc-lattice-svcs) "
                "using its task role's credentials; VPC Lattice denies unsigned requests."
            )
        self._access_logs()
        return self.rendered

    # -- what Lattice cannot express, once the plan is known -----------------------------------------------

    def _check_plan(self) -> None:
        self._check_vpc()
        self._warn_mesh()
        for router in self.plan.routers.values():
            self._check_router(router)
        taken = self.plan.cloud_map_names
        for service in self.plan.services.values():
            self._classify(service, taken)
        for node_name, groups in self.target_groups.items():
            node = self.plan.nodes[node_name]
            assert node.ecs is not None
            if len(groups) > MAX_TARGET_GROUPS_PER_ECS_SERVICE:
                self.errors.add(
                    f"Nodes.{node_name}.Service",
                    f"ECS service '{node.ecs.service_id}' would register its tasks in {len(groups)} Lattice target "
                    f"groups; ECS takes at most {MAX_TARGET_GROUPS_PER_ECS_SERVICE} per service. Serve fewer "
                    "(service, port) pairs from this node, or split it into several ECS services.",
                )
            if "VpcLatticeConfigurations" in self._properties(node.ecs.service_id):
                self.errors.add(
                    f"Nodes.{node_name}.Service",
                    f"ECS service '{node.ecs.service_id}' already has VpcLatticeConfigurations; remove them: the "
                    "macro writes them from this section.",
                )
        https = [item for item in self.services.values() if item.https]
        if self.section.tls is not None and https and self.lattice.certificate is None:
            self.errors.add(
                "Lattice.Certificate",
                "is required with Tls: VPC Lattice encrypts in transit on HTTPS listeners, which present this ACM "
                "certificate to the clients. Give one that covers the DNS names of the services.",
            )
        elif https and self.lattice.certificate is None:
            self.errors.add(
                https[0].origin,
                "is served over gRPC, which VPC Lattice carries on HTTPS listeners only: set Lattice.Certificate "
                "to an ACM certificate that covers the DNS names of the gRPC services.",
            )
        for item in self.services.values():
            if len(item.listeners) > LISTENERS_PER_SERVICE:
                self.rendered.warnings.append(
                    f"[{item.origin}] needs {len(item.listeners)} Lattice listeners; Lattice's default quota is "
                    f"{LISTENERS_PER_SERVICE} per service: ask AWS Support for more before deploying."
                )

    def _check_vpc(self) -> None:
        if self.lattice.vpc is not None:
            self.vpc = self.lattice.vpc
            return
        namespace = self.plan.namespace
        if namespace.logical_id is not None:
            self.vpc = self._properties(namespace.logical_id).get("Vpc")
        if self.vpc is None:
            self.errors.add(
                "Lattice.Vpc",
                "is required: the namespace is not a resource of this template (or has no Vpc), and Lattice needs "
                "the VPC of the tasks for its target groups and the service network's VPC association.",
            )

    def _warn_mesh(self) -> None:
        mesh = self.section.mesh
        name = mesh.name
        if mesh.existing and name is not None:
            self.rendered.warnings.append(
                "[Mesh.Name] is not used with Existing: Mesh.Arn identifies the service network."
            )
        elif name is not None and not (isinstance(name, str) and _NETWORK_NAME.match(name)):
            self.rendered.warnings.append(
                "[Mesh.Name] is not a literal that fits Lattice's service network names (3 to 63 of a-z, 0-9 and "
                "'-'): the service network gets a name CloudFormation generates."
            )
        if mesh.existing:
            self.rendered.warnings.append(
                "[Mesh.Existing] the macro associates no VPC with an existing service network: its owner does. "
                "The security groups of that VPC association decide which clients reach the services."
            )

    def _check_router(self, router: RouterPlan) -> None:
        path = f"Routers.{router.name}"
        for index, route in enumerate(router.router.routes):
            for target in route.targets:
                node = self.plan.nodes.get(target)
                if node is not None and not node.is_ecs and router.protocol != "tcp":
                    self.errors.add(
                        f"{path}.Routes[{index}].Targets.{target}",
                        f"is DNS node '{target}': Lattice target groups here hold ECS tasks only. Give the DNS node "
                        "its own service (it is then reached directly), or route to ECS nodes.",
                    )
        if router.protocol != "tcp":
            return
        routes = router.router.routes
        tcp_hint = (
            "Lattice does not carry plain TCP: a tcp service is reached directly through its Cloud Map name, "
            "so it has one provider and no routes. Route http, http2 or grpc to split or match traffic."
        )
        if len(routes) > 1:
            self.errors.add(f"{path}.Routes", f"has {len(routes)} tcp routes. {tcp_hint}")
        for index, route in enumerate(routes):
            route_path = f"{path}.Routes[{index}]"
            if len(route.targets) > 1:
                self.errors.add(f"{route_path}.Targets", f"splits tcp between {', '.join(route.targets)}. {tcp_hint}")
            if route.match is not None and route.match != model.Match():
                self.errors.add(f"{route_path}.Match", f"matches tcp traffic. {tcp_hint}")

    def _classify(self, service: ServicePlan, taken: Mapping[str, str]) -> None:
        """Decide how a service is delivered: by a Lattice service, or directly (tcp and DNS nodes)."""
        path = f"Services.{service.name}"
        spec = service.service
        label = service.cloud_map_label.lower()
        if service.is_external:  # another stack serves it: its consumers only get ingress to its groups
            return
        if spec.router is not None:
            router = self.plan.routers.get(spec.router)
            if router is None:
                return
            if router.protocol == "tcp":
                targets = [name for name, weight in router.router.routes[0].targets.items() if weight > 0]
                if len(router.router.routes) == 1 and len(targets) == 1:
                    self._direct(service, self.plan.nodes[targets[0]], taken)
                return
            item = LatticeService(service, f"{service.stem}LatticeService")
            item.listeners = [(listener.port, router.protocol) for listener in router.listeners]
            for route_index, route in enumerate(router.router.routes):
                for target in route.targets:
                    target_node = self.plan.nodes[target]
                    if not target_node.is_ecs:
                        continue  # reported by _check_router
                    listener = next(each for each in target_node.listeners if each.protocol == router.protocol)
                    self._target_group(item, target_node, listener, f"Routers.{router.name}.Routes[{route_index}]")
            self._add_service(item, taken, label)
            return
        assert spec.node is not None
        node = self.plan.nodes.get(spec.node)
        if node is None:
            return
        if not node.is_ecs:
            self._direct(service, node, taken)
            return
        protocols = {listener.protocol for listener in node.listeners}
        if not node.listeners:
            self.errors.add(
                f"{path}.Node",
                f"node '{node.name}' has no listeners (no Listeners, and no PortMappings on its container): "
                "Lattice has no port to send requests to.",
            )
            return
        if protocols == {"tcp"}:
            self._direct(service, node, taken)
            return
        if "tcp" in protocols:
            self.errors.add(
                f"{path}.Node",
                f"node '{node.name}' listens on tcp and on {', '.join(sorted(protocols - {'tcp'}))}: one name "
                "resolves either to a Lattice service (http, http2, grpc) or directly to the tasks (tcp). Give "
                "the tcp listener a service of its own on another node, or declare the listener http.",
            )
            return
        item = LatticeService(service, f"{service.stem}LatticeService")
        for listener in node.listeners:
            item.listeners.append((listener.port, listener.protocol))
            self._target_group(item, node, listener, f"Nodes.{node.name}")
        self._add_service(item, taken, label)

    def _add_service(self, item: LatticeService, taken: Mapping[str, str], label: str) -> None:
        item.https = self.section.tls is not None or any(protocol == "grpc" for _, protocol in item.listeners)
        if label in taken:
            self._name_taken(item.service, taken[label])
        self.services[item.service.name] = item

    def _name_taken(self, service: ServicePlan, logical_id: str) -> None:
        where = f"Services.{service.name}" + (".DnsName" if service.service.dns_name is not None else "")
        self.errors.add(
            where,
            f"its name '{service.cloud_map_label}' is the Name of {CLOUD_MAP_SERVICE_TYPE} '{logical_id}' in the "
            "namespace, and the macro makes a Cloud Map record of that name to point clients at the provider. "
            f"Rename one of them (DnsName sets this service's name), or drop '{logical_id}' (an ECS service needs no "
            "ServiceRegistries of its own to be reached through Lattice).",
        )

    def _target_group(self, item: LatticeService, node: NodePlan, listener: model.Listener, origin: str) -> None:
        logical_id = f"{item.service.stem}{node.stem}Port{listener.port}TargetGroup"
        if any(group.logical_id == logical_id for group in item.groups):
            return
        group = TargetGroupPlan(logical_id, node, listener, origin)
        item.groups.append(group)
        self.target_groups.setdefault(node.name, []).append(group)

    def _direct(self, service: ServicePlan, node: NodePlan, taken: Mapping[str, str]) -> None:
        """A tcp provider or a DNS node: no Lattice service; the name resolves to the provider itself."""
        label = service.cloud_map_label.lower()
        kind = "DNS node" if not node.is_ecs else "tcp"
        unencrypted = " Tls does not cover it: encrypt in the application." if self.section.tls is not None else ""
        self.rendered.warnings.append(
            f"[Services.{service.name}] is delivered directly, not through VPC Lattice ({kind}: Lattice does not "
            "carry plain TCP): clients resolve its Cloud Map name and connect to the provider; only the security "
            f"groups restrict who calls it.{unencrypted}"
        )
        self.direct[service.name] = node
        if node.ecs is None:
            if label in taken:
                self._name_taken(service, taken[label])
            return
        registries = self._properties(node.ecs.service_id).get("ServiceRegistries")
        if not registries:
            if label in taken:
                self._name_taken(service, taken[label])
            if node.name in self.registered:
                self.errors.add(
                    f"Services.{service.name}",
                    f"is tcp on node '{node.name}', which already answers as service '{self.registered[node.name]}': "
                    "an ECS service registers with one Cloud Map service, so clients reach its tasks under one "
                    "name. Keep one of the two services.",
                )
            self.registered.setdefault(node.name, service.name)
            return
        first = registries[0] if isinstance(registries, list) and registries else None
        registry_id = ref_target(first.get("RegistryArn")) if isinstance(first, Mapping) else None
        name = self.plan.view.known(self._properties(registry_id).get("Name")) if registry_id else None
        if registry_id is None or not isinstance(name, str) or name.lower() != label:
            self.errors.add(
                f"Services.{service.name}",
                f"is tcp, which clients reach directly at the A records of ECS service '{node.ecs.service_id}'; "
                "it registers with another Cloud Map service. Name this service after that Cloud Map service "
                "(its Name, in the namespace), or remove ServiceRegistries so that the macro makes one.",
            )
            self.direct.pop(service.name)

    # -- rendering --------------------------------------------------------------------------------------

    def _add(self, logical_id: str, resource_type: Any, properties: dict[str, Any], origin: str) -> None:
        self.rendered.add(logical_id, build(resource_type, logical_id, properties), origin, self.errors)

    def _network(self) -> None:
        if self.existing_network:
            return
        properties: dict[str, Any] = {"AuthType": "NONE"}
        name = self.section.mesh.name
        if isinstance(name, str) and _NETWORK_NAME.match(name):
            properties["Name"] = name
        self._add(NETWORK_ID, vpclattice.ServiceNetwork, properties, "Mesh")
        self._add(
            CLIENTS_GROUP_ID,
            ec2.SecurityGroup,
            {
                "GroupDescription": "ComposeXMesh: clients of the VPC Lattice service network",
                "VpcId": self.vpc,
            },
            "Mesh",
        )
        self._add(
            VPC_ASSOCIATION_ID,
            vpclattice.ServiceNetworkVpcAssociation,
            {
                "ServiceNetworkIdentifier": self.network,
                "VpcIdentifier": self.vpc,
                "SecurityGroupIds": [{"Fn::GetAtt": [CLIENTS_GROUP_ID, "GroupId"]}],
            },
            "Mesh",
        )

    def _lattice_service(self, item: LatticeService) -> None:
        service = item.service
        properties: dict[str, Any] = {"AuthType": self.lattice.auth, "CustomDomainName": service.dns_name}
        if item.https:
            properties["CertificateArn"] = self.lattice.certificate
        self._add(item.logical_id, vpclattice.Service, properties, item.origin)
        self._add(
            f"{service.stem}LatticeServiceAssociation",
            vpclattice.ServiceNetworkServiceAssociation,
            {"ServiceIdentifier": {"Fn::GetAtt": [item.logical_id, "Arn"]}, "ServiceNetworkIdentifier": self.network},
            item.origin,
        )
        self._cloud_map_cname(service, {"Fn::GetAtt": [item.logical_id, "DnsEntry.DomainName"]})
        for group in item.groups:
            self._target_group_resource(group)
        if service.service.router is not None:
            self._router_listeners(item, self.plan.routers[service.service.router])
        else:
            self._node_listeners(item)

    def _target_group_resource(self, group: TargetGroupPlan) -> None:
        listener = group.listener
        config: dict[str, Any] = {
            "Port": listener.port,
            "Protocol": "HTTP",
            "ProtocolVersion": PROTOCOL_VERSIONS[listener.protocol],
            "IpAddressType": "IPV4",
            "VpcIdentifier": self.vpc,
            "HealthCheck": self._health_check(listener),
        }
        self._add(group.logical_id, vpclattice.TargetGroup, {"Type": "IP", "Config": config}, group.origin)

    def _health_check(self, listener: model.Listener) -> dict[str, Any]:
        check = listener.health_check
        protocol = (check.protocol if check is not None else None) or listener.protocol
        base: dict[str, Any] = {"Enabled": True, "Protocol": "HTTP", "ProtocolVersion": HEALTH_CHECK_VERSIONS[protocol]}
        if check is None:
            return {**base, "Path": "/", "Matcher": {"HttpCode": DEFAULT_HEALTH_CHECK_CODES}}
        values = {
            "Path": check.path or "/",
            "Port": check.port,
            "HealthCheckIntervalSeconds": check.interval.seconds if check.interval else None,
            "HealthCheckTimeoutSeconds": check.timeout.seconds if check.timeout else None,
            "HealthyThresholdCount": check.healthy_threshold,
            "UnhealthyThresholdCount": check.unhealthy_threshold,
        }
        return {**base, **{key: value for key, value in values.items() if value is not None}}

    def _listener(self, item: LatticeService, port: int, protocol: str, default_action: dict[str, Any]) -> str:
        logical_id = f"{item.service.stem}Port{port}Listener"
        https = protocol == "grpc" or self.section.tls is not None  # grpc needs HTTPS; with Tls, all are HTTPS
        properties = {
            "ServiceIdentifier": {"Fn::GetAtt": [item.logical_id, "Arn"]},
            "Name": lattice_name(f"{item.service.name}-{port}", "listener-"),
            "Port": port,
            "Protocol": "HTTPS" if https else "HTTP",
            "DefaultAction": default_action,
        }
        self._add(logical_id, vpclattice.Listener, properties, item.origin)
        return logical_id

    def _node_listeners(self, item: LatticeService) -> None:
        """A node's service: each listener forwards everything to the node's target group of that port."""
        node = self.plan.nodes[item.service.service.node or ""]
        for port, protocol in item.listeners:
            group = f"{item.service.stem}{node.stem}Port{port}TargetGroup"
            action = {"Forward": {"TargetGroups": [{"TargetGroupIdentifier": _arn(group), "Weight": 100}]}}
            self._listener(item, port, protocol, action)

    def _router_listeners(self, item: LatticeService, router: RouterPlan) -> None:
        """A router's service: each listener answers 404 by default; each route is a rule, in priority order."""
        listener_ids = {
            port: self._listener(item, port, protocol, {"FixedResponse": {"StatusCode": 404}})
            for port, protocol in item.listeners
        }
        ordered = sorted(
            enumerate(router.router.routes),
            key=lambda pair: (pair[1].priority if pair[1].priority is not None else 1001, pair[0]),
        )
        counts: dict[int, int] = {}
        for index, route in ordered:
            port = route.match.port if route.match and route.match.port else item.listeners[0][0]
            counts[port] = counts.get(port, 0) + 1
            groups = []
            for target, weight in route.targets.items():
                node = self.plan.nodes[target]
                listener = next(each for each in node.listeners if each.protocol == router.protocol)
                group = f"{item.service.stem}{node.stem}Port{listener.port}TargetGroup"
                groups.append({"TargetGroupIdentifier": _arn(group), "Weight": weight})
            properties = {
                "ServiceIdentifier": {"Fn::GetAtt": [item.logical_id, "Arn"]},
                "ListenerIdentifier": {"Fn::GetAtt": [listener_ids[port], "Arn"]},
                "Name": lattice_name(f"{router.name}-route-{index + 1}", "rule-"),
                "Priority": counts[port],
                "Match": {"HttpMatch": _http_match(router.protocol, route.match)},
                "Action": {"Forward": {"TargetGroups": groups}},
            }
            self._add(
                f"{item.service.stem}Rule{index + 1}",
                vpclattice.Rule,
                properties,
                f"Routers.{router.name}.Routes[{index}]",
            )
        for port, count in counts.items():
            if count > RULES_PER_LISTENER:
                self.rendered.warnings.append(
                    f"[Routers.{router.name}.Routes] {count} rules on the listener of port {port}; Lattice's default "
                    f"quota is {RULES_PER_LISTENER} per listener: ask AWS Support for more before deploying."
                )

    def _cloud_map_cname(self, service: ServicePlan, target: Value) -> None:
        """A Cloud Map name in the namespace that points at ``target``: the name the clients call keeps working."""
        logical_id = f"{service.stem}CloudMapService"
        properties = {
            "Name": service.cloud_map_label,
            "NamespaceId": self.plan.namespace.id,
            "Description": f"ComposeXMesh: {service.name} (CNAME to its provider)",
            "DnsConfig": {"DnsRecords": [{"Type": "CNAME", "TTL": CLOUD_MAP_TTL}], "RoutingPolicy": "WEIGHTED"},
        }
        origin = f"Services.{service.name}"
        self._add(logical_id, servicediscovery.Service, properties, origin)
        instance = {
            "ServiceId": {"Ref": logical_id},
            "InstanceId": service.cloud_map_label.lower(),
            "InstanceAttributes": {"AWS_INSTANCE_CNAME": target},
        }
        self._add(f"{service.stem}CloudMapInstance", servicediscovery.Instance, instance, origin)

    def _direct_name(self, service: ServicePlan, provider: NodePlan) -> None:
        if provider.ecs is None:
            self._cloud_map_cname(service, provider.node.hostname)
            return
        service_id = provider.ecs.service_id
        if self._properties(service_id).get("ServiceRegistries"):
            return  # its own Cloud Map service already answers the name (checked above)
        logical_id = f"{service.stem}CloudMapService"
        properties = {
            "Name": service.cloud_map_label,
            "NamespaceId": self.plan.namespace.id,
            "Description": f"ComposeXMesh: the tasks of node {provider.name} ({service.name}, tcp)",
            "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": CLOUD_MAP_TTL}], "RoutingPolicy": "MULTIVALUE"},
            "HealthCheckCustomConfig": {"FailureThreshold": 1},
        }
        self._add(logical_id, servicediscovery.Service, properties, f"Services.{service.name}")
        patched = self.rendered.patch(service_id, self.plan.resources[service_id])
        patched.setdefault("Properties", {})["ServiceRegistries"] = [{"RegistryArn": _arn(logical_id)}]

    # -- ECS ----------------------------------------------------------------------------------------------

    def _register_tasks(self) -> None:
        """Each ECS node's service registers its tasks in its target groups, through named port mappings."""
        if not self.target_groups:
            return
        role = self._infrastructure_role()
        for node_name, groups in self.target_groups.items():
            node = self.plan.nodes[node_name]
            ecs_target = node.ecs
            assert ecs_target is not None
            task_id = ecs_target.task_definition_id
            task = deepcopy(dict(self.plan.resources[task_id]))
            containers: list[dict[str, Any]] = self.plan.view.raw_at(task, ("Properties", "ContainerDefinitions"))
            app = self.plan.view.raw_at(containers, (ecs_target.container_index,))
            port_names: dict[int, Value] = {}
            for group in groups:  # one named port mapping per port, however many target groups use it
                if group.listener.port not in port_names:
                    port_names[group.listener.port] = self._port_name(node, group.listener, containers, app)
            configurations = [
                {
                    "RoleArn": role,
                    "TargetGroupArn": _arn(group.logical_id),
                    "PortName": port_names[group.listener.port],
                }
                for group in groups
            ]
            if task != self.plan.resources[task_id]:
                self.rendered.patch(task_id, task)
            typed = build(ecs.Service, ecs_target.service_id, {"VpcLatticeConfigurations": configurations})
            service = self.rendered.patch(ecs_target.service_id, self.plan.resources[ecs_target.service_id])
            service.setdefault("Properties", {})["VpcLatticeConfigurations"] = typed["Properties"][
                "VpcLatticeConfigurations"
            ]

    def _infrastructure_role(self) -> Value:
        given = self.lattice.infrastructure_role
        if given is not None:
            if isinstance(given, str) and self._type_of(given) == ROLE_TYPE:
                return _arn(given)
            if isinstance(given, str) and given in self.plan.resources:
                self.errors.add(
                    "Lattice.InfrastructureRole",
                    f"'{given}' is an {self._type_of(given)}; expected an {ROLE_TYPE} or a role ARN.",
                )
            elif isinstance(given, str) and not given.startswith("arn:"):
                self.errors.add(
                    "Lattice.InfrastructureRole",
                    f"'{given}' is neither a logical ID of an {ROLE_TYPE} in Resources nor a role ARN.",
                )
            return given
        properties = {
            "Description": "ComposeXMesh: lets ECS register the tasks in their VPC Lattice target groups",
            "AssumeRolePolicyDocument": trusted_by("ecs.amazonaws.com"),
            "ManagedPolicyArns": [{"Fn::Sub": f"arn:${{AWS::Partition}}:iam::aws:policy/{INFRASTRUCTURE_POLICY}"}],
        }
        self._add(INFRASTRUCTURE_ROLE_ID, iam.Role, properties, "Lattice")
        return _arn(INFRASTRUCTURE_ROLE_ID)

    def _port_name(
        self, node: NodePlan, listener: model.Listener, containers: list[dict[str, Any]], app: dict[str, Any]
    ) -> Value:
        """The name of the app container's port mapping of the listener: the user's, or one the macro adds."""
        given = node.node.listeners
        path = f"Nodes.{node.name}." + ("Service" if given is None else f"Listeners[{given.index(listener)}]")
        assert node.ecs is not None
        view = self.plan.view
        found = next((item for item in node.ecs.port_mappings if item.port == listener.port), None)
        if found is None:
            mapping: dict[str, Any] = {"ContainerPort": listener.port, "Protocol": "tcp"}
            view.raw_at(app, ()).setdefault("PortMappings", [])
            view.raw_at(app, ("PortMappings",)).append(mapping)
        else:
            mapping = view.raw_at(app, ("PortMappings", found.index))
            if found.protocol != "tcp":
                self.errors.add(
                    path,
                    f"port {listener.port} of container '{node.ecs.container_name}' is not tcp; Lattice needs tcp.",
                )
        if "Name" not in mapping:
            mapping["Name"] = new_port_name(listener, containers, path, self.errors)
        return mapping["Name"]

    # -- the network --------------------------------------------------------------------------------------

    def _lattice_ingress(self) -> None:
        """Lattice reaches the tasks from its link-local range; consumers reach the clients group on the ports."""
        seen: set[tuple[str, int]] = set()
        for node_name, groups in self.target_groups.items():
            node = self.plan.nodes[node_name]
            for group in groups:
                port = group.listener.port
                for index, security_group in enumerate(node.security_groups, start=1):
                    key = (canonical(security_group), port)
                    if key in seen:
                        continue
                    seen.add(key)
                    suffix = str(index) if len(node.security_groups) > 1 else ""
                    logical_id = f"LatticeTo{node.stem}Port{port}Ingress{suffix}"
                    rule = {
                        "GroupId": security_group,
                        "CidrIp": LATTICE_SOURCE_RANGE,
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "Description": shorten(
                            f"ComposeXMesh VPC Lattice to {node.name} on tcp/{port}", MAX_DESCRIPTION
                        ),
                    }
                    self._add(logical_id, ec2.SecurityGroupIngress, rule, f"Nodes.{node.name}")
            if not node.security_groups:
                self.rendered.warnings.append(
                    f"[Nodes.{node.name}] has no security groups the macro can read; allow tcp from "
                    f"{LATTICE_SOURCE_RANGE} on its ports yourself, or Lattice cannot reach its tasks."
                )
        if self.existing_network:
            return
        seen_clients: set[tuple[str, int]] = set()
        for consumer in self.plan.nodes.values():
            called = [self.services[name] for name in consumer.node.backends if name in self.services]
            ports = sorted({port for item in called for port, _ in item.listeners})
            if ports and not consumer.security_groups:
                self.rendered.warnings.append(
                    f"[Nodes.{consumer.name}] has no security groups the macro can read; no ingress rules are made "
                    "for its connections."
                )
                continue
            for port in ports:
                new = []
                for group in consumer.security_groups:
                    key = (canonical(group), port)
                    if key not in seen_clients:
                        seen_clients.add(key)
                        new.append(group)
                for index, group in enumerate(new, start=1):
                    suffix = str(index) if len(new) > 1 else ""
                    logical_id = f"{consumer.stem}ToLatticePort{port}Ingress{suffix}"
                    rule = {
                        "GroupId": {"Fn::GetAtt": [CLIENTS_GROUP_ID, "GroupId"]},
                        "SourceSecurityGroupId": group,
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "Description": shorten(
                            f"ComposeXMesh {consumer.name} to VPC Lattice on tcp/{port}", MAX_DESCRIPTION
                        ),
                    }
                    self._add(logical_id, ec2.SecurityGroupIngress, rule, f"Nodes.{consumer.name}")

    def _direct_ingress(self) -> None:
        """Consumers of services delivered directly get ingress to the provider, as on Service Connect."""
        edges = tuple(edge for edge in self.plan.edges if edge.external or edge.service in self.direct)
        if edges:
            render_ingress(replace(self.plan, edges=edges), self.rendered, self.errors)

    # -- IAM auth and logs ----------------------------------------------------------------------------------

    def _auth(self) -> None:
        """``AWS_IAM``: each Lattice service admits its consumers' task roles, and each role may invoke it."""
        callers: dict[str, list[NodePlan]] = {name: [] for name in self.services}
        for consumer in self.plan.nodes.values():
            for name in consumer.node.backends:
                if name in callers:
                    callers[name].append(consumer)
        grants: dict[str, list[str]] = {}
        principals_of: dict[str, Value] = {}
        for consumer in {node.name: node for nodes in callers.values() for node in nodes}.values():
            principal = self._caller_role(consumer)
            if principal is not None:
                principals_of[consumer.name] = principal
        for name, item in self.services.items():
            principals = [principals_of[node.name] for node in callers[name] if node.name in principals_of]
            if not principals:
                self.rendered.warnings.append(
                    f"[{item.origin}] has Auth AWS_IAM and no consumer in Backends: its auth policy admits nobody."
                )
                continue
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": principals},
                        "Action": "vpc-lattice-svcs:Invoke",
                        "Resource": _invoke_resource(item.logical_id),
                    }
                ],
            }
            self._add(
                f"{item.service.stem}AuthPolicy",
                vpclattice.AuthPolicy,
                {"ResourceIdentifier": _arn(item.logical_id), "Policy": policy},
                item.origin,
            )
            for node in callers[name]:
                grants.setdefault(node.name, []).append(item.logical_id)
        for consumer_name, service_ids in grants.items():
            consumer = self.plan.nodes[consumer_name]
            role_id = self._role_id(consumer)
            if role_id is None:
                continue
            properties = {
                "PolicyName": f"ComposeXMesh-{consumer.stem}-LatticeInvoke"[:128],
                "Roles": [{"Ref": role_id}],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "vpc-lattice-svcs:Invoke",
                            "Resource": [_invoke_resource(service_id) for service_id in service_ids],
                        }
                    ],
                },
            }
            self._add(f"{consumer.stem}LatticeInvokePolicy", iam.PolicyType, properties, f"Nodes.{consumer_name}")

    def _caller_role(self, consumer: NodePlan) -> Value:
        """The ARN of a consumer's task role; a role is made (and set on the task) when the task has none."""
        ecs_target = consumer.ecs
        if ecs_target is None:
            return None
        role = ecs_target.task_role
        if role.logical_id is not None:
            return _arn(role.logical_id)
        if role.create:
            role_id = f"{consumer.stem}TaskRole"
            properties = {
                "Description": f"ComposeXMesh: task role of {consumer.name}, to call VPC Lattice services",
                "AssumeRolePolicyDocument": trusted_by("ecs-tasks.amazonaws.com"),
            }
            self._add(role_id, iam.Role, properties, f"Nodes.{consumer.name}")
            task_id = ecs_target.task_definition_id
            task = self.rendered.patch(task_id, self.plan.resources[task_id])
            task["Properties"]["TaskRoleArn"] = _arn(role_id)
            return _arn(role_id)
        written = self._properties(ecs_target.task_definition_id).get("TaskRoleArn")
        self.rendered.warnings.append(
            f"[Nodes.{consumer.name}] its task role is not a resource of this template: the auth policies name it, "
            "but grant it vpc-lattice-svcs:Invoke in its own stack (identity policy)."
        )
        return written

    def _role_id(self, consumer: NodePlan) -> str | None:
        assert consumer.ecs is not None
        role = consumer.ecs.task_role
        if role.logical_id is not None:
            return role.logical_id
        return f"{consumer.stem}TaskRole" if role.create else None

    def _access_logs(self) -> None:
        if not self.section.access_log.enabled:
            return
        destination = self.lattice.access_logs
        if destination is None:
            self._add(
                ACCESS_LOG_GROUP_ID,
                logs.LogGroup,
                {"RetentionInDays": ACCESS_LOG_RETENTION_DAYS},
                "Lattice",
            )
            destination = _arn(ACCESS_LOG_GROUP_ID)
        elif isinstance(destination, str) and destination in self.plan.resources:
            destination = _arn(destination)
        if not self.existing_network:
            self._add(
                "LatticeAccessLogSubscription",
                vpclattice.AccessLogSubscription,
                {"ResourceIdentifier": self.network, "DestinationArn": destination},
                "Lattice",
            )
            return
        for item in self.services.values():  # the network is another stack's: log this stack's services
            self._add(
                f"{item.service.stem}AccessLogSubscription",
                vpclattice.AccessLogSubscription,
                {"ResourceIdentifier": _arn(item.logical_id), "DestinationArn": destination},
                item.origin,
            )

    # -- template helpers ---------------------------------------------------------------------------------

    def _properties(self, logical_id: str | None) -> Mapping[str, Any]:
        """A resource's properties as this deploy sees them (``Fn::If`` taken, ``AWS::NoValue`` dropped)."""
        return self.plan.view.properties(logical_id) if logical_id else {}

    def _type_of(self, logical_id: str) -> str | None:
        return self.plan.view.type_of(logical_id)


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _invoke_resource(service_id: str) -> dict[str, Any]:
    """Every request path of a Lattice service: ``<service ARN>/*``."""
    return {"Fn::Join": ["", [_arn(service_id), "/*"]]}


def _http_match(protocol: str, match: model.Match | None) -> dict[str, Any]:
    """A route's match as a Lattice ``HttpMatch``: path, method and case-sensitive headers; gRPC as its path."""
    match = match or model.Match()
    result: dict[str, Any] = {}
    if protocol == "grpc":
        if match.service_name is not None and match.method_name is not None:
            path: dict[str, str] = {"Exact": f"/{match.service_name}/{match.method_name}"}
        elif match.service_name is not None:
            path = {"Prefix": f"/{match.service_name}/"}
        else:
            path = {"Prefix": "/"}
        result["PathMatch"] = {"Match": path, "CaseSensitive": True}
        result["Method"] = "POST"
        headers = match.metadata
    else:
        if match.path is not None and match.path.exact is not None:
            result["PathMatch"] = {"Match": {"Exact": match.path.exact}, "CaseSensitive": True}
        else:
            result["PathMatch"] = {"Match": {"Prefix": match.prefix or "/"}, "CaseSensitive": True}
        if match.method is not None:
            result["Method"] = match.method
        headers = match.headers
    if headers:
        result["HeaderMatches"] = [
            {
                "Name": header.name,
                "Match": {"Exact": header.exact} if header.exact is not None else {"Prefix": header.prefix},
                "CaseSensitive": True,
            }
            for header in headers
        ]
    return result


# -- the section's own rules (no template needed): reported with the other section errors -----------------


_DEFAULT_ENVOY = next(item.default for item in fields(model.Section) if item.name == "envoy")
_ENVOY_KEYS = [(item.name, item.metadata["key"]) for item in fields(model.Envoy)]


def check_lattice_section(section: model.Section, errors: ErrorCollector) -> None:
    """Every rule of SPEC §8 that the section alone decides: what Lattice cannot express, each with its alternative."""
    _check_mesh(section.mesh, errors)
    _check_envoy(section.envoy, errors)
    for name, node in section.nodes.items():
        for index, listener in enumerate(node.listeners or ()):
            _check_listener(f"Nodes.{name}.Listeners[{index}]", listener, errors)
    for name, router in section.routers.items():
        for index, route in enumerate(router.routes):
            _check_route(f"Routers.{name}.Routes[{index}]", route, errors)


def _check_mesh(mesh: model.Mesh, errors: ErrorCollector) -> None:
    if mesh.owner is not None:
        errors.add_check(
            "Mesh.Owner",
            "VPC Lattice has no mesh owner: share the service network with AWS RAM from its account, and give "
            "this stack Mesh: {Existing: true, Arn: <the shared network's ARN>}.",
        )
    if mesh.existing and mesh.arn is None:
        errors.add_check(
            "Mesh.Arn",
            "is required with Existing: true: a Lattice service network is identified by its ID (sn-...) or ARN, "
            "not by its name.",
        )
    if mesh.arn is not None and not mesh.existing:
        errors.add_check("Mesh.Arn", "needs Existing: true: it names a service network to join instead of making one.")
    if isinstance(mesh.arn, str) and not _NETWORK_REF.match(mesh.arn):
        errors.add_check(
            "Mesh.Arn",
            f"'{mesh.arn}' is neither a service network ID (sn- and 17 characters) nor a service network ARN.",
        )
    if mesh.egress_filter == "DROP_ALL":  # None when not written: the default is no error
        errors.add_check(
            "Mesh.EgressFilter",
            "DROP_ALL: VPC Lattice does not filter egress. Services are reached only through their listeners, the "
            "auth policies (Lattice.Auth: AWS_IAM) decide who may call them, and the security groups restrict the "
            "rest. Remove it.",
        )


def _check_envoy(envoy: model.Envoy, errors: ErrorCollector) -> None:
    if envoy is _DEFAULT_ENVOY:
        return
    written = [key for attribute, key in _ENVOY_KEYS if getattr(envoy, attribute) != getattr(_DEFAULT_ENVOY, attribute)]
    for key in written:
        errors.add_check(f"Envoy.{key}", _ENVOY_HINTS[key])
    if not written:
        errors.add_check("Envoy", ENVOY_HINT)


def _check_listener(path: str, listener: model.Listener, errors: ErrorCollector) -> None:
    if listener.connection_pool is not None:
        errors.add_check(
            f"{path}.ConnectionPool",
            "VPC Lattice takes no connection pool settings: it manages connections to the targets itself; remove it.",
        )
    if listener.outlier_detection is not None:
        errors.add_check(
            f"{path}.OutlierDetection",
            "VPC Lattice has no outlier detection: its target group health checks (HealthCheck) take failing tasks "
            "out of service; remove it.",
        )
    if listener.timeout is not None:
        errors.add_check(
            f"{path}.Timeout",
            "VPC Lattice has no request timeouts to set: it closes connections idle for 1 minute and streams after "
            "10 minutes; remove it.",
        )
    check = listener.health_check
    if check is None:
        return
    protocol = check.protocol or listener.protocol
    if protocol in ("grpc", "tcp"):
        errors.add_check(
            f"{path}.HealthCheck" + (".Protocol" if check.protocol else ""),
            f"is a {protocol} health check: VPC Lattice checks targets over HTTP only (HTTP/1.1 or HTTP/2). Give the "
            "application an HTTP health path (HealthCheck: {Protocol: http, Path: /health}), or use the container "
            "health check in the task definition.",
        )
    for key, duration in (("Interval", check.interval), ("Timeout", check.timeout)):
        if duration is not None and duration.milliseconds % 1000:
            errors.add_check(
                f"{path}.HealthCheck.{key}", f"{duration.text}: VPC Lattice takes health check times in whole seconds."
            )


def _check_route(path: str, route: model.Route, errors: ErrorCollector) -> None:
    if route.retries is not None:
        errors.add_check(
            f"{path}.Retries",
            "VPC Lattice does not retry requests and takes no retry policy: retry in the client; remove it.",
        )
    if route.timeout is not None:
        errors.add_check(
            f"{path}.Timeout",
            "VPC Lattice has no per-route timeouts: it closes connections idle for 1 minute and streams after 10 "
            "minutes; remove it.",
        )
    if len(route.targets) > MAX_TARGETS_PER_RULE:
        errors.add_check(
            f"{path}.Targets",
            f"has {len(route.targets)} targets: a Lattice rule forwards to at most {MAX_TARGETS_PER_RULE} target "
            "groups. Split the traffic in two routes (e.g. by path or header), or drop targets.",
        )
    match = route.match
    if match is None:
        return
    match_path = f"{path}.Match"
    if match.path is not None and match.path.regex is not None:
        errors.add_check(
            f"{match_path}.Path.Regex",
            "VPC Lattice matches paths exactly or by prefix only: write Path: {Exact: ...} or Prefix.",
        )
    for key, value in (("Prefix", match.prefix), ("Path.Exact", match.path.exact if match.path else None)):
        if value is not None and (len(value) > MAX_PATH or not _PATH.match(value)):
            errors.add_check(
                f"{match_path}.{key}",
                f"'{value}' is not a path VPC Lattice can match: it starts with '/', has at most {MAX_PATH} "
                "characters, of letters, digits and @:%_+.~#?&/=-.",
            )
    if match.scheme is not None:
        errors.add_check(
            f"{match_path}.Scheme",
            "VPC Lattice does not match the scheme: a listener is HTTP or HTTPS, with rules of its own. Remove it.",
        )
    if match.query_parameters:
        errors.add_check(
            f"{match_path}.QueryParameters",
            "VPC Lattice does not match query parameters: match a path, a method or a header instead.",
        )
    if match.method == "PATCH":
        errors.add_check(
            f"{match_path}.Method",
            f"PATCH: VPC Lattice matches the methods {', '.join(LATTICE_METHODS)} only. Match PATCH requests by "
            "path or header instead, or remove the method.",
        )
    for key, headers in (("Headers", match.headers), ("Metadata", match.metadata)):
        _check_headers(f"{match_path}.{key}", headers, errors)
    for key, value in (("ServiceName", match.service_name), ("MethodName", match.method_name)):
        if value is not None and not _PATH.match(f"/{value}"):
            errors.add_check(
                f"{match_path}.{key}",
                f"'{value}' cannot be part of a path VPC Lattice matches (letters, digits and @:%_+.~#?&/=-).",
            )


def _check_headers(path: str, headers: tuple[model.HeaderMatch, ...], errors: ErrorCollector) -> None:
    if len(headers) > MAX_HEADER_MATCHES:
        errors.add_check(
            path,
            f"has {len(headers)} header matches: a Lattice rule matches at most {MAX_HEADER_MATCHES}. Match on fewer "
            "headers, or split the route.",
        )
    for index, header in enumerate(headers):
        header_path = f"{path}[{index}]"
        for key, attribute in _HEADER_KINDS:
            if getattr(header, attribute) is not None:
                errors.add_check(
                    f"{header_path}.{key}",
                    "VPC Lattice matches a header exactly (Exact) or by its start (Prefix), case-sensitive: "
                    f"write one of those instead of {key}.",
                )
        if header.invert:
            errors.add_check(
                f"{header_path}.Invert",
                "VPC Lattice cannot invert a header match: match the values to route instead, and let the other "
                "requests fall to a later route. Remove it.",
            )
        if len(header.name) > MAX_HEADER_NAME:
            errors.add_check(
                f"{header_path}.Name",
                f"has {len(header.name)} characters: VPC Lattice matches header names of at most {MAX_HEADER_NAME}.",
            )
        value = header.exact if header.exact is not None else header.prefix
        if value is not None and len(value) > MAX_HEADER_VALUE:
            errors.add_check(
                header_path,
                f"its value has {len(value)} characters: VPC Lattice matches header values of at most "
                f"{MAX_HEADER_VALUE}.",
            )


def render_vpc_lattice(plan: Plan, errors: ErrorCollector) -> Rendered:
    """Render ``plan`` on Amazon VPC Lattice."""
    return VpcLatticeRenderer(plan, errors).render()
