"""Named port mappings: the name the macro gives a port mapping that has none (VPC Lattice registers ports by name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import model
from ..errors import ErrorCollector


def new_port_name(listener: model.Listener, containers: list[dict[str, Any]], path: str, errors: ErrorCollector) -> str:
    """``<protocol>-<port>``; a clash with another port mapping's name is an error at ``path``."""
    name = f"{listener.protocol}-{listener.port}"
    used = {
        item.get("Name")
        for container in containers
        if isinstance(container, Mapping)
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
