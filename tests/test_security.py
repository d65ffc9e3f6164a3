"""Security review as tests, over the golden outputs and generated meshes; and hostile input.

What the macro generates must be least privilege and keep the mesh's DROP_ALL in the network:

- no IAM statement grants an ``appmesh:*`` action on a ``*`` resource (nor uses a wildcard action);
  envoy's ``appmesh:StreamAggregatedResources`` is granted on its own virtual node only;
- no TLS right (``acm:``, ``acm-pca:``, ``kms:``) is granted on ``*`` nor as a wildcard action: envoy exports the
  ACM certificates its own virtual node serves, reads the one CA it trusts; Service Connect's role uses one key;
- generated ``SecurityGroupIngress`` is TCP (never ``-1``), one port (``FromPort == ToPort``), from a security
  group (never a CIDR);
- the mesh's egress filter is ``DROP_ALL`` unless the user wrote ``ALLOW_ALL``;
- roles the macro makes trust ECS tasks only, or ECS itself for an infrastructure role (with an
  ``AmazonECSInfrastructureRolePolicyFor...`` managed policy and nothing wider); envoy does not run as root;
- nothing of the user's template is logged at INFO (or DEBUG): logs carry counts, never property values.

Hostile input (deep nesting, huge sections, odd names, ``Fn::Transform``/``Fn::ForEach`` where they do not
belong, a 5 MB fragment) gets an answer, not an exception, within seconds and with bounded memory.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given

from composex_mesh import SECTION_KEY
from composex_mesh.handler import lambda_handler
from composex_mesh.model import NAME_PATTERN
from composex_mesh.pipeline import TEMPLATE_SECTIONS
from tests.golden import case_names, event_fragment, is_error_case, load_input, output_path
from tests.property import profile
from tests.property.builders import chain_mesh, make_event
from tests.property.invariants import check_event
from tests.property.strategies import CANARY, Generated, broken_events, valid_events

GOLDEN_CASES = [case for case in case_names() if not is_error_case(case) and case != "no_section"]
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
TLS_SERVICES = ("acm:", "acm-pca:", "kms:")
INFRASTRUCTURE_POLICY = re.compile(
    r"^arn:\$\{AWS::Partition\}:iam::aws:policy/(service-role/)?AmazonECSInfrastructureRolePolicyFor\w+$"
)
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
"""A synchronous Lambda invocation's response payload limit: CloudFormation invokes macros synchronously."""


# -- the checks ------------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def generated_resources(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Resources the macro added or changed: what its security depends on."""
    user = before.get("Resources") or {}
    return {
        logical_id: resource
        for logical_id, resource in (after.get("Resources") or {}).items()
        if logical_id not in user or json.dumps(user[logical_id]) != json.dumps(resource)
    }


