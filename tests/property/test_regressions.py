"""Minimal reproducers of what the property tests, the fuzz target and the hostile-input review found.

Each is the smallest change to a three-node mesh (``chain_mesh``) that showed the bug, checked with every
invariant (``check_event``). Fixed bugs stay as regression tests (their old symptom in a comment); open bugs
are strict xfails: once fixed, the xfail turns into a failure ("XPASS(strict)"), and its marker is to go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from composex_mesh import SECTION_KEY

from .builders import chain_mesh
from .invariants import check_event

Mutation = Callable[[dict[str, Any], dict[str, Any]], None]
"""(section, fragment) -> None: edits the event's fragment in place."""


def event_with(mutation: Mutation, nodes: int = 3, parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    event = chain_mesh(nodes).event()
    mutation(event["fragment"][SECTION_KEY], event["fragment"])
    event["templateParameterValues"].update(parameter_values or {})
    return event


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    target[key] = value


def _props(fragment: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = fragment["Resources"][logical_id]["Properties"]
    return properties


def _groups(fragment: dict[str, Any], logical_id: str) -> dict[str, Any]:
    awsvpc: dict[str, Any] = _props(fragment, logical_id)["NetworkConfiguration"]["AwsvpcConfiguration"]
    return awsvpc


FIXED: dict[str, tuple[Mutation, dict[str, Any]]] = {
    # parse._resolve_parameter / resolve.literal hashed the Ref's value: "TypeError: unhashable type: 'list'"
    "a Ref to a list where a name goes": (lambda s, f: _set(s["Nodes"]["n000"], "Service", {"Ref": ["N000Svc"]}), {}),
    "a Ref to a mapping as the backend": (lambda s, f: _set(s, "Backend", {"Ref": {"a": 1}}), {}),
    "a Ref to a list as a NetworkMode": (lambda s, f: _set(_props(f, "N000Td"), "NetworkMode", {"Ref": ["x"]}), {}),
    "a Ref to a list as a ContainerPort": (
        lambda s, f: _set(
            _props(f, "N000Td")["ContainerDefinitions"][0]["PortMappings"][0], "ContainerPort", {"Ref": ["x"]}
        ),
        {},
    ),
    # parse._parse_int: int() of a 5000-digit string: "ValueError: Exceeds the limit (4300 digits)"
    "a port of 5000 digits": (
        lambda s, f: _set(s["Nodes"]["n000"], "Listeners", [{"Port": "9" * 5000, "Protocol": "tcp"}]),
        {},
    ),
    # copy.deepcopy in pipeline.run, troposphere's encode_to_dict: "RecursionError" from ~490 levels deep
    # (json.loads accepts ~990); now an error past 200 levels
    "an output nested 600 levels deep": (lambda s, f: _set(f, "Outputs", {"Deep": {"Value": _nested(600)}}), {}),
    "a mesh name nested 600 levels deep": (lambda s, f: _set(s, "Mesh", {"Name": {"Fn::Sub": _nested(600)}}), {}),
    "a mesh name nested 2000 levels deep": (lambda s, f: _set(s, "Mesh", {"Name": {"Fn::Sub": _nested(2000)}}), {}),
    # backends/base.py add_depends_on: "TypeError: 'int' object is not iterable"
    "an ECS service's DependsOn is a number": (lambda s, f: _set(f["Resources"]["N000Svc"], "DependsOn", 5), {}),
    # backends/envoy.py add_container_dependency: "AttributeError: 'str' object has no attribute 'append'"
    "a container's DependsOn is a string": (
        lambda s, f: _set(_props(f, "N000Td")["ContainerDefinitions"][0], "DependsOn", "sidecar"),
        {},
    ),
    "a container's DependsOn is a mapping": (
        lambda s, f: _set(_props(f, "N000Td")["ContainerDefinitions"][0], "DependsOn", {"ContainerName": "x"}),
        {},
    ),
    # resolve._service_groups kept it; troposphere: "SecurityGroupIngress.GroupId is <class 'int'>"
    "a security group is a number": (lambda s, f: _set(_groups(f, "N001Svc"), "SecurityGroups", [5]), {}),
    "a security group parameter's value holds a mapping": (
        lambda s, f: _set(_groups(f, "N001Svc"), "SecurityGroups", {"Ref": "Groups"}),
        {"Groups": [{"a": 1}]},
    ),
    # resolve._template_namespace kept it; troposphere: "AwsCloudMapServiceDiscovery.NamespaceName is <class 'int'>"
    "the namespace's Name is a number": (lambda s, f: _set(_props(f, "MeshNs"), "Name", 5), {}),
    "the namespace's Name is a parameter whose value is a list": (
        lambda s, f: _set(_props(f, "MeshNs"), "Name", {"Ref": "Name"}),
        {"Name": ["corp.internal"]},
    ),
}


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("name", list(FIXED))
def test_fixed(name: str) -> None:
    mutation, values = FIXED[name]
    outcome = check_event(event_with(mutation, parameter_values=values))
    assert outcome.status == "failure"


WRONG_PATHS: dict[str, tuple[Mutation, str, str]] = {
    "a bad backend before a dangling one": (
        lambda s, f: _set(s["Nodes"]["n000"], "Backends", [5, "s001", "missing"]),
        "Nodes.n000.Backends[2]",
        "'missing' is not a service",
    ),
    "a bad listener before two that share a port": (
        lambda s, f: _set(
            s["Nodes"]["n000"],
            "Listeners",
            [{"Port": "x", "Protocol": "http"}, {"Port": 80, "Protocol": "http"}, {"Port": 80, "Protocol": "tcp"}],
        ),
        "Nodes.n000.Listeners[2].Port",
        "80 is already a listener port",
    ),
    "a route without targets before one whose header matches nothing": (
        lambda s, f: _set(
            s,
            "Routers",
            {
                "r": {
                    "Routes": [
                        {"Match": {"Prefix": "/a"}},
                        {"Targets": {"n001": 1}, "Priority": 1},
                        {"Targets": {"n001": 1}, "Match": {"Prefix": "/c", "Headers": [{"Name": "x"}]}},
                    ]
                }
            },
        ),
        "Routers.r.Routes[2].Match.Headers[0]",
        "needs exactly one of Exact or Prefix or Suffix or Regex or Range",
    ),
}


@pytest.mark.parametrize("name", list(WRONG_PATHS))
def test_errors_after_a_broken_list_item_never_point_at_another_index(name: str) -> None:
    """A list with a broken item is reported as such; the checks of its other items wait for the fix.

    (The old symptom: the broken item was dropped, so later items' errors named shifted indexes.)
    """
    mutation, path, message = WRONG_PATHS[name]
    outcome = check_event(event_with(mutation))
    assert outcome.status == "failure"
    assert outcome.errors
    assert all(error_path == path for error_path, text in outcome.errors if message in text), outcome.errors


@pytest.mark.parametrize("resource", ["not a mapping", {"Properties": {}}, {"Type": ["AWS::ECS::Service"]}])
def test_a_resource_without_a_type_is_described_plainly(resource: Any) -> None:
    outcome = check_event(event_with(lambda s, f: _set(f["Resources"], "N000Svc", resource)))
    assert outcome.status == "failure"
    assert not any("an None" in message for _, message in outcome.errors), outcome.errors
