"""The stages of ``expand()``, in order; each stage gathers its errors and stops the run if there are any."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from . import SECTION_KEY
from .backends.base import InvalidResourceError, Rendered
from .checks import check_section
from .deploy_view import DeployView
from .errors import ErrorCollector, InvalidSectionError, SectionError
from .fields import did_you_mean
from .jsoncopy import deepcopy
from .merge import check_ingress_size, check_quotas, check_section_size, merge
from .parse import SectionParser
from .plan import Plan
from .resolve import Resolver
from .transform import Context, ExpandResult, Summary


def run(fragment: Mapping[str, Any], context: Context) -> ExpandResult:
    """Parse, check, resolve, render and merge; raises ``InvalidSectionError`` with every error found."""
    plan = resolve_plan(fragment, context)
    section = plan.section
    errors = ErrorCollector()
    rendered = render_plan(plan, errors)
    errors.raise_if_any()

    # The plan reads the user's template; the output must not share objects with the input.
    output = deepcopy(merge(fragment, rendered, errors))
    if context.check_quotas:
        check_quotas(output, len(rendered.resources), errors)
    errors.raise_if_any()
    added = Counter(resource["Type"] for resource in rendered.resources.values())
    summary = Summary(
        backend=section.backend,
        nodes=len(section.nodes),
        routers=len(section.routers),
        services=len(section.services),
        resources_added=len(rendered.resources),
        resources_patched=len(rendered.patched),
        added_by_type=dict(sorted(added.items())),
        edges_already_open=rendered.edges_already_open,
    )
    return ExpandResult(fragment=output, warnings=plan.warnings + rendered.warnings, summary=summary)


def resolve_plan(fragment: Mapping[str, Any], context: Context) -> Plan:
    """The stages up to the plan: parse, check, resolve (``run`` and ``composex-mesh graph`` share them)."""
    _check_template_sections(fragment)
    resources = fragment.get("Resources")
    errors = ErrorCollector()
    view = DeployView(fragment, context.template_parameter_values, context.region, context.account_id, errors)
    raw = _with_defaults(fragment[SECTION_KEY], context.params, errors)
    parser = SectionParser(errors, context.template_parameter_values, view)
    section = parser.parse_section(raw)
    if section is None:
        errors.raise_if_any()
    assert section is not None
    check_section(section, errors, frozenset(parser.broken_names))
    if section.backend == "VpcLattice":
        from .backends.vpclattice import check_lattice_section

        check_lattice_section(section, errors)
    if context.check_quotas and not errors:
        check_section_size(section, len(resources or {}), errors)
        errors.raise_if_any()

    # Resolved even when parts of the section are broken: one problem never hides another (SPEC §2). The
    # resolver's errors about a value that already failed to parse are dropped (``add_check``).
    plan = Resolver(section, view, context.region, errors).resolve()
    errors.raise_if_any()
    assert plan is not None
    if context.check_quotas:
        check_ingress_size(plan, errors)
        errors.raise_if_any()
    return plan


def render_plan(plan: Plan, errors: ErrorCollector) -> Rendered:
    """The backend's rendering of the plan; its errors go to ``errors`` (the template's too)."""
    plan.view.errors = errors
    if plan.section.backend == "ServiceConnect":
        from .backends.serviceconnect import render_service_connect as render
    elif plan.section.backend == "VpcLattice":
        from .backends.vpclattice import render_vpc_lattice as render
    else:
        from .backends.appmesh import render_app_mesh as render
    try:
        return render(plan, errors)
    except InvalidResourceError as error:
        message = (
            f"the generated {error.resource} would be invalid ({error.detail}): a value taken from the template "
            "is not of the type CloudFormation expects there."
        )
        raise InvalidSectionError([SectionError("", message)]) from error


TEMPLATE_SECTIONS = {
    "Parameters": "parameter names to parameters",
    "Mappings": "map names to mappings",
    "Conditions": "condition names to conditions",
    "Resources": "logical IDs to resources",
    "Outputs": "output names to outputs",
}
"""Top-level sections of a template that CloudFormation requires to be JSON objects, and what they map."""


def _check_template_sections(fragment: Mapping[str, Any]) -> None:
    """Each top-level section the macro reads or counts is a mapping (absent or null: empty)."""
    wrong = [
        SectionError(name, f"must be a mapping of {holds}, not {type(fragment[name]).__name__}.")
        for name, holds in TEMPLATE_SECTIONS.items()
        if fragment.get(name) is not None and not isinstance(fragment[name], Mapping)
    ]
    if wrong:
        raise InvalidSectionError(wrong)


TRANSFORM_PARAMETERS = ("Backend",)
"""Top-level keys of the section that the transform's ``Parameters`` may give defaults for."""


def _with_defaults(raw: Any, params: Mapping[str, Any], errors: ErrorCollector) -> Any:
    """Transform parameters give defaults for the section's top-level keys; the section wins."""
    for name in params:
        if name not in TRANSFORM_PARAMETERS:
            hint = (
                did_you_mean(str(name), TRANSFORM_PARAMETERS)
                or f" Valid parameters: {', '.join(TRANSFORM_PARAMETERS)}."
            )
            errors.add_parse(f"Transform.Parameters.{name}", f"is not a parameter of the ComposeXMesh transform.{hint}")
    if not isinstance(raw, Mapping) or not params:
        return raw
    return {**{key: value for key, value in params.items() if key in TRANSFORM_PARAMETERS}, **raw}
