"""``backends.base.build``: troposphere's model decides what a generated resource may hold."""

from __future__ import annotations

import pytest
from troposphere.ec2 import SecurityGroupIngress

from composex_mesh.backends.base import InvalidResourceError, build


def test_a_valid_resource_comes_back_with_type_first() -> None:
    resource = build(
        SecurityGroupIngress,
        "AToBPort80Ingress",
        {
            "GroupId": {"Fn::GetAtt": ["B", "GroupId"]},
            "SourceSecurityGroupId": "sg-1",
            "IpProtocol": "tcp",
            "FromPort": 80,
            "ToPort": 80,
        },
        depends_on=["Z", "A", "Z"],
    )
    assert list(resource) == ["Type", "Properties", "DependsOn"]
    assert resource["Type"] == "AWS::EC2::SecurityGroupIngress"
    assert resource["Properties"]["GroupId"] == {"Fn::GetAtt": ["B", "GroupId"]}
    assert resource["DependsOn"] == ["A", "Z"]


def test_a_value_of_the_wrong_type_is_an_invalid_resource_not_a_crash() -> None:
    with pytest.raises(InvalidResourceError) as raised:
        build(SecurityGroupIngress, "AToBPort80Ingress", {"GroupId": {"not": "intrinsic"}, "IpProtocol": "tcp"})
    assert raised.value.resource == "AWS::EC2::SecurityGroupIngress AToBPort80Ingress"
    assert "GroupId" in raised.value.detail
