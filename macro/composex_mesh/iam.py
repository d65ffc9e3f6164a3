"""IAM parts every backend shares: the trust policy of each role the macro makes."""

from __future__ import annotations

from typing import Any


def trusted_by(service: str) -> dict[str, Any]:
    """An ``AssumeRolePolicyDocument`` that lets ``service`` (``ecs.amazonaws.com``, ``ecs-tasks.amazonaws.com``)
    assume the role, for this account only (the confused-deputy guard AWS recommends)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }
        ],
    }
