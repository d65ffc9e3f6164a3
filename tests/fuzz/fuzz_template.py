"""The template-side fuzz target: ``python -m tests.fuzz.fuzz_template --minutes N [--seed S]``.

The section is fuzzed by ``fuzz_handler``; this target mutates what the section *reads*: the user's resources it
references (ECS services, task definitions and their containers, security groups, Cloud Map services and
namespaces, roles, and whatever those reference) and the template's top-level keys, with the values ordinary
CloudFormation templates hold: ``Fn::If`` on conditions true and false (with ``AWS::NoValue``), ``Ref`` to
parameters (of every type, some ``NoEcho``, some without a value), the other intrinsics, resource-level
``Condition``, deleted and duplicated entries, and odd types. The bases are the golden inputs (every backend).

Every event is checked against SPEC §1 and §5 (``tests.property.invariants.check_event``: never raises, the
answer's shape, nothing lost, deterministic, every failure in the validation format with grounded paths), and
beyond it:

- no ``NoEcho`` parameter's value in the answer or in any log line, at any level;
- at most ``MAX_SECONDS`` per expansion;
- on a sample of successes (``--lint-every``), no cfn-lint error in the output that the input did not have.

Event ``i`` of seed ``S`` is the same on every machine (``random.Random(f"{S}:{i}")``). A failure with a new
signature is saved, unshrunk, under ``tests/fuzz/findings/`` as ``template-<rule>-<hash>.json``;
``tests/fuzz/test_fuzz.py`` replays every finding and runs this target briefly in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import logging
import random
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composex_mesh import SECTION_KEY
from composex_mesh.resolve import ref_target
from tests.golden import case_names, event_fragment, is_error_case, load_context, load_input
from tests.property.builders import make_event
from tests.property.invariants import InvariantError, check_event, referenced_resources

from .fuzz_handler import FINDINGS_DIR, Report, signature

MAX_SECONDS = 2.0
READ_KEYS = frozenset(
    {
        "AppProtocol",
        "AwsvpcConfiguration",
        "ContainerDefinitions",
        "ContainerPort",
        "DeploymentController",
        "DnsConfig",
        "ExecutionRoleArn",
        "Family",
        "HostPort",
        "Image",
        "LogConfiguration",
        "Memory",
        "Name",
        "NamespaceId",
        "NetworkConfiguration",
        "NetworkMode",
        "PortMappings",
        "Protocol",
        "RegistryArn",
        "SecurityGroupIngress",
        "SecurityGroups",
        "ServiceConnectConfiguration",
        "ServiceRegistries",
        "TaskDefinition",
        "TaskRoleArn",
        "Vpc",
    }
)
"""Properties the macro reads: paths through them are drawn five times as often as others."""
TOP_LEVEL_KEYS = ("Parameters", "Conditions", "Mappings", "Outputs", "Resources", "Metadata", "Description")
CONDITIONS = {"FuzzYes": {"Fn::Equals": ["a", "a"]}, "FuzzNo": {"Fn::Equals": ["a", "b"]}}
ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    70000,
    1.5,
    "",
    "x",
    "²",
    "8080①",
    " 80",
    "-1",
    [],
    [None],
    ["x", 1],
    {},
    {"a": 1},
    {"Ref": "AWS::NoValue"},
    {"Ref": "NoSuchThing"},
    {"Ref": "AWS::StackName"},
    {"Fn::ImportValue": "shared-value"},
    {"Fn::Sub": "${AWS::Region}-x"},
    {"Fn::GetAtt": ["NoSuchThing", "Arn"]},
)


@dataclass
class TemplateReport(Report):
    """``fuzz_handler``'s report, and how many successes were linted."""

    linted: int = 0

    def summary(self) -> str:
        first, rest = super().summary().replace("fuzz: ", "fuzz-template: ").split("\n", 1)
        return f"{first}; {self.linted} successes linted\n{rest}"


# -- the bases and the mutations ---------------------------------------------------------------------------------


def base_events() -> list[dict[str, Any]]:
    """One macro event per golden input that expands (every backend), as CloudFormation would send it."""
    events = []
    for case in case_names():
        if is_error_case(case) or case == "no_section":
            continue
        template = load_input(case)
        context = load_context(case, template)
        events.append(
            make_event(
                event_fragment(template),
                parameter_values=dict(context.template_parameter_values),
                params=dict(context.params),
                region=context.region,
            )
        )
    return events


