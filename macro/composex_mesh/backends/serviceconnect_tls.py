"""TLS on Service Connect (SPEC §9): every service entry gets ``Tls`` from the Private CA, with the ECS infrastructure
role that lets ECS issue, store and rotate the certificates (the given ``Tls.Role``, else one made here).

ECS stores each certificate's private key in Secrets Manager, encrypted with ``Tls.KmsKey`` when one is given
(an AWS managed key otherwise): the role then also gets the two KMS actions Secrets Manager calls on the role's
behalf, on that key only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from troposphere import iam

from .. import model
from ..errors import ErrorCollector
from ..fields import did_you_mean
from ..iam import trusted_by
from ..plan import Plan, Value
from ..resolve import ROLE_TYPE
from .base import Rendered, build

ROLE_ID = "ServiceConnectTlsRole"
KMS_POLICY_SUFFIX = "ServiceConnectTlsKey"
KMS_POLICY_NAME = "composex-mesh-service-connect-tls-key"
MANAGED_POLICY = "AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity"
_ROLE_ARN = re.compile(r"^arn:aws(?:-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True)
class ServiceConnectTls:
    """What every Service Connect entry gets, and what the ECS services must wait for."""

    configuration: dict[str, Any]
    """The entries' ``Tls``."""
    depends_on: tuple[str, ...] = ()
    """A policy giving a role of the template the KMS rights: ECS uses them as it creates the services."""


def render_tls(plan: Plan, rendered: Rendered, errors: ErrorCollector) -> ServiceConnectTls | None:
    """The ``Tls`` of every Service Connect entry (None without ``Tls``), and the role it names."""
    tls = plan.section.tls
    if tls is None:
        return None
    role_arn, depends_on = _role(plan, tls, rendered, errors)
    configuration: dict[str, Any] = {"IssuerCertificateAuthority": {"AwsPcaAuthorityArn": tls.certificate_authority}}
    if tls.kms_key is not None:
        configuration["KmsKey"] = tls.kms_key
    if role_arn is not None:
        configuration["RoleArn"] = role_arn
    return ServiceConnectTls(configuration, depends_on)


def _role(plan: Plan, tls: model.Tls, rendered: Rendered, errors: ErrorCollector) -> tuple[Value, tuple[str, ...]]:
    """The role's ARN, and the policy the services wait for (if any)."""
    role = tls.role
    if role is None:
        rendered.add(ROLE_ID, _infrastructure_role(tls), "Tls", errors)
        return {"Fn::GetAtt": [ROLE_ID, "Arn"]}, ()
    if not isinstance(role, str) or role.startswith("arn:"):
        if isinstance(role, str) and not _ROLE_ARN.match(role):
            errors.add("Tls.Role", f"'{role[:100]}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME).")
        if tls.kms_key is not None:
            rendered.warnings.append(
                "[Tls.Role] is not a role of this template: give it kms:Decrypt and kms:GenerateDataKey on "
                "Tls.KmsKey yourself (ECS stores the certificates' private keys in Secrets Manager, encrypted with it)."
            )
        return role, ()  # an ARN, or an intrinsic (a parameter, an import): passed on as written
    kind = plan.view.type_of(role)
    if kind != ROLE_TYPE:
        absent = plan.view.absent_reason(role)
        found = absent or ("is not a logical ID in Resources" if kind is None else f"is not an {ROLE_TYPE}")
        errors.add(
            "Tls.Role",
            f"'{role}' {found}: give the logical ID of an {ROLE_TYPE} of this template, or a role's ARN."
            + did_you_mean(role, plan.view.of_type(ROLE_TYPE)),
        )
        return None, ()
    if tls.kms_key is None:
        return {"Fn::GetAtt": [role, "Arn"]}, ()
    policy_id = f"{role}{KMS_POLICY_SUFFIX}"
    properties = {
        "PolicyName": KMS_POLICY_NAME,
        "Roles": [{"Ref": role}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [_key_statement(tls.kms_key)]},
    }
    rendered.add(policy_id, build(iam.PolicyType, policy_id, properties), "Tls.KmsKey", errors)
    return {"Fn::GetAtt": [role, "Arn"]}, (policy_id,)


def _infrastructure_role(tls: model.Tls) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Description": "ComposeXMesh: lets ECS issue and rotate the Service Connect TLS certificates",
        "AssumeRolePolicyDocument": trusted_by("ecs.amazonaws.com"),
        "ManagedPolicyArns": [{"Fn::Sub": f"arn:${{AWS::Partition}}:iam::aws:policy/service-role/{MANAGED_POLICY}"}],
    }
    if tls.kms_key is not None:
        properties["Policies"] = [
            {
                "PolicyName": KMS_POLICY_NAME,
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [_key_statement(tls.kms_key)]},
            }
        ]
    return build(iam.Role, ROLE_ID, properties)


def _key_statement(key: Value) -> dict[str, Any]:
    return {
        "Sid": "SecretsManagerUsesTheKeyForTheCertificates",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": [key],
    }
