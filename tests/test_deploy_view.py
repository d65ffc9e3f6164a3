"""The CloudFormation-semantics layer: the template as this deploy sees it (SPEC §7)."""

from __future__ import annotations

from typing import Any

import pytest

from composex_mesh.deploy_view import NO_VALUE, DeployView, Unknown, partition_of, url_suffix_of
from composex_mesh.errors import ErrorCollector

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Env": {"Type": "String", "Default": "prod"},
        "Port": {"Type": "Number"},
        "Secret": {"Type": "String", "NoEcho": True},
        "Subnets": {"Type": "CommaDelimitedList"},
        "Unset": {"Type": "String"},
    },
    "Mappings": {"Ports": {"prod": {"web": 8080}, "dev": {"web": 3000}}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        "ProdInEu": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}]},
        "EuOrDev": {"Fn::Or": [{"Condition": "ProdInEu"}, {"Condition": "IsDev"}]},
        "NeedsUnset": {"Fn::Equals": [{"Ref": "Unset"}, "x"]},
        "Loop": {"Fn::Not": [{"Condition": "Loop"}]},
        "OnStackName": {"Fn::Equals": [{"Ref": "AWS::StackName"}, "x"]},
    },
    "Resources": {
        "Always": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "a"}},
        "ProdOnly": {"Type": "AWS::EC2::SecurityGroup", "Condition": "IsProd", "Properties": {}},
        "DevOnly": {"Type": "AWS::EC2::SecurityGroup", "Condition": "IsDev", "Properties": {}},
    },
}
VALUES = {"Env": "prod", "Port": "8080", "Secret": "hunter2", "Subnets": ["subnet-1", "subnet-2"]}


def view(values: dict[str, Any] | None = None, region: str = "eu-west-1") -> tuple[DeployView, ErrorCollector]:
    errors = ErrorCollector()
    return DeployView(TEMPLATE, VALUES if values is None else values, region, "111122223333", errors), errors


@pytest.mark.parametrize(
    ("name", "expected"),
    [("IsProd", True), ("IsDev", False), ("ProdInEu", True), ("EuOrDev", True)],
)
def test_conditions_are_evaluated(name: str, expected: bool) -> None:
    deploy, errors = view()
    assert deploy.condition(name) is expected
    assert not errors


def test_conditions_follow_the_parameter_values() -> None:
    deploy, _ = view({**VALUES, "Env": "dev"}, region="us-east-1")
    assert (deploy.condition("IsProd"), deploy.condition("IsDev"), deploy.condition("ProdInEu")) == (False, True, False)


def test_resources_with_a_false_condition_do_not_exist() -> None:
    deploy, errors = view()
    assert "Always" in deploy.resources and "ProdOnly" in deploy.resources
    assert "DevOnly" not in deploy.resources
    assert deploy.absent_reason("DevOnly") == "has Condition 'IsDev', which is false in this deploy"
    assert deploy.absent_reason("ProdOnly") is None
    assert deploy.of_type("AWS::EC2::SecurityGroup") == ["Always", "ProdOnly"]
    assert not errors


def test_a_condition_is_only_evaluated_when_read() -> None:
    deploy, errors = view()
    assert "Always" in deploy.resources
    assert not errors  # NeedsUnset, Loop and OnStackName are never read


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "NeedsUnset",
            "cannot be evaluated: it uses parameter 'Unset', which has no value: pass "
            "--parameter Unset=VALUE (or give the parameter a Default).",
        ),
        (
            "Loop",
            "cannot be evaluated: it refers to itself (Loop -> Loop); CloudFormation rejects circular conditions.",
        ),
        (
            "OnStackName",
            "cannot be evaluated: it is a Ref to AWS::StackName, whose value is only known once CloudFormation deploys.",
        ),
    ],
)
def test_a_condition_that_cannot_be_evaluated_is_an_error(name: str, message: str) -> None:
    deploy, errors = view()
    assert deploy.condition(name) is False
    assert [(error.path, error.message) for error in errors.errors] == [(f"Conditions.{name}", message)]


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [
        ("us-east-1", "aws", "amazonaws.com"),
        ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
        ("cn-northwest-1", "aws-cn", "amazonaws.com.cn"),
        ("us-gov-west-1", "aws-us-gov", "amazonaws.com"),
        ("us-iso-east-1", "aws-iso", "c2s.ic.gov"),
        ("us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"),
    ],
)
def test_pseudo_parameters(region: str, partition: str, suffix: str) -> None:
    assert (partition_of(region), url_suffix_of(region)) == (partition, suffix)
    deploy, _ = view(region=region)
    value = {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:x/${AWS::URLSuffix}"}
    assert deploy.known(value) == f"arn:{partition}:ecs:{region}:111122223333:x/{suffix}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Port"}, "8080"),
        ({"Ref": "Subnets"}, ["subnet-1", "subnet-2"]),
        ({"Fn::If": ["IsProd", 1, 2]}, 1),
        ({"Fn::If": ["IsDev", 1, {"Ref": "AWS::NoValue"}]}, NO_VALUE),
        ({"Fn::Sub": "${Env}-web"}, "prod-web"),
        ({"Fn::Sub": ["${Name}.${Env}", {"Name": {"Fn::Join": ["-", ["a", "b"]]}}]}, "a-b.prod"),
        ({"Fn::Sub": "${!Literal}-${Env}"}, "${Literal}-prod"),
        ({"Fn::Join": [",", {"Ref": "Subnets"}]}, "subnet-1,subnet-2"),
        ({"Fn::Select": ["1", {"Ref": "Subnets"}]}, "subnet-2"),
        ({"Fn::Select": [0, {"Fn::Split": [".", "web.corp.internal"]}]}, "web"),
        ({"Fn::FindInMap": ["Ports", {"Ref": "Env"}, "web"]}, 8080),
        ({"Fn::FindInMap": ["Ports", "test", "web", {"DefaultValue": 9000}]}, 9000),
        ([1, {"Fn::If": ["IsDev", 2, {"Ref": "AWS::NoValue"}]}, 3], [1, 3]),
        ({"A": {"Ref": "AWS::NoValue"}, "B": {"Ref": "Env"}}, {"B": "prod"}),
    ],
)
def test_known_values(value: Any, expected: Any) -> None:
    deploy, errors = view()
    assert deploy.known(value) == expected
    assert not errors


