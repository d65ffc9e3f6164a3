"""Golden tests: every ``tests/golden/input`` case expands to exactly its ``tests/golden/output`` file.

Regenerate outputs with ``python -m tests.golden.regenerate [case...]`` and review the diff against SPEC.md.
Besides the exact comparison, each case checks the guarantees of SPEC §5 that hold for any input:
cfn-lint clean output, byte-identical reruns, an unmodified input, and nothing of the user's template
lost or changed beyond the documented patches.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

import pytest

from composex_mesh import MACRO_NAME, SECTION_KEY
from composex_mesh.deploy_view import logical_id_of as ref_target
from composex_mesh.errors import InvalidSectionError
from composex_mesh.transform import Context, expand
from tests.golden import (
    case_names,
    dump,
    event_fragment,
    is_error_case,
    load_context,
    load_input,
    output_path,
    run_case,
)
from tests.lint import lint_errors

KNOWN_DISCREPANCIES: dict[str, str] = {}
"""Cases whose input states the SPEC's behaviour but the transform does not (yet) follow it.

Each is a strict xfail: once the transform is fixed, regenerate the case and remove its entry here.
"""


def _params(cases: list[str]) -> list[Any]:
    return [
        pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DISCREPANCIES[case]))
        if case in KNOWN_DISCREPANCIES
        else case
        for case in cases
    ]


CASES = _params(case_names())
TEMPLATE_CASES = _params([case for case in case_names() if not is_error_case(case)])
ERROR_CASES = _params([case for case in case_names() if is_error_case(case)])
ERROR_PREFIX = f"Invalid {SECTION_KEY} section. Number of errors found: "

# What SPEC §3/§5 allows the transform to change in a resource the section references.
PATCHABLE_PROPERTIES = {
    "AWS::ECS::Service": {"ServiceRegistries", "ServiceConnectConfiguration", "VpcLatticeConfigurations"},
    "AWS::ECS::TaskDefinition": {"ContainerDefinitions", "ProxyConfiguration", "TaskRoleArn", "ExecutionRoleArn"},
    "AWS::IAM::Role": {"Policies", "ManagedPolicyArns"},
}


@cache
def _prepared(case: str) -> tuple[str, str]:
    """(the input fragment, the context) of a case, as JSON text, so each test starts from a fresh copy."""
    template = load_input(case)
    context = load_context(case, template)
    return json.dumps(event_fragment(template)), json.dumps(context.__dict__, default=dict)


def _fragment(case: str) -> dict[str, Any]:
    fragment: dict[str, Any] = json.loads(_prepared(case)[0])
    return fragment


def _context(case: str) -> Context:
    return Context(**json.loads(_prepared(case)[1]))


@cache
def _expanded_text(case: str) -> str:
    return dump(expand(_fragment(case), _context(case)).fragment)


def _expanded(case: str) -> dict[str, Any]:
    expanded: dict[str, Any] = json.loads(_expanded_text(case))
    return expanded


def _patchable(fragment: Mapping[str, Any]) -> set[str]:
    """The ECS services of ECS nodes, their task definitions and those tasks' roles (SPEC §5)."""
    section = fragment.get(SECTION_KEY) or {}
    resources = fragment.get("Resources") or {}
    nodes = section.get("Nodes") if isinstance(section, Mapping) else None
    found: set[str] = set()
    for node in (nodes or {}).values():
        service_id = node.get("Service") if isinstance(node, Mapping) else None
        if not isinstance(service_id, str) or service_id not in resources:
            continue
        found.add(service_id)
        task_id = ref_target((resources[service_id].get("Properties") or {}).get("TaskDefinition"))
        if task_id is None or task_id not in resources:
            continue
        found.add(task_id)
        task_properties = resources[task_id].get("Properties") or {}
        for role_key in ("TaskRoleArn", "ExecutionRoleArn"):
            role_id = ref_target(task_properties.get(role_key))
            if role_id is not None:
                found.add(role_id)
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _assert_list_kept(before: list[Any], after: Any, where: str) -> None:
    assert isinstance(after, list), f"{where}: no longer a list"
    for item in before:
        assert item in after, f"{where}: lost {json.dumps(item)}"


