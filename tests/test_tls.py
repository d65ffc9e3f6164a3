"""Encryption in transit (SPEC §9) beyond the golden cases: what ``Tls`` adds to the quickstarts, warnings, rights."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from composex_mesh import SECTION_KEY
from composex_mesh.errors import InvalidSectionError
from composex_mesh.transform import Context, ExpandResult, expand
from tests.golden import event_fragment, load_input, load_template_text
from tests.lint import lint_errors

EXAMPLES = Path(__file__).resolve().parents[1] / "sam" / "examples"
CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def quickstart(name: str) -> dict[str, Any]:
    """A quickstart of ``sam/examples`` as the macro receives it, with its backend from the transform's Parameters."""
    template = load_template_text((EXAMPLES / name).read_text(encoding="utf-8"))
    transform = template.get("Transform")
    if isinstance(transform, list) and isinstance(transform[0], dict):
        template[SECTION_KEY] = {**transform[0]["Parameters"], **template[SECTION_KEY]}
    return event_fragment(template)


def added_by_type(fragment: dict[str, Any], tls: dict[str, Any] | None) -> tuple[Counter[str], ExpandResult]:
    fragment = copy.deepcopy(fragment)
    if tls is not None:
        fragment[SECTION_KEY]["Tls"] = tls
    result = expand(fragment, Context())
    return Counter(result.summary.added_by_type), result


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        # frontend, clock and watch all provide a service: one certificate each; envoy's rights go in its policy.
        ("quickstart.yaml", {"AWS::CertificateManager::Certificate": 3}),
        # ECS issues the certificates itself; the macro makes the infrastructure role that lets it.
        ("quickstart-serviceconnect.yaml", {"AWS::IAM::Role": 1}),
    ],
)
def test_what_tls_adds_to_the_quickstarts(example: str, expected: dict[str, int]) -> None:
    fragment = quickstart(example)
    before, _ = added_by_type(fragment, None)
    after, result = added_by_type(fragment, {"CertificateAuthority": CA})
    assert after - before == Counter(expected)
    assert lint_errors(result.fragment) == []


def with_section(case: str, **section: Any) -> dict[str, Any]:
    fragment = event_fragment(load_input(case))
    fragment[SECTION_KEY].update(section)
    return fragment


def test_a_load_balanced_provider_under_strict_tls_gets_a_warning() -> None:
    fragment = with_section("tls_ca_only")
    fragment["Resources"]["ClockService"]["Properties"]["LoadBalancers"] = [
        {"ContainerName": "app", "ContainerPort": 8080, "TargetGroupArn": {"Ref": "ClockTargetGroup"}}
    ]
    fragment["Resources"]["ClockTargetGroup"] = {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup"}
    result = expand(fragment, Context())
    assert [item for item in result.warnings if "LoadBalancers" in item] == [
        "[Nodes.clock] ECS service 'ClockService' has LoadBalancers: envoy intercepts their connections to the app's "
        "ports too, and a STRICT TLS listener refuses plain text (health checks included). Use Tls.Mode: PERMISSIVE "
        "while a load balancer calls the app directly."
    ]
    fragment[SECTION_KEY]["Tls"]["Mode"] = "PERMISSIVE"
    assert not [item for item in expand(fragment, Context()).warnings if "LoadBalancers" in item]


def test_a_task_role_made_elsewhere_is_told_its_tls_rights() -> None:
    fragment = with_section("tls_ca_only")
    task = fragment["Resources"]["ClockTaskDefinition"]["Properties"]
    task["TaskRoleArn"] = "arn:aws:iam::123456789012:role/clock"
    warnings = [item for item in expand(fragment, Context()).warnings if item.startswith("[Nodes.clock]")]
    assert warnings == [
        "[Nodes.clock] the task role of 'ClockTaskDefinition' is not a role of this template: grant it "
        "appmesh:StreamAggregatedResources on the virtual node yourself, and acm:ExportCertificate on the "
        "certificates it serves and the CA it trusts."
    ]


def test_a_port_both_tls_and_plain_text_behind_one_service_is_an_error() -> None:
    fragment = with_section("tls_ca_only")
    section = fragment[SECTION_KEY]
    section["Nodes"]["legacy-clock"] = {
        "Hostname": "clock.legacy.corp.internal",
        "Listeners": [{"Port": 8080, "Protocol": "http"}],
    }
    section["Routers"]["time"]["Routes"][0]["Targets"]["legacy-clock"] = 1
    with pytest.raises(InvalidSectionError) as caught:
        expand(fragment, Context())
    assert [str(error) for error in caught.value.errors] == [
        "[Services.time] port 8080 is TLS on node 'clock' but plain text on DNS node 'legacy-clock', and a client "
        "policy covers a port of a service whole: give the listener of 'legacy-clock' a Tls (its target must then "
        "serve TLS), or serve the two on different ports."
    ]


def test_service_connect_with_a_role_made_elsewhere_and_a_key_is_told_the_key_rights() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    role = "arn:aws:iam::123456789012:role/ecs-service-connect-tls"
    fragment = with_section("sc_tls_ca_only")
    fragment[SECTION_KEY]["Tls"] = {"CertificateAuthority": CA, "KmsKey": key, "Role": role}
    result = expand(fragment, Context())
    entries = [
        entry
        for resource in result.fragment["Resources"].values()
        if resource["Type"] == "AWS::ECS::Service"
        for entry in resource["Properties"]["ServiceConnectConfiguration"].get("Services", [])
    ]
    assert entries and all(entry["Tls"]["RoleArn"] == role and entry["Tls"]["KmsKey"] == key for entry in entries)
    assert "ServiceConnectTlsRole" not in result.fragment["Resources"]
    assert result.warnings == [
        "[Tls.Role] is not a role of this template: give it kms:Decrypt and kms:GenerateDataKey on Tls.KmsKey "
        "yourself (ECS stores the certificates' private keys in Secrets Manager, encrypted with it)."
    ]


def test_what_tls_does_to_the_lattice_quickstart() -> None:
    """VPC Lattice adds no resource for Tls: its listeners turn HTTPS with Lattice.Certificate, then required."""
    fragment = quickstart("quickstart-lattice.yaml")
    with pytest.raises(InvalidSectionError) as caught:
        added_by_type(fragment, {"CertificateAuthority": CA})
    assert [error.path for error in caught.value.errors] == ["Lattice.Certificate"]
    before, plain = added_by_type(fragment, None)
    fragment[SECTION_KEY]["Lattice"] = {
        "Certificate": "arn:aws:acm:us-east-1:123456789012:certificate/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    }
    after, result = added_by_type(fragment, {"CertificateAuthority": CA})
    assert after == before
    protocols = {
        output: [item["Properties"]["Protocol"] for item in document["Resources"].values() if item["Type"] == LISTENER]
        for output, document in (("plain", plain.fragment), ("tls", result.fragment))
    }
    assert protocols == {"plain": ["HTTP"], "tls": ["HTTPS"]}
    assert lint_errors(result.fragment) == []


LISTENER = "AWS::VpcLattice::Listener"
