"""Security-group ingress between the nodes that may talk, shared by every backend.

From each consumer's security group to each provider's (a node's, or an External service's), TCP, on the
provider's listener port only, once; never a rule the template already has (EC2 rejects a duplicate, and
deleting ours later would revoke the user's): an inline ``SecurityGroupIngress`` entry of the provider's group,
or an ``AWS::EC2::SecurityGroupIngress`` of the template, with the same group and source and a protocol and port
range that cover the port (SPEC §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from troposphere.ec2 import SecurityGroupIngress

from .backends.base import Rendered, build, canonical
from .deploy_view import DeployView, function_name, logical_id_of
from .errors import ErrorCollector
from .plan import Edge, Plan, shorten

MAX_DESCRIPTION = 255
"""EC2's limit on a security-group rule's description."""

SECURITY_GROUP_TYPE = "AWS::EC2::SecurityGroup"
INGRESS_TYPE = "AWS::EC2::SecurityGroupIngress"
_ALL_PROTOCOLS = ("-1", "all")
_TCP = ("tcp", "6")


@dataclass(frozen=True)
class _Rule:
    """An ingress rule of the template from one security group, as this deploy sees it."""

    group: Any
    source: Any
    protocol: str
    from_port: int | None
    to_port: int | None

    def covers(self, port: int) -> bool:
        if self.protocol in _ALL_PROTOCOLS:
            return True
        if self.protocol not in _TCP or self.from_port is None or self.to_port is None:
            return False
        return self.from_port <= port <= self.to_port


def existing_rules(view: DeployView) -> list[_Rule]:
    """The template's ingress rules from a source security group: inline entries and separate resources."""
    rules: list[_Rule] = []
    for logical_id in view.of_type(SECURITY_GROUP_TYPE):
        for _, entry in view.items(view.properties(logical_id).get("SecurityGroupIngress")):
            rule = _rule_of(view, ("resource", logical_id), entry)
            if rule is not None:
                rules.append(rule)
    for logical_id in view.of_type(INGRESS_TYPE):
        props = view.properties(logical_id)
        rule = _rule_of(view, view.identity(props.get("GroupId")), props)
        if rule is not None:
            rules.append(rule)
    return rules


def _rule_of(view: DeployView, group: Any, entry: Any) -> _Rule | None:
    if not isinstance(entry, Mapping) or "SourceSecurityGroupId" not in entry:
        return None
    protocol = view.known(entry.get("IpProtocol"))
    from_port, to_port = (view.known(entry.get(key)) for key in ("FromPort", "ToPort"))
    return _Rule(
        group=group,
        source=view.identity(entry["SourceSecurityGroupId"]),
        protocol=str(protocol).lower(),
        from_port=_port(from_port),
        to_port=_port(to_port),
    )


def _port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
        return int(value)
    return None


def render_ingress(plan: Plan, rendered: Rendered, errors: ErrorCollector) -> None:
    """Add one ``AWS::EC2::SecurityGroupIngress`` per (provider group, consumer group, port) not open yet."""
    view = plan.view
    rules = existing_rules(view)
    seen: set[tuple[str, str, int]] = set()
    warned: set[str] = set()
    shared_warned: set[tuple[str, str, str]] = set()
    for edge in plan.edges:
        consumer = plan.nodes[edge.consumer]
        provider_groups, provider_stem, provider_is_ecs = _provider(plan, edge)
        if edge.external and not provider_groups:
            continue  # an External service without SecurityGroups: its own stack opens it
        if not consumer.security_groups or (provider_is_ecs and not provider_groups):
            lacking = consumer.name if not consumer.security_groups else edge.provider
            if lacking not in warned:
                warned.add(lacking)
                rendered.warnings.append(
                    f"[Nodes.{lacking}] has no security groups the macro can read; "
                    "no ingress rules are made for its connections."
                )
            continue
        new_pairs = []
        already_open = True
        for provider_group in provider_groups:
            for consumer_group in consumer.security_groups:
                key = (canonical(provider_group), canonical(consumer_group), edge.port)
                group_id, source_id = view.identity(provider_group), view.identity(consumer_group)
                if any(r.group == group_id and r.source == source_id and r.covers(edge.port) for r in rules):
                    continue
                already_open = False
                if key in seen:
                    continue
                seen.add(key)
                new_pairs.append((provider_group, consumer_group))
                if group_id == source_id:
                    _warn_shared(edge, consumer_group, rendered, shared_warned)
        if already_open:
            rendered.edges_already_open += 1
        for index, (provider_group, consumer_group) in enumerate(new_pairs, start=1):
            suffix = str(index) if len(new_pairs) > 1 else ""
            logical_id = f"{consumer.stem}To{provider_stem}Port{edge.port}Ingress{suffix}"
            resource = build(SecurityGroupIngress, logical_id, _rule(provider_group, consumer_group, edge))
            condition = _shared_condition(view, provider_group, consumer_group)
            if condition is not None:  # it exists with the groups it names, as CloudFormation (and cfn-lint) expect
                resource["Condition"] = condition
            rendered.add(logical_id, resource, f"Nodes.{edge.consumer}", errors)


def _shared_condition(view: DeployView, *groups: Any) -> str | None:
    """The one Condition of the conditional resources the groups name (true this deploy), else None."""
    conditions = set()
    for group in groups:
        target = logical_id_of(group)
        resource = view.all_resources.get(target) if target is not None else None
        if isinstance(resource, Mapping) and isinstance(resource.get("Condition"), str):
            conditions.add(resource["Condition"])
    return conditions.pop() if len(conditions) == 1 else None


def _provider(plan: Plan, edge: Edge) -> tuple[tuple[Any, ...], str, bool]:
    """(security groups, logical-ID stem, is an ECS node) of an edge's provider."""
    if edge.external:
        service = plan.services[edge.service]
        return service.security_groups, service.stem, False
    provider = plan.nodes[edge.provider]
    return provider.security_groups, provider.stem, provider.is_ecs


def _warn_shared(edge: Edge, group: Any, rendered: Rendered, warned: set[tuple[str, str, str]]) -> None:
    written = logical_id_of(group) or (group if isinstance(group, str) else None)
    name = f"security group {written}" if written else f"its security group (the same {function_name(group)})"
    key = (edge.consumer, edge.provider, str(name))
    if key in warned:
        return
    warned.add(key)
    kind = "service" if edge.external else "node"
    rendered.warnings.append(
        f"[Nodes.{edge.consumer}] shares {name} with {kind} "
        f"'{edge.provider}': the rule that lets it call '{edge.provider}' on tcp/{edge.port} opens that port among "
        "all the group's members too. Give the nodes their own security groups so that only the mesh's edges are "
        "open."
    )


def _rule(provider_group: Any, consumer_group: Any, edge: Any) -> dict[str, Any]:
    return {
        "GroupId": provider_group,
        "SourceSecurityGroupId": consumer_group,
        "IpProtocol": "tcp",
        "FromPort": edge.port,
        "ToPort": edge.port,
        "Description": shorten(
            f"ComposeXMesh {edge.consumer} to {edge.provider} ({edge.service}) on tcp/{edge.port}", MAX_DESCRIPTION
        ),
    }
