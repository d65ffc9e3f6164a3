"""What must hold for *every* macro event, whatever its section: "never crash, never lose a line".

``check_event(event)`` calls ``composex_mesh.handler.lambda_handler`` and asserts (``InvariantError`` says which
rule broke and why):

1. **Answers, never raises**: the handler returns; the event is not modified; the answer is
   ``{requestId, status, fragment[, errorMessage]}``, JSON-serializable (a JSON round trip gives it back
   unchanged: no tuples, no troposphere objects), ``status`` is ``success`` or ``failure``.
2. **A failure is the user's, never ours**: ``errorMessage`` never starts with ``Internal error``. When the
   event carries a fragment with the section, the message is
   ``Invalid Composex::AppMesh section. Number of errors found: N.`` followed by N ``[path] message`` items
   (at most ``MAX_LISTED``, then ``... and K more``; long paths and messages shortened around ``...``).
   This is checked structurally: N is the number of errors ``expand()`` raises for the same input, and the
   message is exactly the one those errors make, item by item and in order.
3. **Every error path is grounded** in the input. Paths are written as the parser joins them
   (``Nodes.frontend.Listeners[0].Port``; the whole section prints as ``Composex::AppMesh``). A path is grounded
   when it is

   - a path that exists in the section as given (a key of a mapping, an index of a list, at any depth,
     including invalid names such as ``Nodes.Fn::GetAtt``), or the section itself; or
   - an existing path followed by one or more section *keys* (``Port``, ``Match``, ...: keys of the section's
     schema, never names or list indexes) that the user did not write, e.g. ``[Namespace] is required`` or
     ``[Routers.r.Routes[0].Match.Port] is required``; or
   - a path that exists in the template around the section (``Resources``, when it is not a mapping;
     ``Outputs.Deep.Value[0]...`` where a value nests too deeply), or
     ``Transform.Parameters.<name>`` for a ``<name>`` given in the transform's parameters.

   So an error never names a node, router, service, or list item that the user did not write.
4. **A success loses nothing**: the section is gone; every other top-level entry (Parameters, Conditions,
   Outputs, Mappings, Metadata, Description, unknown keys) is ``json.dumps``-identical and in the same order;
   every resource of the user's is kept, in the same order, and those the section does not reference are
   ``json.dumps``-identical. The referenced ones (each ECS node's ``AWS::ECS::Service`` and its task definition)
   only gain what SPEC §3/§4 documents: containers and their ``DependsOn``, named port mappings,
   ``ProxyConfiguration``, roles that were absent, ``ServiceRegistries`` that were absent or empty,
   ``ServiceConnectConfiguration``, ``DependsOn`` entries; everything the user wrote there is still there.
   Generated resources have valid logical IDs and an ``AWS::`` type.
5. **Deterministic**: a second run on a fresh copy of the event gives a byte-identical answer.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from composex_mesh import SECTION_KEY, model
from composex_mesh.deploy_view import logical_id_of as ref_target
from composex_mesh.errors import MAX_LISTED, InvalidSectionError
from composex_mesh.fields import fields_of
from composex_mesh.handler import lambda_handler
from composex_mesh.transform import Context, expand

PREFIX = re.compile(rf"^Invalid {re.escape(SECTION_KEY)} section\. Number of errors found: (\d+)\. ")
LOGICAL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")

SCHEMA_KEYS = frozenset(
    spec.key
    for value in vars(model).values()
    if isinstance(value, type)
    and dataclasses.is_dataclass(value)
    and all("key" in item.metadata for item in dataclasses.fields(value))
    for spec in fields_of(value)
)
"""Every key the section's schema knows (``Nodes``, ``Port``, ``Match``, ...)."""

TASK_PATCHABLE = frozenset({"ContainerDefinitions"})
"""Task definition properties the envoy/Service Connect patch may change (others may only be added)."""
ROLE_PROPERTIES = frozenset({"TaskRoleArn", "ExecutionRoleArn"})
"""Task definition roles: the macro sets one that is absent (or null)."""
CONTAINER_PATCHABLE = frozenset({"DependsOn", "PortMappings"})
"""Container keys the patches may change: DependsOn envoy; Service Connect names a port mapping."""


