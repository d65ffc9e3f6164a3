"""CloudFormation's quotas, checked by the macro before CloudFormation does (SPEC §5).

500 resources, 200 outputs and 1 MB (1,048,576 bytes) of processed template: a mesh that would go over
fails with a message that gives the count, the limit and what to do; a mesh exactly at a limit expands.
The meshes are ``tests.property.builders.chain_mesh``: node i calls the service of node i+1.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from composex_mesh.handler import lambda_handler
from composex_mesh.merge import MAX_OUTPUTS, MAX_RESOURCES, MAX_TEMPLATE_BYTES
from composex_mesh.transform import Context, expand
from tests.property.builders import TemplateBuilder, chain_mesh
from tests.property.invariants import check_event

PREFIX = "Invalid Composex::AppMesh section. Number of errors found: "


def processed(builder: TemplateBuilder) -> dict[str, Any]:
    """The processed template, quotas not checked (to measure it)."""
    event = builder.event()
    context = Context(check_quotas=False, template_parameter_values=event["templateParameterValues"])
    fragment: dict[str, Any] = expand(event["fragment"], context).fragment
    return fragment


def size_of(template: dict[str, Any]) -> int:
    """The processed template's size as the macro measures it: compact JSON, UTF-8."""
    return len(json.dumps(template, separators=(",", ":")).encode())


def mesh_with_resources(total: int, nodes: int = 30, backend: str = "AppMesh") -> TemplateBuilder:
    """A chain mesh whose processed template has exactly ``total`` resources (SNS topics fill the gap)."""
    base = len(processed(chain_mesh(nodes, backend=backend))["Resources"])
    assert base <= total, f"{nodes} nodes already make {base} resources"
    builder = chain_mesh(nodes, backend=backend, filler=total - base)
    assert len(processed(builder)["Resources"]) == total
    return builder


def answer(builder: TemplateBuilder) -> dict[str, Any]:
    outcome = check_event(builder.event(), determinism=False)
    return outcome.answer


# -- 500 resources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["AppMesh", "ServiceConnect"])
def test_a_mesh_of_exactly_500_resources_expands(backend: str) -> None:
    result = answer(mesh_with_resources(MAX_RESOURCES, backend=backend))
    assert result["status"] == "success", result.get("errorMessage")
    assert len(result["fragment"]["Resources"]) == MAX_RESOURCES


@pytest.mark.parametrize("backend", ["AppMesh", "ServiceConnect"])
def test_a_mesh_one_resource_over_fails_with_the_count_the_limit_and_what_to_do(backend: str) -> None:
    builder = mesh_with_resources(MAX_RESOURCES + 1, backend=backend)
    added = MAX_RESOURCES + 1 - len(builder.resources)
    result = answer(builder)
    assert result["status"] == "failure"
    assert result["errorMessage"] == (
        f"{PREFIX}1. [Composex::AppMesh] the processed template would have 501 resources ({added} added by the mesh); "
        "CloudFormation allows 500. Split the mesh across stacks (Mesh.Existing: true in the others)."
    )


def test_a_mesh_that_generates_far_more_than_500_resources_gives_its_counts() -> None:
    builder = chain_mesh(60)  # 11 resources per node: 665 in all, 361 of them the mesh's
    result = answer(builder)
    assert result["status"] == "failure"
    message = result["errorMessage"]
    match = re.search(r"would have (\d+) resources \((\d+) added by the mesh\); CloudFormation allows 500\.", message)
    assert match, message
    total, added = int(match.group(1)), int(match.group(2))
    assert total == len(processed(builder)["Resources"]) == 665
    assert added == total - len(builder.resources)
    assert "Split the mesh across stacks" in message


def test_the_mesh_is_counted_even_when_the_users_template_alone_is_under_the_limit() -> None:
    builder = mesh_with_resources(MAX_RESOURCES + 1)
    assert len(builder.resources) < MAX_RESOURCES
    assert answer(builder)["status"] == "failure"


def test_a_section_that_can_never_fit_fails_before_it_is_rendered() -> None:
    builder = chain_mesh(60)
    builder.section["Routers"] = {
        f"r{index}": {
            "Listeners": [{"Port": 80, "Protocol": "http"}],
            "Routes": [{"Targets": {"n000": 1}, "Match": {"Prefix": f"/p{route}"}} for route in range(5)],
        }
        for index in range(60)
    }
    result = answer(builder)
    assert result["status"] == "failure"
    message = result["errorMessage"]
    match = re.search(r"would have at least (\d+) resources \((\d+) or more added by the mesh\)", message)
    assert match, message
    assert int(match.group(1)) > MAX_RESOURCES
    assert "Split the mesh across stacks" in message


