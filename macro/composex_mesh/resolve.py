"""Resolve the parsed section against the template into a ``Plan``.

Answers, for every node: which ECS service, task definition, container, roles, security groups and Cloud Map
service; for every router: its listeners; for every service: its DNS name and whether anything real answers
it; and the edges (who may call whom, on which port). Every problem is collected with its path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import model
from .checks import check_routes
from .errors import ErrorCollector
from .fields import did_you_mean
from .parse import is_intrinsic
from .plan import (
    EcsTarget,
    Edge,
    Namespace,
    NodePlan,
    Plan,
    RoleRef,
    RouterPlan,
    ServicePlan,
    Value,
    join_dns,
    pascal,
)

NAMESPACE_TYPE = "AWS::ServiceDiscovery::PrivateDnsNamespace"
CLOUD_MAP_SERVICE_TYPE = "AWS::ServiceDiscovery::Service"
ECS_SERVICE_TYPE = "AWS::ECS::Service"
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"
ROLE_TYPE = "AWS::IAM::Role"
SECURITY_GROUP_TYPE = "AWS::EC2::SecurityGroup"
_APP_PROTOCOLS = {"http": "http", "http2": "http2", "grpc": "grpc"}


def ref_target(value: Any) -> str | None:
    """The logical ID a ``Ref`` or ``Fn::GetAtt`` points at, else None."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return None
    if "Ref" in value and isinstance(value["Ref"], str):
        return value["Ref"]
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
        return attribute[0]
    if isinstance(attribute, str):
        return attribute.split(".", 1)[0]
    return None


