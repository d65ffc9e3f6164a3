"""What every backend produces, and the troposphere bridge that type-checks each generated resource."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from troposphere import AWSHelperFn, AWSObject

from ..deploy_view import is_intrinsic
from ..errors import ErrorCollector
from ..jsoncopy import deepcopy
from . import extensions  # noqa: F401  (adds the properties troposphere lacks, before any build)

_LOGICAL_ID = re.compile(r"^[A-Za-z0-9]{1,255}$")


class Intrinsic(AWSHelperFn):  # type: ignore[misc]  # troposphere has no type hints
    """An intrinsic function kept exactly as written (troposphere accepts one wherever a value goes)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data


def wrap_intrinsics(value: Any) -> Any:
    """``value`` with each intrinsic function wrapped, as troposphere's ``from_dict`` expects them."""
    if isinstance(value, Mapping):
        if is_intrinsic(value):
            return Intrinsic(value)
        return {key: wrap_intrinsics(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wrap_intrinsics(item) for item in value]
    return value


class InvalidResourceError(Exception):
    """A generated resource that troposphere's model rejects: a value taken from the template has the wrong type."""

    def __init__(self, resource: str, detail: str) -> None:
        super().__init__(f"{resource}: {detail}")
        self.resource = resource
        self.detail = detail


def build(
    resource_type: type[AWSObject],
    logical_id: str,
    properties: Mapping[str, Any],
    depends_on: list[str] | None = None,
) -> dict[str, Any]:
    """A resource dict, built and type-checked by troposphere's model of ``resource_type``.

    Raises ``InvalidResourceError`` with troposphere's verdict when a value has the wrong type.
    """
    try:
        typed = resource_type.from_dict(logical_id, wrap_intrinsics(properties)).to_dict()
    except (TypeError, ValueError, AttributeError) as error:  # troposphere's verdict on a property
        raise InvalidResourceError(f"{resource_type.resource_type} {logical_id}", str(error)) from error
    resource: dict[str, Any] = {"Type": typed["Type"], "Properties": typed.get("Properties", {})}
    if depends_on:
        resource["DependsOn"] = sorted(set(depends_on))
    return resource


def canonical(value: Any) -> str:
    """A stable text form of a value, for deduplication."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class Rendered:
    """A backend's output: new resources (with the section path each comes from) and patched user resources."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    patched: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    edges_already_open: int = 0
    """Edges whose ingress the template's own security-group rules already allow (none generated for them)."""

    def add(self, logical_id: str, resource: dict[str, Any], origin: str, errors: ErrorCollector) -> None:
        """Add a generated resource; an identical one under the same ID is kept once, a different one is an error."""
        if not _LOGICAL_ID.match(logical_id):
            errors.add(origin, f"its generated logical ID '{logical_id[:80]}' is not valid: shorten the name.")
            return
        if logical_id in self.resources:
            if canonical(self.resources[logical_id]) != canonical(resource):
                errors.add(
                    origin,
                    f"its generated logical ID {logical_id} is also generated for {self.origins[logical_id]}; "
                    "rename one of them.",
                )
            return
        self.resources[logical_id] = resource
        self.origins[logical_id] = origin

    def patch(self, logical_id: str, original: Mapping[str, Any]) -> dict[str, Any]:
        """The working copy of a user resource that a backend modifies (made once, on first use)."""
        if logical_id not in self.patched:
            self.patched[logical_id] = deepcopy(dict(original))
        return self.patched[logical_id]


def add_depends_on(resource: dict[str, Any], *logical_ids: str) -> None:
    """Append to a resource's DependsOn, keeping the user's form and order."""
    current = resource.get("DependsOn")
    existing = [current] if isinstance(current, str) else list(current or [])
    for logical_id in logical_ids:
        if logical_id not in existing:
            existing.append(logical_id)
    resource["DependsOn"] = existing