# -- 200 outputs -----------------------------------------------------------------------------------------------


def test_200_outputs_are_fine() -> None:
    result = answer(chain_mesh(3, outputs=MAX_OUTPUTS))
    assert result["status"] == "success", result.get("errorMessage")
    assert len(result["fragment"]["Outputs"]) == MAX_OUTPUTS


def test_201_outputs_fail_with_the_count_and_the_limit() -> None:
    result = answer(chain_mesh(3, outputs=MAX_OUTPUTS + 1))
    assert result["status"] == "failure"
    assert result["errorMessage"].startswith(f"{PREFIX}1. [Composex::AppMesh] the template has 201 outputs;")
    assert "CloudFormation allows 200" in result["errorMessage"]


def test_201_outputs_say_what_to_do() -> None:
    message = answer(chain_mesh(3, outputs=MAX_OUTPUTS + 1))["errorMessage"]
    tail = message.split("CloudFormation allows 200", 1)[1]
    assert re.search(r"[A-Za-z]{3,}", tail), f"no advice after the limit: {message}"


# -- 1 MB of processed template --------------------------------------------------------------------------------


def padded_to(size: int) -> TemplateBuilder:
    """A mesh whose processed template is exactly ``size`` bytes: its Description is the padding."""
    builder = chain_mesh(3)
    builder.extra_top_level["Description"] = ""
    base = size_of(processed(builder))
    builder.extra_top_level["Description"] = "x" * (size - base)
    assert size_of(processed(builder)) == size
    return builder


def test_a_processed_template_of_exactly_1_mb_expands() -> None:
    result = answer(padded_to(MAX_TEMPLATE_BYTES))
    assert result["status"] == "success", result.get("errorMessage")
    assert size_of(result["fragment"]) == MAX_TEMPLATE_BYTES


def test_one_byte_over_1_mb_fails_with_the_size_the_limit_and_what_to_do() -> None:
    result = answer(padded_to(MAX_TEMPLATE_BYTES + 1))
    assert result["status"] == "failure"
    assert result["errorMessage"] == (
        f"{PREFIX}1. [Composex::AppMesh] the processed template would be 1048577 bytes; CloudFormation allows "
        "1048576. Split the mesh across stacks (Mesh.Existing: true in the others)."
    )


def test_huge_user_resources_that_the_mesh_pushes_over_1_mb_fail() -> None:
    builder = chain_mesh(4)
    growth = size_of(processed(builder)) - size_of(builder.fragment())
    index = 0
    while size_of(builder.fragment()) < MAX_TEMPLATE_BYTES - growth // 2:  # the user's template: ~10 KB topics
        builder.resources[f"Big{index:03d}Topic"] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {"Tags": [{"Key": f"k{tag}", "Value": "v" * 250} for tag in range(min(40, growth // 600))]},
        }
        index += 1
    user_size = size_of(builder.fragment())
    processed_size = size_of(processed(builder))
    assert user_size < MAX_TEMPLATE_BYTES < processed_size
    result = answer(builder)
    assert result["status"] == "failure"
    assert (
        f"the processed template would be {processed_size} bytes; CloudFormation allows 1048576."
        in (result["errorMessage"])
    )


def test_every_quota_exceeded_is_reported_at_once() -> None:
    builder = mesh_with_resources(MAX_RESOURCES + 1)
    for index in range(MAX_OUTPUTS + 1):
        builder.outputs[f"Output{index:04d}"] = {"Value": {"Ref": "ClusterXr"}}
    builder.extra_top_level["Description"] = "x" * MAX_TEMPLATE_BYTES
    result = answer(builder)
    assert result["status"] == "failure"
    message = result["errorMessage"]
    assert message.startswith(f"{PREFIX}3. ")
    assert "501 resources" in message and "201 outputs" in message and "bytes; CloudFormation allows" in message


def test_the_handler_checks_quotas_on_a_real_event() -> None:
    """Through ``lambda_handler`` itself (the checks above go through it too, with every invariant)."""
    result = lambda_handler(chain_mesh(60).event(), None)
    assert result["status"] == "failure"
    assert "CloudFormation allows 500" in result["errorMessage"]