NAMING_KEYS = ("Name", "AppProtocol")
"""What Service Connect may add to a port mapping (SPEC §4: "PortName of a named port mapping, with AppProtocol")."""


def _assert_port_mappings_named(before: list[Any], after: Any, where: str) -> None:
    """The same port mappings, in order; only a missing Name or AppProtocol may be filled in."""
    assert isinstance(after, list) and len(after) == len(before), f"{where}: port mappings added or lost"
    for mapping, patched in zip(before, after, strict=True):
        for key in set(mapping) | set(patched):
            if mapping.get(key) == patched.get(key):
                continue
            assert key in NAMING_KEYS and key not in mapping, f"{where}: PortMappings {key} changed"


def _unwrapped(container: Any) -> Any:
    """A container as written, or the first mapping branch of an ``Fn::If`` that holds one (the patch writes there)."""
    branches = container.get("Fn::If") if isinstance(container, Mapping) else None
    if isinstance(branches, list):
        return next((item for item in branches[1:] if isinstance(item, Mapping) and "Ref" not in item), {})
    return container


def _name_of(container: Any) -> str:
    return json.dumps(_unwrapped(container).get("Name"), sort_keys=True)


def _may_be_absent(value: Any) -> bool:
    """An ``Fn::If`` with an ``AWS::NoValue`` branch."""
    branches = value.get("Fn::If") if isinstance(value, Mapping) and len(value) == 1 else None
    return isinstance(branches, list) and {"Ref": "AWS::NoValue"} in branches[1:]


