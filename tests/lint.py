"""cfn-lint as the tests use it: the pinned linter, with only the App Mesh lifecycle rules waived.

SPEC §5: "The output passes cfn-lint (pinned) with no errors. Only the App Mesh lifecycle rules may be
ignored, and only for ``AWS::AppMesh::*`` resources." Warnings count as failures too: a processed
template should be as clean as the user's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cfnlint.api import lint
from cfnlint.config import ManualArgs

LINT_REGION = "us-east-1"

APP_MESH_LIFECYCLE_RULES = frozenset({"W3696", "E3710"})
"""App Mesh is sunsetting (closed 2026-09-30): cfn-lint flags every ``AWS::AppMesh::*`` type for it."""


def _resource_type(template: Mapping[str, Any], path: list[Any]) -> str:
    if len(path) >= 2 and path[0] == "Resources":
        resource = template.get("Resources", {}).get(path[1])
        if isinstance(resource, Mapping) and isinstance(resource.get("Type"), str):
            return str(resource["Type"])
    return ""


def _waived(template: Mapping[str, Any], rule_id: str, path: list[Any]) -> bool:
    return rule_id in APP_MESH_LIFECYCLE_RULES and _resource_type(template, path).startswith("AWS::AppMesh::")


def lint_errors(template: Mapping[str, Any], region: str = LINT_REGION) -> list[str]:
    """Lint ``template`` (a JSON-able dict) and return each finding as ``"RULE path: message"``.

    Empty means clean. The App Mesh lifecycle rules (W3696, E3710) are dropped for ``AWS::AppMesh::*``
    resources only; anywhere else they, and every other rule (errors and warnings), are reported.
    """
    matches = lint(json.dumps(template, ensure_ascii=False), config=ManualArgs(regions=[region]))
    found: list[str] = []
    for match in matches:
        rule_id = str(match.rule.id)
        path = list(getattr(match, "path", None) or [])
        if _waived(template, rule_id, path):
            continue
        where = "/".join(str(part) for part in path) or f"line {match.linenumber}"
        found.append(f"{rule_id} {where}: {match.message}")
    return found
