"""The one transform: ``expand()`` runs the pipeline; the Lambda handler and the CLI are thin shells around it.

load (the fragment) -> parse (typed section, all errors) -> resolve (against the template, into a plan)
-> render (a backend) -> merge (into the template, quotas) -> answer.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import SECTION_KEY
from .errors import InvalidSectionError, Masker, SectionError
from .jsoncopy import deepcopy

if TYPE_CHECKING:
    from .plan import Plan


@dataclass(frozen=True)
class Context:
    """What the macro event tells us besides the fragment."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    params: Mapping[str, Any] = field(default_factory=dict)
    """The transform's ``Parameters`` (defaults for top-level keys of the section, e.g. ``Backend``)."""
    template_parameter_values: Mapping[str, Any] = field(default_factory=dict)
    check_quotas: bool = True

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Context:
        """The context a CloudFormation macro event gives (missing or malformed keys take the defaults)."""
        params = event.get("params")
        parameter_values = event.get("templateParameterValues")
        return cls(
            region=str(event.get("region") or "us-east-1"),
            account_id=str(event.get("accountId") or ""),
            params=params if isinstance(params, Mapping) else {},
            template_parameter_values=parameter_values if isinstance(parameter_values, Mapping) else {},
        )


@dataclass(frozen=True)
class Summary:
    """Counts for logs, metrics and the CLI."""

    backend: str = ""
    nodes: int = 0
    routers: int = 0
    services: int = 0
    resources_added: int = 0
    resources_patched: int = 0
    added_by_type: Mapping[str, int] = field(default_factory=dict)
    edges_already_open: int = 0
    """Edges the template's own security-group rules already open."""


@dataclass(frozen=True)
class ExpandResult:
    """The processed template and what a user should know about it."""

    fragment: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)


def expand(fragment: Mapping[str, Any], context: Context | None = None) -> ExpandResult:
    """Expand the ``Composex::AppMesh`` section of ``fragment``; the input is never modified.

    Raises ``InvalidSectionError`` (every problem found, each with its path) on bad input.
    A template without the section comes back unchanged. The value of a ``NoEcho`` parameter is shown as
    ``****`` in every error and warning, and in the text of an unexpected exception.
    """
    context = context or Context()
    masker = Masker.of(fragment, context.template_parameter_values) if isinstance(fragment, Mapping) else Masker()
    if not masker:
        return _expand(fragment, context)
    try:
        result = _expand(fragment, context)
    except InvalidSectionError as error:
        raise masker.mask_error(error) from None
    except Exception as error:  # an internal error: its text is shown and logged by the shells
        masker.mask_exception(error)
        raise
    return ExpandResult(result.fragment, [masker.mask(warning) for warning in result.warnings], result.summary)


def _expand(fragment: Mapping[str, Any], context: Context) -> ExpandResult:
    from .pipeline import run

    _check_fragment(fragment)
    if SECTION_KEY not in fragment:
        return ExpandResult(fragment=deepcopy(dict(fragment)))
    # The expansion makes no reference cycles; a full collection in the middle of it only costs time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return run(fragment, context)
    finally:
        if collecting:
            gc.enable()


def validate(fragment: Mapping[str, Any], context: Context | None = None) -> list[str]:
    """Run every check of ``expand()`` and return its warnings; raises ``InvalidSectionError`` on bad input."""
    return expand(fragment, context).warnings


def resolve(fragment: Mapping[str, Any], context: Context | None = None) -> Plan:
    """``expand()``'s stages up to the plan (for ``composex-mesh graph``); the fragment must have the section.

    Raises ``InvalidSectionError``, with the same errors as ``expand()``, on bad input.
    """
    from .pipeline import resolve_plan

    _check_fragment(fragment)
    return resolve_plan(fragment, context or Context())


def _check_fragment(fragment: Any) -> None:
    if not isinstance(fragment, Mapping):
        raise InvalidSectionError([SectionError("", "The template fragment must be a JSON object.")])
    too_deep = _deeper_than(fragment, MAX_DEPTH)
    if too_deep is not None:
        path = too_deep.removeprefix(f"{SECTION_KEY}.") if too_deep.startswith(f"{SECTION_KEY}.") else too_deep
        raise InvalidSectionError(
            [SectionError(path, f"nests deeper than {MAX_DEPTH} levels; no CloudFormation template needs that many.")]
        )


MAX_DEPTH = 200
"""Deepest nesting of mappings and lists accepted anywhere in the fragment (the copies recurse)."""


def _deeper_than(fragment: Mapping[str, Any], limit: int) -> str | None:
    """The path of the first value nested deeper than ``limit``, found without recursion; else None."""
    stack: list[tuple[Any, str, int]] = [(fragment, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > limit:
            return path
        if isinstance(value, Mapping):
            items: Any = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            continue
        for key, item in items:
            if isinstance(item, (Mapping, list)):
                step = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
                stack.append((item, step, depth + 1))
    return None
