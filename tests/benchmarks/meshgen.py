"""Generate realistic ComposeXMesh templates of any size, for the benchmark and its smoke test.

``template(n)`` is a CloudFormation template (JSON long form, as a macro receives it) with ``n`` ECS nodes:

- shared: a cluster, an execution role, a log group, a private DNS namespace;
- per node: a task role, an ``awsvpc`` Fargate task definition (one container, one ``http`` port mapping,
  ``awslogs``), a security group and an ECS service in the ``PrivateSubnets`` parameter's subnets;
  two nodes in three register with a Cloud Map service of the template, the third with none (the macro
  then makes one);
- the section: nodes are cut in groups of ``GROUP`` (the last may be smaller); each group has a router
  with two routes (``/v2`` to the group's last node, ``/`` weighted 3:1:... across the group) and a
  service on it; node ``i`` of group ``g`` calls the service of group ``g+1`` (the last group calls group
  0), so there are about ``GROUP`` edges per node (2 by default).

``event(n)`` wraps it as a CloudFormation macro event for ``handler.lambda_handler``.
"""

from __future__ import annotations

from typing import Any

GROUP = 2
PORT = 8080


def _ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def _get_att(name: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [name, attribute]}


def node_name(index: int) -> str:
    return f"svc{index:03d}"


def _stem(index: int) -> str:
    return f"Svc{index:03d}"


def groups(nodes: int) -> list[list[int]]:
    """The node indices of each group (router)."""
    return [list(range(start, min(start + GROUP, nodes))) for start in range(0, nodes, GROUP)]


def _assume_role() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def _node_resources(index: int) -> dict[str, Any]:
    name, stem = node_name(index), _stem(index)
    resources: dict[str, Any] = {
        f"{stem}TaskRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": _assume_role()}},
        f"{stem}TaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": name,
                "Cpu": "256",
                "Memory": "512",
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "ExecutionRoleArn": _get_att("ExecutionRole", "Arn"),
                "TaskRoleArn": _get_att(f"{stem}TaskRole", "Arn"),
                "ContainerDefinitions": [
                    {
                        "Name": "app",
                        "Image": f"public.ecr.aws/example/{name}:1.0.{index}",
                        "Essential": True,
                        "Environment": [{"Name": "SERVICE_NAME", "Value": name}],
                        "PortMappings": [
                            {"ContainerPort": PORT, "Protocol": "tcp", "Name": "http", "AppProtocol": "http"}
                        ],
                        "LogConfiguration": {
                            "LogDriver": "awslogs",
                            "Options": {
                                "awslogs-group": _ref("LogGroup"),
                                "awslogs-region": _ref("AWS::Region"),
                                "awslogs-stream-prefix": name,
                            },
                        },
                    }
                ],
            },
        },
        f"{stem}SecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": f"{name} tasks", "VpcId": _ref("VpcId")},
        },
    }
    service: dict[str, Any] = {
        "Cluster": _ref("Cluster"),
        "TaskDefinition": _ref(f"{stem}TaskDefinition"),
        "LaunchType": "FARGATE",
        "DesiredCount": 2,
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": _ref("PrivateSubnets"),
                "SecurityGroups": [_get_att(f"{stem}SecurityGroup", "GroupId")],
            }
        },
    }
    if index % 3 != 2:
        resources[f"{stem}Discovery"] = {
            "Type": "AWS::ServiceDiscovery::Service",
            "Properties": {
                "Name": name,
                "NamespaceId": _ref("PrivateNamespace"),
                "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}], "RoutingPolicy": "MULTIVALUE"},
                "HealthCheckCustomConfig": {"FailureThreshold": 1},
            },
        }
        service["ServiceRegistries"] = [{"RegistryArn": _get_att(f"{stem}Discovery", "Arn")}]
    resources[f"{stem}Service"] = {"Type": "AWS::ECS::Service", "Properties": service}
    return resources


def _section(nodes: int) -> dict[str, Any]:
    parts = groups(nodes)
    section_nodes: dict[str, Any] = {}
    for g, members in enumerate(parts):
        callee = f"group{(g + 1) % len(parts):03d}"
        for index in members:
            entry: dict[str, Any] = {"Service": f"{_stem(index)}Service"}
            if len(parts) > 1:
                entry["Backends"] = [callee]
            section_nodes[node_name(index)] = entry
    routers: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for g, members in enumerate(parts):
        name = f"group{g:03d}"
        weights = {node_name(index): (3 if position == 0 else 1) for position, index in enumerate(members)}
        routes = [
            {
                "Match": {"Prefix": "/v2"},
                "Targets": {node_name(members[-1]): 1},
                "Retries": {"MaxRetries": 2, "PerRetryTimeout": "2s", "Events": ["server-error"]},
            },
            {"Match": {"Prefix": "/"}, "Targets": weights, "Timeout": {"PerRequest": "15s"}},
        ]
        routers[name] = {"Listeners": [{"Port": PORT, "Protocol": "http"}], "Routes": routes}
        services[name] = {"Router": name}
    return {"Nodes": section_nodes, "Routers": routers, "Services": services}


