"""``composex-mesh``: run the macro's transform locally, playing CloudFormation's part.

Exit status: 0 done, 1 invalid input (the template or the section), 2 usage or unreadable/unwritable file,
3 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import MACRO_NAME, SECTION_KEY, __version__

if TYPE_CHECKING:
    from .errors import SectionError
    from .yaml_io import KeyPositions

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
_PROG = "composex-mesh"
_BACKENDS = ("AppMesh", "ServiceConnect", "VpcLattice")
_LIST_TYPES = re.compile(r"^(?:CommaDelimitedList|List<.*>)$")
_TEMPLATE_KEYS = frozenset(
    {
        "AWSTemplateFormatVersion",
        "Conditions",
        "Description",
        "Hooks",
        "Mappings",
        "Metadata",
        "Outputs",
        "Parameters",
        "Resources",
        "Rules",
        "Transform",
    }
)
"""Top-level keys of a template: an error path that starts with one is the template's, others the section's."""
_PATH_PREFIX = re.compile(r"^\[(.+?)\] (.*)$", re.S)


class _UsageError(Exception):
    """A bad option or a file that cannot be read or written (exit status 2)."""


class _InputError(Exception):
    """An input the transform never gets to see, e.g. an unreadable template (exit status 1)."""


# ------------------------------------------------------------------------------------------------ parser


def _parameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected Key=Value, got {text!r}")
    return key.strip(), value


def _account(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"an AWS account ID is 12 digits, got {text!r}")
    return text


def _region(text: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(?:-[a-z]+)+-\d+", text):
        raise argparse.ArgumentTypeError(f"not an AWS region name: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The ``composex-mesh`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=f"Expand the {SECTION_KEY} section of a CloudFormation template, as the {MACRO_NAME} "
        "macro does in CloudFormation.",
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    context = argparse.ArgumentParser(add_help=False)
    context.add_argument("--region", type=_region, default="us-east-1", help="the stack's region (us-east-1)")
    context.add_argument(
        "--account", type=_account, default="123456789012", help="the stack's account ID (123456789012)"
    )
    context.add_argument(
        "--parameter",
        "-p",
        dest="parameters",
        type=_parameter,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter value (repeatable); others take their Default",
    )
    context.add_argument(
        "--error-format",
        choices=("text", "json"),
        default="text",
        help="errors and warnings on stderr as FILE:LINE:COL: [path] message lines (text, the default) or as "
        "one JSON list of {path, message, line, column, severity, file} (json)",
    )
    context.add_argument(
        "--no-quota-check",
        dest="check_quotas",
        action="store_false",
        help="skip the CloudFormation quota checks (resources, outputs, template size)",
    )

    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--backend",
        choices=_BACKENDS,
        help=f"replaces the Backend parameter of the {MACRO_NAME} transform (a Backend in the section wins)",
    )
    render = commands.add_parser(
        "render",
        parents=[context, backend],
        help="write the processed template",
        description="Write the processed template.",
    )
    render.add_argument("template", metavar="TEMPLATE", help="a JSON or YAML template; - reads stdin")
    render.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    render.add_argument(
        "--format",
        choices=("yaml", "json"),
        help="output format (default: from the -o extension, else the input's format)",
    )
    render.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr (warnings still shown)")
    validate = commands.add_parser(
        "validate",
        parents=[context, backend],
        help="only run the checks",
        description="Run every check of render on each template; write nothing.",
    )
    validate.add_argument("templates", metavar="TEMPLATE", nargs="+", help="JSON or YAML templates; - reads stdin")
    validate.add_argument(
        "--skip-untransformed",
        action="store_true",
        help=f"skip, silently, the files whose Transform does not name {MACRO_NAME} (for pre-commit and CI: "
        "every YAML or JSON file can be passed)",
    )
    graph = commands.add_parser(
        "graph",
        parents=[context],
        help="print the service graph (Mermaid or Graphviz DOT)",
        description="Print the service graph: nodes, routers and their routes, services and the names clients "
        "call, and who may call whom. Runs the checks of render first.",
    )
    graph.add_argument("template", metavar="TEMPLATE", help="a JSON or YAML template; - reads stdin")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="mermaid (default) or dot")
    graph.add_argument(
        "--backend",
        choices=_BACKENDS,
        help="also draw what this backend makes of each part, and mark what it cannot express "
        "(replaces the section's Backend for the drawing)",
    )
    commands.add_parser("schema", help="print the JSON Schema of the section", description="Print the JSON Schema.")
    return parser


# ----------------------------------------------------------------------------------------------- helpers


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def _transform_entries(template: Mapping[str, Any]) -> list[Any]:
    transform = template.get("Transform")
    if transform is None:
        return []
    return list(transform) if isinstance(transform, list) else [transform]


def _transform_name(entry: Any) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and isinstance(entry.get("Name"), str):
        return str(entry["Name"])
    return None


def _is_ours(entry: Any) -> bool:
    return _transform_name(entry) == MACRO_NAME


def _parameter_values(template: Mapping[str, Any], given: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``templateParameterValues`` as CloudFormation would send them: given values, else Defaults."""
    declared = template.get("Parameters")
    declared = declared if isinstance(declared, Mapping) else {}
    unknown = sorted({key for key, _ in given if key not in declared})
    if unknown:
        raise _InputError(f"--parameter: the template has no parameter named {', '.join(unknown)}")
    values: dict[str, Any] = {}
    explicit = dict(given)
    for name, spec in declared.items():
        spec = spec if isinstance(spec, Mapping) else {}
        if name in explicit:
            raw: Any = explicit[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            continue
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        elif isinstance(raw, int | float):
            raw = str(raw)
        is_list = isinstance(spec.get("Type"), str) and _LIST_TYPES.match(spec["Type"])
        values[name] = raw.split(",") if is_list and isinstance(raw, str) else raw
    return values


def _transform_params(template: Mapping[str, Any], parameter_values: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for entry in _transform_entries(template):
        if _is_ours(entry) and isinstance(entry, Mapping) and isinstance(entry.get("Parameters"), Mapping):
            params.update(entry["Parameters"])
    for key, value in params.items():  # CloudFormation resolves Refs to template parameters here
        if isinstance(value, Mapping) and set(value) == {"Ref"} and value["Ref"] in parameter_values:
            params[key] = parameter_values[value["Ref"]]
    return params


def _context_warnings(template: Mapping[str, Any], args: argparse.Namespace) -> list[str]:
    warnings: list[str] = []
    entries = _transform_entries(template)
    names = [_transform_name(entry) for entry in entries]
    if SECTION_KEY in template and MACRO_NAME not in names:
        warnings.append(
            f"the template's Transform does not list {MACRO_NAME}: CloudFormation would not expand "
            f"{SECTION_KEY} (and would reject it)"
        )
    if MACRO_NAME in names:
        others = [str(name) for name in names if name != MACRO_NAME]
        after = names[names.index(MACRO_NAME) + 1 :]
        if after:
            warnings.append(
                f"{MACRO_NAME} is not the last transform: CloudFormation runs transforms in order, so "
                f"{', '.join(map(str, after))} would run on its output; list {MACRO_NAME} last"
            )
        if others:
            warnings.append(
                f"this command runs only {MACRO_NAME}; the output's Transform keeps the rest for CloudFormation: "
                f"{', '.join(others)}"
            )
    section = template.get(SECTION_KEY)
    if (
        args.backend
        and isinstance(section, Mapping)
        and isinstance(section.get("Backend"), str)
        and section["Backend"] != args.backend
    ):
        warnings.append(f"--backend {args.backend} is overridden by Backend: {section['Backend']} in the section")
    return warnings


def _event_fragment(template: Mapping[str, Any]) -> dict[str, Any]:
    """What CloudFormation hands a template-level macro: the whole template except ``Transform``."""
    return {key: value for key, value in template.items() if key != "Transform"}


def _with_other_transforms(template: Mapping[str, Any], processed: dict[str, Any]) -> dict[str, Any]:
    """Put back, where it was, a ``Transform`` listing the transforms still to run (all but ours)."""
    entries = [entry for entry in _transform_entries(template) if not _is_ours(entry)]
    if not entries:
        return processed
    remaining: Any = entries if isinstance(template["Transform"], list) else entries[0]
    keys = list(template)
    following = set(keys[keys.index("Transform") + 1 :])
    result: dict[str, Any] = {}
    for key, value in processed.items():
        if "Transform" not in result and key in following:
            result["Transform"] = remaining
        result[key] = value
    result.setdefault("Transform", remaining)
    return result


def _output_format(args: argparse.Namespace, text: str) -> str:
    from .yaml_io import detect_format

    if args.format:
        return str(args.format)
    if args.output:
        suffix = Path(args.output).suffix.lower()
        if suffix == ".json":
            return "json"
        if suffix in (".yaml", ".yml"):
            return "yaml"
    return detect_format(text)


def template_path(path: str) -> str:
    """An error path as a path from the template's root: section paths (``Nodes.a``) are relative to the
    section; template ones (``Resources.X``, ``Transform.Parameters.Backend``) are not."""
    first = re.split(r"[.\[]", path, maxsplit=1)[0]
    if first in _TEMPLATE_KEYS or path == SECTION_KEY or path.startswith((f"{SECTION_KEY}.", f"{SECTION_KEY}[")):
        return path
    return f"{SECTION_KEY}.{path}" if path else SECTION_KEY


@dataclass
class _Reporter:
    """Errors and warnings on stderr, with the file position of the key each one's path names."""

    err: TextIO
    fmt: str = "text"
    name: str = "<stdin>"
    text: str | None = None
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    _positions: KeyPositions | None = None

    def _position(self, path: str | None) -> tuple[int | None, int]:
        if path is None or self.text is None:
            return None, 1
        if self._positions is None:
            from .yaml_io import key_positions

            self._positions = key_positions(self.text)
            if self._positions is None:
                return None, 1
        return self._positions.locate(template_path(path))

    def _emit(
        self, severity: str, path: str | None, message: str, shown: str, line: int | None = None, column: int = 1
    ) -> None:
        """One diagnostic; ``shown`` is its text form, after the position. Without a ``line``, the ``path``'s."""
        if line is None:
            line, column = self._position(path)
        if self.fmt == "json":
            self.diagnostics.append(
                {
                    "file": self.name,
                    "line": line,
                    "column": column,
                    "path": path,
                    "message": message,
                    "severity": severity,
                }
            )
            return
        prefix = f"{self.name}:{line}:{column}: " if line is not None else ""
        print(f"{prefix}{'warning: ' if severity == 'warning' else ''}{shown}", file=self.err)

    def errors(self, errors: Sequence[SectionError]) -> None:
        if self.fmt == "text":
            print(f"Invalid {SECTION_KEY} section. Number of errors found: {len(errors)}.", file=self.err)
        for error in errors:
            self._emit("error", error.path, error.message, str(error))

    def error(self, message: str, line: int | None = None, column: int = 1) -> None:
        """An error that no section path names (an unreadable template, a bad --parameter)."""
        if self.fmt == "text" and line is None:
            print(f"{_PROG}: error: {message}", file=self.err)
            return
        self._emit("error", None, message, message, line, column)

    def warnings(self, warnings: Sequence[str]) -> None:
        for warning in warnings:
            match = _PATH_PREFIX.match(warning)
            path, message = (match.group(1), match.group(2)) if match else (None, warning)
            self._emit("warning", path, message, warning)

    def begin(self, name: str) -> None:
        """What follows concerns this file."""
        self.name, self.text, self._positions = name, None, None

    def close(self) -> None:
        if self.fmt == "json":
            self.err.write(json.dumps(self.diagnostics, indent=2) + "\n")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary_lines(summary: Any) -> list[str]:
    if not summary.backend:
        return [f"no {SECTION_KEY} section: nothing to expand"]
    lines = [
        f"backend {summary.backend}: {_plural(summary.nodes, 'node')}, {_plural(summary.routers, 'router')}, "
        f"{_plural(summary.services, 'service')}; {summary.resources_added} resources added, "
        f"{summary.resources_patched} patched"
    ]
    lines.extend(f"  {kind}: {count}" for kind, count in sorted(summary.added_by_type.items()))
    if summary.edges_already_open:
        lines.append(f"  {_plural(summary.edges_already_open, 'edge')} already open in the template's security groups")
    return lines


# ---------------------------------------------------------------------------------------------- commands


def _load(args: argparse.Namespace, report: _Reporter, path: str | None = None) -> tuple[str, dict[str, Any], Any]:
    from .transform import Context
    from .yaml_io import load_template

    text = _read(path or args.template)
    report.text = text
    template = load_template(text)
    values = _parameter_values(template, args.parameters)
    params = _transform_params(template, values)
    if args.backend:
        params["Backend"] = args.backend
    context = Context(
        region=args.region,
        account_id=args.account,
        params=params,
        template_parameter_values=values,
        check_quotas=args.check_quotas,
    )
    return text, template, context


def _render(args: argparse.Namespace, out: TextIO, err: TextIO, report: _Reporter) -> int:
    from .transform import expand
    from .yaml_io import dump_template

    text, template, context = _load(args, report)
    result = expand(_event_fragment(template), context)
    fmt = _output_format(args, text)
    processed = _with_other_transforms(template, result.fragment)
    rendered = dump_template(processed, "json" if fmt == "json" else "yaml")
    if args.output:
        try:
            Path(args.output).write_text(rendered, encoding="utf-8")
        except OSError as error:
            raise _UsageError(f"cannot write {args.output}: {error.strerror or error}") from None
    else:
        out.write(rendered)
        out.flush()
    if not args.quiet and report.fmt == "text":
        for line in _summary_lines(result.summary):
            print(line, file=err)
    report.warnings([*_context_warnings(template, args), *result.warnings])
    return EXIT_OK


def _validate(args: argparse.Namespace, path: str, out: TextIO, report: _Reporter) -> int:
    from .transform import validate
    from .yaml_io import load_template

    if args.skip_untransformed:
        text = _read(path)
        if MACRO_NAME not in text:  # not ours, and perhaps not even a template (a Helm chart, a workflow)
            return EXIT_OK
        if not any(_is_ours(entry) for entry in _transform_entries(load_template(text))):
            return EXIT_OK
    _, template, context = _load(args, report, path)
    warnings = validate(_event_fragment(template), context)
    state = "valid" if SECTION_KEY in template else f"valid (no {SECTION_KEY} section)"
    print(f"{report.name}: {state}", file=out)
    report.warnings([*_context_warnings(template, args), *warnings])
    return EXIT_OK


def _graph(args: argparse.Namespace, out: TextIO, report: _Reporter) -> int:
    from .errors import ErrorCollector
    from .graph import BackendView, build_graph, to_dot, to_mermaid
    from .pipeline import render_plan
    from .transform import resolve

    _, template, context = _load(args, report)
    fragment = _event_fragment(template)
    section = fragment.get(SECTION_KEY)
    if section is None:
        raise _InputError(f"{report.name}: no {SECTION_KEY} section: there is no graph to draw")
    if args.backend and isinstance(section, Mapping):
        fragment[SECTION_KEY] = {**section, "Backend": args.backend}
    plan = resolve(fragment, context)
    errors = ErrorCollector()
    rendered = render_plan(plan, errors)
    view = None
    if args.backend:
        view = BackendView(plan.section.backend, rendered, errors.errors)
    else:
        errors.raise_if_any()
    graph = build_graph(plan, view)
    out.write(to_dot(graph) if args.format == "dot" else to_mermaid(graph))
    out.flush()
    report.warnings([*plan.warnings, *rendered.warnings, *(str(error) for error in graph.refusals)])
    return EXIT_OK


def _schema(out: TextIO) -> int:
    from .schema import section_json_schema

    out.write(json.dumps(section_json_schema(), indent=2) + "\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 invalid input, 2 usage, 3 internal error)."""
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits for --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    from .errors import InvalidSectionError
    from .yaml_io import TemplateLoadError

    def checked(path: str, command: Callable[[], int]) -> int:
        """Run a command on one template; its invalid input is reported, with positions, as exit status 1."""
        report.begin("<stdin>" if path == "-" else path)
        try:
            return command()
        except InvalidSectionError as error:
            report.errors(error.errors)
        except TemplateLoadError as error:
            report.error(error.problem, error.line or 1, error.column or 1)
        except _InputError as error:
            report.error(str(error))
        return EXIT_INVALID

    report = _Reporter(err, getattr(args, "error_format", "text"))
    try:
        if args.command == "render":
            status = checked(args.template, lambda: _render(args, out, err, report))
        elif args.command == "validate":
            status = EXIT_OK
            for path in args.templates:
                status = max(status, checked(path, partial(_validate, args, path, out, report)))
        elif args.command == "graph":
            status = checked(args.template, lambda: _graph(args, out, report))
        else:
            return _schema(out)
    except _UsageError as error:
        print(f"{_PROG}: error: {error}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. ``| head``: stop quietly, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:
        if args.debug:
            raise
        print(f"Internal error: {type(error).__name__}: {error}", file=err)
        return EXIT_INTERNAL
    report.close()
    return status
