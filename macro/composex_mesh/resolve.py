"""Resolve the parsed section against the template into a ``Plan``.

Answers, for every node: which ECS service, task definition, container, roles, security groups and Cloud Map
service; for every router: its listeners; for every service: its DNS name and whether anything real answers
it; and the edges (who may call whom, on which port). Every problem is collected with its path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from . import model
from .checks import check_routes
from .deploy_view import NO_VALUE, DeployView, Unknown, logical_id_of
from .deploy_view import is_intrinsic as _is_intrinsic
from .errors import ErrorCollector
from .fields import did_you_mean, indexed
from .parse import describe
from .plan import (
    EcsTarget,
    Edge,
    Namespace,
    NodePlan,
    Plan,
    PortMapping,
    RoleRef,
    RouterPlan,
    ServicePlan,
    Value,
    join_dns,
    pascal,
)

NAMESPACE_TYPE = "AWS::ServiceDiscovery::PrivateDnsNamespace"
HTTP_NAMESPACE_TYPE = "AWS::ServiceDiscovery::HttpNamespace"
CLOUD_MAP_SERVICE_TYPE = "AWS::ServiceDiscovery::Service"
ECS_SERVICE_TYPE = "AWS::ECS::Service"
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"
ROLE_TYPE = "AWS::IAM::Role"
SECURITY_GROUP_TYPE = "AWS::EC2::SecurityGroup"
_APP_PROTOCOLS = {"http": "http", "http2": "http2", "grpc": "grpc"}
_PORT_TEXT = re.compile(r"^[0-9]{1,5}$")

ref_target = logical_id_of
"""The logical ID a ``Ref`` or ``Fn::GetAtt`` points at (kept for the tests; see ``deploy_view``)."""


class Resolver:
    """Builds the plan; one instance per expansion. Every template value is read through ``view``."""

    def __init__(self, section: model.Section, view: DeployView, region: str, errors: ErrorCollector) -> None:
        self.section = section
        self.view = view
        self.resources: Mapping[str, Any] = view.resources
        self.region = region
        self.errors = errors
        self.warnings: list[str] = []
        self.app_mesh = section.backend == "AppMesh"
        """App Mesh patches the task definition and reads the service's Cloud Map registration; Service Connect not."""
        self.service_connect = section.backend == "ServiceConnect"
        """Service Connect also takes HttpNamespaces, bridge-mode tasks and client aliases outside the namespace."""
        self.omitted: dict[str, str] = {}
        """Nodes left out this deploy (their ECS service does not exist) -> why."""

    # -- template helpers -------------------------------------------------------------------------------

    def properties(self, logical_id: str) -> Mapping[str, Any]:
        return self.view.properties(logical_id)

    def type_of(self, logical_id: str) -> str | None:
        return self.view.type_of(logical_id)

    def _check_type(self, path: str, logical_id: str, expected: str) -> bool:
        absent = self.view.absent_reason(logical_id)
        if absent is not None:
            self.errors.add_check(
                path, f"'{logical_id}' {absent}: it does not exist. Make it unconditional, or name another."
            )
            return False
        actual = self.type_of(logical_id)
        if logical_id not in self.resources:
            hint = did_you_mean(logical_id, self.view.of_type(expected))
            self.errors.add_check(
                path, f"'{logical_id}' is not a logical ID in Resources; expected an {expected}.{hint}"
            )
            return False
        if actual != expected:
            found = f"an {actual}" if actual else "a resource without a Type"
            self.errors.add_check(path, f"'{logical_id}' is {found}; expected an {expected}.")
            return False
        return True

    # -- the stages ---------------------------------------------------------------------------------------

    def resolve(self) -> Plan | None:
        namespace = self._namespace()
        nodes = self._nodes(namespace)
        section = self._without_omitted()
        self.section = section
        nodes = {name: dataclasses.replace(plan, node=section.nodes[name]) for name, plan in nodes.items()}
        if self.app_mesh:
            nodes = self._discovery(nodes)
        routers = self._routers(nodes)
        cloud_map_names = self._cloud_map_names(namespace) if namespace is not None else {}
        services = self._services(namespace, nodes, cloud_map_names)
        if self.errors or namespace is None:
            return None
        edges = self._edges(nodes, routers)
        used = {service.router for service in section.services.values()}
        for name in routers:
            if name not in used:
                self.warnings.append(f"[Routers.{name}] no service uses this router: nothing can reach its routes.")
        return Plan(
            section=section,
            namespace=namespace,
            nodes=nodes,
            routers=routers,
            services=services,
            edges=edges,
            region=self.region,
            resources=self.resources,
            view=self.view,
            cloud_map_names=cloud_map_names,
            warnings=self.warnings,
        )

    def _namespace(self) -> Namespace | None:
        given = self.section.namespace
        if isinstance(given, model.NamespaceRef):
            return Namespace(id=self.view.deployed(given.id), name=given.name, arn=self.view.deployed(given.arn))
        if isinstance(given, str):
            if self.service_connect and self.type_of(given) == HTTP_NAMESPACE_TYPE:
                return self._template_namespace(given)
            if not self._check_type("Namespace", given, NAMESPACE_TYPE):
                return None
            return self._template_namespace(given)
        found = sorted(self.view.of_type(NAMESPACE_TYPE))
        if not found and self.service_connect:
            found = sorted(self.view.of_type(HTTP_NAMESPACE_TYPE))
        if len(found) == 1:
            return self._template_namespace(found[0])
        absent = sorted(
            key
            for key, resource in self.view.all_resources.items()
            if key not in self.resources and isinstance(resource, Mapping) and resource.get("Type") == NAMESPACE_TYPE
        )
        if not found:
            conditional = (
                f" ({', '.join(absent)} {'has a Condition that is' if len(absent) == 1 else 'have Conditions that are'}"
                " false in this deploy)"
                if absent
                else ""
            )
            self.errors.add_check(
                "Namespace",
                f"is required: Resources has no {NAMESPACE_TYPE}{conditional}. Add one, or give {{Id, Name}} of one "
                "made elsewhere.",
            )
        else:
            self.errors.add_check(
                "Namespace", f"is required: Resources has several namespaces ({', '.join(found)}); name one."
            )
        return None

    def _template_namespace(self, logical_id: str) -> Namespace | None:
        name = self._name_of(logical_id)
        if not _is_value(name):
            self.errors.add_check(
                "Namespace", f"namespace '{logical_id}' needs a Name: a string or an intrinsic function."
            )
            return None
        return Namespace(id={"Fn::GetAtt": [logical_id, "Id"]}, name=name, logical_id=logical_id)

    def _name_of(self, logical_id: str) -> Any:
        """A resource's Name: its literal value this deploy where known, else as written (passed on)."""
        written = self.properties(logical_id).get("Name")
        value = self.view.known(written)
        return written if isinstance(value, Unknown) else value

    def _nodes(self, namespace: Namespace | None) -> dict[str, NodePlan]:
        plans: dict[str, NodePlan] = {}
        owners: dict[str, str] = {}
        for name, node in self.section.nodes.items():
            path = f"Nodes.{name}"
            if node.service is not None and node.hostname is None:
                plan = self._ecs_node(name, node, path, namespace, owners)
            elif node.hostname is not None and node.service is None:
                groups = (
                    self._extra_group(f"{path}.SecurityGroups[{index}]", group)
                    for index, group in indexed(node.security_groups)
                )
                plan = NodePlan(
                    name=name,
                    stem=pascal(name),
                    node=node,
                    listeners=node.listeners or (),
                    security_groups=tuple(group for group in groups if group is not NO_VALUE),
                )
            else:
                continue
            if plan is not None:
                plans[name] = plan
        return plans

    def _extra_group(self, path: str, group: Value) -> Value:
        """A security group the section names (DNS nodes, External services): a logical ID, an sg- ID or an
        intrinsic; ``NO_VALUE`` when it does not exist this deploy (with a warning)."""
        group = self.view.deployed(group)
        if group is NO_VALUE:
            return NO_VALUE
        if isinstance(group, str):
            absent = self.view.absent_reason(group)
            if absent is not None:
                self.warnings.append(f"[{path}] security group '{group}' {absent}: no ingress rules are made to it.")
                return NO_VALUE
            if self.type_of(group) == SECURITY_GROUP_TYPE:
                return {"Fn::GetAtt": [group, "GroupId"]}
            if group.startswith("sg-"):
                return group
            if group in self.resources:
                found = f"an {self.type_of(group)}" if self.type_of(group) else "a resource without a Type"
                self.errors.add_check(path, f"'{group}' is {found}; expected an {SECURITY_GROUP_TYPE}.")
            else:
                self.errors.add_check(path, f"'{group}' is neither a security group in Resources nor an sg- ID.")
            return group
        return self._group_value(path, group)

    def _group_value(self, path: str, group: Value) -> Value:
        """An intrinsic naming a security group; one that points at a resource absent this deploy is an error."""
        target = logical_id_of(group)
        absent = self.view.absent_reason(target) if target is not None else None
        if target is not None and absent is not None:
            self.errors.add_check(
                path,
                f"names security group '{target}', which {absent}: guard it with the same Condition "
                f"(!If [{self._condition_of(target)}, !Ref {target}, !Ref AWS::NoValue]).",
            )
            return NO_VALUE
        if target is not None and self.type_of(target) == SECURITY_GROUP_TYPE:
            return {"Fn::GetAtt": [target, "GroupId"]}
        return group

    def _condition_of(self, logical_id: str) -> str:
        resource = self.view.all_resources.get(logical_id)
        return str(resource.get("Condition")) if isinstance(resource, Mapping) else ""

    def _ecs_node(
        self, name: str, node: model.Node, path: str, namespace: Namespace | None, owners: dict[str, str]
    ) -> NodePlan | None:
        service_id = node.service
        assert service_id is not None
        absent = self.view.absent_reason(service_id)
        if absent is not None:
            self.omitted[name] = f"its ECS service '{service_id}' {absent}"
            return None
        if not self._check_type(f"{path}.Service", service_id, ECS_SERVICE_TYPE):
            return None
        if service_id in owners:
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' is already node '{owners[service_id]}'; a service is one node.",
            )
            return None
        owners[service_id] = name
        depends_on = self.resources[service_id].get("DependsOn")
        if not (depends_on is None or isinstance(depends_on, str) or _is_string_list(depends_on)):
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' has a DependsOn that is neither a logical ID nor a list of them.",
            )
            return None
        service = self.properties(service_id)
        task_id = logical_id_of(service.get("TaskDefinition"))
        if task_id is not None and self.view.absent_reason(task_id) is not None:
            self.errors.add_check(
                f"{path}.Service",
                f"the task definition '{task_id}' of ECS service '{service_id}' {self.view.absent_reason(task_id)}, "
                "but the service exists: give both the same Condition.",
            )
            return None
        if task_id is None or self.type_of(task_id) != TASK_DEFINITION_TYPE:
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' must name its task definition with !Ref to an {TASK_DEFINITION_TYPE} "
                "of this template, so that the macro can patch it.",
            )
            return None
        if task_id in owners:
            self.errors.add_check(
                f"{path}.Service",
                f"task definition '{task_id}' is already used by node '{owners[task_id]}'; "
                "two nodes may not share one task definition.",
            )
            return None
        owners[task_id] = name
        if self.app_mesh and self._service_connect_enabled(service):
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' has Service Connect turned on (ServiceConnectConfiguration); an ECS "
                "service cannot be in a mesh and a Service Connect namespace at once. Remove its "
                "ServiceConnectConfiguration (or set Enabled: false), or use Backend: ServiceConnect.",
            )
            return None
        task = self.properties(task_id)
        task_path = f"Resources.{task_id}.Properties"
        network_mode = self.view.require(
            task.get("NetworkMode"), f"{task_path}.NetworkMode", "NetworkMode", "write awsvpc, or !Ref a parameter"
        )
        if "NetworkMode" in task and network_mode is None:
            return None
        network_mode = "bridge" if "NetworkMode" not in task else network_mode
        if network_mode != "awsvpc" and not (self.service_connect and network_mode == "bridge"):
            shown = repr(network_mode) if not _is_intrinsic(task.get("NetworkMode")) else "its parameter's value"
            needs = "Service Connect needs awsvpc or bridge" if self.service_connect else "App Mesh needs it"
            self.errors.add_check(
                f"{path}.Service",
                f"task definition '{task_id}' must use NetworkMode: awsvpc ({needs}), "
                f"not {shown if 'NetworkMode' in task else repr('the default bridge')}.",
            )
            return None
        if self.app_mesh and "ProxyConfiguration" in task:
            self.errors.add_check(
                f"{path}.Service",
                f"task definition '{task_id}' already has a ProxyConfiguration; the macro sets its own for envoy. "
                "Remove it (and its proxy container).",
            )
            return None
        found = self._container(node, path, task_id)
        if found is None:
            return None
        index, container_name, container = found
        mappings = self._port_mappings(f"{task_path}.ContainerDefinitions[{index}]", container)
        if mappings is None:
            return None
        listeners = node.listeners if node.listeners is not None else _derived_listeners(mappings)
        registry_id, cloud_map_name, namespace_name = self._registry(name, path, service_id, service, namespace)
        family = self.view.known(task.get("Family"))
        ecs = EcsTarget(
            service_id=service_id,
            task_definition_id=task_id,
            container_name=container_name,
            container_index=index,
            task_role=self._role(task.get("TaskRoleArn")),
            execution_role=self._role(task.get("ExecutionRoleArn")),
            registry_id=registry_id,
            cloud_map_name=cloud_map_name,
            port_mappings=mappings,
            family=family if isinstance(family, str) else None,
            network_mode=str(network_mode),
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

    def _service_connect_enabled(self, service: Mapping[str, Any]) -> bool:
        config = service.get("ServiceConnectConfiguration")
        if config is None:
            return False
        enabled = self.view.known(config.get("Enabled")) if isinstance(config, Mapping) else True
        return not (enabled is False or (isinstance(enabled, str) and enabled.lower() == "false"))

    def _container(self, node: model.Node, path: str, task_id: str) -> tuple[int, str, Mapping[str, Any]] | None:
        """The node's application container: (its index as written, its Name, the container as deployed)."""
        definitions_path = f"Resources.{task_id}.Properties.ContainerDefinitions"
        properties = self.view.raw_at(self.resources[task_id].get("Properties"), ())
        written = properties.get("ContainerDefinitions") if isinstance(properties, Mapping) else None
        written = self.view.raw_at(written, ()) if written is not None else None
        if written is None:
            self.errors.add_check(
                f"Resources.{task_id}.Properties" if isinstance(properties, Mapping) else f"Resources.{task_id}",
                "needs ContainerDefinitions: a list of container definitions, one of them the node's application.",
            )
            return None
        if not isinstance(written, list):
            self.errors.add_check(
                definitions_path,
                f"must be a list of container definitions, not {describe(written)}; Fn::If on its items is fine.",
            )
            return None
        containers: list[tuple[int, str, Mapping[str, Any]]] = []
        for index, item in self.view.items(written):
            item_path = f"{definitions_path}[{index}]"
            if not isinstance(item, Mapping) or _is_intrinsic(item):
                self.errors.add_check(item_path, f"must be a container definition (a mapping), not {describe(item)}.")
                return None
            if item.get("Name") is None:  # absent, null, or AWS::NoValue this deploy
                self.errors.add_check(item_path, "needs a Name: every container of a task has one.")
                return None
            container_name = self.view.require(
                item.get("Name"), f"{item_path}.Name", "the container's Name", "write it, or !Ref a parameter"
            )
            if not isinstance(container_name, str) or not container_name:
                if container_name is not None:
                    self.errors.add_check(f"{item_path}.Name", "must be a non-empty string.")
                return None
            if not isinstance(item.get("DependsOn", []), list):
                self.errors.add_check(
                    f"{path}.Service",
                    f"container '{container_name}' of task definition '{task_id}' has a DependsOn that is not a list.",
                )
                return None
            containers.append((index, container_name, item))
        names = [container_name for _, container_name, _ in containers]
        if self.app_mesh and "envoy" in names:
            self.errors.add_check(
                f"{path}.Service",
                f"task definition '{task_id}' already has a container named 'envoy'; the macro adds its own.",
            )
            return None
        if node.container is not None:
            if node.container not in names:
                self.errors.add_check(
                    f"{path}.Container",
                    f"'{node.container}' is not a container of task definition '{task_id}' in this deploy "
                    f"({', '.join(names) or 'none'}).",
                )
                return None
            return containers[names.index(node.container)]
        if len(containers) != 1:
            self.errors.add_check(
                f"{path}.Container",
                f"is required: task definition '{task_id}' has {len(names)} containers ({', '.join(names)}).",
            )
            return None
        return containers[0]

    def _port_mappings(self, container_path: str, container: Mapping[str, Any]) -> tuple[PortMapping, ...] | None:
        """The container's port mappings as deployed; a value ECS would refuse is an error at its path."""
        if "PortMappings" not in container:
            return ()
        path = f"{container_path}.PortMappings"
        written = container["PortMappings"]
        value = self.view.known(written) if _is_intrinsic(written) else written
        if not isinstance(value, list) or _is_intrinsic(written):
            shown = "a value that is not a list" if _is_intrinsic(written) else describe(written)
            self.errors.add_check(
                path,
                f"must be a list of port mappings ({{ContainerPort: 8080}}), not {shown}: write the list itself "
                "(Fn::If on the list or on its items is fine).",
            )
            return None
        mappings: list[PortMapping] = []
        failed = False
        for index, item in self.view.items(written):
            item_path = f"{path}[{index}]"
            if not isinstance(item, Mapping) or _is_intrinsic(item):
                self.errors.add_check(
                    item_path, f"must be a port mapping ({{ContainerPort: 8080}}), not {describe(item)}."
                )
                failed = True
                continue
            if "ContainerPort" not in item:
                continue  # a ContainerPortRange, for instance: not a port the mesh listens on
            port = self._container_port(f"{item_path}.ContainerPort", item["ContainerPort"])
            if port is None:
                failed = True
                continue
            protocol = self.view.known(item.get("Protocol", "tcp"))
            app_protocol = self.view.known(item.get("AppProtocol"))
            mappings.append(
                PortMapping(
                    index=index,
                    port=port,
                    protocol=protocol.lower() if isinstance(protocol, str) else "tcp",
                    app_protocol=app_protocol.lower() if isinstance(app_protocol, str) else None,
                    name=item.get("Name"),
                )
            )
        return None if failed else tuple(mappings)

    def _container_port(self, path: str, written: Any) -> int | None:
        value = self.view.require(written, path, "ContainerPort", "write the port number, or !Ref a parameter")
        if value is None:
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _PORT_TEXT.match(value):
            number = int(value)
        if number is None or not 1 <= number <= 65535:
            shown = "the value of its parameter" if _is_intrinsic(written) else describe(written)
            self.errors.add_check(path, f"must be a port number from 1 to 65535, not {shown}.")
            return None
        return number

    def _registry(
        self, name: str, path: str, service_id: str, service: Mapping[str, Any], namespace: Namespace | None
    ) -> tuple[str | None, Value, Value]:
        namespace_name = namespace.name if namespace else None
        registries = service.get("ServiceRegistries")
        if self.app_mesh and registries is not None and not isinstance(registries, list):
            self.errors.add_check(
                f"Resources.{service_id}.Properties.ServiceRegistries",
                f"must be a list of registries ([{{RegistryArn: !GetAtt X.Arn}}]), not {describe(registries)}; "
                "or leave it out and the macro makes one.",
            )
            return None, None, namespace_name
        if not registries or not self.app_mesh:  # Service Connect makes its own Cloud Map services
            return None, name, namespace_name
        first = registries[0] if isinstance(registries, list) and registries else None
        registry_id = logical_id_of(first.get("RegistryArn")) if isinstance(first, Mapping) else None
        absent = self.view.absent_reason(registry_id) if registry_id is not None else None
        if absent is not None:
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' registers with Cloud Map service '{registry_id}', which {absent}: "
                "give the ServiceRegistries entry the same Condition (!If [..., ..., !Ref AWS::NoValue]).",
            )
            return None, None, namespace_name
        if registry_id is None or self.type_of(registry_id) != CLOUD_MAP_SERVICE_TYPE:
            self.errors.add_check(
                f"{path}.Service",
                f"ECS service '{service_id}' registers with a Cloud Map service outside this template; "
                f"name an {CLOUD_MAP_SERVICE_TYPE} of this template in ServiceRegistries[0].RegistryArn "
                "(!GetAtt X.Arn), or remove ServiceRegistries and the macro makes one.",
            )
            return None, None, namespace_name
        own_namespace = logical_id_of(_cloud_map_namespace(self.properties(registry_id)))
        if own_namespace is not None and self.type_of(own_namespace) == NAMESPACE_TYPE:
            namespace_name = self._name_of(own_namespace)
            reported = namespace is None or own_namespace == namespace.logical_id  # [Namespace] says it already
            if not _is_value(namespace_name) and not reported:
                self.errors.add_check(
                    f"{path}.Service",
                    f"the namespace '{own_namespace}' of Cloud Map service '{registry_id}' needs a Name: a string "
                    "or an intrinsic function.",
                )
        cloud_map_name: Value = {"Fn::GetAtt": [registry_id, "Name"]}
        name = self.view.known(self.properties(registry_id).get("Name"))
        if "Condition" in self.resources[registry_id] and isinstance(name, str):
            cloud_map_name = name  # no reference to a resource that exists only under a condition
        return registry_id, cloud_map_name, namespace_name

    def _role(self, value: Any) -> RoleRef:
        if value is None:  # absent, or an Fn::If whose taken branch is AWS::NoValue
            return RoleRef(logical_id=None, create=True)
        target = logical_id_of(value)
        if target is not None and self.type_of(target) == ROLE_TYPE:
            return RoleRef(logical_id=target)
        return RoleRef(logical_id=None)

    def _service_groups(self, path: str, service_id: str, service: Mapping[str, Any]) -> tuple[Value, ...]:
        network = service.get("NetworkConfiguration")
        awsvpc = network.get("AwsvpcConfiguration") if isinstance(network, Mapping) else None
        groups = awsvpc.get("SecurityGroups") if isinstance(awsvpc, Mapping) else None
        if _is_intrinsic(groups):  # a List<AWS::EC2::SecurityGroup::Id> parameter, say
            known = self.view.known(groups)
            groups = known if isinstance(known, list) else groups
        if not isinstance(groups, list):
            if groups is not None:
                self.warnings.append(
                    f"[{path}.Service] the security groups of '{service_id}' are not a list the macro can read "
                    "(a list, or a parameter with a value); no ingress rules are made for this node."
                )
            return ()
        normalized: list[Value] = []
        seen: set[Any] = set()  # identities (``view.same``), so that a long list is deduplicated in linear time
        for index, group in enumerate(groups):
            if not _is_value(group):
                self.errors.add_check(
                    f"{path}.Service",
                    f"ECS service '{service_id}' lists a security group that is neither a string nor an intrinsic "
                    "function.",
                )
                continue
            group = self._group_value(
                f"Resources.{service_id}.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[{index}]",
                group,
            )
            if group is not NO_VALUE and self.view.identity(group) not in seen:
                seen.add(self.view.identity(group))
                normalized.append(group)
        return tuple(normalized)

    # -- conditional nodes ------------------------------------------------------------------------------

    def _without_omitted(self) -> model.Section:
        """The section without the nodes whose ECS service does not exist, nor what needs them (SPEC §7)."""
        if not self.omitted:
            return self.section
        section = self.section
        services = {
            name: service
            for name, service in section.services.items()
            if service.node is None or service.node not in self.omitted
        }
        gone_services = sorted(set(section.services) - set(services))
        routers: dict[str, model.Router] = {}
        for router_name, router in section.routers.items():
            routes = []
            for index, route in indexed(router.routes):
                targets = {node: weight for node, weight in route.targets.items() if node not in self.omitted}
                if targets != route.targets and not any(weight > 0 for weight in targets.values()):
                    left_out = "; ".join(
                        f"node {node} is left out ({self.omitted[node]})"
                        for node in sorted(set(route.targets) - set(targets))
                    )
                    self.errors.add_check(
                        f"Routers.{router_name}.Routes[{index}].Targets",
                        f"has no target above weight 0 in this deploy: {left_out}. Give weight to a node that exists "
                        "this deploy, or give the router's consumers the same Condition.",
                    )
                routes.append(dataclasses.replace(route, targets=targets))
            routers[router_name] = dataclasses.replace(router, routes=tuple(routes))
        nodes = {}
        for node_name, node in section.nodes.items():
            if node_name in self.omitted:
                continue
            backends = tuple(backend for backend in node.backends if backend not in gone_services)
            nodes[node_name] = dataclasses.replace(node, backends=backends) if backends != node.backends else node
        for node_name, reason in self.omitted.items():
            provided = [name for name in gone_services if section.services[name].node == node_name]
            targeted = sorted(
                f"Routers.{router_name}.Routes[{index}]"
                for router_name, router in section.routers.items()
                for index, route in indexed(router.routes)
                if node_name in route.targets
            )
            consumers = sorted(
                other
                for other, node in section.nodes.items()
                if other != node_name and set(node.backends) & set(provided)
            )
            also = [
                *(f"service {name}" for name in provided),
                *(f"the target of {where}" for where in targeted),
                *(f"the backend of node {name}" for name in consumers),
            ]
            self.warnings.append(
                f"[Nodes.{node_name}] left out of this deploy: {reason}."
                + (f" Left out with it: {', '.join(also)}." if also else "")
            )
        return dataclasses.replace(section, nodes=nodes, routers=routers, services=services)

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

    def _listeners_broken(self, node: str) -> bool:
        """True when the node's Listeners failed to parse: what is derived from them is not reported."""
        prefix = f"Nodes.{node}.Listeners"
        return any(path == prefix or path.startswith((f"{prefix}[", f"{prefix}.")) for path in self.errors.tainted)

    def _derived_router_listeners(
        self, path: str, router: model.Router, nodes: Mapping[str, NodePlan]
    ) -> tuple[model.RouterListener, ...]:
        shapes = set()
        for route in router.routes:
            for target in route.targets:
                if target not in nodes or self._listeners_broken(target):
                    return ()
                shapes.add(tuple((item.port, item.protocol) for item in nodes[target].listeners))
        if len(shapes) == 1:
            (shape,) = shapes
            if len(shape) == 1:
                port, protocol = shape[0]
                return (model.RouterListener(port=port, protocol=protocol),)
        self.errors.add_check(
            f"{path}.Listeners",
            "is required: the route targets do not all have the same single listener to copy it from.",
        )
        return ()

    def _check_routes(self, path: str, router: RouterPlan, nodes: Mapping[str, NodePlan]) -> None:
        if router.router.listeners is None:  # given listeners: checked with the section already
            check_routes(path, router.name, router.listeners, router.router.routes, self.errors)
        protocol = router.protocol
        for index, route in indexed(router.router.routes):
            route_path = f"{path}.Routes[{index}]"
            for target in route.targets:
                plan = nodes.get(target)
                if self._listeners_broken(target):
                    continue
                if plan is not None and not any(item.protocol == protocol for item in plan.listeners):
                    have = ", ".join(sorted({item.protocol for item in plan.listeners})) or "none"
                    self.errors.add_check(
                        f"{route_path}.Targets.{target}",
                        f"node '{target}' has no {protocol} listener (its listener protocols: {have}); "
                        f"router '{router.name}' routes {protocol}.",
                    )

    def _services(
        self, namespace: Namespace | None, nodes: Mapping[str, NodePlan], cloud_map_names: Mapping[str, str]
    ) -> dict[str, ServicePlan]:
        if namespace is None:
            return {}
        answered = set(cloud_map_names) | {
            plan.name.lower() for plan in nodes.values() if plan.ecs is not None and plan.ecs.registry_id is None
        }
        plans: dict[str, ServicePlan] = {}
        seen: dict[str, str] = {}
        for name, service in self.section.services.items():
            path = f"Services.{name}"
            if service.external is not None:
                plans[name] = self._external(name, path, service, service.external)
                continue
            label = name
            dns_name: Value = join_dns(name, namespace.name)
            if service.dns_name is not None:
                if not isinstance(namespace.name, str):
                    self.errors.add_check(
                        f"{path}.DnsName",
                        "needs a namespace whose Name is a literal (or a parameter with a value) to place the name in.",
                    )
                    continue
                suffix = f".{namespace.name}"
                inside = service.dns_name.endswith(suffix) and service.dns_name != suffix
                if not inside and not self.service_connect:  # a Service Connect alias need not lie in it
                    self.errors.add_check(
                        f"{path}.DnsName",
                        f"'{service.dns_name}' is outside the namespace {namespace.name}; "
                        f"Cloud Map can only answer names ending in {suffix}.",
                    )
                    continue
                label = service.dns_name[: -len(suffix)] if inside else service.dns_name.split(".", 1)[0]
                dns_name = service.dns_name
            key = dns_name.lower() if self.service_connect and isinstance(dns_name, str) else label.lower()
            if key in seen:
                self.errors.add_check(path, f"has the same DNS name as service '{seen[key]}'.")
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

    def _external(self, name: str, path: str, service: model.Service, external: model.ExternalService) -> ServicePlan:
        """A service another stack runs: consumers call its DnsName; its security groups let them in."""
        groups = (
            self._extra_group(f"{path}.External.SecurityGroups[{index}]", group)
            for index, group in indexed(external.security_groups)
        )
        return ServicePlan(
            name=name,
            stem=pascal(name),
            service=service,
            dns_name=external.dns_name,
            cloud_map_label=external.dns_name.split(".", 1)[0].lower(),
            needs_fake_instance=False,
            security_groups=tuple(group for group in groups if group is not NO_VALUE),
        )

    def _discovery(self, nodes: dict[str, NodePlan]) -> dict[str, NodePlan]:
        """App Mesh: nodes that register with one Cloud Map service (versions of one app) each filter discovery by
        ECS_TASK_DEFINITION_FAMILY = their task definition's Family, so that a route's weights hold; a node's
        CloudMapAttributes replaces that filter (SPEC §3)."""
        sharing: dict[str, list[str]] = {}
        for plan in nodes.values():
            if plan.ecs is not None and plan.ecs.registry_id is not None:
                sharing.setdefault(plan.ecs.registry_id, []).append(plan.name)
        updated = dict(nodes)
        for name, plan in nodes.items():
            ecs = plan.ecs
            if ecs is None:
                continue
            attributes: tuple[tuple[str, Value], ...] = tuple(plan.node.cloud_map_attributes.items())
            others = [other for other in sharing.get(ecs.registry_id or "", []) if other != name]
            if not attributes and others:
                if ecs.family is None:
                    self.errors.add_check(
                        f"Nodes.{name}.Service",
                        f"registers with Cloud Map service '{ecs.registry_id}' like node(s) {', '.join(others)}: "
                        "each must filter discovery by ECS_TASK_DEFINITION_FAMILY, but task definition "
                        f"'{ecs.task_definition_id}' has no Family the macro can know. Give it a Family (a string or "
                        "a parameter), or give the node CloudMapAttributes.",
                    )
                    continue
                attributes = (("ECS_TASK_DEFINITION_FAMILY", ecs.family),)
            if attributes:
                updated[name] = dataclasses.replace(plan, ecs=dataclasses.replace(ecs, discovery_attributes=attributes))
        return updated

    def _cloud_map_names(self, namespace: Namespace) -> dict[str, str]:
        """Lowercased names of the template's Cloud Map services in the namespace -> their logical IDs.

        A Cloud Map service is in the namespace when its ``NamespaceId`` or ``DnsConfig.NamespaceId`` names it
        (``Ref``, ``Fn::GetAtt .Id``, or the same value as the ``Id`` of ``{Id, Name}``); its ``Name`` may come
        from a parameter.
        """
        names: dict[str, str] = {}
        if namespace.logical_id is None and namespace.id is None:  # {Arn, Name}: no Id to compare with
            return names
        expected = ("resource", namespace.logical_id) if namespace.logical_id else self.view.identity(namespace.id)
        for logical_id in self.view.of_type(CLOUD_MAP_SERVICE_TYPE):
            props = self.properties(logical_id)
            name = self.view.known(props.get("Name"))
            if isinstance(name, str) and self.view.identity(_cloud_map_namespace(props)) == expected:
                names.setdefault(name.lower(), logical_id)
        return names

    def _edges(self, nodes: Mapping[str, NodePlan], routers: Mapping[str, RouterPlan]) -> tuple[Edge, ...]:
        edges: set[Edge] = set()
        for consumer in nodes.values():
            for service_name in consumer.node.backends:
                service = self.section.services[service_name]
                if service.external is not None:
                    edges.add(Edge(consumer.name, service_name, service.external.port, service_name, external=True))
                    continue
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
    return (isinstance(value, str) and bool(value)) or _is_intrinsic(value)


def _cloud_map_namespace(props: Mapping[str, Any]) -> Any:
    """The namespace a Cloud Map service names: its ``NamespaceId``, else its ``DnsConfig.NamespaceId``."""
    if "NamespaceId" in props:
        return props["NamespaceId"]
    dns = props.get("DnsConfig")
    return dns.get("NamespaceId") if isinstance(dns, Mapping) else None


def _derived_listeners(mappings: tuple[PortMapping, ...]) -> tuple[model.Listener, ...]:
    """One listener per tcp port mapping: its AppProtocol (http, http2, grpc), else tcp."""
    listeners: list[model.Listener] = []
    seen: set[int] = set()  # a set: scanning the list made 6,000 ports take seconds
    for mapping in mappings:
        if mapping.protocol != "tcp":
            continue
        protocol = _APP_PROTOCOLS.get(mapping.app_protocol or "", "tcp")
        if mapping.port not in seen:
            seen.add(mapping.port)
            listeners.append(model.Listener(port=mapping.port, protocol=protocol))  # type: ignore[arg-type]
    return tuple(listeners)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