def _assert_patch_documented(logical_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """A referenced resource: same Type and attributes; only the documented properties change, additively."""
    kind = before.get("Type")
    assert after.get("Type") == kind, f"{logical_id}: Type changed"
    for attribute in set(before) | set(after):
        if attribute == "Properties" or after.get(attribute) == before.get(attribute):
            continue
        # Ordering on what the patch adds (e.g. the envoy IAM policy) is additive: the user's own kept.
        assert attribute == "DependsOn", f"{logical_id}: {attribute} changed"
        _assert_list_kept(_as_list(before.get(attribute)), _as_list(after.get(attribute)), logical_id)
    props_before = before.get("Properties") or {}
    props_after = after.get("Properties") or {}
    allowed = PATCHABLE_PROPERTIES.get(str(kind), set())
    for key in set(props_before) | set(props_after):
        if props_before.get(key) == props_after.get(key):
            continue
        where = f"Resources.{logical_id}.Properties.{key}"
        assert key in allowed, f"{where} changed, and SPEC documents no such patch"
        if _may_be_absent(props_before.get(key)):  # SPEC §7: an Fn::If that may be AWS::NoValue is set as if absent
            continue
        if key in ("TaskRoleArn", "ExecutionRoleArn"):
            assert key not in props_before, f"{where}: the task's own role was replaced"
        elif key == "ContainerDefinitions":
            containers_after = {_name_of(c): _unwrapped(c) for c in props_after.get(key, [])}
            for written in props_before.get(key, []):
                container, name = _unwrapped(written), _name_of(written)
                assert name in containers_after, f"{where}: container {name} lost"
                patched = containers_after[name]
                for field_name in set(container) | set(patched):
                    if container.get(field_name) == patched.get(field_name):
                        continue
                    if field_name == "PortMappings":
                        _assert_port_mappings_named(container["PortMappings"], patched.get("PortMappings"), where)
                        continue
                    assert field_name == "DependsOn", f"{where}[{name}].{field_name} changed"
                    _assert_list_kept(container.get("DependsOn", []), patched.get("DependsOn"), where)
        elif isinstance(props_before.get(key), list):
            _assert_list_kept(props_before[key], props_after.get(key), where)
        elif key == "ServiceConnectConfiguration" and props_before.get(key) == {"Enabled": False}:
            continue  # SPEC §4: a configuration that only turns Service Connect off is replaced
        else:
            assert key not in props_before, f"{where}: replaced"


@pytest.mark.parametrize("case", CASES)
def test_golden_output(case: str) -> None:
    path = output_path(case)
    if not path.exists():
        pytest.fail(f"no golden output {path}; run: python -m tests.golden.regenerate {case}")
    expected = path.read_text(encoding="utf-8")
    actual = run_case(case)
    if actual != expected:
        # Compare parsed first for a readable diff, then the text (key order, formatting).
        assert json.loads(actual) == json.loads(expected)
        assert actual == expected


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_message_shape(case: str) -> None:
    message = json.loads(run_case(case))["errorMessage"]
    assert message.startswith(ERROR_PREFIX)
    assert "\n" not in message
    count = int(message[len(ERROR_PREFIX) :].split(".", 1)[0])
    assert count >= 1
    if case == "error_multiple_errors":
        assert count >= 3


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_output_passes_cfn_lint(case: str) -> None:
    assert lint_errors(_expanded(case)) == []


@pytest.mark.parametrize("case", CASES)
def test_input_is_not_mutated(case: str) -> None:
    fragment = _fragment(case)
    before = copy.deepcopy(fragment)
    context = _context(case)
    if is_error_case(case):
        with pytest.raises(InvalidSectionError):
            expand(fragment, context)
    else:
        expand(fragment, context)
    assert fragment == before


@pytest.mark.parametrize("case", case_names())  # holds for known discrepancies too
def test_expand_is_deterministic(case: str) -> None:
    def once() -> str:
        try:
            return dump(expand(_fragment(case), _context(case)).fragment)
        except InvalidSectionError as error:
            return str(error.message)

    assert once() == once()


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_section_is_removed(case: str) -> None:
    assert SECTION_KEY not in _expanded(case)


@pytest.mark.parametrize("case", TEMPLATE_CASES)
def test_nothing_else_changes(case: str) -> None:
    fragment = _fragment(case)
    expanded = _expanded(case)
    for key, value in fragment.items():
        if key not in ("Resources", SECTION_KEY):
            assert expanded.get(key) == value, f"top-level {key} changed"
    patchable = _patchable(fragment)
    for logical_id, resource in fragment.get("Resources", {}).items():
        assert logical_id in expanded["Resources"], f"{logical_id} lost"
        if logical_id in patchable:
            _assert_patch_documented(logical_id, resource, expanded["Resources"][logical_id])
        else:
            assert expanded["Resources"][logical_id] == resource, f"{logical_id} changed"


class _LambdaContext:
    function_name = "ComposeXMeshFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ComposeXMeshFunction"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/ComposeXMeshFunction"
    log_stream_name = "golden"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@pytest.mark.parametrize("case", CASES)
def test_lambda_handler_answers_the_same(case: str) -> None:
    handler = pytest.importorskip("composex_mesh.handler")
    context = _context(case)
    request_id = f"golden-{case}"
    event = {
        "region": context.region,
        "accountId": context.account_id,
        "fragment": _fragment(case),
        "transformId": f"{context.account_id}::{MACRO_NAME}",
        "params": dict(context.params),
        "requestId": request_id,
        "templateParameterValues": dict(context.template_parameter_values),
    }
    answer = handler.lambda_handler(event, _LambdaContext())
    assert answer["requestId"] == request_id
    expected = json.loads(run_case(case))
    if is_error_case(case):
        assert answer["status"] == "failure"
        assert answer["errorMessage"] == expected["errorMessage"]
    else:
        assert answer["status"] == "success"
        assert dump(answer["fragment"]) == dump(expected)
