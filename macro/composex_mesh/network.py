"""Security-group ingress between the nodes that may talk, shared by every backend.

From each consumer's security group to each provider's, TCP, on the provider's listener port only, once.
"""

from __future__ import annotations

from typing import Any

from troposphere.ec2 import SecurityGroupIngress

from .backends.base import Rendered, build, canonical
from .errors import ErrorCollector
from .plan import Plan, shorten

MAX_DESCRIPTION = 255
"""EC2's limit on a security-group rule's description."""


def render_ingress(plan: Plan, rendered: Rendered, errors: ErrorCollector) -> None:
    """Add one ``AWS::EC2::SecurityGroupIngress`` per (provider group, consumer group, port)."""
    seen: set[tuple[str, str, int]] = set()
    warned: set[str] = set()
    for edge in plan.edges:
        consumer = plan.nodes[edge.consumer]
        provider = plan.nodes[edge.provider]
        if not consumer.security_groups or (provider.is_ecs and not provider.security_groups):
            lacking = consumer if not consumer.security_groups else provider
            if lacking.name not in warned:
                warned.add(lacking.name)
                rendered.warnings.append(
                    f"[Nodes.{lacking.name}] has no security groups the macro can read; "
                    "no ingress rules are made for its connections."
                )
            continue
        pairs = [
            (provider_group, consumer_group)
            for provider_group in provider.security_groups
            for consumer_group in consumer.security_groups
        ]
        new_pairs = []
        for provider_group, consumer_group in pairs:
            key = (canonical(provider_group), canonical(consumer_group), edge.port)
            if key not in seen:
                seen.add(key)
                new_pairs.append((provider_group, consumer_group))
        for index, (provider_group, consumer_group) in enumerate(new_pairs, start=1):
            suffix = str(index) if len(new_pairs) > 1 else ""
            logical_id = f"{consumer.stem}To{provider.stem}Port{edge.port}Ingress{suffix}"
            rendered.add(
                logical_id,
                build(SecurityGroupIngress, logical_id, _rule(provider_group, consumer_group, edge)),
                f"Nodes.{edge.consumer}",
                errors,
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
