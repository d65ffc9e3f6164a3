"""The envoy patch of an ECS node's task definition, and the IAM its envoy needs (App Mesh backend).

Follows the AWS App Mesh on ECS documentation: envoy runs as UID 1337 with a LIVE health check on its admin
port; the APPMESH proxy configuration sends the app's traffic through it; every app container waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from troposphere import iam

from .. import envoy_images
from ..deploy_view import DeployView
from ..errors import ErrorCollector
from ..iam import trusted_by
from ..jsoncopy import deepcopy
from ..plan import NodePlan, Plan, RoleRef, shorten
from .base import Rendered, add_depends_on, build, canonical

ENVOY_CONTAINER = "envoy"
XRAY_CONTAINER = "xray-daemon"
ENVOY_UID = "1337"
PROXY_INGRESS_PORT = "15000"
PROXY_EGRESS_PORT = "15001"
EGRESS_IGNORED_IPS = "169.254.170.2,169.254.169.254"
DEFAULT_ADMIN_PORT = "9901"
XRAY_PORT = 2000
XRAY_DAEMON_IMAGE_NAME = "aws-xray-daemon"
XRAY_DAEMON_ACTIONS = (
    "xray:GetSamplingRules",
    "xray:GetSamplingStatisticSummaries",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
)
"""The actions of AWS's managed policy AWSXRayDaemonWriteAccess, granted on the task role, not the policy."""
MAX_POLICY_NAME = 128


def render_envoy(
    plan: Plan,
    node: NodePlan,
    virtual_node_id: str,
    rendered: Rendered,
    errors: ErrorCollector,
    tls_statements: list[dict[str, Any]] | None = None,
) -> None:
    """Patch the node's task definition with envoy, and grant its roles what envoy needs (``tls_statements``: TLS)."""
    ecs = node.ecs
    assert ecs is not None
    origin = f"Nodes.{node.name}"
    if not node.listeners:
        errors.add(
            origin,
            "has no listeners: the APPMESH proxy configuration needs the app's ports (AppPorts). "
            "Give the node Listeners, or its container a port mapping.",
        )
        return
    view = plan.view
    task = rendered.patch(ecs.task_definition_id, plan.resources[ecs.task_definition_id])
    properties = view.raw_at(task, ("Properties",))
    deployed = view.properties(ecs.task_definition_id)
    containers: list[dict[str, Any]] = view.raw_at(properties, ("ContainerDefinitions",))
    app = view.raw_at(containers, (ecs.container_index,))
    envoy_settings = plan.section.envoy
    tracing = envoy_settings.tracing == "XRay"
    daemon_index, existing_daemon = _xray_daemon(view.items(deployed.get("ContainerDefinitions")), view)
    if not tracing:
        daemon_index, existing_daemon = None, None
    for index, container in view.items(containers):
        # A FireLens log router starts before envoy (envoy may log through it), and envoy waits for an X-Ray daemon
        # the task already runs: neither waits for envoy.
        if "FirelensConfiguration" not in container and index != daemon_index:
            add_container_dependency(view.raw_at(containers, (index,)), ENVOY_CONTAINER, "HEALTHY")
    daemon_name = existing_daemon if existing_daemon is not None else XRAY_CONTAINER
    containers.append(_envoy_container(plan, node, virtual_node_id, app, deployed, daemon_name if tracing else None))
    if tracing and existing_daemon is None:
        containers.append(_xray_container(app, deployed))
    properties["ProxyConfiguration"] = _proxy_configuration(node)

    task_role_id = _role_id(ecs.task_role, f"{node.stem}TaskRole", plan, origin, rendered, errors)
    if ecs.task_role.create:
        properties["TaskRoleArn"] = {"Fn::GetAtt": [task_role_id, "Arn"]}
    service = rendered.patch(ecs.service_id, plan.resources[ecs.service_id])
    if task_role_id is not None:
        policy_id = f"{node.stem}EnvoyPolicy"
        statements = [
            {
                "Sid": "EnvoyReadsItsVirtualNode",
                "Effect": "Allow",
                "Action": ["appmesh:StreamAggregatedResources"],
                "Resource": [{"Ref": virtual_node_id}],
            }
        ]
        if tracing:
            statements.append(
                {
                    "Sid": "XRayDaemonWritesTraces",
                    "Effect": "Allow",
                    "Action": list(XRAY_DAEMON_ACTIONS),
                    "Resource": ["*"],
                }
            )
        statements.extend(tls_statements or ())
        rendered.add(
            policy_id,
            _policy(policy_id, shorten(f"composex-mesh-{node.name}-envoy", MAX_POLICY_NAME), task_role_id, statements),
            origin,
            errors,
        )
        add_depends_on(service, policy_id)
    else:
        tls_rights = " and ".join(action for item in tls_statements or () for action in item["Action"])
        rendered.warnings.append(
            f"[{origin}] the task role of '{ecs.task_definition_id}' is not a role of this template: grant it "
            "appmesh:StreamAggregatedResources on the virtual node yourself"
            + (f", and {tls_rights} on the certificates it serves and the CA it trusts." if tls_rights else ".")
        )

    if envoy_settings.image is None:
        _grant_image_pull(plan, node, properties, rendered, errors, service)