def statements(resource: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    properties = resource.get("Properties") or {}
    documents = []
    if resource.get("Type") in POLICY_TYPES:
        documents.append(properties.get("PolicyDocument"))
    if resource.get("Type") == "AWS::IAM::Role":
        documents.extend(policy.get("PolicyDocument") for policy in properties.get("Policies") or ())
    for document in documents:
        yield from _as_list((document or {}).get("Statement") or [])


def check_iam(generated: Mapping[str, Any], output: Mapping[str, Any]) -> None:
    resources = output["Resources"]
    for logical_id, resource in generated.items():
        for statement in statements(resource):
            where = f"{logical_id} {statement.get('Sid', '')}"
            assert "NotAction" not in statement and "NotResource" not in statement, where
            actions = [str(action).lower() for action in _as_list(statement.get("Action"))]
            check_tls_rights(where, actions, statement, resources)
            mesh_actions = [action for action in actions if action.startswith("appmesh:") or action == "*"]
            if not mesh_actions:
                continue
            targets = named_targets(where, mesh_actions, statement)
            if "appmesh:streamaggregatedresources" in actions:
                assert_refs_to(where, targets, resources, "AWS::AppMesh::VirtualNode", literals=False)
        if resource.get("Type") == "AWS::IAM::Role":
            trust = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            principals = [item["Principal"] for item in trust]
            managed = [item.get("Fn::Sub", item) for item in resource["Properties"].get("ManagedPolicyArns", [])]
            if managed and all(isinstance(item, str) and INFRASTRUCTURE_POLICY.match(item) for item in managed):
                assert principals == [{"Service": "ecs.amazonaws.com"}] * len(trust), f"{logical_id}: {principals}"
            else:
                assert principals == [{"Service": "ecs-tasks.amazonaws.com"}] * len(trust), (
                    f"{logical_id}: {principals}"
                )


def named_targets(where: str, actions: list[str], statement: Mapping[str, Any]) -> list[Any]:
    """The statement's resources, asserted to be named: no wildcard action, no ``*`` anywhere in a resource."""
    assert all("*" not in action for action in actions), f"{where}: wildcard action {actions}"
    targets = _as_list(statement.get("Resource"))
    assert targets, f"{where}: no Resource"
    for target in targets:
        assert not (isinstance(target, str) and "*" in target), f"{where}: {actions} on {target}"
    return targets


def check_tls_rights(
    where: str, actions: list[str], statement: Mapping[str, Any], resources: Mapping[str, Any]
) -> None:
    """TLS rights name their certificates, CA and key: never ``*``, never a wildcard action."""
    tls_actions = [action for action in actions if action.startswith(TLS_SERVICES)]
    if not tls_actions:
        return
    targets = named_targets(where, tls_actions, statement)
    if "acm:exportcertificate" in actions:
        assert_refs_to(where, targets, resources, "AWS::CertificateManager::Certificate", literals=True)


def assert_refs_to(where: str, targets: list[Any], resources: Mapping[str, Any], kind: str, literals: bool) -> None:
    """Every target is a ``Ref`` to a resource of type ``kind`` (with ``literals``, the user's ARNs and parameters too)."""
    for target in targets:
        logical_id = target.get("Ref") if isinstance(target, Mapping) else None
        if literals and logical_id not in resources:
            continue
        assert logical_id in resources and resources[logical_id]["Type"] == kind, f"{where}: {target} is not a {kind}"


LATTICE_SOURCE_RANGE = "169.254.171.0/24"


def check_network(generated: Mapping[str, Any]) -> None:
    for logical_id, resource in generated.items():
        kind = resource.get("Type")
        assert kind != "AWS::EC2::SecurityGroupEgress", f"{logical_id}: the macro opens ingress only"
        if kind == "AWS::EC2::SecurityGroup":
            # VPC Lattice's clients group: no rules of its own; the macro's ingress rules open it to consumers.
            assert logical_id == "LatticeClientsSecurityGroup", f"{logical_id}: the macro makes no other group"
            assert set(resource["Properties"]) == {"GroupDescription", "VpcId"}, logical_id
        if kind != "AWS::EC2::SecurityGroupIngress":
            continue
        rule = resource["Properties"]
        assert rule["IpProtocol"] == "tcp", f"{logical_id}: IpProtocol {rule['IpProtocol']!r}"
        assert rule["FromPort"] == rule["ToPort"], f"{logical_id}: a port range {rule['FromPort']}-{rule['ToPort']}"
        assert isinstance(rule["FromPort"], int) and 1 <= rule["FromPort"] <= 65535, logical_id
        if rule.get("CidrIp") == LATTICE_SOURCE_RANGE:  # VPC Lattice's own link-local range, to its targets
            assert not {"SourceSecurityGroupId", "CidrIpv6", "SourcePrefixListId"} & set(rule), logical_id
            continue
        assert "SourceSecurityGroupId" in rule, f"{logical_id}: not from a security group"
        assert not {"CidrIp", "CidrIpv6", "SourcePrefixListId"} & set(rule), f"{logical_id}: opened to a range"


def check_egress(section: Any, output: Mapping[str, Any]) -> None:
    mesh = section.get("Mesh") if isinstance(section, Mapping) else None
    written = mesh.get("EgressFilter") if isinstance(mesh, Mapping) else None
    for logical_id, resource in output["Resources"].items():
        if resource.get("Type") == "AWS::AppMesh::Mesh":
            actual = resource["Properties"]["Spec"]["EgressFilter"]["Type"]
            expected = "ALLOW_ALL" if written == "ALLOW_ALL" else "DROP_ALL"
            assert actual == expected, f"{logical_id}: egress {actual}, the section wrote {written!r}"


def check_envoy_user(generated: Mapping[str, Any]) -> None:
    for resource in generated.values():
        if resource.get("Type") != "AWS::ECS::TaskDefinition":
            continue
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container.get("Name") in ("envoy", "xray-daemon"):
                assert container.get("User") == "1337", container.get("Name")


def review(fragment: Mapping[str, Any], output: Mapping[str, Any]) -> None:
    generated = generated_resources(fragment, output)
    check_iam(generated, output)
    check_network(generated)
    check_egress(fragment.get(SECTION_KEY), output)
    check_envoy_user(generated)
    check_least_privilege(generated)


# -- over the golden outputs and generated meshes --------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_outputs_pass_the_security_review(case: str) -> None:
    fragment = event_fragment(load_input(case))
    output = json.loads(output_path(case).read_text(encoding="utf-8"))
    review(fragment, output)


def test_the_golden_cases_cover_what_is_reviewed() -> None:
    """The review above is not vacuous: the golden outputs hold policies, ingress rules and both filters."""
    outputs = [json.loads(output_path(case).read_text(encoding="utf-8")) for case in GOLDEN_CASES]
    types = [resource["Type"] for output in outputs for resource in output["Resources"].values()]
    assert types.count("AWS::IAM::Policy") > 10 and types.count("AWS::EC2::SecurityGroupIngress") > 10
    filters = {
        resource["Properties"]["Spec"]["EgressFilter"]["Type"]
        for output in outputs
        for resource in output["Resources"].values()
        if resource["Type"] == "AWS::AppMesh::Mesh"
    }
    assert filters == {"DROP_ALL", "ALLOW_ALL"}  # envoy_options writes ALLOW_ALL


def test_the_golden_cases_cover_the_tls_rights_and_the_review_catches_a_wildcard() -> None:
    outputs = [json.loads(output_path(case).read_text(encoding="utf-8")) for case in GOLDEN_CASES]
    granted = {
        str(action)
        for output in outputs
        for resource in output["Resources"].values()
        for statement in statements(resource)
        for action in _as_list(statement.get("Action"))
    }
    assert {"acm:ExportCertificate", "acm-pca:GetCertificateAuthorityCertificate", "kms:Decrypt"} <= granted
    for resource in ("*", "arn:aws:acm:us-east-1:123456789012:certificate/*"):
        with pytest.raises(AssertionError):
            check_tls_rights("x", ["acm:exportcertificate"], {"Resource": resource}, {})
    with pytest.raises(AssertionError):
        check_tls_rights("x", ["kms:*"], {"Resource": "arn:aws:kms:us-east-1:123456789012:key/k"}, {})


@profile(60)
@given(valid_events())
def test_generated_meshes_pass_the_security_review(generated: Generated) -> None:
    outcome = check_event(generated.event, determinism=False)
    assert outcome.status == "success", outcome.answer.get("errorMessage")
    review(generated.event["fragment"], outcome.answer["fragment"])


# -- logs ------------------------------------------------------------------------------------------------------


def property_values(fragment: Mapping[str, Any]) -> set[str]:
    """String values (6+ characters) of the user's resources' properties and of the section.

    The backend's name is logged on purpose (it is a dimension of the metrics), so it is not counted.
    """
    found: set[str] = set()
    resources = fragment.get("Resources")
    roots: list[Any] = [fragment.get(SECTION_KEY)]
    if isinstance(resources, Mapping):
        roots.extend(resource.get("Properties") for resource in resources.values() if isinstance(resource, Mapping))
    stack = roots
    while stack:
        value = stack.pop()
        if isinstance(value, str) and len(value) >= 6 and value not in ("AppMesh", "ServiceConnect", "VpcLattice"):
            found.add(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def logged_text(records: list[logging.LogRecord]) -> str:
    return json.dumps([{**record.__dict__, "args": None, "exc_info": None} for record in records], default=str)


def assert_nothing_of_the_template_logged(event: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="composex-mesh"):
        lambda_handler(copy.deepcopy(event), None)
    informational = [record for record in caplog.records if record.levelno <= logging.INFO]
    text = logged_text(informational)
    leaked = sorted(value for value in property_values(event["fragment"]) if value in text)
    assert not leaked, f"logged at INFO: {leaked[:5]}"
    assert CANARY not in text


@pytest.mark.parametrize("case", [*GOLDEN_CASES[:12], "quickstart", "error_multiple_errors", "dns_node"])
def test_golden_templates_are_not_logged(case: str, caplog: pytest.LogCaptureFixture) -> None:
    event = make_event(event_fragment(load_input(case)))
    assert_nothing_of_the_template_logged(event, caplog)


@profile(30)
@given(valid_events())
def test_generated_templates_are_not_logged(generated: Generated) -> None:
    assert_event_not_logged(generated.event)


@profile(30)
@given(broken_events())
def test_broken_templates_are_not_logged(generated: Generated) -> None:
    assert_event_not_logged(generated.event)


def assert_event_not_logged(event: dict[str, Any]) -> None:
    """No property value of the template at INFO or below; the canary value at no level at all."""
    with _capture() as records:
        lambda_handler(copy.deepcopy(event), None)
    text = logged_text([record for record in records if record.levelno <= logging.INFO])
    leaked = sorted(value for value in property_values(event["fragment"]) if value in text)
    assert not leaked, leaked[:5]
    # Warnings name nodes and logical IDs; property values (images, environment, descriptions) never.
    assert CANARY not in logged_text(records)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _capture:
    """Collects the macro logger's records (caplog cannot be used inside a Hypothesis test)."""

    def __enter__(self) -> list[logging.LogRecord]:
        self.logger = logging.getLogger("composex-mesh")
        self.handler = _Collect()
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        return self.handler.records

    def __exit__(self, *_: Any) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


# -- hostile input ---------------------------------------------------------------------------------------------

SECONDS = 5.0
PEAK_BYTES = 200 * 1024 * 1024
"""The Lambda function has 256 MB."""


def nested(depth: int, leaf: Any = "x") -> Any:
    value = leaf
    for level in range(depth):
        value = {"Fn::Sub": value} if level % 2 else [value]
    return value


def base_event() -> dict[str, Any]:
    return chain_mesh(2).event()


def answered(make: Callable[[], Any]) -> tuple[dict[str, Any], float, int]:
    """The handler's answer to ``make()``, its time (untraced), its peak traced memory (a second, traced run).

    ``make`` builds the event afresh for each run: ``copy.deepcopy`` cannot copy 5000 levels either.
    """
    event = make()
    started = time.perf_counter()
    answer = lambda_handler(event, None)
    elapsed = time.perf_counter() - started
    event = make()
    tracemalloc.start()
    try:
        again = lambda_handler(event, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer["status"] in ("success", "failure")
    assert again.get("errorMessage") == answer.get("errorMessage")
    assert elapsed < SECONDS, f"{elapsed:.1f}s"
    assert peak < PEAK_BYTES, f"{peak / 1e6:.0f} MB"
    return answer, elapsed, peak


def deep_in(where: str, depth: int) -> dict[str, Any]:
    event = base_event()
    fragment = event["fragment"]
    section = fragment[SECTION_KEY]
    value = nested(depth)
    if where == "section key":
        section["Deep"] = value
    elif where == "node":
        section["Nodes"]["n000"] = value
    elif where == "mesh name":
        section["Mesh"] = {"Name": {"Fn::Sub": value}}
    elif where == "envoy environment":
        section["Envoy"] = {"Environment": {"DEEP": {"Fn::Join": ["", value]}}}
    elif where == "dns hostname":
        section["Nodes"]["db"] = {
            "Hostname": {"Fn::Join": ["", value]},
            "Listeners": [{"Port": 5432, "Protocol": "tcp"}],
        }
    elif where == "unreferenced resource":
        fragment["Resources"]["Deep"] = {"Type": "AWS::SNS::Topic", "Properties": {"Tags": value}}
    elif where == "referenced task definition":
        fragment["Resources"]["N000Td"]["Properties"]["Tags"] = value
    elif where == "outputs":
        fragment["Outputs"] = {"Deep": {"Value": value}}
    elif where == "parameter values":
        event["templateParameterValues"]["Deep"] = value
    return event


DEEP_PLACES = [
    "section key",
    "node",
    "mesh name",
    "envoy environment",
    "dns hostname",
    "unreferenced resource",
    "referenced task definition",
    "outputs",
    "parameter values",
]


@pytest.mark.parametrize("depth", [900, 5000])
@pytest.mark.parametrize("where", DEEP_PLACES)
def test_deep_nesting_is_answered_quickly_and_not_as_an_internal_error(where: str, depth: int) -> None:
    answer, _, _ = answered(lambda: deep_in(where, depth))
    if where == "parameter values":  # a parameter the section does not use: nothing reads it
        assert answer["status"] == "success"
    else:
        assert answer["status"] == "failure"
        assert not answer["errorMessage"].startswith("Internal error"), answer["errorMessage"][:200]


def test_deep_nesting_is_an_error_at_the_path_where_it_goes_too_deep() -> None:
    """Deeper than 200 levels anywhere in the fragment: an error at the first path past the limit.

    Before, values nested ~490 levels deep (``json.loads`` accepts ~990) answered
    ``Internal error: RecursionError`` from ``copy.deepcopy`` in ``pipeline.run`` or troposphere's
    ``encode_to_dict``.
    """
    outcome = check_event(deep_in("outputs", 5000))
    assert outcome.status == "failure"
    ((path, message),) = outcome.errors
    assert path.startswith("Outputs.Deep.Value.Fn::Sub[0].Fn::Sub[0]")
    assert message == "nests deeper than 200 levels; no CloudFormation template needs that many."
    assert check_event(deep_in("mesh name", 900)).errors[0][0].startswith("Mesh.Name.Fn::Sub")


HUGE: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
    "20000 invalid node names": lambda s, f: s["Nodes"].update({f"bad name {i}": {} for i in range(20000)}),
    "5000 nodes naming missing services": lambda s, f: s["Nodes"].update(
        {f"n{i}": {"Service": f"Missing{i}"} for i in range(5000)}
    ),
    "5000 routers": lambda s, f: s.update(
        {"Routers": {f"r{i}": {"Routes": [{"Targets": {"n001": 1}}]} for i in range(5000)}}
    ),
    "a 5 MB node name": lambda s, f: s["Nodes"].update({"n" * 5_000_000: {"Service": "N000Svc"}}),
    "a 5 MB mesh name": lambda s, f: s.update({"Mesh": {"Name": "m" * 5_000_000}}),
    "5 MB of unrelated resources": lambda s, f: f["Resources"].update(
        {f"R{i}": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "x" * 1000}} for i in range(5000)}
    ),
    "a 5 MB description": lambda s, f: f.update({"Description": "d" * 5_000_000}),
    "1000 security groups on each ECS service": lambda s, f: [
        f["Resources"][service]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"].update(
            {"SecurityGroups": [f"sg-{service.lower()}{index:012x}" for index in range(1000)]}
        )
        for service in ("N000Svc", "N001Svc")
    ],
}


