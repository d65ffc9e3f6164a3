"""Every property that ``backends/extensions.py`` adds to troposphere exists in CloudFormation's schema, as typed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint
import pytest
from troposphere import AWSProperty, ecs

from composex_mesh.backends import extensions
from composex_mesh.backends.base import build

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}


@cache
def schema_of(resource_type: str) -> dict[str, Any]:
    """cfn-lint's bundled schema of ``resource_type`` (files are matched by their ``typeName``)."""
    needle = f'"typeName": "{resource_type}"'
    for path in sorted(SCHEMAS.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        if needle in text:
            return json.loads(text)  # type: ignore[no-any-return]
    raise LookupError(f"no cfn-lint schema for {resource_type}")


def _definition(schema: dict[str, Any], ref_or_name: str) -> dict[str, Any]:
    name = ref_or_name.removeprefix("#/definitions/")
    return schema if not name else schema["definitions"][name]  # type: ignore[no-any-return]


def assert_matches(schema: dict[str, Any], spec_type: Any, node: dict[str, Any], where: str) -> None:
    """``spec_type`` (troposphere's) describes the schema ``node``: arrays, objects and scalars alike."""
    if isinstance(spec_type, list):
        assert node.get("type") == "array", f"{where}: CloudFormation has no list here"
        assert_matches(schema, spec_type[0], node["items"], f"{where}[]")
        return
    if "$ref" in node:
        node = _definition(schema, node["$ref"])
    if isinstance(spec_type, type) and issubclass(spec_type, AWSProperty):
        assert node.get("type") == "object", f"{where}: CloudFormation has no object here"
        known = node.get("properties", {})
        for name, (inner, _required) in spec_type.props.items():
            assert name in known, f"{where}.{name}: not a property in CloudFormation's schema"
            assert_matches(schema, inner, known[name], f"{where}.{name}")
        return
    assert node.get("type") == _JSON_TYPES[spec_type], f"{where}: CloudFormation's type is {node.get('type')}"


@pytest.mark.parametrize("addition", extensions.ADDITIONS, ids=lambda item: f"{item.resource_type}.{item.name}")
def test_addition_is_in_the_cloudformation_schema(addition: extensions.Addition) -> None:
    schema = schema_of(addition.resource_type)
    owner = _definition(schema, addition.definition)
    assert addition.name in owner.get("properties", {}), f"{addition.name} is not in {addition.definition}"
    assert_matches(schema, addition.spec[0], owner["properties"][addition.name], addition.name)
    required = addition.name in owner.get("required", ())
    assert addition.spec[1] == required


@pytest.mark.parametrize("addition", extensions.ADDITIONS, ids=lambda item: f"{item.resource_type}.{item.name}")
def test_addition_is_installed(addition: extensions.Addition) -> None:
    assert addition.name in addition.owner.props


def test_install_steps_aside_for_a_property_troposphere_has() -> None:
    kept = ecs.ServiceConnectConfiguration.props["Enabled"]
    shadow = extensions.Addition(ecs.ServiceConnectConfiguration, "Enabled", (str, False), "AWS::ECS::Service", "")
    original = extensions.ADDITIONS
    try:
        extensions.ADDITIONS = (shadow,)
        extensions.install()
    finally:
        extensions.ADDITIONS = original
    assert ecs.ServiceConnectConfiguration.props["Enabled"] is kept


def test_built_resource_carries_an_added_property() -> None:
    properties = {
        "Cluster": "c",
        "TaskDefinition": {"Ref": "Task"},
        "ServiceConnectConfiguration": {"Enabled": True, "ContainerConfigurations": [{"LogLevel": "debug"}]},
    }
    resource = build(ecs.Service, "Svc", properties)
    assert resource["Properties"]["ServiceConnectConfiguration"]["ContainerConfigurations"] == [{"LogLevel": "debug"}]


def test_an_added_property_is_type_checked() -> None:
    with pytest.raises(Exception, match="LogLevel"):
        ecs.ServiceConnectConfiguration.from_dict(
            None, {"Enabled": True, "ContainerConfigurations": [{"LogLevel": ["debug"]}]}
        )
