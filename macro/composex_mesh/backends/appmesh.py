"""``Backend: AppMesh``: mesh, virtual nodes, routers, routes and services, Cloud Map names, envoy and IAM (SPEC §3)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from troposphere import appmesh, servicediscovery

from .. import model
from ..errors import ErrorCollector
from ..network import render_ingress
from ..plan import NodePlan, Plan, RouterPlan, ServicePlan, shorten
from . import appmesh_spec as spec
from .appmesh_tls import AppMeshTls
from .base import Rendered, build
from .envoy import render_envoy

MESH_ID = "ComposeXMesh"
FAKE_INSTANCE_IP = "169.254.255.254"
MAX_APP_MESH_NAME = 255
MAX_DNS_LABEL = 63
MAX_CLOUD_MAP_NAME = 127
_DNS_LABEL = re.compile(r"^(?:[A-Za-z0-9_]|[A-Za-z0-9_][A-Za-z0-9_-]{0,61}[A-Za-z0-9_])$")
"""A label of a Cloud Map service name (CloudFormation's pattern for ``AWS::ServiceDiscovery::Service`` Name)."""


def node_registry_name(node_name: str) -> str:
    """The Cloud Map service name the macro gives a node's instances: the node's name when it is a DNS label,
    else its readable part and a stable hash (nothing calls this name: the virtual node reads it)."""
    if _DNS_LABEL.match(node_name):
        return node_name
    return shorten(node_name.strip("-"), MAX_DNS_LABEL, node_name)
DEFAULT_PER_REQUEST_MS = 15_000
"""App Mesh's per-request timeout of a listener that sets none."""


class AppMeshRenderer:
    """Renders a plan into App Mesh; one instance per expansion."""

    def __init__(self, plan: Plan, errors: ErrorCollector) -> None:
        self.plan = plan
        self.errors = errors
        self.rendered = Rendered()
        mesh = plan.section.mesh
        self.mesh_name: Any = mesh.name if mesh.existing else {"Fn::GetAtt": [MESH_ID, "MeshName"]}
        self.mesh_owner = mesh.owner
        self.tls = AppMeshTls(plan, plan.section.tls, errors) if plan.section.tls is not None else None

    def render(self) -> Rendered:
        if not self.plan.section.mesh.existing:
            self._mesh()
        for node in self.plan.nodes.values():
            if self.tls is not None:
                self.tls.render_certificate(node, self.rendered)
            self._virtual_node(node)
            if node.ecs is not None and node.ecs.registry_id is None:
                self._node_registry(node)
        for router in self.plan.routers.values():
            self._router(router)
        for service in self.plan.services.values():
            if service.is_external:  # another stack makes its virtual service
                continue
            self._virtual_service(service)
            if service.needs_fake_instance:
                self._fake_instance(service)
        for node in self.plan.nodes.values():
            if node.ecs is not None:
                statements = self.tls.envoy_statements(node) if self.tls is not None else []
                render_envoy(self.plan, node, f"{node.stem}VirtualNode", self.rendered, self.errors, statements)
        self._warn_shared_task_roles()
        render_ingress(self.plan, self.rendered, self.errors)
        if self.tls is not None:
            self.tls.warn_about_load_balancers(self.rendered)
        if self.plan.section.envoy.image is not None:
            self.rendered.warnings.append(
                "[Envoy.Image] a custom image gets no pull rights from the macro: "
                "the execution roles must be able to pull it."
            )
        return self.rendered

    def _warn_shared_task_roles(self) -> None:
        """Nodes whose tasks share a task role: envoy's rights of each land on that one role."""
        sharing: dict[str, list[str]] = {}
        for node in self.plan.nodes.values():
            if node.ecs is not None and node.ecs.task_role.logical_id is not None:
                sharing.setdefault(node.ecs.task_role.logical_id, []).append(node.name)
        for role_id, names in sharing.items():
            if len(names) > 1:
                listed = ", ".join(f"'{name}'" for name in names)
                self.rendered.warnings.append(
                    f"[Nodes.{names[0]}] the tasks of nodes {listed} share the task role '{role_id}': each of them "
                    "may read every one of those nodes' configuration (appmesh:StreamAggregatedResources). Give each "
                    "task definition its own task role."
                )

    def _add(self, logical_id: str, resource_type: Any, properties: dict[str, Any], origin: str) -> None:
        self.rendered.add(logical_id, build(resource_type, logical_id, properties), origin, self.errors)

    def _in_mesh(self, properties: dict[str, Any]) -> dict[str, Any]:
        return spec.drop_none({"MeshName": self.mesh_name, "MeshOwner": self.mesh_owner, **properties})

    def _mesh(self) -> None:
        mesh = self.plan.section.mesh
        properties = {
            "MeshName": mesh.name if mesh.name is not None else {"Ref": "AWS::StackName"},
            "Spec": {"EgressFilter": {"Type": mesh.egress_filter or "DROP_ALL"}},
        }
        self._add(MESH_ID, appmesh.Mesh, properties, "Mesh")

    def _virtual_node(self, node: NodePlan) -> None:
        if node.ecs is not None:
            discovery: dict[str, Any] = {
                "AWSCloudMap": {"NamespaceName": node.namespace_name, "ServiceName": node.ecs.cloud_map_name}
            }
            if node.ecs.registry_id is None:
                discovery["AWSCloudMap"]["ServiceName"] = {"Fn::GetAtt": [f"{node.stem}CloudMapService", "Name"]}
            if node.ecs.discovery_attributes:
                discovery["AWSCloudMap"]["Attributes"] = [
                    {"Key": key, "Value": value} for key, value in node.ecs.discovery_attributes
                ]
        else:
            discovery = {"DNS": {"Hostname": node.node.hostname}}
        backends = [
            {
                "VirtualService": spec.drop_none(
                    {
                        "VirtualServiceName": self.plan.services[name].dns_name,
                        "ClientPolicy": self.tls.client_policy(node, name) if self.tls is not None else None,
                    }
                )
            }
            for name in node.node.backends
        ]
        listeners = []
        for item, timed in zip(node.listeners, self._with_route_timeouts(node), strict=True):
            listener = spec.listener(timed)
            tls = self.tls.listener_tls(node, item) if self.tls is not None else None
            if tls is not None:
                listener["TLS"] = tls
            listeners.append(listener)
        node_spec = spec.drop_none(
            {
                "Listeners": listeners,
                "Backends": backends,
                "ServiceDiscovery": discovery,
                "Logging": spec.logging(self.plan.section.access_log),
            }
        )
        properties = self._in_mesh({"VirtualNodeName": node.name, "Spec": node_spec})
        self._add(f"{node.stem}VirtualNode", appmesh.VirtualNode, properties, f"Nodes.{node.name}")

    def _with_route_timeouts(self, node: NodePlan) -> list[model.Listener]:
        """A route's PerRequest longer than a target listener's would be cut by the listener (App Mesh's default
        is 15 s): a listener without a timeout of its own gets the longest such route's; one with a shorter
        timeout written gives a warning (SPEC §3)."""
        longest: dict[int, tuple[model.Duration, str]] = {}
        for router in self.plan.routers.values():
            for index, route in enumerate(router.router.routes):
                per_request = route.timeout.per_request if route.timeout is not None else None
                if per_request is None or node.name not in route.targets:
                    continue
                for listener in node.listeners:
                    current = longest.get(listener.port)
                    if listener.protocol == router.protocol and (
                        current is None or per_request.milliseconds > current[0].milliseconds
                    ):
                        longest[listener.port] = (per_request, f"Routers.{router.name}.Routes[{index}]")
        listeners = []
        for position, listener in enumerate(node.listeners):
            found = longest.get(listener.port)
            written = listener.timeout.per_request if listener.timeout is not None else None
            if found is not None and written is None and found[0].milliseconds > DEFAULT_PER_REQUEST_MS:
                timeout = dataclasses.replace(listener.timeout or model.Timeouts(), per_request=found[0])
                listener = dataclasses.replace(listener, timeout=timeout)
            elif found is not None and written is not None and written.milliseconds < found[0].milliseconds:
                where = f"Listeners[{position}]" if node.node.listeners is not None else f"listener {listener.port}"
                self.rendered.warnings.append(
                    f"[Nodes.{node.name}.{where}] its PerRequest timeout {written.text} is shorter than the "
                    f"{found[0].text} of {found[1]}, which targets it: requests are cut after {written.text}."
                )
            listeners.append(listener)
        return listeners

    def _node_registry(self, node: NodePlan) -> None:
        """A Cloud Map service for an ECS service that registers with none, and the registry entry on it."""
        assert node.ecs is not None
        logical_id = f"{node.stem}CloudMapService"
        description = f"ComposeXMesh: instances of node {node.name}"
        properties = self._cloud_map_service(node_registry_name(node.name), description, ttl=60)
        properties["HealthCheckCustomConfig"] = {"FailureThreshold": 1}
        self._add(logical_id, servicediscovery.Service, properties, f"Nodes.{node.name}")
        service = self.rendered.patch(node.ecs.service_id, self.plan.resources[node.ecs.service_id])
        service["Properties"]["ServiceRegistries"] = [{"RegistryArn": {"Fn::GetAtt": [logical_id, "Arn"]}}]

    def _router(self, router: RouterPlan) -> None:
        origin = f"Routers.{router.name}"
        listeners = [{"PortMapping": {"Port": item.port, "Protocol": item.protocol}} for item in router.listeners]
        properties = self._in_mesh({"VirtualRouterName": router.name, "Spec": {"Listeners": listeners}})
        self._add(f"{router.stem}VirtualRouter", appmesh.VirtualRouter, properties, origin)
        protocol = router.protocol
        for index, route in enumerate(router.router.routes):
            targets = []
            for node_name, weight in route.targets.items():
                target = self.plan.nodes[node_name]
                ports = [item.port for item in target.listeners if item.protocol == protocol]
                targets.append(
                    spec.drop_none(
                        {
                            "VirtualNode": {"Fn::GetAtt": [f"{target.stem}VirtualNode", "VirtualNodeName"]},
                            "Weight": weight,
                            "Port": ports[0] if len(target.listeners) > 1 and ports else None,
                        }
                    )
                )
            route_spec = spec.drop_none(
                {
                    "Match": spec.route_match(protocol, route.match),
                    "Action": {"WeightedTargets": targets},
                    "RetryPolicy": spec.retry_policy(protocol, route.retries),
                    "Timeout": spec.timeouts(protocol, route.timeout),
                }
            )
            if protocol == "grpc" and "Match" not in route_spec:
                route_spec["Match"] = {}
            properties = self._in_mesh(
                {
                    "VirtualRouterName": {"Fn::GetAtt": [f"{router.stem}VirtualRouter", "VirtualRouterName"]},
                    "RouteName": shorten(f"{router.name}-{index + 1}", MAX_APP_MESH_NAME),
                    "Spec": spec.drop_none({spec.ROUTE_KEYS[protocol]: route_spec, "Priority": route.priority}),
                }
            )
            self._add(f"{router.stem}Route{index + 1}", appmesh.Route, properties, f"{origin}.Routes[{index}]")

    def _virtual_service(self, service: ServicePlan) -> None:
        if service.service.node is not None:
            stem = self.plan.nodes[service.service.node].stem
            provider = {"VirtualNode": {"VirtualNodeName": {"Fn::GetAtt": [f"{stem}VirtualNode", "VirtualNodeName"]}}}
        else:
            assert service.service.router is not None
            stem = self.plan.routers[service.service.router].stem
            provider = {
                "VirtualRouter": {"VirtualRouterName": {"Fn::GetAtt": [f"{stem}VirtualRouter", "VirtualRouterName"]}}
            }
        properties = self._in_mesh({"VirtualServiceName": service.dns_name, "Spec": {"Provider": provider}})
        self._add(f"{service.stem}VirtualService", appmesh.VirtualService, properties, f"Services.{service.name}")

    def _cloud_map_service(self, name: str, description: str, ttl: int) -> dict[str, Any]:
        """An A-record Cloud Map service in the mesh's namespace."""
        return {
            "Name": name,
            "NamespaceId": self.plan.namespace.id,
            "Description": description,
            "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": ttl}], "RoutingPolicy": "MULTIVALUE"},
        }

    def _fake_instance(self, service: ServicePlan) -> None:
        """A Cloud Map name for a service nothing real answers: it only has to resolve, envoy does the rest."""
        origin = f"Services.{service.name}"
        label = service.cloud_map_label
        if len(label) > MAX_CLOUD_MAP_NAME or not all(_DNS_LABEL.match(part) for part in label.split(".")):
            where = "its name" if service.service.dns_name is None else "the part of DnsName before the namespace"
            self.errors.add(
                origin,
                f"{where} cannot be a Cloud Map name in the namespace (DNS labels of at most {MAX_DNS_LABEL} "
                f"letters, digits, '-' and '_', not starting or ending with '-'; {MAX_CLOUD_MAP_NAME} in all): "
                "set a shorter DnsName.",
            )
            return
        service_id = f"{service.stem}FakeCloudMapService"
        description = f"ComposeXMesh: resolves {service.name} for envoy (RFC 3927 link-local address)"
        properties = self._cloud_map_service(label, description, ttl=300)
        self._add(service_id, servicediscovery.Service, properties, origin)
        instance = {
            "ServiceId": {"Ref": service_id},
            "InstanceAttributes": {"AWS_INSTANCE_IPV4": FAKE_INSTANCE_IP},
        }
        self._add(f"{service.stem}FakeInstance", servicediscovery.Instance, instance, origin)


def render_app_mesh(plan: Plan, errors: ErrorCollector) -> Rendered:
    """Render ``plan`` on App Mesh."""
    return AppMeshRenderer(plan, errors).render()