def huge_event(name: str) -> dict[str, Any]:
    event = base_event()
    HUGE[name](event["fragment"][SECTION_KEY], event["fragment"])
    return event


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_input_is_answered_within_seconds_and_bounded_memory(name: str) -> None:
    answer, _, _ = answered(lambda: huge_event(name))
    assert answer["status"] == "failure"
    assert not answer["errorMessage"].startswith("Internal error")


@pytest.mark.parametrize("name", ["a 5 MB node name", "20000 invalid node names", "5 MB of unrelated resources"])
def test_error_messages_stay_short_enough_to_read(name: str) -> None:
    answer, _, _ = answered(lambda: huge_event(name))
    assert len(answer["errorMessage"]) < 64 * 1024


def test_the_answer_fits_lambdas_response_limit_for_a_template_under_1_mb() -> None:
    event = base_event()
    event["fragment"][SECTION_KEY]["Nodes"]["n000"]["Backends"] = [f"s{i}" for i in range(100_000)]
    assert len(json.dumps(event["fragment"])) < 1024 * 1024  # a template CloudFormation accepts
    answer = lambda_handler(event, None)
    assert len(json.dumps(answer)) < LAMBDA_RESPONSE_LIMIT


ODD_NAMES = [
    "Fn::GetAtt",
    "Ref",
    "Fn::Transform",
    "Fn::ForEach::Nodes",
    "nœud",
    "名前",
    "a.b",
    "x[0]",
    "\u202eevil",
    "",
    "n" * 256,
]


