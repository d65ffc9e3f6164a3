"""``Backend: ServiceConnect`` (SPEC §4): Service Connect configurations from the shared plan, and an error for
every part of the section that Service Connect cannot express."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from composex_mesh import SECTION_KEY
from composex_mesh.errors import InvalidSectionError
from composex_mesh.transform import Context, ExpandResult, expand

HTTP_8080 = {"ContainerPort": 8080, "Protocol": "tcp", "Name": "http", "AppProtocol": "http"}
AWSLOGS = {
    "LogDriver": "awslogs",
    "Options": {
        "awslogs-group": {"Ref": "LogGroup"},
        "awslogs-region": {"Ref": "AWS::Region"},
        "awslogs-stream-prefix": "app",
        "mode": "non-blocking",
    },
}


def ecs_resources(stem: str, mappings: list[dict[str, Any]] | None, logs: bool = True) -> dict[str, Any]:
    """A Fargate task definition, security group and ECS service named ``<stem>...``."""
    container: dict[str, Any] = {"Name": "app", "Image": "public.ecr.aws/nginx/nginx:1.27", "Essential": True}
    if mappings is not None:
        container["PortMappings"] = copy.deepcopy(mappings)
    if logs:
        container["LogConfiguration"] = copy.deepcopy(AWSLOGS)
    return {
        f"{stem}TaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Cpu": "256",
                "Memory": "512",
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "ContainerDefinitions": [container],
            },
        },
        f"{stem}SecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": stem, "VpcId": "vpc-0123456789abcdef0"},
        },
        f"{stem}Service": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": "default",
                "TaskDefinition": {"Ref": f"{stem}TaskDefinition"},
                "LaunchType": "FARGATE",
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "Subnets": ["subnet-0123456789abcdef0"],
                        "SecurityGroups": [{"Fn::GetAtt": [f"{stem}SecurityGroup", "GroupId"]}],
                    }
                },
            },
        },
    }


def template(section: dict[str, Any], **ecs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A template with a namespace, a log group, one ECS service per keyword (stem=port mappings) and ``section``."""
    resources: dict[str, Any] = {
        "PrivateNamespace": {
            "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
            "Properties": {"Name": "mesh.internal", "Vpc": "vpc-0123456789abcdef0"},
        },
        "LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
    }
    for stem, mappings in (ecs or {"Frontend": [HTTP_8080], "Clock": [HTTP_8080]}).items():
        resources.update(ecs_resources(stem, mappings))
    return {"Resources": resources, SECTION_KEY: {"Backend": "ServiceConnect", **section}}


def front_clock(**extra: Any) -> dict[str, Any]:
    """frontend calls time, which clock serves."""
    return {
        "Nodes": {
            "frontend": {"Service": "FrontendService", "Backends": ["time"]},
            "clock": {"Service": "ClockService"},
        },
        "Services": {"time": {"Node": "clock"}},
        **extra,
    }


def run(fragment: dict[str, Any], params: dict[str, Any] | None = None) -> ExpandResult:
    return expand(fragment, Context(params=params or {}))