def add_container_dependency(container: dict[str, Any], name: str, condition: str) -> None:
    depends = container.setdefault("DependsOn", [])
    if not any(isinstance(item, dict) and item.get("ContainerName") == name for item in depends):
        depends.append({"ContainerName": name, "Condition": condition})


def _xray_daemon(containers: list[tuple[int, Any]], view: DeployView) -> tuple[int | None, Any]:
    """(index, Name as written) of a container that already runs the X-Ray daemon: an ``aws-xray-daemon`` image,
    or a container that maps UDP 2000; else (None, None)."""
    for index, container in containers:
        if not isinstance(container, Mapping):
            continue
        image = view.known(container.get("Image"))
        udp_2000 = any(
            isinstance(item, Mapping)
            and str(view.known(item.get("ContainerPort"))) == str(XRAY_PORT)
            and str(view.known(item.get("Protocol", "tcp"))).lower() == "udp"
            for _, item in view.items(container.get("PortMappings"))
        )
        if (isinstance(image, str) and XRAY_DAEMON_IMAGE_NAME in image) or udp_2000:
            return index, container.get("Name")
    return None, None


def _envoy_container(
    plan: Plan, node: NodePlan, virtual_node_id: str, app: dict[str, Any], task: Mapping[str, Any], daemon: Any
) -> dict[str, Any]:
    """The envoy container; ``daemon``: the Name of the X-Ray daemon container when tracing, else None."""
    tracing = daemon is not None
    settings = plan.section.envoy
    environment = {
        "APPMESH_RESOURCE_ARN": {"Ref": virtual_node_id},
        "ENVOY_LOG_LEVEL": settings.log_level,
        **({"ENABLE_ENVOY_XRAY_TRACING": "1"} if tracing else {}),
        **settings.environment,
    }
    # Checked to be a port number (checks.py): it goes into a shell command.
    admin_port = int(environment.get("ENVOY_ADMIN_ACCESS_PORT", DEFAULT_ADMIN_PORT))
    if "ENVOY_ADMIN_ACCESS_PORT" in environment:
        environment["ENVOY_ADMIN_ACCESS_PORT"] = str(admin_port)
    container: dict[str, Any] = {
        "Name": ENVOY_CONTAINER,
        "Image": settings.image if settings.image is not None else envoy_images.envoy_image_uri(plan.region),
        "Essential": True,
        "User": ENVOY_UID,
        "Environment": [{"Name": key, "Value": value} for key, value in environment.items()],
        "HealthCheck": {
            "Command": [
                "CMD-SHELL",
                f"curl -s http://localhost:{admin_port}/server_info | grep state | grep -q LIVE",
            ],
            "Interval": 5,
            "Timeout": 2,
            "Retries": 3,
            "StartPeriod": 10,
        },
        "Ulimits": [{"Name": "nofile", "SoftLimit": 15000, "HardLimit": 15000}],
    }
    if "Memory" not in task:
        container["MemoryReservation"] = 128
    log = _log_configuration(app, ENVOY_CONTAINER)
    if log is not None:
        container["LogConfiguration"] = log
    if tracing:
        container["DependsOn"] = [{"ContainerName": daemon, "Condition": "START"}]
    return container