@pytest.mark.parametrize("name", ODD_NAMES)
@pytest.mark.parametrize("part", ["Nodes", "Routers", "Services"])
def test_odd_names_are_errors_at_their_own_path(part: str, name: str) -> None:
    event = base_event()
    section = event["fragment"][SECTION_KEY]
    entry = {
        "Nodes": {"Hostname": "db.example.com", "Listeners": [{"Port": 5432, "Protocol": "tcp"}]},
        "Routers": {"Routes": [{"Targets": {"n001": 1}}]},
        "Services": {"Node": "n001"},
    }
    section["Routers"] = {"r0": copy.deepcopy(entry["Routers"])}  # every map has another entry: not an intrinsic
    section[part][name] = entry[part]
    outcome = check_event(event)
    if re.fullmatch(NAME_PATTERN, name):  # "Ref" is a name like any other
        assert outcome.status == "success", outcome.answer.get("errorMessage")
    else:
        assert outcome.status == "failure"
        assert [path for path, _ in outcome.errors] == [f"{part}.{name}"], outcome.errors


@pytest.mark.parametrize("name", ["Ref", "Condition", "Fn::GetAtt", "Fn::ForEach::Nodes"])
def test_a_map_whose_only_name_looks_like_an_intrinsic_is_read_as_one(name: str) -> None:
    """``Routers: {Ref: {...}}`` is what CloudFormation would read as a ``Ref``: an error at ``Routers``."""
    event = base_event()
    event["fragment"][SECTION_KEY]["Routers"] = {name: {"Routes": [{"Targets": {"n001": 1}}]}}
    outcome = check_event(event)
    assert outcome.status == "failure"
    assert [path for path, _ in outcome.errors] == ["Routers"]
    assert "not an intrinsic function" in outcome.errors[0][1]


