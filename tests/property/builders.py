"""Plain (non-Hypothesis) builders of realistic templates carrying a ``Composex::AppMesh`` section.

``TemplateBuilder`` assembles a template the way users write them (JSON long form, as a macro receives it):
ECS nodes (an ``awsvpc`` Fargate task definition, an ECS service, a security group, optionally a task role and
a Cloud Map service), DNS nodes (an RDS instance or any hostname), routers, services and backends. Every choice
a user has is a keyword argument, so the Hypothesis strategies (``strategies.py``) draw them and the quota and
security tests call the builder directly.

User logical IDs end in ``Svc``, ``Td``, ``Sg``, ``Tr``, ``Disc``, ``Db``, ``Xr`` and ``Ns``: suffixes the macro
never generates, so a generated ID can never collide with them.
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

SECTION = "Composex::AppMesh"
VPC_ID = "vpc-0a1b2c3d4e5f67890"
SUBNETS = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]

RefForm = Literal["list", "string"]
"""``Fn::GetAtt`` forms: ``["A", "B"]`` or ``"A.B"`` (both arrive in a macro's JSON fragment)."""


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(logical_id: str, attribute: str, form: RefForm = "list") -> dict[str, Any]:
    if form == "string":
        return {"Fn::GetAtt": f"{logical_id}.{attribute}"}
    return {"Fn::GetAtt": [logical_id, attribute]}


def literal_group(stem: str, index: int) -> str:
    """A security group ID of a group made elsewhere (``sg-`` and 17 hex digits), stable across runs."""
    return f"sg-{zlib.crc32(stem.encode()):08x}{index:09x}"


def assume_role() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


@dataclass
class Port:
    """A port of the app container; ``listener`` decides whether the node writes it under ``Listeners``."""

    port: int
    protocol: str  # http | http2 | grpc | tcp
    app_protocol: bool = True
    """Write ``AppProtocol`` on the port mapping (always for derived listeners of http/http2/grpc)."""
    mapping_name: str | None = None


@dataclass
class TemplateBuilder:
    """Accumulates a template; ``event()`` wraps it as a CloudFormation macro event."""

    namespace_name: str = "corp.internal"
    namespace: Literal["implicit", "logical-id", "external", "parameter-name"] = "implicit"
    backend: Literal["default", "AppMesh", "ServiceConnect", "param"] = "default"
    region: str = "us-east-1"
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_values: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    section: dict[str, Any] = field(default_factory=dict)
    extra_top_level: dict[str, Any] = field(default_factory=dict)
    shared_execution_role: bool = False
    log_group: bool = False
    cluster: bool = False

    def __post_init__(self) -> None:
        self.add_parameter("VpcId", {"Type": "AWS::EC2::VPC::Id"}, VPC_ID)
        self.add_parameter("SubnetIds", {"Type": "List<AWS::EC2::Subnet::Id>"}, list(SUBNETS))
        self.resources["ClusterXr"] = {"Type": "AWS::ECS::Cluster", "Properties": {}}
        ns_name: Any = self.namespace_name
        if self.namespace == "parameter-name":
            self.add_parameter("NamespaceName", {"Type": "String", "Default": self.namespace_name}, self.namespace_name)
            ns_name = ref("NamespaceName")
        if self.namespace != "external":
            self.resources["MeshNs"] = {
                "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                "Properties": {"Name": ns_name, "Vpc": ref("VpcId")},
            }
        if self.namespace == "logical-id":
            self.section["Namespace"] = "MeshNs"
        elif self.namespace == "external":
            self.section["Namespace"] = {"Id": "ns-abcdef0123456789", "Name": self.namespace_name}
        if self.backend in ("AppMesh", "ServiceConnect"):
            self.section["Backend"] = self.backend

    # -- plumbing -------------------------------------------------------------------------------------

    def add_parameter(self, name: str, definition: dict[str, Any], value: Any) -> None:
        self.parameters[name] = definition
        self.parameter_values[name] = value

    def _execution_role(self, form: str) -> Any:
        if form == "none":
            return None
        if form == "external":
            return "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
        if not self.shared_execution_role:
            self.shared_execution_role = True
            self.resources["ExecutionXr"] = {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": assume_role(),
                    "ManagedPolicyArns": [
                        {
                            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                            "AmazonECSTaskExecutionRolePolicy"
                        }
                    ],
                },
            }
        return get_att("ExecutionXr", "Arn", "string" if form == "string" else "list")

    def _log_configuration(self, prefix: str) -> dict[str, Any]:
        if not self.log_group:
            self.log_group = True
            self.resources["LogsXr"] = {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}}
        return {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref("LogsXr"),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": prefix,
            },
        }

    def _section_map(self, key: str) -> dict[str, Any]:
        value = self.section.setdefault(key, {})
        assert isinstance(value, dict)
        return value

    # -- nodes ----------------------------------------------------------------------------------------

    def add_ecs_node(
        self,
        name: str,
        stem: str,
        ports: list[Port],
        *,
        explicit_listeners: list[dict[str, Any]] | None = None,
        sidecars: int = 0,
        name_container: bool = False,
        task_role: str = "list",  # list | string | none | external
        execution_role: str = "list",  # list | string | none | external
        security_groups: tuple[str, ...] = ("list",),  # list | string | ref | literal | parameter
        registry: str | None = "list",  # list | string | None
        discovery_name: str | None = None,
        log: bool = True,
        network_mode: str = "literal",  # literal | parameter
        backends: list[str] | None = None,
        marker: str = "",
        service_depends_on: str | None = None,  # None | string | list
        container_depends_on: bool = False,
    ) -> dict[str, Any]:
        """An ECS node and its resources; returns the node's section entry (to add Backends to later)."""
        app_name = "app"
        mappings = []
        for item in ports:
            mapping: dict[str, Any] = {"ContainerPort": item.port, "Protocol": "tcp"}
            if item.mapping_name is not None:
                mapping["Name"] = item.mapping_name
            if item.app_protocol and item.protocol != "tcp":
                mapping["AppProtocol"] = item.protocol
            mappings.append(mapping)
        app: dict[str, Any] = {
            "Name": app_name,
            "Image": f"public.ecr.aws/example/{name.lower()}:1.0{marker}",
            "Essential": True,
            "Environment": [{"Name": "NODE_SECRET", "Value": f"value-of-{stem}{marker}"}],
        }
        if mappings:
            app["PortMappings"] = mappings
        if log:
            app["LogConfiguration"] = self._log_configuration(name)
        containers = [app]
        for index in range(sidecars):
            sidecar: dict[str, Any] = {
                "Name": f"sidecar{index}",
                "Image": f"public.ecr.aws/example/sidecar:{index}{marker}",
                "Essential": False,
            }
            if log:
                sidecar["LogConfiguration"] = self._log_configuration(f"{name}-sidecar{index}")
            containers.append(sidecar)
            if container_depends_on:  # the app starts after its sidecars, as users write it
                app.setdefault("DependsOn", []).append({"ContainerName": sidecar["Name"], "Condition": "START"})
        task: dict[str, Any] = {
            "Family": f"{stem.lower()}-family",
            "Cpu": "256",
            "Memory": "512",
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "ContainerDefinitions": containers,
        }
        if network_mode == "parameter":
            if "NetworkMode" not in self.parameters:
                self.add_parameter("NetworkMode", {"Type": "String", "Default": "awsvpc"}, "awsvpc")
            task["NetworkMode"] = ref("NetworkMode")
        execution = self._execution_role(execution_role)
        if execution is not None:
            task["ExecutionRoleArn"] = execution
        if task_role in ("list", "string"):
            self.resources[f"{stem}Tr"] = {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": assume_role()},
            }
            task["TaskRoleArn"] = get_att(f"{stem}Tr", "Arn", "string" if task_role == "string" else "list")
        elif task_role == "external":
            task["TaskRoleArn"] = "arn:aws:iam::123456789012:role/existing-task-role"
        self.resources[f"{stem}Td"] = {"Type": "AWS::ECS::TaskDefinition", "Properties": task}

        groups: list[Any] = []
        for index, form in enumerate(security_groups):
            group_id = f"{stem}Sg" if index == 0 else f"{stem}Sg{index}"
            if form in ("list", "string", "ref"):
                self.resources[group_id] = {
                    "Type": "AWS::EC2::SecurityGroup",
                    "Properties": {"GroupDescription": f"{name} tasks{marker}", "VpcId": ref("VpcId")},
                }
                groups.append(
                    ref(group_id) if form == "ref" else get_att(group_id, "GroupId", form)  # type: ignore[arg-type]
                )
            elif form == "literal":
                groups.append(literal_group(stem, index))
        service: dict[str, Any] = {
            "Cluster": ref("ClusterXr"),
            "TaskDefinition": ref(f"{stem}Td"),
            "LaunchType": "FARGATE",
            "DesiredCount": 1,
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {"AssignPublicIp": "DISABLED", "Subnets": ref("SubnetIds")},
            },
        }
        awsvpc = service["NetworkConfiguration"]["AwsvpcConfiguration"]
        if "parameter" in security_groups:
            parameter = f"{stem}SecurityGroupIds"
            self.add_parameter(parameter, {"Type": "List<AWS::EC2::SecurityGroup::Id>"}, ["sg-0aaa1111bbbb2222c"])
            awsvpc["SecurityGroups"] = ref(parameter)
        elif groups:
            awsvpc["SecurityGroups"] = groups
        if registry is not None:
            self.resources[f"{stem}Disc"] = {
                "Type": "AWS::ServiceDiscovery::Service",
                "Properties": {
                    "Name": discovery_name or name.lower(),
                    "NamespaceId": ref("MeshNs") if self.namespace != "external" else self.section["Namespace"]["Id"],
                    "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}], "RoutingPolicy": "MULTIVALUE"},
                    "HealthCheckCustomConfig": {"FailureThreshold": 1},
                },
            }
            service["ServiceRegistries"] = [{"RegistryArn": get_att(f"{stem}Disc", "Arn", registry)}]  # type: ignore[arg-type]
        ecs_service: dict[str, Any] = {"Type": "AWS::ECS::Service", "Properties": service}
        if service_depends_on == "string":
            ecs_service["DependsOn"] = f"{stem}Td"
        elif service_depends_on == "list":
            ecs_service["DependsOn"] = [f"{stem}Td", "ClusterXr"]
        self.resources[f"{stem}Svc"] = ecs_service

        entry: dict[str, Any] = {"Service": f"{stem}Svc"}
        if sidecars or name_container:
            entry["Container"] = app_name
        if explicit_listeners is not None:
            entry["Listeners"] = explicit_listeners
        if backends:
            entry["Backends"] = list(backends)
        self._section_map("Nodes")[name] = entry
        return entry

    def add_dns_node(
        self,
        name: str,
        stem: str,
        listeners: list[dict[str, Any]],
        *,
        hostname: str = "getatt-list",  # getatt-list | getatt-string | sub | if | literal | parameter
        security_groups: tuple[str, ...] = ("logical-id",),  # logical-id | literal
        marker: str = "",
    ) -> dict[str, Any]:
        """A DNS node: an RDS instance (or a hostname) with its security group."""
        if hostname.startswith("getatt") or hostname == "sub":
            self.resources[f"{stem}Db"] = {
                "Type": "AWS::RDS::DBInstance",
                "DeletionPolicy": "Snapshot",
                "UpdateReplacePolicy": "Snapshot",
                "Properties": {
                    "Engine": "postgres",
                    "EngineVersion": "17.5",
                    "DBInstanceClass": "db.t4g.micro",
                    "AllocatedStorage": "20",
                    "StorageEncrypted": True,
                    "MasterUsername": f"user{stem.lower()[:8]}",
                    "ManageMasterUserPassword": True,
                    "VPCSecurityGroups": [get_att(f"{stem}Sg", "GroupId")],
                },
            }
        value: Any
        if hostname == "getatt-list":
            value = get_att(f"{stem}Db", "Endpoint.Address")
        elif hostname == "getatt-string":
            value = get_att(f"{stem}Db", "Endpoint.Address", "string")
        elif hostname == "sub":
            value = {"Fn::Sub": f"${{{stem}Db.Endpoint.Address}}"}
        elif hostname == "if":
            if "Environment" not in self.parameters:
                self.add_parameter(
                    "Environment", {"Type": "String", "AllowedValues": ["prod", "dev"], "Default": "dev"}, "dev"
                )
                self.conditions["IsProd"] = {"Fn::Equals": [ref("Environment"), "prod"]}
            value = {"Fn::If": ["IsProd", f"{stem.lower()}.prod.example.com", f"{stem.lower()}.dev.example.com"]}
        elif hostname == "parameter":
            parameter = f"{stem}Hostname"
            self.add_parameter(parameter, {"Type": "String", "Default": "db.example.com"}, "db.example.com")
            value = ref(parameter)
        else:
            value = f"{stem.lower()}.example.com"
        groups: list[Any] = []
        need_group = hostname.startswith("getatt") or hostname == "sub"
        for index, form in enumerate(security_groups):
            if form == "logical-id":
                group_id = f"{stem}Sg" if index == 0 else f"{stem}Sg{index}"
                groups.append(group_id)
            else:
                groups.append(literal_group(stem, index))
        if need_group or "logical-id" in security_groups:
            self.resources[f"{stem}Sg"] = {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": f"{name} database{marker}", "VpcId": ref("VpcId")},
            }
            for index in range(1, len(security_groups)):
                if security_groups[index] == "logical-id":
                    self.resources[f"{stem}Sg{index}"] = copy.deepcopy(self.resources[f"{stem}Sg"])
        entry: dict[str, Any] = {"Hostname": value, "Listeners": listeners}
        if groups:
            entry["SecurityGroups"] = groups
        self._section_map("Nodes")[name] = entry
        return entry

    # -- routers and services -------------------------------------------------------------------------

    def add_router(self, name: str, routes: list[dict[str, Any]], listeners: list[dict[str, Any]] | None) -> None:
        router: dict[str, Any] = {"Routes": routes}
        if listeners is not None:
            router = {"Listeners": listeners, "Routes": routes}
        self._section_map("Routers")[name] = router

    def add_service(
        self, name: str, *, node: str | None = None, router: str | None = None, dns_name: str | None = None
    ) -> None:
        service: dict[str, Any] = {}
        if node is not None:
            service["Node"] = node
        if router is not None:
            service["Router"] = router
        if dns_name is not None:
            service["DnsName"] = dns_name
        self._section_map("Services")[name] = service

    # -- output ---------------------------------------------------------------------------------------

    def fragment(self, *, section_position: int = 2, order: list[str] | None = None) -> dict[str, Any]:
        """The template as the macro's ``fragment`` (no ``Transform``); user resources in ``order`` if given."""
        resources = self.resources
        if order is not None:
            resources = {key: self.resources[key] for key in order}
        parts: list[tuple[str, Any]] = [
            ("AWSTemplateFormatVersion", "2010-09-09"),
            ("Description", "Generated by tests/property: a random mesh"),
            ("Parameters", self.parameters),
        ]
        if self.conditions:
            parts.append(("Conditions", self.conditions))
        parts.append(("Resources", resources))
        if self.outputs:
            parts.append(("Outputs", self.outputs))
        parts.extend(self.extra_top_level.items())
        parts.insert(min(section_position, len(parts)), (SECTION, self.section))
        fragment = copy.deepcopy(dict(parts))
        text = json.dumps(fragment)
        for name in list(fragment["Parameters"]):
            if json.dumps({"Ref": name}) not in text and f"${{{name}}}" not in text:
                del fragment["Parameters"][name]  # cfn-lint warns about unused parameters
        return fragment

    def event(self, **fragment_options: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.backend == "param":
            params = {"Backend": "ServiceConnect"}
        fragment = self.fragment(**fragment_options)
        values = {key: value for key, value in self.parameter_values.items() if key in fragment["Parameters"]}
        return make_event(fragment, values, params, self.region)


def make_event(
    fragment: Any,
    parameter_values: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """A CloudFormation macro event, as the service sends it."""
    return {
        "region": region,
        "accountId": "123456789012",
        "fragment": fragment,
        "transformId": "123456789012::ComposeXMesh",
        "params": params or {},
        "requestId": "0b5c2f7e-9d1a-4c1e-8f3b-2a6d7e9c1b40",
        "templateParameterValues": parameter_values or {},
    }


# -- a deterministic mesh of any size: for quotas and the security review ---------------------------------


def chain_mesh(nodes: int, *, backend: str = "AppMesh", filler: int = 0, outputs: int = 0) -> TemplateBuilder:
    """``nodes`` ECS nodes ``n000``..; node i calls the service of node i+1; ``filler`` extra SNS topics.

    Per node the user writes 5 resources (task role, task definition, security group, Cloud Map service,
    ECS service); App Mesh adds a virtual node, a virtual service, an envoy policy and (for edges) ingress.
    """
    builder = TemplateBuilder(backend="ServiceConnect" if backend == "ServiceConnect" else "default")
    for index in range(nodes):
        name = f"n{index:03d}"
        builder.add_ecs_node(
            name,
            f"N{index:03d}",
            [Port(8080, "http")],
            backends=[f"s{index + 1:03d}"] if index + 1 < nodes else None,
            registry="list" if backend == "AppMesh" else None,
            discovery_name=name,
        )
        builder.add_service(f"s{index:03d}", node=name)
    for index in range(filler):
        builder.resources[f"Filler{index:04d}Topic"] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": f"filler-{index:04d}"},
        }
    for index in range(outputs):
        builder.outputs[f"Output{index:04d}"] = {"Value": ref("ClusterXr")}
    return builder
