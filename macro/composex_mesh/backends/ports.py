"""Named port mappings, shared by the backends that register ports by name (Service Connect, VPC Lattice)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import model
from ..errors import ErrorCollector


def literal_port(value: Any) -> int | None:
    """A port written as a number (or a string of digits), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def mapping_of(mappings: list[Any], port: int) -> dict[str, Any] | None:
    """The port mapping of ``port`` among a container's mappings, if any."""
    for mapping in mappings:
        if isinstance(mapping, dict) and literal_port(mapping.get("ContainerPort")) == port:
            return mapping
    return None


def new_port_name(listener: model.Listener, containers: list[dict[str, Any]], path: str, errors: ErrorCollector) -> str:
    """``<protocol>-<port>``, the name the macro gives a port mapping that has none; a clash is an error."""
    name = f"{listener.protocol}-{listener.port}"
    used = {
        item.get("Name")
        for container in containers
        for item in container.get("PortMappings") or ()
        if isinstance(item, Mapping)
    }
    if name in used:
        errors.add(
            path,
            f"the macro would name the port mapping of port {listener.port} '{name}', but another port mapping "
            "has that name: name this port mapping yourself in the task definition.",
        )
    return name
