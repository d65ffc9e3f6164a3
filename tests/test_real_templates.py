"""Templates as people write them, read as CloudFormation will deploy them (SPEC §7), on both backends.

Regression tests for the reading of the user's values: bad PortMappings and ContainerPort values are
validation errors at their path (never internal errors), conditional security groups are evaluated, and
containers, roles and registries written with parameters or ``Fn::If`` work.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from composex_mesh import SECTION_KEY
from composex_mesh.errors import InvalidSectionError
from composex_mesh.transform import Context, ExpandResult, expand

BACKENDS = ("AppMesh", "ServiceConnect")
NO_VALUE = {"Ref": "AWS::NoValue"}


def template(backend: str = "AppMesh") -> dict[str, Any]:
    """Two Fargate services, ``web`` calling ``api``, each with its security group; a namespace."""
    resources: dict[str, Any] = {
        "Namespace": {
            "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
            "Properties": {"Name": "corp.internal", "Vpc": "vpc-1"},
        }
    }
    for stem in ("Web", "Api"):
        resources[f"{stem}Task"] = {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": stem.lower(),
                "Cpu": "256",
                "Memory": "512",
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "ContainerDefinitions": [
                    {
                        "Name": "app",
                        "Image": "public.ecr.aws/nginx/nginx:1.27",
                        "PortMappings": [{"ContainerPort": 8080, "Protocol": "tcp", "AppProtocol": "http"}],
                    }
                ],
            },
        }
        resources[f"{stem}Sg"] = {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": stem, "VpcId": "vpc-1"},
        }
        resources[f"{stem}Service"] = {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": "default",
                "TaskDefinition": {"Ref": f"{stem}Task"},
                "LaunchType": "FARGATE",
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "Subnets": ["subnet-1"],
                        "SecurityGroups": [{"Fn::GetAtt": [f"{stem}Sg", "GroupId"]}],
                    }
                },
            },
        }
    return {
        "Parameters": {
            "Env": {"Type": "String", "Default": "prod"},
            "Port": {"Type": "Number", "Default": "8080"},
            "ContainerName": {"Type": "String", "Default": "api"},
        },
        "Conditions": {
            "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
            "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        },
        SECTION_KEY: {
            "Backend": backend,
            "Nodes": {"web": {"Service": "WebService", "Backends": ["api"]}, "api": {"Service": "ApiService"}},
            "Services": {"api": {"Node": "api"}},
        },
        "Resources": resources,
    }


VALUES = {"Env": "prod", "Port": "8080", "ContainerName": "api"}


def run(fragment: dict[str, Any], values: dict[str, Any] | None = None) -> ExpandResult:
    return expand(fragment, Context(template_parameter_values=VALUES if values is None else values))


def errors_of(fragment: dict[str, Any], values: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(InvalidSectionError) as caught:
        run(fragment, values)
    return [str(error) for error in caught.value.errors]


def api_container(fragment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = fragment["Resources"]["ApiTask"]["Properties"]["ContainerDefinitions"][0]
    return container


MAPPINGS_PATH = "Resources.ApiTask.Properties.ContainerDefinitions[0].PortMappings"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ({"Ref": "Port"}, "a value that is not a list"),
        ({}, "a mapping"),
        (None, "null"),
        ("8080", "'8080'"),
        (8080, "8080"),
        (True, "true"),
        ({"Fn::If": ["IsProd", "8080", []]}, "'8080'"),  # the taken branch
    ],
)
def test_port_mappings_that_are_not_a_list_are_validation_errors(backend: str, written: Any, shown: str) -> None:
    fragment = template(backend)
    api_container(fragment)["PortMappings"] = written
    assert errors_of(fragment) == [
        f"[{MAPPINGS_PATH}] must be a list of port mappings ({{ContainerPort: 8080}}), not {shown}: write the list "
        "itself (Fn::If on the list or on its items is fine)."
    ]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("port", "shown"),
    [("²", "'²'"), ("8080①", "'8080①'"), (0, "0"), (True, "true"), (-1, "-1"), (70000, "70000"), ("", "''")],
)
def test_bad_container_ports_are_validation_errors_naming_container_port(backend: str, port: Any, shown: str) -> None:
    fragment = template(backend)
    api_container(fragment)["PortMappings"] = [{"ContainerPort": port}]
    assert errors_of(fragment) == [
        f"[{MAPPINGS_PATH}[0].ContainerPort] must be a port number from 1 to 65535, not {shown}."
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_container_port_that_cannot_be_known_says_what_to_write(backend: str) -> None:
    fragment = template(backend)
    api_container(fragment)["PortMappings"] = [{"ContainerPort": {"Fn::ImportValue": "ApiPort"}}]
    assert errors_of(fragment) == [
        f"[{MAPPINGS_PATH}[0].ContainerPort] ContainerPort is a Fn::ImportValue, whose value is only known once "
        "CloudFormation deploys, and the macro needs it now: write the port number, or !Ref a parameter."
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_container_port_from_a_parameter_is_read(backend: str) -> None:
    fragment = template(backend)
    api_container(fragment)["PortMappings"] = [{"ContainerPort": {"Ref": "Port"}, "AppProtocol": "http"}]
    output = run(fragment, {**VALUES, "Port": "9090"}).fragment
    ingress = [r for r in output["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert [(rule["Properties"]["FromPort"], rule["Properties"]["ToPort"]) for rule in ingress] == [(9090, 9090)]
    # The user's own value is passed on as written.
    assert api_container(output["Resources"] and output)["PortMappings"][0]["ContainerPort"] == {"Ref": "Port"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_security_group_written_with_fn_if_is_evaluated(backend: str) -> None:
    fragment = template(backend)
    groups = fragment["Resources"]["WebService"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    groups["SecurityGroups"] = [
        {"Fn::If": ["IsProd", {"Ref": "WebSg"}, NO_VALUE]},
        {"Fn::If": ["IsDev", "sg-dev", NO_VALUE]},
    ]
    output = run(fragment).fragment
    sources = [
        r["Properties"]["SourceSecurityGroupId"]
        for r in output["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    assert sources == [{"Fn::GetAtt": ["WebSg", "GroupId"]}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_security_group_of_a_resource_that_does_not_exist_is_an_error(backend: str) -> None:
    fragment = template(backend)
    fragment["Resources"]["WebSg"]["Condition"] = "IsDev"
    assert errors_of(fragment) == [
        "[Resources.WebService.Properties.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups[0]] names "
        "security group 'WebSg', which has Condition 'IsDev', which is false in this deploy: guard it with the same "
        "Condition (!If [IsDev, !Ref WebSg, !Ref AWS::NoValue])."
    ]


def test_a_conditional_dns_node_security_group_is_left_out_with_a_warning() -> None:
    fragment = template()
    fragment["Resources"]["DbSg"] = {
        "Type": "AWS::EC2::SecurityGroup",
        "Condition": "IsDev",
        "Properties": {"GroupDescription": "db", "VpcId": "vpc-1"},
    }
    section = fragment[SECTION_KEY]
    section["Nodes"]["db"] = {
        "Hostname": "db.corp.internal",
        "Listeners": [{"Port": 5432, "Protocol": "tcp"}],
        "SecurityGroups": ["DbSg", {"Fn::If": ["IsProd", "sg-0123", NO_VALUE]}],
    }
    section["Nodes"]["web"]["Backends"] = ["api", "db"]
    section["Services"]["db"] = {"Node": "db"}
    result = run(fragment)
    assert (
        "[Nodes.db.SecurityGroups[0]] security group 'DbSg' has Condition 'IsDev', which is false in this deploy: "
        "no ingress rules are made to it." in result.warnings
    )
    text = json.dumps(result.fragment)
    assert '"GroupId": "sg-0123"' in text and "DbSg" not in text.replace('"DbSg": {', "")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conditional_namespace_that_is_false_is_an_error(backend: str) -> None:
    fragment = template(backend)
    fragment["Resources"]["Namespace"]["Condition"] = "IsDev"
    assert errors_of(fragment) == [
        "[Namespace] is required: Resources has no AWS::ServiceDiscovery::PrivateDnsNamespace (Namespace has a "
        "Condition that is false in this deploy). Add one, or give {Id, Name} of one made elsewhere."
    ]
    fragment[SECTION_KEY]["Namespace"] = "Namespace"
    assert errors_of(fragment) == [
        "[Namespace] 'Namespace' has Condition 'IsDev', which is false in this deploy: it does not exist. Make it "
        "unconditional, or name another."
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_containers_named_from_parameters_and_optional_sidecars(backend: str) -> None:
    fragment = template(backend)
    task = fragment["Resources"]["ApiTask"]["Properties"]
    task["ContainerDefinitions"][0]["Name"] = {"Ref": "ContainerName"}
    task["ContainerDefinitions"].insert(0, {"Fn::If": ["IsDev", {"Name": "debug", "Image": "busybox"}, NO_VALUE]})
    fragment[SECTION_KEY]["Nodes"]["api"]["Container"] = "api"
    output = run(fragment).fragment
    containers = output["Resources"]["ApiTask"]["Properties"]["ContainerDefinitions"]
    assert containers[0] == {"Fn::If": ["IsDev", {"Name": "debug", "Image": "busybox"}, NO_VALUE]}  # untouched
    assert containers[1]["Name"] == {"Ref": "ContainerName"}
    if backend == "AppMesh":
        assert containers[1]["DependsOn"] == [{"ContainerName": "envoy", "Condition": "HEALTHY"}]
    else:
        assert containers[1]["PortMappings"][0]["Name"] == "http-8080"


def test_a_task_role_written_with_fn_if_no_value_gets_one_made() -> None:
    fragment = template()
    fragment["Resources"]["Role"] = {"Type": "AWS::IAM::Role", "Condition": "IsDev", "Properties": {}}
    task = fragment["Resources"]["ApiTask"]["Properties"]
    task["TaskRoleArn"] = {"Fn::If": ["IsDev", {"Fn::GetAtt": ["Role", "Arn"]}, NO_VALUE]}
    result = run(fragment)
    patched = result.fragment["Resources"]["ApiTask"]["Properties"]
    assert patched["TaskRoleArn"] == {"Fn::GetAtt": ["ApiTaskRole", "Arn"]}
    assert result.fragment["Resources"]["ApiEnvoyPolicy"]["Properties"]["Roles"] == [{"Ref": "ApiTaskRole"}]
    assert not [warning for warning in result.warnings if "task role" in warning]


def test_service_registries_written_with_fn_if() -> None:
    fragment = template()
    fragment["Resources"]["ApiDiscovery"] = {
        "Type": "AWS::ServiceDiscovery::Service",
        "Properties": {"Name": "api", "DnsConfig": {"NamespaceId": {"Ref": "Namespace"}, "DnsRecords": []}},
    }
    service = fragment["Resources"]["ApiService"]["Properties"]
    service["ServiceRegistries"] = {
        "Fn::If": ["IsProd", [{"RegistryArn": {"Fn::GetAtt": ["ApiDiscovery", "Arn"]}}], NO_VALUE]
    }
    output = run(fragment).fragment
    node = output["Resources"]["ApiVirtualNode"]["Properties"]["Spec"]["ServiceDiscovery"]["AWSCloudMap"]
    assert node["ServiceName"] == {"Fn::GetAtt": ["ApiDiscovery", "Name"]}
    assert "ApiFakeCloudMapService" not in output["Resources"]  # the real Cloud Map service answers the name
    dev = run(copy.deepcopy(fragment), {**VALUES, "Env": "dev"}).fragment
    assert dev["Resources"]["ApiService"]["Properties"]["ServiceRegistries"] == [
        {"RegistryArn": {"Fn::GetAtt": ["ApiCloudMapService", "Arn"]}}
    ]


def test_section_values_read_through_the_template() -> None:
    fragment = template()
    fragment[SECTION_KEY]["Nodes"]["api"]["Listeners"] = [
        {"Port": {"Ref": "Port"}, "Protocol": {"Fn::If": ["IsProd", "http", "tcp"]}},
    ]
    output = run(fragment, {**VALUES, "Port": "8080"}).fragment
    listener = output["Resources"]["ApiVirtualNode"]["Properties"]["Spec"]["Listeners"][0]
    assert listener["PortMapping"] == {"Port": 8080, "Protocol": "http"}


def test_a_section_value_that_cannot_be_known_says_so() -> None:
    fragment = template()
    fragment[SECTION_KEY]["Nodes"]["api"]["Listeners"] = [{"Port": {"Fn::ImportValue": "P"}, "Protocol": "http"}]
    assert errors_of(fragment) == [
        "[Nodes.api.Listeners[0].Port] is a Fn::ImportValue, whose value is only known once CloudFormation deploys, "
        "and the macro needs its value now: write it literally."
    ]


def test_a_parameter_without_value_or_default_says_to_pass_it() -> None:
    fragment = template()
    api_container(fragment)["PortMappings"] = [{"ContainerPort": {"Ref": "Port"}}]
    values = {key: value for key, value in VALUES.items() if key != "Port"}
    assert errors_of(fragment, values) == [
        f"[{MAPPINGS_PATH}[0].ContainerPort] ContainerPort uses parameter 'Port', which has no value: pass "
        "--parameter Port=VALUE (or give the parameter a Default), and the macro needs it now: write "
        "the port number, or !Ref a parameter."
    ]


def test_independent_problems_of_a_node_and_of_the_template_come_at_once() -> None:
    fragment = template()
    fragment[SECTION_KEY]["Nodes"]["api"] = {
        "Service": "ApiService",
        "Container": "nope",
        "Listeners": [{"Port": 70000, "Protocol": "http"}],
        "Backends": ["missing"],
    }
    fragment["Resources"]["WebTask"]["Properties"]["ContainerDefinitions"][0]["PortMappings"] = [{"ContainerPort": "²"}]
    assert errors_of(fragment) == [
        "[Nodes.api.Listeners[0].Port] 70000 is out of range: it must be from 1 to 65535.",
        "[Nodes.api.Backends[0]] 'missing' is not a service under Services.",
        "[Resources.WebTask.Properties.ContainerDefinitions[0].PortMappings[0].ContainerPort] must be a port number "
        "from 1 to 65535, not '²'.",
        "[Nodes.api.Container] 'nope' is not a container of task definition 'ApiTask' in this deploy (app).",
    ]


def test_the_items_after_a_broken_list_item_are_still_checked_at_their_own_indexes() -> None:
    fragment = template()
    fragment[SECTION_KEY]["Nodes"]["api"]["Listeners"] = [
        {"Port": 70000, "Protocol": "http"},
        {"Port": 9000, "Protocol": "tcp", "HealthCheck": {"Path": "/health"}},
        {"Port": 9000, "Protocol": "tcp"},
    ]
    fragment[SECTION_KEY]["Nodes"]["web"]["Backends"] = [5, "api", "api"]
    assert errors_of(fragment) == [
        "[Nodes.web.Backends[0]] must be a non-empty string, not 5.",
        "[Nodes.api.Listeners[0].Port] 70000 is out of range: it must be from 1 to 65535.",
        "[Nodes.web.Backends[2]] 'api' is listed twice.",
        "[Nodes.api.Listeners[1].HealthCheck.Path] is for http and http2 health checks, not tcp.",
        "[Nodes.api.Listeners[2].Port] 9000 is already a listener port of this node.",
    ]


def _routed(listener: dict[str, Any]) -> dict[str, Any]:
    fragment = template()
    section = fragment[SECTION_KEY]
    section["Nodes"]["api"]["Listeners"] = [listener]
    section["Routers"] = {"api": {"Routes": [{"Targets": {"api": 1}, "Timeout": {"PerRequest": "30s"}}]}}
    section["Services"]["api"] = {"Router": "api"}
    return fragment


def test_a_listener_without_a_timeout_gets_the_longer_route_timeout() -> None:
    output = run(_routed({"Port": 8080, "Protocol": "http"})).fragment
    listener = output["Resources"]["ApiVirtualNode"]["Properties"]["Spec"]["Listeners"][0]
    assert listener["Timeout"] == {"HTTP": {"PerRequest": {"Unit": "s", "Value": 30}}}


def test_a_listener_with_a_shorter_timeout_keeps_it_with_a_warning() -> None:
    result = run(_routed({"Port": 8080, "Protocol": "http", "Timeout": {"PerRequest": "5s"}}))
    listener = result.fragment["Resources"]["ApiVirtualNode"]["Properties"]["Spec"]["Listeners"][0]
    assert listener["Timeout"] == {"HTTP": {"PerRequest": {"Unit": "s", "Value": 5}}}
    assert (
        "[Nodes.api.Listeners[0]] its PerRequest timeout 5s is shorter than the 30s of Routers.api.Routes[0], which "
        "targets it: requests are cut after 5s." in result.warnings
    )


def test_an_external_service_is_a_backend_whose_groups_let_the_consumers_in() -> None:
    for backend in (*BACKENDS, "VpcLattice"):
        fragment = template(backend)
        fragment[SECTION_KEY]["Nodes"]["web"]["Backends"] = ["api", "pay"]
        fragment[SECTION_KEY]["Services"]["pay"] = {
            "External": {"DnsName": "pay.corp.internal", "Port": 8443, "SecurityGroups": [{"Fn::ImportValue": "PaySg"}]}
        }
        output = run(fragment).fragment["Resources"]
        rule = output["WebToPayPort8443Ingress"]["Properties"]
        assert (rule["GroupId"], rule["FromPort"]) == ({"Fn::ImportValue": "PaySg"}, 8443)
        assert not [key for key in output if key.startswith("Pay")]  # nothing is made for it
        if backend == "AppMesh":
            backends = output["WebVirtualNode"]["Properties"]["Spec"]["Backends"]
            assert {"VirtualService": {"VirtualServiceName": "pay.corp.internal"}} in backends


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_external_backend_with_tls_in_the_section(backend: str) -> None:
    fragment = template(backend)
    fragment[SECTION_KEY]["Tls"] = {
        "CertificateAuthority": "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/"
        "11111111-2222-3333-4444-555555555555"
    }
    fragment[SECTION_KEY]["Nodes"]["web"]["Backends"] = ["api", "pay"]
    fragment[SECTION_KEY]["Services"]["pay"] = {"External": {"DnsName": "pay.corp.internal", "Port": 8443}}
    output = run(fragment).fragment["Resources"]
    if backend == "AppMesh":
        backends = output["WebVirtualNode"]["Properties"]["Spec"]["Backends"]
        assert {"VirtualService": {"VirtualServiceName": "pay.corp.internal"}} in backends  # no client policy
