"""TLS on App Mesh (SPEC §9): listener TLS, client policies, the nodes' ACM certificates and envoy's TLS rights.

Who serves TLS: every listener of an ECS node that provides a service (directly, or as a route target), and the
listeners of DNS nodes that have a ``Tls`` of their own (their target terminates TLS; no envoy runs there). A
consumer gets a client policy on each backend that such a listener serves, trusting the CA (ACM trust), or
``Mutual.Trust`` when there is no CA; ``Ports`` when only some of the backend's ports are TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import certificatemanager

from .. import model
from ..errors import ErrorCollector
from ..plan import NodePlan, Plan, ServicePlan, Value
from .base import Rendered, build

ACM_NAME_LIMIT = 64
"""ACM puts a certificate's first domain name in its subject (CN), which holds 64 characters at most."""
ACM_NAMES_QUOTA = 10
"""ACM's default quota of domain names per certificate (adjustable in Service Quotas)."""


@dataclass(frozen=True)
class Endpoint:
    """A node's listener that a service reaches."""

    node: NodePlan
    listener: model.Listener


class AppMeshTls:
    """The TLS parts of an App Mesh rendering; one instance per expansion, only when the section has ``Tls``."""

    def __init__(self, plan: Plan, tls: model.Tls, errors: ErrorCollector) -> None:
        self.plan = plan
        self.tls = tls
        self.errors = errors
        self.endpoints = {name: self._service_endpoints(service) for name, service in plan.services.items()}
        self.providers = {endpoint.node.name for endpoints in self.endpoints.values() for endpoint in endpoints}
        called = {name for node in plan.nodes.values() for name in node.node.backends}
        for name in (name for name in plan.services if name in called):
            self._check_mixed_ports(name)

    # -- who serves TLS ---------------------------------------------------------------------------------

    def _service_endpoints(self, service: ServicePlan) -> list[Endpoint]:
        """The listeners the service's clients reach: its node's, or the one each route target serves it on."""
        if service.is_external:  # served by another stack: nothing of this template to trust or to check
            return []
        if service.service.node is not None:
            node = self.plan.nodes[service.service.node]
            return [Endpoint(node, listener) for listener in node.listeners]
        assert service.service.router is not None
        router = self.plan.routers[service.service.router]
        endpoints: list[Endpoint] = []
        for route in router.router.routes:
            for target in route.targets:
                node = self.plan.nodes[target]
                matching = [item for item in node.listeners if item.protocol == router.protocol]
                listener = node.listeners[0] if len(node.listeners) == 1 else next(iter(matching), None)
                if listener is not None and Endpoint(node, listener) not in endpoints:
                    endpoints.append(Endpoint(node, listener))
        return endpoints

    def serves_tls(self, node: NodePlan, listener: model.Listener) -> bool:
        if node.ecs is not None:
            return node.name in self.providers
        return listener.tls is not None

    def _needs_issued_certificate(self, node: NodePlan) -> bool:
        return (
            node.ecs is not None
            and node.name in self.providers
            and self.tls.certificate_authority is not None
            and any(listener.tls is None for listener in node.listeners)
        )

    # -- virtual node parts -----------------------------------------------------------------------------

    def listener_tls(self, node: NodePlan, listener: model.Listener) -> dict[str, Any] | None:
        """The ``TLS`` of a virtual node listener, or None for a plain-text one."""
        if not self.serves_tls(node, listener):
            return None
        tls: dict[str, Any] = {"Mode": self.tls.mode, "Certificate": self._listener_certificate(node, listener)}
        mutual = self.tls.mutual
        if mutual is not None and node.ecs is not None:
            tls["Validation"] = {"Trust": _mutual_trust(mutual), **_mutual_names(mutual)}
        return tls

    def _listener_certificate(self, node: NodePlan, listener: model.Listener) -> dict[str, Any]:
        if listener.tls is not None:
            return _certificate_source(listener.tls.certificate)
        if self.tls.certificate_authority is not None:
            return {"ACM": {"CertificateArn": {"Ref": certificate_id(node)}}}
        assert self.tls.mutual is not None  # checks.py: without a CA, AppMesh needs Mutual
        return _mutual_certificate(self.tls.mutual)

    def _check_mixed_ports(self, service_name: str) -> None:
        """A port of a service that is TLS on one provider and plain text on another: no client policy fits it."""
        endpoints = self.endpoints[service_name]
        secure: dict[int, str] = {}
        for item in endpoints:
            if self.serves_tls(item.node, item.listener):
                secure.setdefault(item.listener.port, item.node.name)
        for item in endpoints:
            port = item.listener.port
            if port in secure and not self.serves_tls(item.node, item.listener):
                self.errors.add(
                    f"Services.{service_name}",
                    f"port {port} is TLS on node '{secure[port]}' but plain text on DNS node '{item.node.name}', and "
                    f"a client policy covers a port of a service whole: give the listener of '{item.node.name}' a "
                    "Tls (its target must then serve TLS), or serve the two on different ports.",
                )

    def client_policy(self, consumer: NodePlan, service_name: str) -> dict[str, Any] | None:
        """The ``ClientPolicy`` of a consumer's backend, or None when nothing behind it serves TLS."""
        endpoints = self.endpoints[service_name]
        tls_ports = {item.listener.port for item in endpoints if self.serves_tls(item.node, item.listener)}
        if not tls_ports:
            return None
        plain = {item.listener.port for item in endpoints if not self.serves_tls(item.node, item.listener)}
        policy: dict[str, Any] = {"Enforce": True}
        if plain:
            policy["Ports"] = sorted(tls_ports)
        validation: dict[str, Any] = {"Trust": self._client_trust()}
        policy["Validation"] = validation
        mutual = self.tls.mutual
        if mutual is not None:
            own = [item for item in endpoints if self.serves_tls(item.node, item.listener) and item.listener.tls]
            if self.tls.certificate_authority is None and not own:
                validation.update(_mutual_names(mutual))  # every server presents Mutual's certificate
            policy["Certificate"] = _mutual_certificate(mutual)
        return {"TLS": policy}

    def _client_trust(self) -> dict[str, Any]:
        if self.tls.certificate_authority is not None:
            return {"ACM": {"CertificateAuthorityArns": [self.tls.certificate_authority]}}
        assert self.tls.mutual is not None
        return _mutual_trust(self.tls.mutual)

    # -- resources and rights ---------------------------------------------------------------------------

    def render_certificate(self, node: NodePlan, rendered: Rendered) -> None:
        """The node's ACM private certificate, issued by the CA, when it serves a listener without one of its own."""
        if not self._needs_issued_certificate(node):
            return
        origin = f"Nodes.{node.name}"
        names = _unique([self._discovery_name(node), *self._service_names(node)])
        literal = [name for name in names if isinstance(name, str)]
        fitting = [name for name in literal if len(name) <= ACM_NAME_LIMIT] or [
            name for name in names if not isinstance(name, str)
        ]
        if not fitting:
            self.errors.add(
                origin,
                f"every DNS name of node '{node.name}' is longer than {ACM_NAME_LIMIT} characters, and ACM puts the "
                "first name of a certificate in its subject, which holds 64: give one of its services a shorter "
                "DnsName, or its listeners a Tls.Certificate of their own.",
            )
            return
        domain = fitting[0]
        properties: dict[str, Any] = {
            "DomainName": domain,
            "CertificateAuthorityArn": self.tls.certificate_authority,
        }
        others = [name for name in names if name != domain]
        if others:
            properties["SubjectAlternativeNames"] = others
        if len(names) > ACM_NAMES_QUOTA:
            rendered.warnings.append(
                f"[{origin}] its certificate names {len(names)} DNS names; ACM's default quota is "
                f"{ACM_NAMES_QUOTA} per certificate: raise it in Service Quotas before deploying."
            )
        logical_id = certificate_id(node)
        rendered.add(logical_id, build(certificatemanager.Certificate, logical_id, properties), origin, self.errors)

    def _discovery_name(self, node: NodePlan) -> Value:
        """The name App Mesh checks a provider's certificate against: Cloud Map's ``service.namespace``."""
        assert node.ecs is not None
        if node.ecs.registry_id is None:
            return _dotted(node.name, node.namespace_name)  # the Cloud Map service the App Mesh backend makes
        known = self.plan.view.known(self.plan.view.properties(node.ecs.registry_id).get("Name"))
        # A known Name reads better, and does not repeat a service's name as another SAN.
        label: Value = known if isinstance(known, str) else node.ecs.cloud_map_name
        return _dotted(label, node.namespace_name)

    def _service_names(self, node: NodePlan) -> list[Value]:
        return [
            self.plan.services[name].dns_name
            for name, endpoints in self.endpoints.items()
            if any(item.node.name == node.name for item in endpoints)
        ]

    def envoy_statements(self, node: NodePlan) -> list[dict[str, Any]]:
        """What the node's envoy needs for TLS: export the ACM certificates it serves, read the CA it trusts."""
        statements: list[dict[str, Any]] = []
        served = _unique(
            [
                certificate["ACM"]["CertificateArn"]
                for listener in node.listeners
                if self.serves_tls(node, listener)
                for certificate in [self._listener_certificate(node, listener)]
                if "ACM" in certificate
            ]
        )
        if served:
            statements.append(
                {
                    "Sid": "EnvoyExportsTheCertificatesItServes",
                    "Effect": "Allow",
                    "Action": ["acm:ExportCertificate"],
                    "Resource": served,
                }
            )
        trusts_ca = self.tls.certificate_authority is not None and any(
            self._has_client_policy(name) for name in node.node.backends
        )
        if trusts_ca:
            statements.append(
                {
                    "Sid": "EnvoyReadsTheCertificateAuthorityItTrusts",
                    "Effect": "Allow",
                    "Action": ["acm-pca:GetCertificateAuthorityCertificate"],
                    "Resource": [self.tls.certificate_authority],
                }
            )
        return statements

    def _has_client_policy(self, service_name: str) -> bool:
        """Whether a backend gets a client policy: a TLS listener serves it."""
        return any(self.serves_tls(item.node, item.listener) for item in self.endpoints.get(service_name, []))

    def warn_about_load_balancers(self, rendered: Rendered) -> None:
        """A load balancer's plain-text connections to a STRICT listener are refused by envoy (it intercepts them)."""
        if self.tls.mode != "STRICT":
            return
        for node in self.plan.nodes.values():
            if node.ecs is None or node.name not in self.providers:
                continue
            if self.plan.view.properties(node.ecs.service_id).get("LoadBalancers"):
                rendered.warnings.append(
                    f"[Nodes.{node.name}] ECS service '{node.ecs.service_id}' has LoadBalancers: envoy intercepts "
                    "their connections to the app's ports too, and a STRICT TLS listener refuses plain text (health "
                    "checks included). Use Tls.Mode: PERMISSIVE while a load balancer calls the app directly."
                )