def resources(fragment: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = run(fragment).fragment["Resources"]
    return result


def config(output: dict[str, Any], service_id: str) -> dict[str, Any]:
    result: dict[str, Any] = output[service_id]["Properties"]["ServiceConnectConfiguration"]
    return result


def app_mappings(output: dict[str, Any], stem: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = output[f"{stem}TaskDefinition"]["Properties"]["ContainerDefinitions"][0][
        "PortMappings"
    ]
    return result


def path_of(error: str) -> str:
    return error[1 : error.index("] ")]


def errors_of(fragment: dict[str, Any], params: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(InvalidSectionError) as caught:
        run(fragment, params)
    return [str(error) for error in caught.value.errors]


# -- what it produces ------------------------------------------------------------------------------------------


def test_provider_gets_a_service_connect_service_and_consumer_joins_the_namespace() -> None:
    output = resources(template(front_clock()))
    assert config(output, "ClockService") == {
        "Enabled": True,
        "Namespace": {"Fn::GetAtt": ["PrivateNamespace", "Arn"]},
        "Services": [
            {
                "PortName": "http",
                "DiscoveryName": "time",
                "ClientAliases": [{"DnsName": "time.mesh.internal", "Port": 8080}],
            }
        ],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": {"Ref": "LogGroup"},
                "awslogs-region": {"Ref": "AWS::Region"},
                "awslogs-stream-prefix": "service-connect",
            },
        },
        "AccessLogConfiguration": {"Format": "TEXT"},
    }
    consumer = config(output, "FrontendService")
    assert consumer["Enabled"] is True and "Services" not in consumer


def test_nothing_of_app_mesh_is_made_only_the_security_group_ingress() -> None:
    fragment = template(front_clock())
    result = run(fragment)
    added = {key: value for key, value in result.fragment["Resources"].items() if key not in fragment["Resources"]}
    assert {item["Type"] for item in added.values()} == {"AWS::EC2::SecurityGroupIngress"}
    ingress = added["FrontendToClockPort8080Ingress"]["Properties"]
    assert ingress["GroupId"] == {"Fn::GetAtt": ["ClockSecurityGroup", "GroupId"]}
    assert ingress["SourceSecurityGroupId"] == {"Fn::GetAtt": ["FrontendSecurityGroup", "GroupId"]}
    assert (ingress["FromPort"], ingress["ToPort"]) == (8080, 8080)
    # The task definitions already name their ports: they are left as written.
    for stem in ("Frontend", "Clock"):
        task = f"{stem}TaskDefinition"
        assert result.fragment["Resources"][task] == fragment["Resources"][task]
    assert result.summary.resources_patched == 2
    assert result.warnings == []


def test_a_namespace_made_elsewhere_is_named_by_its_arn_built_from_its_id() -> None:
    fragment = template(front_clock(Namespace={"Id": "ns-0123456789abcdef0", "Name": "corp.internal"}))
    del fragment["Resources"]["PrivateNamespace"]
    output = resources(fragment)
    assert config(output, "ClockService")["Namespace"] == {
        "Fn::Sub": "arn:${AWS::Partition}:servicediscovery:${AWS::Region}:${AWS::AccountId}:namespace/ns-0123456789abcdef0"
    }
    assert config(output, "ClockService")["Services"][0]["ClientAliases"] == [
        {"DnsName": "time.corp.internal", "Port": 8080}
    ]


def test_the_transform_parameter_chooses_the_backend() -> None:
    fragment = template(front_clock())
    del fragment[SECTION_KEY]["Backend"]
    result = run(fragment, {"Backend": "ServiceConnect"})
    assert result.summary.backend == "ServiceConnect"
    assert "ServiceConnectConfiguration" in result.fragment["Resources"]["ClockService"]["Properties"]


def test_an_unnamed_port_mapping_gets_a_name_and_the_listener_protocol() -> None:
    section = front_clock()
    section["Nodes"]["clock"]["Listeners"] = [{"Port": 8080, "Protocol": "http"}]
    output = resources(template(section, Frontend=[HTTP_8080], Clock=[{"ContainerPort": 8080, "Protocol": "tcp"}]))
    assert app_mappings(output, "Clock") == [
        {"ContainerPort": 8080, "Protocol": "tcp", "AppProtocol": "http", "Name": "http-8080"}
    ]
    assert config(output, "ClockService")["Services"][0]["PortName"] == "http-8080"


def test_the_users_port_name_is_kept_and_tcp_gets_no_app_protocol() -> None:
    mapping = {"ContainerPort": 6379, "Name": "redis"}
    output = resources(template(front_clock(), Frontend=[HTTP_8080], Clock=[mapping]))
    assert app_mappings(output, "Clock") == [mapping]
    entry = config(output, "ClockService")["Services"][0]
    assert entry["PortName"] == "redis"
    assert entry["ClientAliases"] == [{"DnsName": "time.mesh.internal", "Port": 6379}]


def test_a_listener_without_port_mapping_gets_one() -> None:
    section = front_clock()
    section["Nodes"]["clock"]["Listeners"] = [{"Port": 9090, "Protocol": "grpc"}]
    output = resources(template(section, Frontend=[HTTP_8080], Clock=[HTTP_8080]))
    assert app_mappings(output, "Clock") == [
        HTTP_8080,
        {"ContainerPort": 9090, "Protocol": "tcp", "AppProtocol": "grpc", "Name": "grpc-9090"},
    ]


def test_a_consumer_without_ports_or_logs_only_joins_the_namespace() -> None:
    fragment = template(front_clock(), Frontend=None, Clock=[HTTP_8080])
    del fragment["Resources"]["FrontendTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]
    output = resources(fragment)
    assert config(output, "FrontendService") == {
        "Enabled": True,
        "Namespace": {"Fn::GetAtt": ["PrivateNamespace", "Arn"]},
    }


def test_a_router_with_one_target_is_served_by_that_target_on_the_routers_port() -> None:
    section = front_clock()
    section["Nodes"]["clock"]["Listeners"] = [
        {"Port": 8080, "Protocol": "http", "Timeout": {"PerRequest": "30s", "Idle": "5m"}}
    ]
    section["Routers"] = {
        "time": {
            "Listeners": [{"Port": 80, "Protocol": "http"}],
            "Routes": [{"Match": {"Prefix": "/"}, "Targets": {"clock": 1}, "Timeout": {"PerRequest": "15s"}}],
        }
    }
    section["Services"] = {"time": {"Router": "time"}}
    output = resources(template(section))
    assert config(output, "ClockService")["Services"] == [
        {
            "PortName": "http",
            "DiscoveryName": "time",
            "ClientAliases": [{"DnsName": "time.mesh.internal", "Port": 80}],
            "Timeout": {"PerRequestTimeoutSeconds": 15, "IdleTimeoutSeconds": 300},
        }
    ]
    assert output["FrontendToClockPort8080Ingress"]["Properties"]["FromPort"] == 8080


def test_a_service_of_a_node_with_two_listeners_publishes_both_ports() -> None:
    section = front_clock()
    section["Nodes"]["clock"]["Listeners"] = [{"Port": 8080, "Protocol": "http"}, {"Port": 9090, "Protocol": "grpc"}]
    output = resources(template(section))
    entries = config(output, "ClockService")["Services"]
    assert [(item["DiscoveryName"], item["ClientAliases"][0]["Port"]) for item in entries] == [
        ("time", 8080),
        ("time-9090", 9090),
    ]


def test_consumers_wait_for_their_providers() -> None:
    output = resources(template(front_clock()))
    assert output["FrontendService"]["DependsOn"] == ["ClockService"]
    assert "DependsOn" not in output["ClockService"]


def test_nodes_that_call_each_other_are_not_ordered_and_a_warning_says_why() -> None:
    section = front_clock()
    section["Nodes"]["clock"]["Backends"] = ["front"]
    section["Services"]["front"] = {"Node": "frontend"}
    result = run(template(section))
    assert all("DependsOn" not in result.fragment["Resources"][key] for key in ("FrontendService", "ClockService"))
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("[Nodes.frontend] calls node 'clock', which calls it back")


def test_service_registries_of_the_user_are_kept_without_warning() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["ClockDiscovery"] = {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {
            "Name": "clock",
            "NamespaceId": {"Ref": "PrivateNamespace"},
            "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}]},
        },
    }
    registries = [{"RegistryArn": {"Fn::GetAtt": ["ClockDiscovery", "Arn"]}}]
    fragment["Resources"]["ClockService"]["Properties"]["ServiceRegistries"] = registries
    result = run(fragment)
    assert result.fragment["Resources"]["ClockService"]["Properties"]["ServiceRegistries"] == registries
    assert result.warnings == []


# -- what Service Connect cannot express ------------------------------------------------------------------------


def with_clock_listener(**options: Any) -> dict[str, Any]:
    section = front_clock()
    section["Nodes"]["clock"]["Listeners"] = [{"Port": 8080, "Protocol": "http", **options}]
    return section


def with_time_router(*routes: dict[str, Any]) -> dict[str, Any]:
    section = front_clock()
    section["Nodes"]["watch"] = {"Service": "WatchService"}
    section["Routers"] = {"time": {"Routes": list(routes)}}
    section["Services"] = {"time": {"Router": "time"}}
    return section


THREE = {"Frontend": [HTTP_8080], "Clock": [HTTP_8080], "Watch": [HTTP_8080]}
RETRIES = {"MaxRetries": 2, "PerRetryTimeout": "2s", "Events": ["gateway-error"]}
OUTLIERS = {"MaxServerErrors": 5, "Interval": "10s", "BaseEjectionDuration": "30s", "MaxEjectionPercent": 50}


@pytest.mark.parametrize(
    ("section", "path", "says"),
    [
        (front_clock(Mesh={"Existing": True, "Name": "shared"}), "Mesh.Existing", "Namespace: {Id, Name}"),
        (front_clock(Mesh={"Existing": True}), "Mesh.Existing", "Namespace: {Id, Name}"),
        (front_clock(Mesh={"Owner": "111122223333"}), "Mesh.Owner", "Namespace: {Arn, Name}"),
        (front_clock(Envoy={"LogLevel": "trace"}), "Envoy.LogLevel", "debug or info"),
        (front_clock(Envoy={"Image": "envoy:latest"}), "Envoy.Image", "manages its proxy"),
        (front_clock(Envoy={"Tracing": "XRay"}), "Envoy.Tracing", "manages its proxy"),
        (front_clock(Envoy={"Environment": {"A": "1"}}), "Envoy.Environment", "manages its proxy"),
        (
            with_clock_listener(HealthCheck={"Path": "/health"}),
            "Nodes.clock.Listeners[0].HealthCheck",
            "HealthCheck in the task definition",
        ),
        (
            with_clock_listener(ConnectionPool={"MaxConnections": 10}),
            "Nodes.clock.Listeners[0].ConnectionPool",
            "connection pool",
        ),
        (
            with_clock_listener(OutlierDetection=OUTLIERS),
            "Nodes.clock.Listeners[0].OutlierDetection",
            "outlier detection",
        ),
        (with_clock_listener(Timeout={"Idle": "90500ms"}), "Nodes.clock.Listeners[0].Timeout.Idle", "whole seconds"),
        (with_time_router({"Targets": {"clock": 3, "watch": 1}}), "Routers.time.Routes[0].Targets", "blue/green"),
        (with_time_router({"Targets": {"clock": 1}, "Retries": RETRIES}), "Routers.time.Routes[0].Retries", "retries"),
        (with_time_router({"Targets": {"clock": 1}, "Priority": 1}), "Routers.time.Routes[0].Priority", "no routes"),
        (
            with_time_router({"Targets": {"clock": 1}, "Match": {"Headers": [{"Name": "x-canary", "Exact": "1"}]}}),
            "Routers.time.Routes[0].Match.Headers",
            "TestTraffic",
        ),
        (
            with_time_router({"Targets": {"clock": 1}, "Match": {"QueryParameters": [{"Name": "v"}]}}),
            "Routers.time.Routes[0].Match.QueryParameters",
            "query parameters",
        ),
        (
            with_time_router({"Targets": {"clock": 1}, "Match": {"Prefix": "/api"}}),
            "Routers.time.Routes[0].Match.Prefix",
            "path prefixes",
        ),
        (
            with_time_router(
                {"Targets": {"clock": 1}, "Match": {"Prefix": "/a"}},
                {"Targets": {"clock": 1}, "Match": {"Prefix": "/b"}},
            ),
            "Routers.time.Routes",
            "has 2 routes",
        ),
    ],
)
def test_each_inexpressible_key_is_an_error_at_its_path(section: dict[str, Any], path: str, says: str) -> None:
    errors = errors_of(template(section, **THREE))
    matching = [error for error in errors if error.startswith(f"[{path}] ")]
    assert matching, errors
    assert says in matching[0]


def test_grpc_matches_are_errors() -> None:
    section = front_clock()
    section["Routers"] = {
        "time": {"Routes": [{"Targets": {"clock": 1}, "Match": {"ServiceName": "clock.v1.Clock", "MethodName": "Now"}}]}
    }
    section["Services"] = {"time": {"Router": "time"}}
    grpc = {"ContainerPort": 9090, "Name": "grpc", "AppProtocol": "grpc"}
    errors = errors_of(template(section, Frontend=[HTTP_8080], Clock=[grpc]))
    assert [path_of(error) for error in errors] == [
        "Routers.time.Routes[0].Match.ServiceName",
        "Routers.time.Routes[0].Match.MethodName",
    ]


def test_every_inexpressible_key_is_reported_at_once() -> None:
    section = with_time_router(
        {
            "Targets": {"clock": 9, "watch": 1},
            "Match": {"Headers": [{"Name": "x-canary", "Exact": "1"}]},
            "Retries": RETRIES,
        }
    )
    section["Mesh"] = {"Owner": "111122223333"}
    section["Envoy"] = {"LogLevel": "warning"}
    section["Nodes"]["clock"]["Listeners"] = [{"Port": 8080, "Protocol": "http", "HealthCheck": {"Path": "/"}}]
    errors = errors_of(template(section, **THREE))
    assert [path_of(error) for error in errors] == [
        "Mesh.Owner",
        "Envoy.LogLevel",
        "Nodes.clock.Listeners[0].HealthCheck",
        "Routers.time.Routes[0].Targets",
        "Routers.time.Routes[0].Match.Headers",
        "Routers.time.Routes[0].Retries",
    ]


def test_dns_nodes_are_errors() -> None:
    section = front_clock()
    section["Nodes"]["db"] = {"Hostname": "db.example.com", "Listeners": [{"Port": 5432, "Protocol": "tcp"}]}
    section["Nodes"]["old"] = {"Hostname": "old.example.com", "Listeners": [{"Port": 443, "Protocol": "tcp"}]}
    section["Nodes"]["frontend"]["Backends"] = ["time", "db"]
    section["Services"]["db"] = {"Node": "db"}
    errors = errors_of(template(section))
    assert [path_of(error) for error in errors] == ["Services.db.Node", "Nodes.old.Hostname"]
    assert "call its Hostname directly" in errors[0]


def test_an_existing_service_connect_configuration_is_an_error() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["ClockService"]["Properties"]["ServiceConnectConfiguration"] = {"Enabled": True}
    assert errors_of(fragment) == [
        "[Nodes.clock.Service] ECS service 'ClockService' already has a ServiceConnectConfiguration: the macro "
        "writes it (one that only says Enabled: false is replaced). Remove it; the section's AccessLog, "
        "Envoy.LogLevel, TestTraffic and IngressPort keys set what it could add."
    ]


def test_a_service_connect_configuration_that_only_turns_it_off_is_replaced() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["ClockService"]["Properties"]["ServiceConnectConfiguration"] = {"Enabled": False}
    assert config(resources(fragment), "ClockService")["Enabled"] is True


def test_a_discovery_name_that_a_cloud_map_service_of_the_template_has_is_an_error() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["TimeDiscovery"] = {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {"Name": "Time", "NamespaceId": {"Fn::GetAtt": ["PrivateNamespace", "Id"]}},
    }
    (error,) = errors_of(fragment)
    assert error.startswith("[Services.time] its Service Connect discovery name 'time' is the Name of ")
    assert "'TimeDiscovery'" in error


def test_a_cloud_map_service_of_another_namespace_does_not_clash() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["TimeDiscovery"] = {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {"Name": "time", "NamespaceId": "ns-0fedcba9876543210"},
    }
    assert "ServiceConnectConfiguration" in resources(fragment)["ClockService"]["Properties"]


def test_names_that_cannot_be_discovery_names_are_errors() -> None:
    section = front_clock()
    section["Nodes"]["frontend"]["Backends"] = ["Time"]
    section["Services"] = {"Time": {"Node": "clock"}}
    (error,) = errors_of(template(section))
    assert error.startswith("[Services.Time] 'Time' cannot be a Service Connect discovery name")


def test_two_services_on_one_port_are_two_entries_with_one_port_name() -> None:
    section = front_clock()
    section["Services"]["clock"] = {"Node": "clock"}
    entries = config(resources(template(section)), "ClockService")["Services"]
    assert [(item["PortName"], item["DiscoveryName"]) for item in entries] == [("http", "time"), ("http", "clock")]


def test_an_app_protocol_that_disagrees_with_the_listener_is_an_error() -> None:
    (error,) = errors_of(template(with_clock_listener(Protocol="grpc")))
    assert error.startswith("[Nodes.clock.Listeners[0].Protocol] is grpc, but the port mapping of port 8080")


def test_a_timeout_on_a_listener_no_service_publishes_is_an_error() -> None:
    section = front_clock()
    section["Nodes"]["frontend"]["Listeners"] = [{"Port": 8080, "Protocol": "http", "Timeout": {"Idle": "5m"}}]
    (error,) = errors_of(template(section))
    assert error.startswith("[Nodes.frontend.Listeners[0].Timeout] is on a listener that no service publishes")


def test_a_container_port_that_is_not_a_number_is_an_error_when_the_macro_must_name_a_port() -> None:
    section = with_clock_listener(Port=9090)
    mappings = [{"ContainerPort": {"Ref": "AppPort"}, "Protocol": "tcp"}]
    (error,) = errors_of(template(section, Frontend=[HTTP_8080], Clock=mappings))
    assert error.startswith(
        "[Resources.ClockTaskDefinition.Properties.ContainerDefinitions[0].PortMappings[0].ContainerPort] ContainerPort "
        "is a Ref to 'AppPort' (neither a parameter nor a resource), whose value is only known once CloudFormation "
        "deploys, and the macro needs it now"
    )


# -- what Service Connect accepts, with a word --------------------------------------------------------------------


def warnings_of(fragment: dict[str, Any], params: dict[str, Any] | None = None) -> list[str]:
    return run(fragment, params).warnings


def test_allow_all_is_accepted_silently_and_a_written_drop_all_gets_a_warning() -> None:
    assert warnings_of(template(front_clock(Mesh={"EgressFilter": "ALLOW_ALL"}))) == []
    assert warnings_of(template(front_clock())) == []
    (warning,) = warnings_of(template(front_clock(Mesh={"EgressFilter": "DROP_ALL"})))
    assert warning.startswith("[Mesh.EgressFilter] DROP_ALL: Service Connect does not filter egress; only the")


def test_a_mesh_name_gets_a_warning() -> None:
    (warning,) = warnings_of(template(front_clock(Mesh={"Name": "shop"})))
    assert warning.startswith("[Mesh.Name] is not used: Service Connect has no mesh to name")


def test_the_proxy_log_level_becomes_a_container_configuration() -> None:
    output = resources(template(front_clock(Envoy={"LogLevel": "info"})))
    assert config(output, "ClockService")["ContainerConfigurations"] == [{"LogLevel": "info"}]
    assert "ContainerConfigurations" not in config(resources(template(front_clock())), "ClockService")


@pytest.mark.parametrize(
    ("log", "warned"),
    [
        ({"LogDriver": "splunk", "Options": {"splunk-url": "https://splunk.example.com"}}, "the log driver 'splunk'"),
        ({"LogDriver": "awslogs", "Options": {"awslogs-region": "us-east-1"}}, "awslogs without an awslogs-group"),
    ],
)
def test_a_log_configuration_the_proxy_cannot_take_gets_a_warning(log: dict[str, Any], warned: str) -> None:
    fragment = template(front_clock())
    fragment["Resources"]["ClockTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"] = log
    result = run(fragment)
    (warning,) = result.warnings
    assert warning.startswith(f"[Nodes.clock] container 'app' logs with {warned}; the macro passes only awslogs")
    clock = config(result.fragment["Resources"], "ClockService")
    assert "LogConfiguration" not in clock and "AccessLogConfiguration" not in clock


def test_a_written_access_log_on_a_container_without_logs_gets_a_warning() -> None:
    fragment = template(front_clock(AccessLog={"Format": "Json"}), Frontend=[HTTP_8080], Clock=[HTTP_8080])
    del fragment["Resources"]["ClockTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]
    (warning,) = warnings_of(fragment)
    assert warning.startswith("[Nodes.clock] gets no access log: Service Connect writes it to the proxy's log")
    del fragment[SECTION_KEY]["AccessLog"]
    assert warnings_of(fragment) == []  # not asked for: the app itself does not log


def test_test_traffic_outside_a_blue_green_linear_or_canary_deployment_gets_a_warning() -> None:
    section = front_clock()
    section["Services"]["time"]["TestTraffic"] = {"Header": "x-canary", "Exact": "1"}
    (warning,) = warnings_of(template(section))
    assert warning.startswith("[Services.time.TestTraffic] applies only during blue/green, linear or canary")
    assert "DeploymentConfiguration.Strategy is not set" in warning


def test_bridge_mode_edges_get_a_warning_instead_of_ingress_rules() -> None:
    fragment = template(front_clock())
    clock = fragment["Resources"]["ClockTaskDefinition"]["Properties"]
    clock.update(NetworkMode="bridge", RequiresCompatibilities=["EC2"])
    del fragment["Resources"]["ClockService"]["Properties"]["NetworkConfiguration"]
    fragment["Resources"]["ClockService"]["Properties"]["LaunchType"] = "EC2"
    result = run(fragment)
    (warning,) = result.warnings
    assert warning.startswith("[Nodes.frontend] calls node 'clock', but 'clock' runs in bridge mode")
    added = [key for key in result.fragment["Resources"] if key not in fragment["Resources"]]
    assert added == []


def test_a_port_the_app_maps_through_a_parameter_is_found_and_kept_as_written() -> None:
    mapping = {"ContainerPort": {"Ref": "AppPort"}, "Protocol": "tcp", "Name": "http", "AppProtocol": "http"}
    fragment = template(front_clock(), Frontend=[HTTP_8080], Clock=[mapping])
    fragment["Parameters"] = {"AppPort": {"Type": "Number", "Default": 8080}}
    output = expand(fragment, Context(template_parameter_values={"AppPort": "8080"})).fragment["Resources"]
    assert app_mappings(output, "Clock") == [mapping]
    assert config(output, "ClockService")["Services"][0]["PortName"] == "http"


def test_an_http_namespace_is_taken_when_it_is_the_only_namespace() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["PrivateNamespace"]["Type"] = "AWS::ServiceDiscovery::HttpNamespace"
    del fragment["Resources"]["PrivateNamespace"]["Properties"]["Vpc"]
    assert config(resources(fragment), "ClockService")["Namespace"] == {"Fn::GetAtt": ["PrivateNamespace", "Arn"]}
    fragment[SECTION_KEY]["Backend"] = "AppMesh"
    (error,) = errors_of(fragment)
    assert error.startswith("[Namespace] is required: Resources has no AWS::ServiceDiscovery::PrivateDnsNamespace")


def test_a_namespace_needs_exactly_one_of_id_and_arn() -> None:
    both = {"Id": "ns-0123456789abcdef0", "Arn": "arn:aws:servicediscovery:::namespace/ns-1", "Name": "corp.internal"}
    assert errors_of(template(front_clock(Namespace=both))) == [
        "[Namespace] needs exactly one of Id or Arn; found Id and Arn."
    ]


def test_a_template_cloud_map_service_in_the_namespace_by_dns_config_clashes_too() -> None:
    fragment = template(front_clock())
    fragment["Resources"]["TimeDiscovery"] = {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {
            "Name": "time",
            "DnsConfig": {"NamespaceId": {"Ref": "PrivateNamespace"}, "DnsRecords": [{"Type": "A", "TTL": 10}]},
        },
    }
    (error,) = errors_of(fragment)
    assert "'TimeDiscovery'" in error


def test_an_ingress_port_on_a_listener_no_service_publishes_is_an_error() -> None:
    section = front_clock()
    section["Nodes"]["frontend"]["Listeners"] = [{"Port": 8080, "Protocol": "http", "IngressPort": 15000}]
    (error,) = errors_of(template(section))
    assert error.startswith("[Nodes.frontend.Listeners[0].IngressPort] is on a listener that no service publishes")


def test_port_naming_is_linear_in_the_number_of_ports() -> None:
    """6,000 listeners on one container: each port is found and named through one index, not by scanning."""
    ports = range(10000, 16000)
    mappings = [{"ContainerPort": port, "Protocol": "tcp"} for port in ports]
    section = {
        "Nodes": {
            "frontend": {"Service": "FrontendService", "Backends": ["many"]},
            "clock": {"Service": "ClockService"},
        },
        "Services": {"many": {"Node": "clock"}},
    }
    fragment = template(section, Frontend=[HTTP_8080], Clock=mappings)
    result = expand(fragment, Context(params={}, check_quotas=False))
    names = [item["Name"] for item in app_mappings(result.fragment["Resources"], "Clock")]
    assert names == [f"tcp-{port}" for port in ports]