def _replace(target: dict[str, Any], content: dict[str, Any]) -> None:
    target.clear()
    target.update(content)


INTRINSICS_WHERE_NAMES_GO: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Nodes is a Ref": lambda s: s.update({"Nodes": {"Ref": "Nodes"}}),
    "a backend is a Ref": lambda s: s["Nodes"]["n000"].update({"Backends": [{"Ref": "s001"}]}),
    "a node's Service is a GetAtt string": lambda s: s["Nodes"]["n000"].update(
        {"Service": {"Fn::GetAtt": "N000Svc.Name"}}
    ),
    "a node's Service is a Ref list": lambda s: s["Nodes"]["n000"].update({"Service": {"Ref": ["N000Svc"]}}),
    "targets are an If": lambda s: s.update(
        {"Routers": {"r": {"Routes": [{"Targets": {"Fn::If": ["C", {"n001": 1}, {"n000": 1}]}}]}}}
    ),
    "a weight is a Ref": lambda s: s.update({"Routers": {"r": {"Routes": [{"Targets": {"n001": {"Ref": "W"}}}]}}}),
    "the section is a Transform": lambda s: _replace(s, {"Fn::Transform": {"Name": "AWS::Include"}}),
    "Nodes is a ForEach": lambda s: s.update(
        {"Nodes": {"Fn::ForEach::N": ["X", ["a", "b"], {"${X}": {"Service": "N000Svc"}}]}}
    ),
    "a Transform among the section's keys": lambda s: s.update({"Fn::Transform": {"Name": "AWS::Include"}}),
    "a Transform in a node": lambda s: s["Nodes"]["n000"].update({"Fn::Transform": {"Name": "AWS::Include"}}),
    "a Condition as a node": lambda s: s["Nodes"].update({"n000": {"Condition": "IsProd"}}),
}


