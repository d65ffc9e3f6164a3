"""``Backend: VpcLattice`` (SPEC §8) through the Lambda handler, as the issue's acceptance states it.

The quickstart event (``sam/events/lattice.json``): the 3:1 weights and the ``GET /`` match arrive in one rule,
each target group is registered by its ECS service under a named port mapping, and the name the clients call
resolves (Cloud Map CNAME) to the Lattice service. Plus the names the backend makes for listeners and rules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from composex_mesh import handler
from composex_mesh.backends.vpclattice import lattice_name
from tests.golden import case_names, output_path
from tests.lint import lint_errors

EVENTS = Path(__file__).resolve().parent.parent / "sam" / "events"
# CloudFormation's patterns (cfn-lint's schemas of AWS::VpcLattice::Listener and ::Rule), 3 to 63 characters.
LISTENER_NAME = re.compile(r"^(?!listener-)(?![-])(?!.*[-]$)(?!.*[-]{2})[a-z0-9-]{3,63}$")
RULE_NAME = re.compile(r"^(?!rule-)(?![-])(?!.*[-]$)(?!.*[-]{2})[a-z0-9-]{3,63}$")


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    event = json.loads((EVENTS / "lattice.json").read_text(encoding="utf-8"))
    answer = handler.lambda_handler(event, None)
    assert answer["status"] == "success", answer.get("errorMessage")
    fragment: dict[str, Any] = answer["fragment"]
    return fragment


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {key: value for key, value in resources.items() if value["Type"] == kind}


def test_the_quickstart_is_lint_clean(expanded: dict[str, Any]) -> None:
    assert lint_errors(expanded) == []


def test_weights_and_match_arrive_in_one_rule(expanded: dict[str, Any]) -> None:
    resources = expanded["Resources"]
    (rule,) = _of_type(resources, "AWS::VpcLattice::Rule").values()
    properties = rule["Properties"]
    assert properties["Match"] == {
        "HttpMatch": {"PathMatch": {"Match": {"Prefix": "/"}, "CaseSensitive": True}, "Method": "GET"}
    }
    weights = {
        group["TargetGroupIdentifier"]["Fn::GetAtt"][0]: group["Weight"]
        for group in properties["Action"]["Forward"]["TargetGroups"]
    }
    assert weights == {"TimeClockPort8080TargetGroup": 3, "TimeWatchPort8080TargetGroup": 1}
    (listener,) = _of_type(resources, "AWS::VpcLattice::Listener").values()
    assert listener["Properties"]["DefaultAction"] == {"FixedResponse": {"StatusCode": 404}}
    assert properties["ListenerIdentifier"] == {"Fn::GetAtt": ["TimePort8080Listener", "Arn"]}


def test_each_target_group_is_registered_by_its_ecs_service_with_a_named_port(expanded: dict[str, Any]) -> None:
    resources = expanded["Resources"]
    registered: dict[str, str] = {}
    for service_id, service in _of_type(resources, "AWS::ECS::Service").items():
        task_id = service["Properties"]["TaskDefinition"]["Ref"]
        names = {
            mapping.get("Name")
            for container in resources[task_id]["Properties"]["ContainerDefinitions"]
            for mapping in container.get("PortMappings", [])
        }
        for entry in service["Properties"].get("VpcLatticeConfigurations", []):
            assert entry["PortName"] in names, f"{service_id}: port {entry['PortName']} is not a named port mapping"
            assert entry["RoleArn"] == {"Fn::GetAtt": ["LatticeInfrastructureRole", "Arn"]}
            registered[entry["TargetGroupArn"]["Fn::GetAtt"][0]] = service_id
    assert registered == {
        "TimeClockPort8080TargetGroup": "ClockService",
        "TimeWatchPort8080TargetGroup": "WatchService",
    }
    for group_id in _of_type(resources, "AWS::VpcLattice::TargetGroup"):
        assert group_id in registered, f"{group_id} is registered by no ECS service"


def test_the_name_the_clients_call_resolves_to_the_lattice_service(expanded: dict[str, Any]) -> None:
    resources = expanded["Resources"]
    (service,) = _of_type(resources, "AWS::VpcLattice::Service").values()
    assert service["Properties"]["CustomDomainName"] == "time.mesh.internal"
    (cloud_map,) = [
        (key, value)
        for key, value in _of_type(resources, "AWS::ServiceDiscovery::Service").items()
        if value["Properties"]["Name"] == "time"
    ]
    assert cloud_map[1]["Properties"]["NamespaceId"] == {"Fn::GetAtt": ["PrivateNamespace", "Id"]}
    assert cloud_map[1]["Properties"]["DnsConfig"]["DnsRecords"] == [{"Type": "CNAME", "TTL": 60}]
    (instance,) = _of_type(resources, "AWS::ServiceDiscovery::Instance").values()
    assert instance["Properties"]["ServiceId"] == {"Ref": cloud_map[0]}
    target = instance["Properties"]["InstanceAttributes"]["AWS_INSTANCE_CNAME"]
    assert target == {"Fn::GetAtt": ["TimeLatticeService", "DnsEntry.DomainName"]}


def test_lattice_reaches_the_providers_and_the_consumer_reaches_lattice(expanded: dict[str, Any]) -> None:
    rules = [
        value["Properties"] for value in _of_type(expanded["Resources"], "AWS::EC2::SecurityGroupIngress").values()
    ]
    from_lattice = sorted(
        rule["GroupId"]["Fn::GetAtt"][0] for rule in rules if rule.get("CidrIp") == "169.254.171.0/24"
    )
    assert from_lattice == ["ClockSecurityGroup", "WatchSecurityGroup"]
    (to_lattice,) = [rule for rule in rules if "SourceSecurityGroupId" in rule]
    assert to_lattice["GroupId"] == {"Fn::GetAtt": ["LatticeClientsSecurityGroup", "GroupId"]}
    assert to_lattice["SourceSecurityGroupId"] == {"Fn::GetAtt": ["FrontendSecurityGroup", "GroupId"]}
    assert all(rule["FromPort"] == rule["ToPort"] == 8080 for rule in rules)


@pytest.mark.parametrize(
    ("text", "reserved", "expected"),
    [
        ("time-8080", "listener-", "time-8080"),
        ("Orders_V2-route-1", "rule-", "orders-v2-route-1"),
        ("a--b__c-route-3", "rule-", "a-b-c-route-3"),
        ("rule-route-1", "rule-", "cxm-rule-route-1"),
        ("x", "rule-", "cxm-x"),
    ],
)
def test_lattice_names_are_readable(text: str, reserved: str, expected: str) -> None:
    assert lattice_name(text, reserved) == expected


def test_long_lattice_names_are_shortened_with_a_stable_hash() -> None:
    long = "a" * 200 + "-route-1"
    other = "a" * 200 + "-route-2"
    name = lattice_name(long, "rule-")
    assert name == lattice_name(long, "rule-")
    assert len(name) == 63 and RULE_NAME.match(name)
    assert name != lattice_name(other, "rule-")


LATTICE_CASES = [case for case in case_names() if case.startswith("lattice_")]


@pytest.mark.parametrize("case", LATTICE_CASES)
def test_generated_listener_and_rule_names_fit_lattice(case: str) -> None:
    resources = json.loads(output_path(case).read_text(encoding="utf-8"))["Resources"]
    for kind, pattern in (("AWS::VpcLattice::Listener", LISTENER_NAME), ("AWS::VpcLattice::Rule", RULE_NAME)):
        for logical_id, resource in _of_type(resources, kind).items():
            assert pattern.match(resource["Properties"]["Name"]), f"{case} {logical_id}"
    for kind in ("AWS::VpcLattice::Service", "AWS::VpcLattice::TargetGroup"):
        for logical_id, resource in _of_type(resources, kind).items():
            assert "Name" not in resource["Properties"], f"{case} {logical_id}: CloudFormation names it"
