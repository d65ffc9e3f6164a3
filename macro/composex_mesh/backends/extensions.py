"""Properties AWS has added to CloudFormation that troposphere does not model yet: the one place for them.

troposphere 4.11.1 (its newest release) is the resource model. When a backend needs a property AWS has added
since, it is declared here, as troposphere declares its own: a property class with ``props``, and an
``Addition`` that names the troposphere class it extends. ``install()`` runs once, when the backends are
imported, and steps aside for any property troposphere already knows, so a newer release wins.
``tests/test_extensions.py`` checks every addition against cfn-lint's CloudFormation schema of its resource.

To add one: declare the property class (if the property is an object), append an ``Addition``, and the schema
test covers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from troposphere import AWSProperty, BaseAWSObject, PropsDictType, ecs


class ServiceConnectContainerConfiguration(AWSProperty):  # type: ignore[misc]  # troposphere has no type hints
    """``AWS::ECS::Service`` ``ServiceConnectConfiguration.ContainerConfigurations[]``: the proxy's own settings."""

    props: ClassVar[PropsDictType] = {"LogLevel": (str, False)}


@dataclass(frozen=True)
class Addition:
    """One property troposphere lacks: on which class, its name and its troposphere type."""

    owner: type[BaseAWSObject]
    name: str
    spec: tuple[Any, bool]
    """troposphere's ``(type, required)``: a type, a property class, or a one-item list of either."""
    resource_type: str
    """The CloudFormation resource type whose schema defines it."""
    definition: str
    """The schema definition (``definitions/<name>``) of ``owner``; empty for the resource's own properties."""


ADDITIONS: tuple[Addition, ...] = (
    Addition(
        owner=ecs.ServiceConnectConfiguration,
        name="ContainerConfigurations",
        spec=([ServiceConnectContainerConfiguration], False),
        resource_type="AWS::ECS::Service",
        definition="ServiceConnectConfiguration",
    ),
    # VPC Lattice: troposphere 4.11.1 models every AWS::VpcLattice::* property; of the ECS service's
    # VpcLatticeConfigurations it lacks only the blue/green settings. The macro writes none of them: declared so
    # that the model of VpcLatticeConfigurations is CloudFormation's whole.
    Addition(
        owner=ecs.VpcLatticeConfiguration,
        name="AdvancedConfiguration",
        spec=(ecs.VpcLatticeAdvancedConfiguration, False),
        resource_type="AWS::ECS::Service",
        definition="VpcLatticeConfiguration",
    ),
)


def install() -> None:
    """Add each missing property to troposphere's model; properties troposphere already has are left alone."""
    for addition in ADDITIONS:
        addition.owner.props.setdefault(addition.name, addition.spec)


install()