def _xray_container(app: dict[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "Name": XRAY_CONTAINER,
        "Image": envoy_images.XRAY_DAEMON_IMAGE,
        "Essential": True,
        "User": ENVOY_UID,
        "PortMappings": [{"ContainerPort": XRAY_PORT, "Protocol": "udp"}],
    }
    if "Memory" not in task:
        container["MemoryReservation"] = 32
    log = _log_configuration(app, XRAY_CONTAINER)
    if log is not None:
        container["LogConfiguration"] = log
    return container


def _log_configuration(app: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    """The app container's log configuration, with its own awslogs stream prefix."""
    log = app.get("LogConfiguration")
    if not isinstance(log, dict):
        return None
    copied: dict[str, Any] = deepcopy(log)
    options = copied.get("Options")
    if copied.get("LogDriver") == "awslogs" and isinstance(options, dict):
        options["awslogs-stream-prefix"] = prefix
    return copied


def _proxy_configuration(node: NodePlan) -> dict[str, Any]:
    values = {
        "IgnoredUID": ENVOY_UID,
        "ProxyIngressPort": PROXY_INGRESS_PORT,
        "ProxyEgressPort": PROXY_EGRESS_PORT,
        "AppPorts": ",".join(str(item.port) for item in node.listeners),
        "EgressIgnoredIPs": EGRESS_IGNORED_IPS,
    }
    return {
        "Type": "APPMESH",
        "ContainerName": ENVOY_CONTAINER,
        "ProxyConfigurationProperties": [{"Name": key, "Value": value} for key, value in values.items() if value],
    }


def _role_id(
    role: RoleRef, new_id: str, plan: Plan, origin: str, rendered: Rendered, errors: ErrorCollector
) -> str | None:
    """The logical ID of the role to grant to: the template's, a new one, or None for a role made elsewhere."""
    if role.logical_id is not None:
        return role.logical_id
    if not role.create:
        return None
    rendered.add(new_id, _task_role(new_id, plan), origin, errors)
    return new_id


def _task_role(logical_id: str, plan: Plan) -> dict[str, Any]:
    properties = {
        "Description": "ComposeXMesh: task role for envoy",
        "AssumeRolePolicyDocument": trusted_by("ecs-tasks.amazonaws.com"),
    }
    return build(iam.Role, logical_id, properties)


def _policy(logical_id: str, name: str, role_id: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    properties = {
        "PolicyName": name,
        "Roles": [{"Ref": role_id}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
    }
    return build(iam.PolicyType, logical_id, properties)


def _grant_image_pull(
    plan: Plan,
    node: NodePlan,
    task: dict[str, Any],
    rendered: Rendered,
    errors: ErrorCollector,
    service: dict[str, Any],
) -> None:
    """ECR pull rights for the App Mesh envoy image on the execution role (one policy per role)."""
    ecs = node.ecs
    assert ecs is not None
    origin = f"Nodes.{node.name}"
    role = ecs.execution_role
    if role.create:
        role_id = f"{node.stem}ExecutionRole"
        document = {"Version": "2012-10-17", "Statement": [*_image_pull_statements(plan), *_log_statements(task)]}
        properties = {
            "Description": "ComposeXMesh: execution role that pulls the envoy image and sends the task's logs",
            "AssumeRolePolicyDocument": _task_role(role_id, plan)["Properties"]["AssumeRolePolicyDocument"],
            "Policies": [{"PolicyName": "composex-mesh-execution", "PolicyDocument": document}],
        }
        rendered.add(role_id, build(iam.Role, role_id, properties), origin, errors)
        task["ExecutionRoleArn"] = {"Fn::GetAtt": [role_id, "Arn"]}
        return
    if role.logical_id is None:
        rendered.warnings.append(
            f"[{origin}] the execution role of '{ecs.task_definition_id}' is not a role of this template: "
            "it needs ECR pull rights on the envoy image."
        )
        return
    policy_id = f"{role.logical_id}EnvoyImagePull"
    policy = _policy(policy_id, "composex-mesh-envoy-image-pull", role.logical_id, _image_pull_statements(plan))
    rendered.add(policy_id, policy, origin, errors)
    add_depends_on(service, policy_id)


def _image_pull_statements(plan: Plan) -> list[dict[str, Any]]:
    """Pulling the envoy image: an ECR token (an action AWS only grants on ``*``), then its repository only."""
    return [
        {
            "Sid": "EcrAuthorization",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": ["*"],
        },
        {
            "Sid": "PullEnvoyImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [envoy_images.envoy_repository_arn(plan.region)],
        },
    ]


def _log_statements(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Sending the task's awslogs logs: streams of the log groups its containers name, and nothing else."""
    groups: dict[str, Any] = {}
    creates = False
    for container in task.get("ContainerDefinitions") or ():
        log = container.get("LogConfiguration") if isinstance(container, dict) else None
        options = log.get("Options") if isinstance(log, dict) and log.get("LogDriver") == "awslogs" else None
        if not isinstance(options, dict) or options.get("awslogs-group") is None:
            continue
        region = options.get("awslogs-region") or {"Ref": "AWS::Region"}
        arn = {
            "Fn::Sub": [
                "arn:${AWS::Partition}:logs:${Region}:${AWS::AccountId}:log-group:${Group}:*",
                {"Region": region, "Group": options["awslogs-group"]},
            ]
        }
        groups.setdefault(canonical(arn), arn)
        creates = creates or str(options.get("awslogs-create-group")).lower() == "true"
    if not groups:
        return []
    actions = ["logs:CreateLogStream", "logs:PutLogEvents", *(["logs:CreateLogGroup"] if creates else [])]
    return [{"Sid": "SendTaskLogs", "Effect": "Allow", "Action": sorted(actions), "Resource": list(groups.values())}]
