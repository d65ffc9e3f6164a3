"""Merge a backend's output into the user's template, then check CloudFormation's quotas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import SECTION_KEY, model
from .backends.base import Rendered, canonical
from .errors import ErrorCollector
from .plan import NodePlan, Plan

MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_TEMPLATE_BYTES = 1_048_576


def merge(fragment: Mapping[str, Any], rendered: Rendered, errors: ErrorCollector) -> dict[str, Any]:
    """The processed template: the section removed, patched resources in place, new ones appended."""
    user_resources: Mapping[str, Any] = fragment.get("Resources") or {}
    parameters: Mapping[str, Any] = fragment.get("Parameters") or {}
    for logical_id, origin in rendered.origins.items():
        if logical_id in user_resources:
            errors.add(
                origin,
                f"its generated logical ID {logical_id} is already a resource of the template; "
                "rename that resource or this part of the section.",
            )
        elif logical_id in parameters:  # CloudFormation: resources and parameters share one set of names
            errors.add(
                origin,
                f"its generated logical ID {logical_id} is already a parameter of the template (parameters and "
                "resources share one set of names); rename that parameter or this part of the section.",
            )
    output: dict[str, Any] = {}
    for key, value in fragment.items():
        if key == SECTION_KEY:
            continue
        if key == "Resources":
            resources = {
                logical_id: rendered.patched.get(logical_id, resource)
                for logical_id, resource in user_resources.items()
            }
            resources.update(rendered.resources)
            output[key] = resources
        else:
            output[key] = value
    if "Resources" not in output:
        output["Resources"] = dict(rendered.resources)
    return output


def check_quotas(template: Mapping[str, Any], added: int, errors: ErrorCollector) -> None:
    """CloudFormation's per-template limits, checked before CloudFormation does, with the counts."""
    resources = len(template.get("Resources") or {})
    if resources > MAX_RESOURCES:
        errors.add(
            "",
            f"the processed template would have {resources} resources ({added} added by the mesh); "
            f"CloudFormation allows {MAX_RESOURCES}. Split the mesh across stacks (Mesh.Existing: true in the others).",
        )
    outputs = len(template.get("Outputs") or {})
    if outputs > MAX_OUTPUTS:
        errors.add(
            "",
            f"the template has {outputs} outputs; CloudFormation allows {MAX_OUTPUTS}. "
            "Move some outputs (or part of the stack) to another stack.",
        )
    size = len(json.dumps(template, separators=(",", ":")).encode())
    if size > MAX_TEMPLATE_BYTES:
        errors.add(
            "",
            f"the processed template would be {size} bytes; CloudFormation allows {MAX_TEMPLATE_BYTES}. "
            "Split the mesh across stacks (Mesh.Existing: true in the others).",
        )


def check_section_size(section: model.Section, user_resources: int, errors: ErrorCollector) -> None:
    """Fail a section that could never fit before rendering it: App Mesh makes at least one resource per node,
    router, route and service (the full count is checked on the processed template)."""
    if section.backend != "AppMesh":
        return
    routes = sum(len(router.routes) for router in section.routers.values())
    least = len(section.nodes) + len(section.routers) + routes + len(section.services)
    if user_resources + least > MAX_RESOURCES:
        errors.add(
            "",
            f"the processed template would have at least {user_resources + least} resources ({least} or more "
            f"added by the mesh); CloudFormation allows {MAX_RESOURCES}. Split the mesh across stacks "
            "(Mesh.Existing: true in the others).",
        )


def check_ingress_size(plan: Plan, errors: ErrorCollector) -> None:
    """Fail before rendering when the nodes' security groups would need more ingress rules than a template can
    hold: one rule per (provider group, consumer group, port) of the edges, counted without making any, and
    the count stops as soon as it is over (so a section of a few KB cannot make the macro build millions).
    A smaller excess is found, with the exact counts, by ``check_quotas`` on the processed template."""
    limit = MAX_RESOURCES
    distinct: dict[str, list[str]] = {}

    def groups(node: NodePlan) -> list[str]:
        if node.name not in distinct:
            distinct[node.name] = sorted({canonical(group) for group in node.security_groups})
        return distinct[node.name]

    rules: set[tuple[str, str, int]] = set()
    for edge in plan.edges:
        consumer_groups = groups(plan.nodes[edge.consumer])
        provider_groups = (  # an External service's groups, or the provider node's
            sorted({canonical(group) for group in plan.services[edge.service].security_groups})
            if edge.external
            else groups(plan.nodes[edge.provider])
        )
        over = len(provider_groups) * len(consumer_groups) > limit  # the pairs of one edge are all distinct
        for provider_group in [] if over else provider_groups:
            rules.update((provider_group, consumer_group, edge.port) for consumer_group in consumer_groups)
        if over or len(rules) > limit:
            errors.add(
                "",
                f"the nodes' security groups would need more than {limit} ingress rules; CloudFormation allows "
                f"{MAX_RESOURCES} resources in a template. Give the nodes fewer security groups, or split the mesh "
                "across stacks (Mesh.Existing: true in the others).",
            )
            return