def _logical_ids(value: Any) -> Iterator[str]:
    """Logical IDs a value names by ``Ref``, ``Fn::GetAtt`` or ``${...}`` in ``Fn::Sub``."""
    stack = [value]
    while stack:
        item = stack.pop()
        target = ref_target(item)
        if target is not None:
            yield target
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and "${" in item:
            yield from (name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", item))


def reachable(fragment: Mapping[str, Any]) -> list[str]:
    """The user's resources the section reads: its ECS services and task definitions, what they reference (security
    groups, Cloud Map, roles, log groups), the namespaces, and what the section names directly."""
    resources = fragment.get("Resources")
    if not isinstance(resources, Mapping):
        return []
    found = set(referenced_resources(fragment)) | set(_logical_ids(fragment.get(SECTION_KEY)))
    found |= {
        logical_id
        for logical_id, resource in resources.items()
        if isinstance(resource, Mapping) and "Namespace" in str(resource.get("Type"))
    }
    for _ in range(2):  # two hops: service -> task definition -> role / log group
        found |= {name for logical_id in list(found) for name in _logical_ids(resources.get(logical_id))}
    return sorted(name for name in found if name in resources)


def _paths(root: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if depth >= 9:
        return
    if isinstance(root, Mapping):
        for key, value in root.items():
            yield from _paths(value, (*prefix, key), depth + 1)
    elif isinstance(root, list):
        for index, value in enumerate(root):
            yield from _paths(value, (*prefix, index), depth + 1)


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        root = root[step]
    return root


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(root, path[:-1])[path[-1]] = value


class Mutator:
    """Mutations of one event, drawn from one ``random.Random``."""

    def __init__(self, rng: random.Random, event: dict[str, Any]) -> None:
        self.rng = rng
        self.event = event
        self.fragment: dict[str, Any] = event["fragment"]
        self.secrets: list[str] = []
        self.notes: list[str] = []

    def _mapping(self, key: str) -> dict[str, Any] | None:
        value = self.fragment.setdefault(key, {})
        return value if isinstance(value, dict) else None

    def _parameter(self, value: Any) -> dict[str, Any]:
        """A new parameter standing for ``value`` (its type, default, value this deploy and NoEcho drawn)."""
        parameters = self._mapping("Parameters")
        if parameters is None:
            return {"Ref": "NoSuchParameter"}
        name = f"FuzzParam{len(parameters)}"
        kind = self.rng.choice(["String", "Number", "CommaDelimitedList", "AWS::EC2::SecurityGroup::Id"])
        definition: dict[str, Any] = {"Type": kind}
        text = value if isinstance(value, str) else json.dumps(value) if self.rng.random() < 0.3 else str(value)
        if self.rng.random() < 0.3:
            secret = f"S3cret-{self.rng.randrange(10**8):08d}"
            definition["NoEcho"] = self.rng.choice([True, "true"])
            self.secrets.append(secret)
            text = secret if self.rng.random() < 0.5 else text
        if self.rng.random() < 0.5:
            definition["Default"] = text
        if self.rng.random() < 0.8:
            given = text.split(",") if kind == "CommaDelimitedList" else text
            self.event["templateParameterValues"][name] = given
        parameters[name] = definition
        return {"Ref": name}

    def _conditions(self) -> None:
        conditions = self._mapping("Conditions")
        if conditions is not None:
            for name, condition in CONDITIONS.items():
                conditions.setdefault(name, condition)

    def replacement(self, value: Any) -> Any:
        """What ``value`` becomes: an odd value, a conditional form of it, a parameter, or another intrinsic."""
        draw = self.rng.random()
        if draw < 0.3:
            return copy.deepcopy(self.rng.choice(ODD_VALUES))
        if draw < 0.6:
            self._conditions()
            condition = self.rng.choice(["FuzzYes", "FuzzNo", "FuzzYes", "FuzzNo", "NoSuchCondition"])
            other = self.rng.choice([{"Ref": "AWS::NoValue"}, copy.deepcopy(self.rng.choice(ODD_VALUES))])
            branches = [value, other] if self.rng.random() < 0.5 else [other, value]
            return {"Fn::If": [condition, *branches]}
        if draw < 0.8:
            return self._parameter(value)
        mappings = self._mapping("Mappings")
        if mappings is not None:
            mappings.setdefault("FuzzMap", {"Key": {"Value": value if isinstance(value, str) else "x"}})
        return self.rng.choice(
            [
                {"Fn::FindInMap": ["FuzzMap", "Key", "Value"]},
                {"Fn::Join": ["", [value] if isinstance(value, str) else ["x"]]},
                {"Fn::Select": [0, [value]]},
                {"Fn::Sub": value} if isinstance(value, str) else {"Fn::Sub": "x-${AWS::Region}"},
                {"Fn::Split": [",", value]} if isinstance(value, str) else {"Ref": "AWS::Region"},
            ]
        )

    def mutate_once(self) -> None:
        resources = self.fragment.get("Resources")
        targets = reachable(self.fragment)
        if targets and isinstance(resources, dict) and self.rng.random() < 0.75:
            logical_id = self.rng.choice(targets)
            resource = resources[logical_id]
            if isinstance(resource, dict) and self.rng.random() < 0.08:
                self._conditions()
                resource["Condition"] = self.rng.choice(["FuzzYes", "FuzzNo", "NoSuchCondition"])
                self.notes.append(f"Resources.{logical_id}.Condition")
                return
            root: Any = resources
            paths = [path for path in _paths(resource, (logical_id,)) if len(path) > 1]
        else:
            key = self.rng.choice(TOP_LEVEL_KEYS)
            if key not in self.fragment or self.rng.random() < 0.3:
                self.fragment[key] = copy.deepcopy(self.rng.choice(ODD_VALUES))
                self.notes.append(key)
                return
            root = self.fragment
            paths = [path for path in _paths(self.fragment[key], (key,))]
        if not paths:
            return
        weights = [5 if any(step in READ_KEYS for step in path[-2:]) else 1 for path in paths]
        path = self.rng.choices(paths, weights)[0]
        parent = _get(root, path[:-1]) if len(path) > 1 else root
        value = parent[path[-1]]
        self.notes.append(".".join(str(step) for step in path))
        draw = self.rng.random()
        if draw < 0.12:
            del parent[path[-1]]
        elif draw < 0.2 and isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(value))
        else:
            _set(root, path, self.replacement(value))


def fuzz_event(seed: int, index: int, bases: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Event ``index`` of ``seed``: a base event with 1 to 3 mutations; and the NoEcho values it holds."""
    rng = random.Random(f"{seed}:{index}")
    event = copy.deepcopy(bases[index % len(bases)])
    mutator = Mutator(rng, event)
    for _ in range(rng.choice([1, 1, 2, 3])):
        mutator.mutate_once()
    event["requestId"] = f"fuzz-template-{seed}-{index}"
    return event, mutator.secrets


# -- the checks -------------------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{text} {json.dumps(record.__dict__, default=str)}")


def secrets_of(event: Mapping[str, Any]) -> list[str]:
    """This deploy's values of the event's ``NoEcho`` parameters (for replaying a saved finding)."""
    parameters = event.get("fragment", {}).get("Parameters")
    values = event.get("templateParameterValues") or {}
    if not isinstance(parameters, Mapping):
        return []
    found = []
    for name, definition in parameters.items():
        if isinstance(definition, Mapping) and str(definition.get("NoEcho")).lower() == "true":
            for value in (values.get(name), definition.get("Default")):
                if isinstance(value, str) and len(value) >= 6:
                    found.append(value)
    return found


def _template_of(fragment: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fragment.items() if key != SECTION_KEY}


def new_lint_errors(fragment: Mapping[str, Any], output: Mapping[str, Any], region: str) -> list[str]:
    """cfn-lint errors (E rules) of ``output`` that the input template did not have already: neither at the same
    place, nor about the same value (a dangling ``Ref`` the macro passes on is the input's error, not a new one)."""
    from tests.lint import lint_errors

    def errors(template: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
        """(rule, place with list indexes as N, the value the message is about, or the message, and the line)."""
        found = []
        for line in lint_errors(template, region if region.count("-") >= 2 else "us-east-1"):
            rule, rest = line.split(" ", 1)
            where, _, message = rest.partition(": ")
            if rule.startswith("E"):
                quoted = re.match(r"^'[^']*' ", message)
                value = quoted.group(0) if quoted else message
                found.append((rule, re.sub(r"/\d+(?=/|$)", "/N", where), value, line))
        return found

    try:
        before = errors(_template_of(fragment))
    except Exception:  # cfn-lint itself fails on some broken inputs (Metadata: 5): nothing to compare with
        return []
    try:
        after = errors(output)
    except Exception as error:
        return [f"E0000 cfn-lint: fails on the output, not on the input: {type(error).__name__}: {error}"]
    places = {(rule, where) for rule, where, _, _ in before}
    values = {(rule, value) for rule, _, value, _ in before if value}
    return sorted(
        line
        for rule, where, value, line in after
        if (rule, where) not in places and not (value and (rule, value) in values)
    )


def check(event: dict[str, Any], secrets: list[str] | None = None, lint: bool = False) -> str:
    """Run every check on ``event``; returns ``success`` or ``failure``, raises ``InvariantError`` on a violation."""
    from composex_mesh.handler import logger as macro_logger

    secrets = secrets_of(event) if secrets is None else secrets
    pristine = copy.deepcopy(event)
    collect = _Collect()
    handler_logger = logging.getLogger(macro_logger.name)
    level = handler_logger.level
    printed = io.StringIO()  # Powertools writes its log lines and metrics to the stream it bound at import
    streams = [
        (item, item.setStream(printed)) for item in handler_logger.handlers if isinstance(item, logging.StreamHandler)
    ]
    handler_logger.addHandler(collect)
    handler_logger.setLevel(logging.DEBUG)
    started = time.process_time()  # CPU time: the wall clock of a shared machine also holds others' work
    try:
        with contextlib.redirect_stdout(printed):
            outcome = check_event(event)
    finally:
        handler_logger.removeHandler(collect)
        handler_logger.setLevel(level)
        for item, stream in streams:
            item.setStream(stream)
    elapsed = (time.process_time() - started) / 2  # check_event expands twice (determinism)
    if elapsed > MAX_SECONDS:
        raise InvariantError("slow", f"an expansion took {elapsed:.1f}s (at most {MAX_SECONDS:.0f}s)")
    shown = json.dumps(outcome.answer.get("errorMessage")) + "".join(collect.lines) + printed.getvalue()
    leaked = [secret for secret in secrets if secret in shown]
    if leaked:
        raise InvariantError("noecho-leak", f"a NoEcho value is shown: {leaked[0][:3]}... in {shown[:300]}")
    if lint and outcome.status == "success" and SECTION_KEY in pristine["fragment"]:
        added = new_lint_errors(pristine["fragment"], outcome.answer["fragment"], str(pristine.get("region")))
        if added:
            raise InvariantError("new-lint-error", "\n".join(added[:10]))
    return outcome.status


def template_signature(event: Any, error: InvariantError) -> str:
    if error.rule == "new-lint-error":
        first = error.detail.splitlines()[0]
        rule, rest = first.split(" ", 1)
        where = re.sub(r"^Resources/[^/]+/", "Resources/*/", rest.split(": ", 1)[0])
        return f"new-lint-error: {rule} at {re.sub(r'/[0-9]+', '/N', where)}"
    if error.rule in ("slow", "noecho-leak"):
        return error.rule
    return signature(event, error)


def save_finding(directory: Path, sig: str, error: InvariantError, event: Any, secrets: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(sig.encode()).hexdigest()[:10]
    path = directory / f"template-{error.rule}-{digest}.json"
    record = {
        "signature": sig,
        "rule": error.rule,
        "detail": error.detail[:4000],
        "target": "template",
        "secrets": secrets,
        "event": event,
    }
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=repr) + "\n", encoding="utf-8")
    return path


def run(
    seconds: float,
    *,
    start_seed: int = 0,
    findings: Path = FINDINGS_DIR,
    lint_every: int = 20,
    max_events: int | None = None,
    progress: bool = False,
) -> TemplateReport:
    """Fuzz for ``seconds`` (or ``max_events`` events, if fewer); the same seed gives the same events."""
    report = TemplateReport()
    bases = base_events()
    started = time.monotonic()
    last_progress = started
    successes = 0
    index = 0
    while time.monotonic() - started < seconds and (max_events is None or index < max_events):
        event, secrets = fuzz_event(start_seed, index, bases)
        index += 1
        report.tried += 1
        pristine = copy.deepcopy(event)
        lint = lint_every > 0 and successes % lint_every == 0
        try:
            status = check(event, secrets, lint=lint)
        except InvariantError as error:
            sig = template_signature(pristine, error)
            report.failures[sig] += 1
            if sig not in report.saved:
                report.saved[sig] = save_finding(findings, sig, error, pristine, secrets)
                if progress:
                    print(f"fuzz-template: new failure {sig} -> {report.saved[sig]}", file=sys.stderr)
            continue
        report.outcomes[status] += 1
        if status == "success":
            report.linted += lint
            successes += 1
        now = time.monotonic()
        if progress and now - last_progress > 60:
            last_progress = now
            print(
                f"fuzz-template: {report.tried} events, {now - started:.0f}s, {len(report.failures)} distinct",
                file=sys.stderr,
            )
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="how long to fuzz (default 1)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="the seed (default: the time)")
    parser.add_argument("--findings", type=Path, default=FINDINGS_DIR, help="where to save failing events")
    parser.add_argument("--lint-every", type=int, default=20, help="lint one success in N (0: never; default 20)")
    arguments = parser.parse_args(argv)
    print(f"fuzz-template: {arguments.minutes} minute(s) from seed {arguments.seed}", file=sys.stderr)
    report = run(
        arguments.minutes * 60,
        start_seed=arguments.seed,
        findings=arguments.findings,
        lint_every=arguments.lint_every,
        progress=True,
    )
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
