"""The plan: the section resolved against the template, ready for a backend to render.

Everything a backend needs is here, already checked: which ECS service, task definition, container, roles and
security groups each node has, how each service's name resolves, and which node may call which on what port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import model
from .deploy_view import DeployView

Value = Any
"""A literal or a CloudFormation intrinsic function, as it will appear in the output."""


MAX_STEM = 64
"""Longest stem of a generated logical ID: with the longest suffix, two stems (ingress rules) stay within 255."""


def pascal(name: str) -> str:
    """``orders-db`` -> ``OrdersDb``: the readable stem of a generated logical ID (a long one is shortened with
    a stable hash of the name, so that every ID made from it fits CloudFormation's 255 characters)."""
    stem = "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-") if part)
    return shorten(stem, MAX_STEM, name)


def shorten(text: str, limit: int, key: str | None = None) -> str:
    """``text``, or its start and a stable 8-character hash of ``key`` (default ``text``) within ``limit``."""
    if len(text) <= limit:
        return text
    import hashlib  # only for long names: importing it loads OpenSSL, a cost every cold start would pay

    digest = hashlib.sha256((text if key is None else key).encode()).hexdigest()[:8]
    return f"{text[: limit - 8]}{digest}"


def join_dns(label: str, domain: Value) -> Value:
    """``label.domain``, as a literal when the domain is one, else an ``Fn::Join``."""
    if isinstance(domain, str):
        return f"{label}.{domain}"
    return {"Fn::Join": ["", [f"{label}.", domain]]}


@dataclass(frozen=True)
class Namespace:
    """The Cloud Map private DNS namespace the mesh's names live in."""

    id: Value
    name: Value
    logical_id: str | None = None
    arn: Value = None
    """Given as ``{Arn, Name}`` (Service Connect: a namespace shared from another account); then ``id`` is None."""


@dataclass(frozen=True)
class RoleRef:
    """An IAM role of a task: one of the template (``logical_id``), one to create, or one made elsewhere."""

    logical_id: str | None
    create: bool = False


@dataclass(frozen=True)
class PortMapping:
    """A port mapping of a container, read as deployed."""

    index: int
    """Its index in the container's PortMappings as written."""
    port: int
    protocol: str
    app_protocol: str | None
    name: Value


@dataclass(frozen=True)
class EcsTarget:
    """The ECS parts behind an ECS node."""

    service_id: str
    task_definition_id: str
    container_name: str
    """The application container's Name, as this deploy sees it."""
    container_index: int
    """Its index in ContainerDefinitions as written (reach it with ``DeployView.raw_at`` to patch it)."""
    task_role: RoleRef
    execution_role: RoleRef
    registry_id: str | None
    """Logical ID of the Cloud Map service the ECS service registers with; None: the macro makes one."""
    cloud_map_name: Value
    """The name of that Cloud Map service (a literal, or ``Fn::GetAtt [X, Name]``)."""
    port_mappings: tuple[PortMapping, ...] = ()
    """The application container's port mappings, read as deployed."""
    family: Value = None
    """The task definition's ``Family`` as this deploy sees it (None: not written)."""
    network_mode: str = "awsvpc"
    """``awsvpc``, or (Service Connect only) ``bridge``: then the tasks have no security groups of their own."""
    discovery_attributes: tuple[tuple[str, Value], ...] = ()
    """App Mesh: the Cloud Map attributes the virtual node's discovery filters on (SPEC §3)."""


@dataclass(frozen=True)
class NodePlan:
    """A node, resolved."""

    name: str
    stem: str
    node: model.Node
    listeners: tuple[model.Listener, ...]
    security_groups: tuple[Value, ...]
    ecs: EcsTarget | None = None
    namespace_name: Value = None

    @property
    def is_ecs(self) -> bool:
        return self.ecs is not None


@dataclass(frozen=True)
class RouterPlan:
    """A router with its listeners (given or derived) and one protocol."""

    name: str
    stem: str
    router: model.Router
    listeners: tuple[model.RouterListener, ...]

    @property
    def protocol(self) -> model.Protocol:
        return self.listeners[0].protocol


@dataclass(frozen=True)
class ServicePlan:
    """A service: its DNS name, its provider, and whether a real Cloud Map service answers the name."""

    name: str
    stem: str
    service: model.Service
    dns_name: Value
    cloud_map_label: str
    needs_fake_instance: bool
    security_groups: tuple[Value, ...] = ()
    """An External service's security groups (opened to its consumers)."""

    @property
    def is_external(self) -> bool:
        return self.service.external is not None


@dataclass(frozen=True, order=True)
class Edge:
    """``consumer`` may call ``provider`` on ``port`` (through ``service``)."""

    consumer: str
    provider: str
    """A node, or the service itself when ``external``."""
    port: int
    service: str
    external: bool = False


@dataclass(frozen=True)
class Plan:
    """The whole resolved mesh."""

    section: model.Section
    namespace: Namespace
    nodes: dict[str, NodePlan]
    routers: dict[str, RouterPlan]
    services: dict[str, ServicePlan]
    edges: tuple[Edge, ...]
    region: str
    resources: Mapping[str, Any]
    """The user's resources that exist this deploy, as written, read-only: backends patch copies."""
    view: DeployView
    """The template as this deploy sees it: backends read the user's values through it."""
    cloud_map_names: Mapping[str, str] = field(default_factory=dict)
    """Lowercased names of the template's Cloud Map services in the namespace -> their logical IDs."""
    warnings: list[str] = field(default_factory=list)