@pytest.mark.parametrize(
    ("value", "function"),
    [
        ({"Fn::GetAtt": ["Always", "GroupId"]}, "Fn::GetAtt"),
        ({"Fn::ImportValue": "Shared"}, "Fn::ImportValue"),
        ({"Ref": "AWS::StackName"}, "Ref to AWS::StackName"),
        ({"Ref": "Always"}, "Ref to resource Always"),
        ({"Fn::Sub": "${Always.GroupId}"}, "Fn::GetAtt"),
        ({"Fn::Join": ["", ["a", {"Fn::GetAZs": ""}]]}, "Fn::GetAZs"),
    ],
)
def test_unknown_values_name_the_function(value: Any, function: str) -> None:
    deploy, _ = view()
    assert deploy.known(value) == Unknown(function)


def test_require_reports_at_the_path_and_says_what_to_write() -> None:
    deploy, errors = view()
    assert deploy.require({"Fn::ImportValue": "P"}, "Resources.T.Port", "ContainerPort", "write a number") is None
    assert [str(error) for error in errors.errors] == [
        "[Resources.T.Port] ContainerPort is a Fn::ImportValue, whose value is only known once CloudFormation "
        "deploys, and the macro needs it now: write a number."
    ]


def test_a_missing_parameter_says_to_pass_it() -> None:
    deploy, errors = view()
    deploy.require({"Ref": "Unset"}, "Resources.T.Name", "the container's Name", "write it")
    assert "pass --parameter Unset=VALUE" in errors.errors[0].message


def test_no_echo_values_are_never_quoted() -> None:
    deploy, errors = view()
    deploy.require({"Fn::Join": ["", [{"Ref": "Secret"}, {"Fn::GetAtt": ["Always", "GroupId"]}]]}, "p", "x", "y")
    deploy.condition("Loop")
    assert all("hunter2" not in str(error) for error in errors.errors)


def test_deployed_takes_branches_and_keeps_other_intrinsics() -> None:
    deploy, _ = view()
    written = {
        "TaskRoleArn": {"Fn::If": ["IsDev", {"Fn::GetAtt": ["Role", "Arn"]}, {"Ref": "AWS::NoValue"}]},
        "Groups": [{"Ref": "Always"}, {"Fn::If": ["IsProd", {"Ref": "ProdOnly"}, {"Ref": "AWS::NoValue"}]}],
        "Image": {"Fn::Sub": ["${Repo}:1", {"Repo": {"Fn::If": ["IsProd", "a", "b"]}}]},
    }
    assert deploy.deployed(written) == {
        "Groups": [{"Ref": "Always"}, {"Ref": "ProdOnly"}],
        "Image": {"Fn::Sub": ["${Repo}:1", {"Repo": "a"}]},
    }


def test_items_keep_the_written_indexes_and_raw_at_reaches_the_taken_branch() -> None:
    deploy, _ = view()
    written = [
        {"Fn::If": ["IsDev", {"Name": "debug"}, {"Ref": "AWS::NoValue"}]},
        {"Name": "app"},
        {"Fn::If": ["IsProd", {"Name": "xray"}, {"Ref": "AWS::NoValue"}]},
    ]
    assert deploy.items(written) == [(1, {"Name": "app"}), (2, {"Name": "xray"})]
    assert deploy.raw_at(written, (2,)) is written[2]["Fn::If"][1]
    deploy.raw_at(written, (2,))["DependsOn"] = []
    assert written[2]["Fn::If"][1] == {"Name": "xray", "DependsOn": []}


def test_same_names_one_thing_however_written() -> None:
    deploy, _ = view()
    assert deploy.same({"Ref": "Always"}, {"Fn::GetAtt": ["Always", "GroupId"]})
    assert deploy.same({"Fn::GetAtt": "Always.GroupId"}, {"Fn::If": ["IsProd", {"Ref": "Always"}, "sg-1"]})
    assert deploy.same({"Fn::Sub": "${Env}"}, "prod")
    assert deploy.same({"Fn::ImportValue": "Ns"}, {"Fn::ImportValue": "Ns"})
    assert not deploy.same({"Ref": "Always"}, {"Ref": "ProdOnly"})
    assert not deploy.same({"Fn::GetAtt": ["Always", "VpcId"]}, {"Ref": "Always"})