@pytest.mark.parametrize("name", list(INTRINSICS_WHERE_NAMES_GO))
def test_intrinsics_where_names_go_are_errors(name: str) -> None:
    event = base_event()
    INTRINSICS_WHERE_NAMES_GO[name](event["fragment"][SECTION_KEY])
    outcome = check_event(event)
    assert outcome.status == "failure"


TEMPLATE_EXTENSIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "a ForEach among the resources": lambda f: f["Resources"].update(
        {"Fn::ForEach::Topics": ["X", ["A", "B"], {"Topic${X}": {"Type": "AWS::SNS::Topic"}}]}
    ),
    "a Transform in an unreferenced resource": lambda f: f["Resources"].update(
        {"Included": {"Type": "AWS::SNS::Topic", "Properties": {"Fn::Transform": {"Name": "AWS::Include"}}}}
    ),
    "a Transform in a referenced task definition": lambda f: f["Resources"]["N000Td"]["Properties"].update(
        {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}}
    ),
    "a ForEach among the outputs": lambda f: f.update(
        {"Outputs": {"Fn::ForEach::O": ["X", ["A"], {"O${X}": {"Value": "v"}}]}}
    ),
    "a Transform at the top": lambda f: f.update({"Fn::Transform": {"Name": "AWS::Include"}}),
}


@pytest.mark.parametrize("value", [True, 5, "x", ["Out"]])
@pytest.mark.parametrize("section", ["Outputs", "Parameters", "Conditions", "Mappings", "Resources"])
def test_a_top_level_section_that_is_not_a_mapping_is_an_error_at_its_name(section: str, value: Any) -> None:
    event = base_event()
    event["fragment"][section] = value
    outcome = check_event(event)
    assert outcome.status == "failure"
    expected = f"must be a mapping of {TEMPLATE_SECTIONS[section]}, not {type(value).__name__}."
    assert list(outcome.errors) == [(section, expected)]


@pytest.mark.parametrize("name", list(TEMPLATE_EXTENSIONS))
def test_language_extensions_around_the_section_are_kept_as_written(name: str) -> None:
    """Another transform's constructs in the template (not in the section) are passed through untouched."""
    event = base_event()
    TEMPLATE_EXTENSIONS[name](event["fragment"])
    outcome = check_event(event)
    assert outcome.status == "success", outcome.answer.get("errorMessage")


def test_the_base_event_of_the_hostile_tests_expands() -> None:
    """So that every failure above comes from what the test did to it."""
    assert check_event(base_event()).status == "success"


# -- least privilege -------------------------------------------------------------------------------------------

STAR_ACTIONS = frozenset(
    {
        "ecr:GetAuthorizationToken",  # an ECR registry token: AWS grants it on * only
        "xray:PutTraceSegments",  # X-Ray has no resource-level permissions (AWSXRayDaemonWriteAccess)
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    }
)
"""The only actions a generated statement may grant on ``*``: those AWS offers on no narrower resource."""
JOB_MANAGED_POLICIES = frozenset(
    {
        "AmazonECSInfrastructureRolePolicyForVpcLattice",
        "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity",
    }
)
"""AWS managed policies that are exactly an ECS infrastructure role's job; any other is wider than the job."""


