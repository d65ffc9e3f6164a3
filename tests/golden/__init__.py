"""Golden tests in the AWS SAM translator's style: ``input/<case>.yaml`` -> ``output/<case>.json``.

Shared plumbing for ``tests/test_golden.py`` and ``python -m tests.golden.regenerate``.

- ``input/<case>.yaml``: a user's template, YAML short tags allowed, as ``aws cloudformation deploy``
  would get it (``Transform`` included).
- ``input/<case>.context.json`` (optional): ``{region, account_id, params, template_parameter_values}``
  of the macro event; default ``us-east-1``, ``123456789012``, no parameters. As CloudFormation does, the
  template's parameter ``Default``s fill in the values not given.
- ``output/<case>.json``: the processed fragment exactly as ``expand()`` emits it (``json.dumps``,
  indent 2, key order as emitted, trailing newline).
- ``input/error_<case>.yaml`` -> ``output/error_<case>.json``: ``{"errorMessage": "<exact message>"}``.

Like CloudFormation, the event's fragment is the template without its ``Transform`` section; the
``Parameters`` of a ``{Name: ComposeXMesh, Parameters: {...}}`` entry become the event's ``params``
(a sidecar's ``params`` win over them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from composex_mesh import MACRO_NAME
from composex_mesh.errors import InvalidSectionError
from composex_mesh.transform import Context, expand

GOLDEN_DIR = Path(__file__).resolve().parent
INPUT_DIR = GOLDEN_DIR / "input"
OUTPUT_DIR = GOLDEN_DIR / "output"

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"


def case_names() -> list[str]:
    """Every case, sorted: the stems of ``input/*.yaml``."""
    return sorted(path.stem for path in INPUT_DIR.glob("*.yaml"))


def is_error_case(case: str) -> bool:
    return case.startswith("error_")


def input_path(case: str) -> Path:
    return INPUT_DIR / f"{case}.yaml"


def output_path(case: str) -> Path:
    return OUTPUT_DIR / f"{case}.json"


def context_path(case: str) -> Path:
    return INPUT_DIR / f"{case}.context.json"


def load_template_text(text: str) -> dict[str, Any]:
    """YAML (short tags) or JSON -> the JSON long form CloudFormation hands a macro.

    Uses the project's loader; falls back to cfn-lint's (same long form) while ``yaml_io`` is being written.
    """
    try:
        from composex_mesh.yaml_io import load_template
    except ImportError:  # pragma: no cover - only before yaml_io exists
        from cfnlint.decode import cfn_yaml

        loaded: Any = cfn_yaml.loads(text)
    else:
        loaded = load_template(text)
    # A JSON round trip turns any loader's node subclasses into plain dicts, lists and strings.
    plain: Any = json.loads(json.dumps(loaded))
    if not isinstance(plain, dict):
        raise TypeError("a template must be a mapping")
    return plain


def load_input(case: str) -> dict[str, Any]:
    return load_template_text(input_path(case).read_text(encoding="utf-8"))


def _transform_params(transform: Any) -> dict[str, Any]:
    entries = transform if isinstance(transform, list) else [transform]
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("Name") == MACRO_NAME:
            parameters = entry.get("Parameters") or {}
            return dict(parameters) if isinstance(parameters, Mapping) else {}
    return {}


def event_fragment(template: Mapping[str, Any]) -> dict[str, Any]:
    """The macro event's fragment: the template without ``Transform`` (a deep copy)."""
    return {key: copy.deepcopy(value) for key, value in template.items() if key != "Transform"}


def parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``templateParameterValues`` as CloudFormation sends them: the given values, else the Defaults (as strings;
    list types as lists)."""
    values = dict(given)
    declared = template.get("Parameters")
    for name, spec in (declared if isinstance(declared, Mapping) else {}).items():
        if name in values or not isinstance(spec, Mapping) or "Default" not in spec:
            continue
        default = spec["Default"]
        text = ("true" if default else "false") if isinstance(default, bool) else str(default)
        kind = str(spec.get("Type", ""))
        values[name] = text.split(",") if kind.startswith("List<") or kind == "CommaDelimitedList" else text
    return values


def load_context(case: str, template: Mapping[str, Any]) -> Context:
    sidecar: dict[str, Any] = {}
    if context_path(case).exists():
        sidecar = json.loads(context_path(case).read_text(encoding="utf-8"))
    params = _transform_params(template.get("Transform"))
    params.update(sidecar.get("params", {}))
    return Context(
        region=sidecar.get("region", DEFAULT_REGION),
        account_id=sidecar.get("account_id", DEFAULT_ACCOUNT_ID),
        params=params,
        template_parameter_values=parameter_values(template, sidecar.get("template_parameter_values", {})),
    )


def dump(document: Any) -> str:
    """The golden file format: JSON, indent 2, key order kept, trailing newline."""
    return json.dumps(document, indent=2) + "\n"


class GoldenCaseError(Exception):
    """A case did not behave as its name says (an ``error_`` case expanded, or another case failed)."""


def run_case(case: str) -> str:
    """Expand one case and return what its golden output file must contain."""
    template = load_input(case)
    fragment = event_fragment(template)
    context = load_context(case, template)
    try:
        result = expand(fragment, context)
    except InvalidSectionError as error:
        if not is_error_case(case):
            raise GoldenCaseError(f"{case}: expected a template, got: {error.message}") from error
        return dump({"errorMessage": error.message})
    if is_error_case(case):
        raise GoldenCaseError(f"{case}: expected an error, but the section expanded")
    return dump(result.fragment)