def certificate_id(node: NodePlan) -> str:
    return f"{node.stem}Certificate"


def _certificate_source(certificate: model.ListenerCertificate) -> dict[str, Any]:
    if certificate.acm is not None:
        return {"ACM": {"CertificateArn": certificate.acm}}
    if certificate.sds is not None:
        return {"SDS": {"SecretName": certificate.sds}}
    assert certificate.file is not None
    return {"File": {"CertificateChain": certificate.file.chain, "PrivateKey": certificate.file.private_key}}


def _mutual_certificate(mutual: model.MutualTls) -> dict[str, Any]:
    """The certificate every node presents (as a client, and as a server without a CA)."""
    if mutual.sds is not None:
        return {"SDS": {"SecretName": mutual.sds}}
    assert mutual.file is not None
    return {"File": {"CertificateChain": mutual.file.chain, "PrivateKey": mutual.file.private_key}}


def _mutual_trust(mutual: model.MutualTls) -> dict[str, Any]:
    if mutual.sds is not None:
        return {"SDS": {"SecretName": mutual.trust}}
    assert mutual.file is not None
    return {"File": {"CertificateChain": mutual.file.trust}}


def _mutual_names(mutual: model.MutualTls) -> dict[str, Any]:
    """With SDS, every node's certificate carries the one SPIFFE ID ``Mutual.Sds``: peers must present it."""
    if mutual.sds is None:
        return {}
    return {"SubjectAlternativeNames": {"Match": {"Exact": [mutual.sds]}}}


def _dotted(label: Value, domain: Value) -> Value:
    if isinstance(label, str) and isinstance(domain, str):
        return f"{label}.{domain}"
    return {"Fn::Join": [".", [label, domain]]}


def _unique(values: list[Value]) -> list[Value]:
    """``values`` without repeats (intrinsics compared by value), in order."""
    kept: list[Value] = []
    for value in values:
        if value not in kept:
            kept.append(value)
    return kept