class InvariantError(AssertionError):
    """A rule of this module does not hold for an event."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"{rule}: {detail}")


@dataclass
class Tally:
    """How many events were checked, and with what outcome (printed at the end of a pytest run)."""

    checked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str) -> None:
        self.checked += 1
        self.outcomes[outcome] += 1


TALLY = Tally()


@dataclass(frozen=True)
class Outcome:
    """What ``check_event`` saw."""

    status: str
    answer: dict[str, Any]
    errors: tuple[tuple[str, str], ...] = ()
    """The structured errors of a failure: (path, message)."""


def _fail(rule: str, detail: str) -> None:
    raise InvariantError(rule, detail)


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value, without recursion (``copy.deepcopy`` fails on deeply nested input)."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            mapping: dict[Any, Any] = {}
            parent[key] = mapping
            # Pushed in reverse, popped in order: each dict's keys keep their order.
            stack.extend((child, mapping, name) for name, child in reversed(list(item.items())))
        elif isinstance(item, list):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            stack.extend((child, items, index) for index, child in enumerate(item))
        else:
            parent[key] = item
    return root[0]


def json_equal(left: Any, right: Any) -> bool:
    """``left == right`` for JSON values (types and dict key order included), without recursion."""
    stack = [(left, right)]
    while stack:
        a, b = stack.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if list(a) != list(b):
                return False
            stack.extend((a[name], b[name]) for name in a)
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            stack.extend(zip(a, b, strict=True))
        elif a != b and not (isinstance(a, float) and a != a and b != b):
            return False
    return True


def check_event(event: Any, *, determinism: bool = True) -> Outcome:
    """Run the handler on ``event`` and check every invariant; returns what happened."""
    pristine = json_copy(event)
    try:
        answer = lambda_handler(event, None)
    except BaseException as error:
        _fail("raised", f"{type(error).__name__}: {error}")
        raise  # unreachable
    if not json_equal(event, pristine):
        _fail("event-mutated", "the handler modified its event")
    _check_shape(event, answer)
    if determinism:
        again = lambda_handler(json_copy(pristine), None)
        same = (again.get("status"), again.get("errorMessage")) == (answer["status"], answer.get("errorMessage"))
        if same and answer["status"] == "success":
            same = json.dumps(again["fragment"]) == json.dumps(answer["fragment"])
        if not same:
            _fail("nondeterministic", "a second run on the same event gave a different answer")
    fragment = event.get("fragment") if isinstance(event, Mapping) else None
    if answer["status"] == "failure":
        errors = _check_failure(event, answer["errorMessage"])
        TALLY.add("failure")
        return Outcome("failure", answer, errors)
    assert isinstance(fragment, Mapping)
    if SECTION_KEY in fragment:
        _check_success(fragment, answer["fragment"])
        TALLY.add("success")
    else:
        if json.dumps(answer["fragment"]) != json.dumps(fragment):
            _fail("passthrough-changed", "a template without the section did not come back unchanged")
        TALLY.add("passthrough")
    return Outcome("success", answer)


def _check_shape(event: Any, answer: Any) -> None:
    if not isinstance(answer, dict):
        _fail("answer-shape", f"the answer is a {type(answer).__name__}, not a dict")
    allowed = {"requestId", "status", "fragment", "errorMessage"}
    if not {"requestId", "status", "fragment"} <= set(answer) <= allowed:
        _fail("answer-shape", f"answer keys {sorted(answer)}")
    expected_id = str(event.get("requestId", "")) if isinstance(event, Mapping) else ""
    if answer["requestId"] != expected_id:
        _fail("answer-shape", f"requestId {answer['requestId']!r} instead of {expected_id!r}")
    status = answer["status"]
    if status == "success":
        if "errorMessage" in answer:
            _fail("answer-shape", "a success carries an errorMessage")
        if not isinstance(answer["fragment"], dict):
            _fail("answer-shape", "a success without a fragment")
        try:
            text = json.dumps(answer["fragment"], allow_nan=False)
        except (TypeError, ValueError, RecursionError) as error:
            _fail("not-json", f"the fragment is not JSON: {type(error).__name__}: {error}")
        if json.loads(text) != answer["fragment"]:
            _fail("not-json", "the fragment does not survive a JSON round trip (tuples or odd types)")
    elif status == "failure":
        if not isinstance(answer.get("errorMessage"), str) or not answer["errorMessage"]:
            _fail("answer-shape", "a failure without an errorMessage string")
    else:
        _fail("answer-shape", f"status {status!r}")


def _check_failure(event: Any, message: str) -> tuple[tuple[str, str], ...]:
    if message.startswith("Internal error"):
        _fail("internal-error", message[:2000])
    fragment = event.get("fragment") if isinstance(event, Mapping) else None
    if not isinstance(fragment, Mapping) or SECTION_KEY not in fragment:
        return ()  # a malformed event: answered with a plain message
    match = PREFIX.match(message)
    if match is None:
        _fail("message-prefix", message[:500])
    assert match is not None
    count = int(match.group(1))
    errors = _structured_errors(event)
    if errors is None:
        _fail("inconsistent", "the handler failed but expand() succeeded on the same input")
    assert errors is not None
    if count != len(errors) or count < 1:
        _fail("error-count", f"the message says {count}, expand() raised {len(errors)}")
    listed = [str(error) for error in errors[:MAX_LISTED]]
    body = message[match.end() :]
    for item in listed:  # each item, in order, and nothing between them
        if not body.startswith(item):
            _fail("message-items", f"expected the item {item[:200]!r} at {body[:200]!r}")
        body = body[len(item) :].removeprefix(" ")
    if body not in ("", f"... and {count - MAX_LISTED} more: fix these first."):
        _fail("message-items", f"unexpected text after the items: {body[:200]!r}")
    rebuilt = InvalidSectionError(list(errors)).message
    if rebuilt != message:
        _fail("message-items", f"the message is not the N [path] items of the errors:\n{message[:500]}")
    section = fragment[SECTION_KEY]
    params = event.get("params")
    given_params = {str(key) for key in params} if isinstance(params, Mapping) else set()
    for error in errors:
        if not grounded(error.path, section, fragment, given_params):
            _fail("ungrounded-path", f"[{error.path}] names nothing of the input: {error.message[:300]}")
    return tuple((error.path, error.message) for error in errors)


def _structured_errors(event: Mapping[str, Any]) -> list[Any] | None:
    context = Context.from_event(event)
    try:
        expand(json_copy(event["fragment"]), context)
    except InvalidSectionError as error:
        return list(error.errors)
    return None


_INDEX = re.compile(r"\[(\d+)\]")


def remainders(root: Any, path: str) -> list[str]:
    """What is left of ``path`` after walking down ``root`` along it, for every way the walk can go.

    Paths are joined as the parser joins them (``Nodes.a.Listeners[0]``); names may hold dots or brackets
    (``Nodes.a.b`` is node ``a.b``), hence several possible walks. ``""`` in the result: the path exists.
    """
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(root, path)]
    while stack:
        value, rest = stack.pop()
        found.append(rest)
        if not rest:
            continue
        if isinstance(value, Mapping):
            for key in value:
                name = str(key)
                if rest == name or rest.startswith((f"{name}.", f"{name}[")):
                    after = rest[len(name) :]
                    stack.append((value[key], after[1:] if after.startswith(".") else after))
        elif isinstance(value, list):
            match = _INDEX.match(rest)
            if match and int(match.group(1)) < len(value):
                after = rest[match.end() :]
                stack.append((value[int(match.group(1))], after[1:] if after.startswith(".") else after))
    return found


def grounded(path: str, section: Any, template: Mapping[str, Any], given_params: set[str]) -> bool:
    """True when ``path`` names something of the input (see the module's rule 3)."""
    if path.startswith("Transform.Parameters."):
        return path[len("Transform.Parameters.") :] in given_params
    for rest in remainders(section, path):
        if not rest or ("[" not in rest and all(part in SCHEMA_KEYS for part in rest.split("."))):
            return True  # it exists, or only section keys the user did not write follow what exists
    outside = {key: value for key, value in template.items() if key != SECTION_KEY}
    return "" in remainders(outside, path)  # the template around the section, as given


# -- success: nothing lost ---------------------------------------------------------------------------------


def referenced_resources(fragment: Mapping[str, Any]) -> set[str]:
    """Logical IDs the section's ECS nodes may patch: their ECS services and those services' task definitions."""
    section = fragment.get(SECTION_KEY)
    resources = fragment.get("Resources")
    if not isinstance(section, Mapping) or not isinstance(resources, Mapping):
        return set()
    nodes = section.get("Nodes")
    found: set[str] = set()
    for node in nodes.values() if isinstance(nodes, Mapping) else ():
        service_id = node.get("Service") if isinstance(node, Mapping) else None
        if not isinstance(service_id, str):
            continue
        found.add(service_id)
        resource = resources.get(service_id)
        properties = resource.get("Properties") if isinstance(resource, Mapping) else None
        task = properties.get("TaskDefinition") if isinstance(properties, Mapping) else None
        target = ref_target(task)
        if target is not None:
            found.add(target)
    return found


def _dumps(value: Any) -> str:
    return json.dumps(value)


def _check_success(fragment: Mapping[str, Any], output: Mapping[str, Any]) -> None:
    if SECTION_KEY in output:
        _fail("section-kept", "a success still carries the section")
    kept_order = [key for key in fragment if key != SECTION_KEY]
    if [key for key in output if key in fragment] != kept_order:
        _fail("order-lost", f"top-level keys {list(output)} vs the input's {kept_order}")
    for key in kept_order:
        if key == "Resources":
            continue
        if _dumps(output[key]) != _dumps(fragment[key]):
            _fail("line-lost", f"top-level {key!r} changed")
    resources = fragment.get("Resources") or {}
    out_resources = output.get("Resources")
    if not isinstance(out_resources, Mapping):
        _fail("line-lost", "the output has no Resources mapping")
    assert isinstance(out_resources, Mapping)
    if [key for key in out_resources if key in resources] != list(resources):
        _fail("order-lost", "the user's resources are not all there, in their order")
    patchable = referenced_resources(fragment)
    for logical_id, resource in resources.items():
        after = out_resources[logical_id]
        if logical_id in patchable:
            _check_patch(logical_id, resource, after)
        elif _dumps(after) != _dumps(resource):
            _fail("line-lost", f"resource {logical_id!r} is not referenced by the section but changed")
    for logical_id, resource in out_resources.items():
        if logical_id in resources:
            continue
        if not LOGICAL_ID.match(logical_id):
            _fail("generated-id", f"generated logical ID {logical_id[:100]!r} is not valid")
        if not isinstance(resource, Mapping) or not str(resource.get("Type", "")).startswith("AWS::"):
            _fail("generated-resource", f"{logical_id} has no AWS:: Type")


def _check_patch(logical_id: str, before: Any, after: Any) -> None:
    """A referenced resource may only gain what the spec documents; nothing the user wrote is lost."""
    where = f"patched resource {logical_id!r}"
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        if _dumps(before) != _dumps(after):
            _fail("patch", f"{where} was not a mapping and changed")
        return
    for key, value in before.items():
        if key not in after:
            _fail("patch", f"{where} lost {key!r}")
        if key == "DependsOn":
            old = [value] if isinstance(value, str) else value
            new = [after[key]] if isinstance(after[key], str) else after[key]
            if isinstance(old, list) and (not isinstance(new, list) or new[: len(old)] != old):
                _fail("patch", f"{where}: DependsOn {old!r} not kept as the start of {new!r}")
        elif key != "Properties" and _dumps(after[key]) != _dumps(value):
            _fail("patch", f"{where}: {key!r} changed")
    properties, patched = before.get("Properties"), after.get("Properties")
    if not isinstance(properties, Mapping):
        return
    if not isinstance(patched, Mapping):
        _fail("patch", f"{where} lost its Properties")
    assert isinstance(patched, Mapping)
    for key, value in properties.items():
        if key not in patched:
            _fail("patch", f"{where} lost property {key!r}")
        if key in TASK_PATCHABLE and before.get("Type") == "AWS::ECS::TaskDefinition":
            _check_containers(where, value, patched[key])
        elif key == "ServiceRegistries" and value in ([], None):
            continue  # "an ECS service without ServiceRegistries" gets the macro's (SPEC §3)
        elif key in ROLE_PROPERTIES and value is None and before.get("Type") == "AWS::ECS::TaskDefinition":
            continue  # a role written as null is no role: the macro makes one, as for a missing one (SPEC §3)
        elif key == "ServiceConnectConfiguration" and _turned_off(value):
            continue  # a configuration that only says Enabled: false is replaced on Service Connect (SPEC §4)
        elif key in (*ROLE_PROPERTIES, "ServiceRegistries") and _may_be_no_value(value):
            continue  # Fn::If whose taken branch may be AWS::NoValue: absent this deploy, so the macro sets it (SPEC §7)
        elif _dumps(patched[key]) != _dumps(value):
            _fail("patch", f"{where}: property {key!r} changed")


def _turned_off(value: Any) -> bool:
    """A Service Connect configuration that only says ``Enabled: false``."""
    return isinstance(value, Mapping) and set(value) == {"Enabled"} and value["Enabled"] in (False, "false")


def _may_be_no_value(value: Any) -> bool:
    """An ``Fn::If`` one of whose branches is ``AWS::NoValue``."""
    branches = value.get("Fn::If") if isinstance(value, Mapping) and len(value) == 1 else None
    return isinstance(branches, list) and len(branches) == 3 and {"Ref": "AWS::NoValue"} in branches[1:]


def _check_containers(where: str, before: Any, after: Any) -> None:
    if not isinstance(before, list):
        if _dumps(before) != _dumps(after):
            _fail("patch", f"{where}: ContainerDefinitions changed")
        return
    if not isinstance(after, list) or len(after) < len(before):
        _fail("patch", f"{where}: containers lost")
    for index, container in enumerate(before):
        new = after[index]
        if not isinstance(container, Mapping) or not isinstance(new, Mapping):
            if _dumps(new) != _dumps(container):
                _fail("patch", f"{where}: container {index} changed")
            continue
        for key, value in container.items():
            if key not in new:
                _fail("patch", f"{where}: container {index} lost {key!r}")
            if key == "DependsOn" and isinstance(value, list):
                if not isinstance(new[key], list) or new[key][: len(value)] != value:
                    _fail("patch", f"{where}: container {index} DependsOn not kept")
            elif key == "PortMappings" and isinstance(value, list):
                _check_port_mappings(f"{where}: container {index}", value, new[key])
            elif key not in CONTAINER_PATCHABLE and _dumps(new[key]) != _dumps(value):
                _fail("patch", f"{where}: container {index} {key!r} changed")


def _check_port_mappings(where: str, before: list[Any], after: Any) -> None:
    if not isinstance(after, list) or len(after) < len(before):
        _fail("patch", f"{where}: port mappings lost")
    for index, mapping in enumerate(before):
        new = after[index]
        if isinstance(mapping, Mapping) and isinstance(new, Mapping):
            for key, value in mapping.items():
                if key not in new or _dumps(new[key]) != _dumps(value):
                    _fail("patch", f"{where}: port mapping {index} {key!r} changed")
        elif _dumps(new) != _dumps(mapping):
            _fail("patch", f"{where}: port mapping {index} changed")