class Resolver:
    """Builds the plan; one instance per expansion."""

    def __init__(
        self,
        section: model.Section,
        fragment: Mapping[str, Any],
        parameter_values: Mapping[str, Any],
        region: str,
        errors: ErrorCollector,
    ) -> None:
        self.section = section
        resources = fragment.get("Resources")
        self.resources: Mapping[str, Any] = resources if isinstance(resources, Mapping) else {}
        self.parameter_values = parameter_values
        self.region = region
        self.errors = errors
        self.warnings: list[str] = []
        self.app_mesh = section.backend == "AppMesh"
        """App Mesh patches the task definition and reads the service's Cloud Map registration; Service Connect not."""

    # -- template helpers -------------------------------------------------------------------------------

    def properties(self, logical_id: str) -> Mapping[str, Any]:
        resource = self.resources.get(logical_id)
        props = resource.get("Properties") if isinstance(resource, Mapping) else None
        return props if isinstance(props, Mapping) else {}

    def type_of(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        kind = resource.get("Type") if isinstance(resource, Mapping) else None
        return kind if isinstance(kind, str) else None

    def literal(self, value: Any) -> Any:
        """A ``Ref`` to a template parameter with a known value becomes that value."""
        name = value.get("Ref") if isinstance(value, Mapping) and len(value) == 1 else None
        if isinstance(name, str) and name in self.parameter_values:
            return self.parameter_values[name]
        return value

    def _check_type(self, path: str, logical_id: str, expected: str) -> bool:
        actual = self.type_of(logical_id)
        if logical_id not in self.resources:
            hint = did_you_mean(logical_id, [key for key in self.resources if self.type_of(key) == expected])
            self.errors.add(path, f"'{logical_id}' is not a logical ID in Resources; expected an {expected}.{hint}")
            return False
        if actual != expected:
            found = f"an {actual}" if actual else "a resource without a Type"
            self.errors.add(path, f"'{logical_id}' is {found}; expected an {expected}.")
            return False
        return True

    # -- the stages ---------------------------------------------------------------------------------------

    def resolve(self) -> Plan | None:
        namespace = self._namespace()
        nodes = self._nodes(namespace)
        routers = self._routers(nodes)
        services = self._services(namespace, nodes)
        if self.errors or namespace is None:
            return None
        edges = self._edges(nodes, routers)
        used = {service.router for service in self.section.services.values()}
        for name in routers:
            if name not in used:
                self.warnings.append(f"[Routers.{name}] no service uses this router: nothing can reach its routes.")
        return Plan(
            section=self.section,
            namespace=namespace,
            nodes=nodes,
            routers=routers,
            services=services,
            edges=edges,
            region=self.region,
            resources=self.resources,
            warnings=self.warnings,
        )

    def _namespace(self) -> Namespace | None:
        given = self.section.namespace
        if isinstance(given, model.NamespaceRef):
            return Namespace(id=given.id, name=given.name)
        if isinstance(given, str):
            if not self._check_type("Namespace", given, NAMESPACE_TYPE):
                return None
            return self._template_namespace(given)
        found = sorted(key for key in self.resources if self.type_of(key) == NAMESPACE_TYPE)
        if len(found) == 1:
            return self._template_namespace(found[0])
        if not found:
            self.errors.add(
                "Namespace",
                f"is required: Resources has no {NAMESPACE_TYPE}. Add one, or give {{Id, Name}} of one made elsewhere.",
            )
        else:
            self.errors.add(
                "Namespace", f"is required: Resources has several namespaces ({', '.join(found)}); name one."
            )
        return None

    def _template_namespace(self, logical_id: str) -> Namespace | None:
        name = self.literal(self.properties(logical_id).get("Name"))
        if not _is_value(name):
            self.errors.add("Namespace", f"namespace '{logical_id}' needs a Name: a string or an intrinsic function.")
            return None
        return Namespace(id={"Fn::GetAtt": [logical_id, "Id"]}, name=name, logical_id=logical_id)

    def _nodes(self, namespace: Namespace | None) -> dict[str, NodePlan]:
        plans: dict[str, NodePlan] = {}
        owners: dict[str, str] = {}
        for name, node in self.section.nodes.items():
            path = f"Nodes.{name}"
            if node.service is not None and node.hostname is None:
                plan = self._ecs_node(name, node, path, namespace, owners)
            elif node.hostname is not None and node.service is None:
                plan = NodePlan(
                    name=name,
                    stem=pascal(name),
                    node=node,
                    listeners=node.listeners or (),
                    security_groups=tuple(
                        self._dns_node_group(f"{path}.SecurityGroups[{i}]", group)
                        for i, group in enumerate(node.security_groups)
                    ),
                )
            else:
                continue
            if plan is not None:
                plans[name] = plan
        return plans

    def _dns_node_group(self, path: str, group: Value) -> Value:
        if isinstance(group, str):
            if self.type_of(group) == SECURITY_GROUP_TYPE:
                return {"Fn::GetAtt": [group, "GroupId"]}
            if group.startswith("sg-"):
                return group
            if group in self.resources:
                found = f"an {self.type_of(group)}" if self.type_of(group) else "a resource without a Type"
                self.errors.add(path, f"'{group}' is {found}; expected an {SECURITY_GROUP_TYPE}.")
            else:
                self.errors.add(path, f"'{group}' is neither a security group in Resources nor an sg- ID.")
        return group

    def _ecs_node(
        self, name: str, node: model.Node, path: str, namespace: Namespace | None, owners: dict[str, str]
    ) -> NodePlan | None:
        service_id = node.service
        assert service_id is not None
        if not self._check_type(f"{path}.Service", service_id, ECS_SERVICE_TYPE):
            return None
        if service_id in owners:
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' is already node '{owners[service_id]}'; a service is one node.",
            )
            return None
        owners[service_id] = name
        depends_on = self.resources[service_id].get("DependsOn")
        if not (depends_on is None or isinstance(depends_on, str) or _is_string_list(depends_on)):
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' has a DependsOn that is neither a logical ID nor a list of them.",
            )
            return None
        service = self.properties(service_id)
        task_id = ref_target(service.get("TaskDefinition"))
        if task_id is None or self.type_of(task_id) != TASK_DEFINITION_TYPE:
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' must name its task definition with !Ref to an {TASK_DEFINITION_TYPE} "
                "of this template, so that the macro can patch it.",
            )
            return None
        if task_id in owners:
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' is already used by node '{owners[task_id]}'; "
                "two nodes may not share one task definition.",
            )
            return None
        owners[task_id] = name
        conditional = [key for key in (service_id, task_id) if "Condition" in self.resources[key]]
        if conditional:
            self.errors.add(
                f"{path}.Service",
                f"'{conditional[0]}' has a Condition; the mesh cannot follow conditional resources yet. "
                "Make the node's ECS service and task definition unconditional, or leave the node out.",
            )
            return None
        task = self.properties(task_id)
        if self.literal(task.get("NetworkMode")) != "awsvpc":
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' must use NetworkMode: awsvpc (App Mesh and Service Connect need it), "
                f"not {task.get('NetworkMode', 'the default bridge')!r}.",
            )
            return None
        if self.app_mesh and "ProxyConfiguration" in task:
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' already has a ProxyConfiguration; the macro sets its own for envoy. "
                "Remove it (and its proxy container).",
            )
            return None
        container = self._container(name, node, path, task_id, task)
        if container is None:
            return None
        listeners = node.listeners if node.listeners is not None else self._derived_listeners(container)
        registry_id, cloud_map_name, namespace_name = self._registry(name, path, service_id, service, namespace)
        ecs = EcsTarget(
            service_id=service_id,
            task_definition_id=task_id,
            container_name=container["Name"],
            task_role=self._role(task.get("TaskRoleArn")),
            execution_role=self._role(task.get("ExecutionRoleArn")),
            registry_id=registry_id,
            cloud_map_name=cloud_map_name,
        )
        return NodePlan(
            name=name,
            stem=pascal(name),
            node=node,
            listeners=listeners,
            security_groups=self._service_groups(path, service_id, service),
            ecs=ecs,
            namespace_name=namespace_name,
        )

    def _container(
        self, name: str, node: model.Node, path: str, task_id: str, task: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        definitions = task.get("ContainerDefinitions")
        if not isinstance(definitions, list) or not all(
            isinstance(item, Mapping) and isinstance(item.get("Name"), str) for item in definitions
        ):
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' must list its ContainerDefinitions literally, each with a Name.",
            )
            return None
        names = [item["Name"] for item in definitions]
        malformed = [item["Name"] for item in definitions if not isinstance(item.get("DependsOn", []), list)]
        if malformed:
            self.errors.add(
                f"{path}.Service",
                f"container '{malformed[0]}' of task definition '{task_id}' has a DependsOn that is not a list.",
            )
            return None
        if self.app_mesh and "envoy" in names:
            self.errors.add(
                f"{path}.Service",
                f"task definition '{task_id}' already has a container named 'envoy'; the macro adds its own.",
            )
            return None
        if node.container is not None:
            if node.container not in names:
                self.errors.add(
                    f"{path}.Container",
                    f"'{node.container}' is not a container of task definition '{task_id}' ({', '.join(names)}).",
                )
                return None
            return definitions[names.index(node.container)]  # type: ignore[no-any-return]
        if len(definitions) != 1:
            self.errors.add(
                f"{path}.Container",
                f"is required: task definition '{task_id}' has {len(names)} containers ({', '.join(names)}).",
            )
            return None
        return definitions[0]  # type: ignore[no-any-return]

    def _derived_listeners(self, container: Mapping[str, Any]) -> tuple[model.Listener, ...]:
        listeners: list[model.Listener] = []
        for mapping in container.get("PortMappings") or ():
            if not isinstance(mapping, Mapping):
                continue
            port = self.literal(mapping.get("ContainerPort"))
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            if not isinstance(port, int) or str(mapping.get("Protocol", "tcp")).lower() != "tcp":
                continue
            protocol = _APP_PROTOCOLS.get(str(mapping.get("AppProtocol", "")).lower(), "tcp")
            if all(listener.port != port for listener in listeners):
                listeners.append(model.Listener(port=port, protocol=protocol))  # type: ignore[arg-type]
        return tuple(listeners)

    def _registry(
        self, name: str, path: str, service_id: str, service: Mapping[str, Any], namespace: Namespace | None
    ) -> tuple[str | None, Value, Value]:
        namespace_name = namespace.name if namespace else None
        registries = service.get("ServiceRegistries")
        if not registries or not self.app_mesh:  # Service Connect makes its own Cloud Map services
            return None, name, namespace_name
        first = registries[0] if isinstance(registries, list) and registries else None
        registry_id = ref_target(first.get("RegistryArn")) if isinstance(first, Mapping) else None
        if registry_id is None or self.type_of(registry_id) != CLOUD_MAP_SERVICE_TYPE:
            self.errors.add(
                f"{path}.Service",
                f"ECS service '{service_id}' registers with a Cloud Map service outside this template; "
                f"name an {CLOUD_MAP_SERVICE_TYPE} of this template in ServiceRegistries[0].RegistryArn "
                "(!GetAtt X.Arn), or remove ServiceRegistries and the macro makes one.",
            )
            return None, None, namespace_name
        own_namespace = ref_target(self.properties(registry_id).get("NamespaceId"))
        if own_namespace is not None and self.type_of(own_namespace) == NAMESPACE_TYPE:
            namespace_name = self.literal(self.properties(own_namespace).get("Name"))
            reported = namespace is None or own_namespace == namespace.logical_id  # [Namespace] says it already
            if not _is_value(namespace_name) and not reported:
                self.errors.add(
                    f"{path}.Service",
                    f"the namespace '{own_namespace}' of Cloud Map service '{registry_id}' needs a Name: a string "
                    "or an intrinsic function.",
                )
        return registry_id, {"Fn::GetAtt": [registry_id, "Name"]}, namespace_name

    def _role(self, value: Any) -> RoleRef:
        if value is None:
            return RoleRef(logical_id=None, create=True)
        target = ref_target(value)
        if target is not None and self.type_of(target) == ROLE_TYPE:
            return RoleRef(logical_id=target)
        return RoleRef(logical_id=None)

    def _service_groups(self, path: str, service_id: str, service: Mapping[str, Any]) -> tuple[Value, ...]:
        network = service.get("NetworkConfiguration")
        awsvpc = network.get("AwsvpcConfiguration") if isinstance(network, Mapping) else None
        groups = self.literal(awsvpc.get("SecurityGroups")) if isinstance(awsvpc, Mapping) else None
        if not isinstance(groups, list):
            if groups is not None:
                self.warnings.append(
                    f"[{path}.Service] the security groups of '{service_id}' are not a literal list; "
                    "no ingress rules are made for this node."
                )
            return ()
        normalized: list[Value] = []
        for group in groups:
            group = self.literal(group)
            if not _is_value(group):
                self.errors.add(
                    f"{path}.Service",
                    f"ECS service '{service_id}' lists a security group that is neither a string nor an intrinsic "
                    "function.",
                )
                continue
            target = ref_target(group)
            if target is not None and self.type_of(target) == SECURITY_GROUP_TYPE:
                group = {"Fn::GetAtt": [target, "GroupId"]}
            if group not in normalized:
                normalized.append(group)
        return tuple(normalized)

    def _routers(self, nodes: Mapping[str, NodePlan]) -> dict[str, RouterPlan]:
        plans: dict[str, RouterPlan] = {}
        for name, router in self.section.routers.items():
            path = f"Routers.{name}"
            listeners = router.listeners or self._derived_router_listeners(path, router, nodes)
            if not listeners:
                continue
            plan = RouterPlan(name=name, stem=pascal(name), router=router, listeners=listeners)
            self._check_routes(path, plan, nodes)
            plans[name] = plan
        return plans

    def _derived_router_listeners(
        self, path: str, router: model.Router, nodes: Mapping[str, NodePlan]
    ) -> tuple[model.RouterListener, ...]:
        shapes = set()
        for route in router.routes:
            for target in route.targets:
                if target not in nodes:
                    return ()
                shapes.add(tuple((item.port, item.protocol) for item in nodes[target].listeners))
        if len(shapes) == 1:
            (shape,) = shapes
            if len(shape) == 1:
                port, protocol = shape[0]
                return (model.RouterListener(port=port, protocol=protocol),)
        self.errors.add(
            f"{path}.Listeners",
            "is required: the route targets do not all have the same single listener to copy it from.",
        )
        return ()

    def _check_routes(self, path: str, router: RouterPlan, nodes: Mapping[str, NodePlan]) -> None:
        if router.router.listeners is None:  # given listeners: checked with the section already
            check_routes(path, router.name, router.listeners, router.router.routes, self.errors)
        protocol = router.protocol
        for index, route in enumerate(router.router.routes):
            route_path = f"{path}.Routes[{index}]"
            for target in route.targets:
                plan = nodes.get(target)
                if plan is not None and not any(item.protocol == protocol for item in plan.listeners):
                    have = ", ".join(sorted({item.protocol for item in plan.listeners})) or "none"
                    self.errors.add(
                        f"{route_path}.Targets.{target}",
                        f"node '{target}' has no {protocol} listener (its listener protocols: {have}); "
                        f"router '{router.name}' routes {protocol}.",
                    )

    def _services(self, namespace: Namespace | None, nodes: Mapping[str, NodePlan]) -> dict[str, ServicePlan]:
        if namespace is None:
            return {}
        answered = self._answered_names(namespace, nodes)
        plans: dict[str, ServicePlan] = {}
        seen: dict[str, str] = {}
        for name, service in self.section.services.items():
            path = f"Services.{name}"
            label = name
            dns_name: Value = join_dns(name, namespace.name)
            if service.dns_name is not None:
                if not isinstance(namespace.name, str):
                    self.errors.add(
                        f"{path}.DnsName",
                        "needs a namespace whose Name is a literal (or a parameter with a value) to place the name in.",
                    )
                    continue
                suffix = f".{namespace.name}"
                if not service.dns_name.endswith(suffix) or service.dns_name == suffix:
                    self.errors.add(
                        f"{path}.DnsName",
                        f"'{service.dns_name}' is outside the namespace {namespace.name}; "
                        f"Cloud Map can only answer names ending in {suffix}.",
                    )
                    continue
                label = service.dns_name[: -len(suffix)]
                dns_name = service.dns_name
            key = label.lower()
            if key in seen:
                self.errors.add(path, f"has the same DNS name as service '{seen[key]}'.")
                continue
            seen[key] = name
            plans[name] = ServicePlan(
                name=name,
                stem=pascal(name),
                service=service,
                dns_name=dns_name,
                cloud_map_label=label,
                needs_fake_instance=label.lower() not in answered,
            )
        return plans

    def _answered_names(self, namespace: Namespace, nodes: Mapping[str, NodePlan]) -> set[str]:
        """Names (first labels) that a real Cloud Map service in the namespace answers."""
        names: set[str] = set()
        for logical_id in self.resources:
            if self.type_of(logical_id) != CLOUD_MAP_SERVICE_TYPE:
                continue
            props = self.properties(logical_id)
            namespace_id = props.get("NamespaceId")
            in_namespace = (
                ref_target(namespace_id) == namespace.logical_id
                if namespace.logical_id
                else namespace_id == namespace.id
            )
            name = self.literal(props.get("Name"))
            if in_namespace and isinstance(name, str):
                names.add(name.lower())
        for plan in nodes.values():
            if plan.ecs is not None and plan.ecs.registry_id is None:
                names.add(plan.name.lower())
        return names

    def _edges(self, nodes: Mapping[str, NodePlan], routers: Mapping[str, RouterPlan]) -> tuple[Edge, ...]:
        edges: set[Edge] = set()
        for consumer in nodes.values():
            for service_name in consumer.node.backends:
                service = self.section.services[service_name]
                if service.node is not None:
                    provider = nodes[service.node]
                    edges.update(
                        Edge(consumer.name, provider.name, item.port, service_name) for item in provider.listeners
                    )
                    continue
                assert service.router is not None
                router = routers[service.router]
                for route in router.router.routes:
                    for target in route.targets:
                        edges.update(
                            Edge(consumer.name, target, item.port, service_name)
                            for item in nodes[target].listeners
                            if item.protocol == router.protocol
                        )
        return tuple(sorted(edges))


def _is_value(value: Any) -> bool:
    """A non-empty string or an intrinsic function: what a generated resource can take from the template."""
    return (isinstance(value, str) and bool(value)) or is_intrinsic(value)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