def template(nodes: int) -> dict[str, Any]:
    """A template with ``nodes`` ECS services and the section meshing them (the event's fragment)."""
    if nodes < 1:
        raise ValueError("at least one node")
    resources: dict[str, Any] = {
        "Cluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
        },
        "ExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": _assume_role(),
                "ManagedPolicyArns": [
                    {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}
                ],
            },
        },
        "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 14}},
        "PrivateNamespace": {
            "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
            "Properties": {"Name": "mesh.internal", "Vpc": _ref("VpcId")},
        },
    }
    for index in range(nodes):
        resources.update(_node_resources(index))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"ComposeXMesh benchmark: {nodes} Fargate services meshed in groups of {GROUP}",
        "Parameters": {
            "VpcId": {"Type": "AWS::EC2::VPC::Id"},
            "PrivateSubnets": {"Type": "List<AWS::EC2::Subnet::Id>"},
        },
        "Composex::AppMesh": _section(nodes),
        "Resources": resources,
        "Outputs": {"ClusterName": {"Value": _ref("Cluster")}},
    }


def edge_count(nodes: int) -> int:
    """The (consumer, provider) pairs the section allows: each node calls every node of the next group."""
    parts = groups(nodes)
    if len(parts) < 2:
        return 0
    return sum(len(members) * len(parts[(g + 1) % len(parts)]) for g, members in enumerate(parts))


def event(nodes: int, request_id: str = "bench") -> dict[str, Any]:
    """A CloudFormation macro event carrying ``template(nodes)`` (without its Transform, as CloudFormation sends)."""
    return {
        "region": "eu-west-1",
        "accountId": "123456789012",
        "fragment": template(nodes),
        "transformId": "123456789012::ComposeXMesh",
        "params": {},
        "requestId": request_id,
        "templateParameterValues": {
            "VpcId": "vpc-0123456789abcdef0",
            "PrivateSubnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        },
    }


def cli_template(nodes: int) -> dict[str, Any]:
    """``template(nodes)`` with its ``Transform``, as a user's file for ``composex-mesh render``."""
    fragment = template(nodes)
    return {
        "AWSTemplateFormatVersion": fragment.pop("AWSTemplateFormatVersion"),
        "Transform": "ComposeXMesh",
        **fragment,
    }


def compose_file(nodes: int) -> dict[str, Any]:
    """The same graph as ``template(nodes)`` for ECS ComposeX: a docker-compose file (JSON is YAML) with its
    ``x-cloudmap`` namespace and ``x-appmesh`` extension (nodes, routers with the same two routes, services)."""
    parts = groups(nodes)
    services: dict[str, Any] = {}
    for index in range(nodes):
        name = node_name(index)
        services[name] = {
            "image": f"public.ecr.aws/example/{name}:1.0.{index}",
            "environment": {"SERVICE_NAME": name},
            "ports": [{"target": PORT, "published": PORT, "protocol": "tcp"}],
            "deploy": {"replicas": 2, "resources": {"limits": {"cpus": "0.25", "memory": "512M"}}},
            "x-network": {"x-cloudmap": "PrivateNamespace"},
        }
    mesh_nodes = []
    for g, members in enumerate(parts):
        callee = f"group{(g + 1) % len(parts):03d}"
        for index in members:
            node: dict[str, Any] = {"Name": node_name(index), "Protocol": "http", "Port": PORT}
            if len(parts) > 1:
                node["Backends"] = [callee]
            mesh_nodes.append(node)
    routers = []
    mesh_services = []
    for g, members in enumerate(parts):
        name = f"group{g:03d}"
        weights = [
            {"Name": node_name(index), "Weight": 3 if position == 0 else 1} for position, index in enumerate(members)
        ]
        routes = [
            {"Match": {"Prefix": "/v2"}, "Nodes": [{"Name": node_name(members[-1]), "Weight": 1}]},
            {"Match": {"Prefix": "/"}, "Nodes": weights},
        ]
        routers.append({"Name": name, "Listener": {"Port": PORT, "Protocol": "http"}, "Routes": {"http": routes}})
        mesh_services.append({"Name": name, "Router": name, "x-cloudmap": "PrivateNamespace"})
    return {
        "version": "3.8",
        "services": services,
        "x-cloudmap": {"PrivateNamespace": {"ZoneName": "mesh.internal"}},
        "x-appmesh": {
            "Properties": {"MeshName": "bench", "Spec": {"EgressFilter": {"Type": "DROP_ALL"}}},
            "Settings": {"Nodes": mesh_nodes, "Routers": routers, "Services": mesh_services},
        },
    }
