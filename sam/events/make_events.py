"""Build the CloudFormation macro events in this folder from the example templates.

Regenerate them all (from the repository root)::

    .venv/bin/python sam/events/make_events.py

or only check that the files are up to date (exit status 1 if not)::

    .venv/bin/python sam/events/make_events.py --check

Each event has the shape CloudFormation sends a macro's Lambda function ("Create a CloudFormation
macro definition", Event mapping, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
template-macros-author.html)::

    {"region", "accountId", "fragment", "transformId", "params", "requestId", "templateParameterValues"}

- ``fragment``: the whole template *except its Transform section*, in JSON long form with the
  intrinsics unresolved (``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``).
- ``transformId``: ``<accountId>::<macro name>``, as in the events real macros receive.
- ``params``: the ``Parameters`` of the transform (``{}`` for a plain ``Transform: ComposeXMesh``).
- ``templateParameterValues``: the stack's parameters, resolved (``List<...>`` ones as lists of strings).

Events: ``quickstart.json`` (sam/examples/quickstart.yaml), ``serviceconnect.json``
(sam/examples/quickstart-serviceconnect.yaml), ``lattice.json`` (sam/examples/quickstart-lattice.yaml),
``no-section.json`` (the quickstart without its
``Composex::AppMesh`` section) and ``invalid-section.json`` (the quickstart with two errors: a backend
naming an unknown service and a route weight of 300).

Invoke the function locally with one: ``sam local invoke Function -e sam/events/quickstart.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXAMPLES = ROOT / "sam" / "examples"
sys.path.insert(0, str(ROOT / "macro"))

SECTION = "Composex::AppMesh"
MACRO_NAME = "ComposeXMesh"
ACCOUNT_ID = "123456789012"
PARAMETER_VALUES: dict[str, Any] = {
    "VpcId": "vpc-0a1b2c3d4e5f67890",
    "PrivateSubnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"],
}


def _plain(node: Any) -> Any:
    """Plain dicts, lists, str, int, float, bool and None (no loader node classes)."""
    return json.loads(json.dumps(node, default=str))


def load_template(path: Path) -> dict[str, Any]:
    """The template as CloudFormation hands it to a macro: JSON long form, intrinsics unresolved."""
    text = path.read_text(encoding="utf-8")
    template: Any = None
    try:  # the project's own loader, when there is one
        from composex_mesh import yaml_io

        template = yaml_io.load_template(text)
    except Exception:
        template = None
    if not isinstance(template, dict) or "Resources" not in template:
        from cfnlint.decode import decode_str

        template, matches = decode_str(text)
        if matches or template is None:
            raise SystemExit(f"{path}: cannot parse: {matches}")
    template = _plain(template)
    # A YAML date would be a datetime; CloudFormation only knows the string.
    if "AWSTemplateFormatVersion" in template:
        template["AWSTemplateFormatVersion"] = str(template["AWSTemplateFormatVersion"])
    return template


def transform_params(template: dict[str, Any]) -> dict[str, Any]:
    """The ``Parameters`` given to this macro in the template's Transform section, if any."""
    transforms = template.get("Transform", [])
    for transform in transforms if isinstance(transforms, list) else [transforms]:
        if isinstance(transform, dict) and transform.get("Name") == MACRO_NAME:
            return dict(transform.get("Parameters") or {})
    return {}


def event(template: dict[str, Any], request_id: str, region: str = "us-east-1") -> dict[str, Any]:
    """The macro event for ``template`` (which keeps its Transform section; the fragment drops it)."""
    fragment = {key: value for key, value in template.items() if key != "Transform"}
    return {
        "region": region,
        "accountId": ACCOUNT_ID,
        "fragment": fragment,
        "transformId": f"{ACCOUNT_ID}::{MACRO_NAME}",
        "params": transform_params(template),
        "requestId": request_id,
        "templateParameterValues": {
            name: PARAMETER_VALUES[name] for name in template.get("Parameters", {}) if name in PARAMETER_VALUES
        },
    }


def build() -> dict[str, dict[str, Any]]:
    """Every event, by file name."""
    quickstart = load_template(EXAMPLES / "quickstart.yaml")
    serviceconnect = load_template(EXAMPLES / "quickstart-serviceconnect.yaml")
    lattice = load_template(EXAMPLES / "quickstart-lattice.yaml")

    no_section = {key: value for key, value in quickstart.items() if key != SECTION}

    invalid = copy.deepcopy(quickstart)
    section = invalid[SECTION]
    section["Nodes"]["frontend"]["Backends"] = ["time", "clocks"]  # no service is called "clocks"
    section["Routers"]["time"]["Routes"][0]["Targets"]["clock"] = 300  # weights are 0..100

    return {
        "quickstart.json": event(quickstart, "6f1c0a52-3d1e-4b57-9a0e-2c7b1f8e4d01"),
        "serviceconnect.json": event(serviceconnect, "a3e9b7c4-58d2-4f0a-b1c6-7d2e9f0a3b02", "eu-west-1"),
        "lattice.json": event(lattice, "5e7a9c1b-2d4f-4a6b-8c0d-3f5e7a9c1b05", "us-west-2"),
        "no-section.json": event(no_section, "0b8d5e21-9c4f-4e3a-8f7b-5a6c1d2e9f03"),
        "invalid-section.json": event(invalid, "d4c2a1f0-7e6b-4d9c-a3b8-1f0e2d3c4b04"),
    }


def render(content: dict[str, Any]) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, content in build().items():
        path, text = HERE / name, render(content)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run: .venv/bin/python sam/events/make_events.py)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