def check_least_privilege(generated: Mapping[str, Any]) -> None:
    for logical_id, resource in generated.items():
        for statement in statements(resource):
            targets = _as_list(statement.get("Resource"))
            if "*" in targets:
                actions = set(_as_list(statement.get("Action")))
                assert actions <= STAR_ACTIONS, f"{logical_id} {statement.get('Sid')}: {sorted(actions)} on *"
        if resource.get("Type") == "AWS::IAM::Role":
            for arn in resource["Properties"].get("ManagedPolicyArns") or ():
                name = json.dumps(arn).rsplit("/", 1)[-1].strip('"}]')
                assert name in JOB_MANAGED_POLICIES, f"{logical_id}: managed policy {name} is wider than the job"


def test_a_made_execution_role_is_scoped_to_the_envoy_repository_and_the_tasks_log_groups() -> None:
    output = json.loads(output_path("task_without_execution_role").read_text(encoding="utf-8"))
    role = output["Resources"]["OrdersExecutionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    granted = {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}
    assert granted["EcrAuthorization"]["Resource"] == ["*"]
    assert granted["PullEnvoyImage"]["Resource"] == ["arn:aws:ecr:us-east-1:840364872350:repository/aws-appmesh-envoy"]
    assert granted["SendTaskLogs"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    (log_group,) = granted["SendTaskLogs"]["Resource"]
    assert log_group["Fn::Sub"][1] == {"Region": {"Ref": "AWS::Region"}, "Group": {"Ref": "LogGroup"}}
    check_least_privilege(generated_resources(event_fragment(load_input("task_without_execution_role")), output))


def test_tasks_sharing_a_task_role_get_a_warning() -> None:
    builder = chain_mesh(3)
    fragment = builder.fragment()
    for task in ("N001Td", "N002Td"):
        fragment["Resources"][task]["Properties"]["TaskRoleArn"] = {"Fn::GetAtt": ["N000Tr", "Arn"]}
    outcome = check_event(make_event(fragment))
    assert outcome.status == "success", outcome.answer.get("errorMessage")
    from composex_mesh.transform import Context, expand

    (warning,) = [text for text in expand(fragment, Context()).warnings if "share the task role" in text]
    assert warning.startswith("[Nodes.n000] the tasks of nodes 'n000', 'n001', 'n002' share the task role 'N000Tr'")


# -- NoEcho values -----------------------------------------------------------------------------------------------

SECRET = "hunter2-Sup3r-s3cret"


def secret_event(where: str) -> dict[str, Any]:
    """A template with a ``NoEcho`` parameter, its value given this deploy, read somewhere by the section."""
    event = base_event()
    fragment = event["fragment"]
    fragment.setdefault("Parameters", {})["DbPassword"] = {"Type": "String", "NoEcho": "true", "Default": SECRET[::-1]}
    event["templateParameterValues"]["DbPassword"] = SECRET
    section = fragment[SECTION_KEY]
    if where == "container":  # an error that quotes the value it read
        section["Nodes"]["n000"]["Container"] = {"Ref": "DbPassword"}
    elif where == "container, default":  # the Default of a NoEcho parameter is a secret too
        del event["templateParameterValues"]["DbPassword"]
        section["Nodes"]["n000"]["Container"] = {"Ref": "DbPassword"}
    elif where == "backend":
        section["Backend"] = {"Ref": "DbPassword"}
    elif where == "task family":
        fragment["Resources"]["N000Td"]["Properties"]["Family"] = {"Ref": "DbPassword"}
        section["Nodes"]["n000"]["Container"] = "nothing-of-that-name"
    return event


@pytest.mark.parametrize("where", ["container", "container, default", "backend", "task family"])
def test_a_noecho_value_is_never_in_a_message_or_a_log_line(where: str) -> None:
    event = secret_event(where)
    with _capture() as records:
        answer = lambda_handler(copy.deepcopy(event), None)
    assert answer["status"] == "failure"
    shown = answer["errorMessage"] + logged_text(records)
    assert SECRET not in shown and SECRET[::-1] not in shown
    if where == "container":
        assert "'****' is not a container" in answer["errorMessage"]


def test_a_noecho_value_is_masked_in_warnings_and_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from composex_mesh import pipeline

    event = secret_event("none")
    rendered = pipeline.run

    def warns(fragment: Any, context: Any) -> Any:
        result = rendered(fragment, context)
        result.warnings.append(f"[Nodes.n000] something about {SECRET}")
        return result

    monkeypatch.setattr(pipeline, "run", warns)
    with _capture() as records:
        answer = lambda_handler(copy.deepcopy(event), None)
    assert answer["status"] == "success"
    text = logged_text(records)
    assert SECRET not in text and "[Nodes.n000] something about ****" in text

    def breaks(fragment: Any, context: Any) -> Any:
        raise KeyError(f"no such thing as {SECRET}")

    monkeypatch.setattr(pipeline, "run", breaks)
    with _capture() as records:
        answer = lambda_handler(copy.deepcopy(event), None)
    assert answer["errorMessage"].startswith("Internal error: KeyError: ")
    traceback_text = "".join(logging.Formatter().formatException(r.exc_info) for r in records if r.exc_info)
    shown = answer["errorMessage"] + logged_text(records) + traceback_text
    assert SECRET not in shown and "no such thing as ****" in answer["errorMessage"]


def test_a_noecho_value_is_masked_by_the_command_line(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from composex_mesh.cli import main
    from composex_mesh.yaml_io import dump_template

    fragment = secret_event("container")["fragment"]
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "ComposeXMesh", **fragment}
    path = tmp_path / "stack.yaml"
    path.write_text(dump_template(template, "yaml"), encoding="utf-8")
    for argv in (["render", str(path), "--parameter", f"DbPassword={SECRET}"], ["validate", str(path)]):
        assert main([*argv, "--parameter", "VpcId=vpc-1", "--parameter", "SubnetIds=subnet-1"]) == 1
        err = capsys.readouterr().err
        assert "'****' is not a container" in err
        assert SECRET not in err and SECRET[::-1] not in err


# -- generated names -------------------------------------------------------------------------------------------

NAME_LIMITS: dict[tuple[str, str], int] = {
    ("AWS::IAM::Policy", "PolicyName"): 128,
    ("AWS::IAM::Role", "RoleName"): 64,
    ("AWS::AppMesh::Mesh", "MeshName"): 255,
    ("AWS::AppMesh::VirtualNode", "VirtualNodeName"): 255,
    ("AWS::AppMesh::VirtualRouter", "VirtualRouterName"): 255,
    ("AWS::AppMesh::Route", "RouteName"): 255,
    ("AWS::AppMesh::VirtualService", "VirtualServiceName"): 255,
    ("AWS::ServiceDiscovery::Service", "Name"): 127,
    ("AWS::EC2::SecurityGroupIngress", "Description"): 255,
}
"""CloudFormation's (or the API's, where the schema has none) length limits on the names the macro generates."""


def long_name(name: str) -> str:
    return f"{name}-{'x' * 255}"[:255]


def long_named_event(backend: str) -> dict[str, Any]:
    """``chain_mesh(3)`` with every node and service name 255 characters long (services get a short DnsName)."""
    event = chain_mesh(3, backend=backend).event()
    section = event["fragment"][SECTION_KEY]
    section["Backend"] = backend
    section["Nodes"] = {
        long_name(name): {**node, "Backends": [long_name(item) for item in node.get("Backends", [])]}
        for name, node in section["Nodes"].items()
    }
    section["Services"] = {
        long_name(name): {"Node": long_name(service["Node"]), "DnsName": f"{name}.corp.internal"}
        for name, service in section["Services"].items()
    }
    return event


@pytest.mark.parametrize("backend", ["AppMesh", "ServiceConnect", "VpcLattice"])
def test_no_generated_name_is_over_its_limit_for_255_character_names(backend: str) -> None:
    from tests.lint import lint_errors

    event = long_named_event(backend)
    outcome = check_event(event)
    assert outcome.status == "success", outcome.answer.get("errorMessage")
    output = outcome.answer["fragment"]
    generated = generated_resources(event["fragment"], output)
    assert generated
    for logical_id, resource in generated.items():
        assert len(logical_id) <= 255 and re.fullmatch("[A-Za-z0-9]+", logical_id)
        properties = resource.get("Properties") or {}
        for (kind, key), limit in NAME_LIMITS.items():
            value = properties.get(key)
            if resource["Type"] == kind and isinstance(value, str):
                assert len(value) <= limit, f"{logical_id}.{key}: {len(value)} > {limit}"
        for policy in properties.get("Policies") or ():
            assert len(policy["PolicyName"]) <= 128
    assert lint_errors(output) == []
    again = check_event(long_named_event(backend))
    assert again.answer["fragment"] == output  # shortened by a stable hash: the same names every time
