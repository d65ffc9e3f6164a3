"""The typed model of the ``Composex::AppMesh`` section (SPEC §2).

Each dataclass field is one key of the section; its metadata (``key``, bounds, choices, doc) drives the parser
in ``parse.py`` and the JSON Schema of ``composex-mesh schema``, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from typing import Any, Literal

Backend = Literal["AppMesh", "ServiceConnect", "VpcLattice"]
Protocol = Literal["http", "http2", "grpc", "tcp"]
EgressFilter = Literal["DROP_ALL", "ALLOW_ALL"]
LogLevel = Literal["trace", "debug", "info", "warning", "error", "critical", "off"]
Tracing = Literal["XRay"]
HttpMethod = Literal["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]
Scheme = Literal["http", "https"]
TlsMode = Literal["STRICT", "PERMISSIVE"]
LatticeAuth = Literal["NONE", "AWS_IAM"]
AccessLogFormat = Literal["Text", "Json"]

HTTP_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")
TCP_RETRY_EVENTS = ("connection-error",)
GRPC_RETRY_EVENTS = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
RetryEvent = Literal[
    "server-error",
    "gateway-error",
    "client-error",
    "stream-error",
    "connection-error",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]

Value = Any
"""A string, or a CloudFormation intrinsic function resolved at deploy time (``{"Ref": ...}``, ``{"Fn::Sub": ...}``)."""

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"


def key(
    name: str,
    *,
    default: Any = MISSING,
    minimum: int | None = None,
    maximum: int | None = None,
    doc: str = "",
    value: bool = False,
    min_items: int | None = None,
    backends: tuple[str, ...] = (),
    elsewhere: dict[str, str] | None = None,
) -> Any:
    """Declare a section key: its PascalCase ``name``, default, bounds and documentation.

    ``value=True`` marks a field that takes a string or an intrinsic function, kept as written.
    ``backends`` names the only backends that take the key (empty: all of them); ``elsewhere`` says, per other
    backend, what it does instead (the error's hint).
    """
    metadata = {
        "key": name,
        "minimum": minimum,
        "maximum": maximum,
        "doc": doc,
        "value": value,
        "min_items": min_items,
        "backends": backends,
        "elsewhere": elsewhere or {},
    }
    if default is MISSING:
        return field(metadata=metadata)
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Duration:
    """A duration written ``250ms``, ``15s``, ``5m`` or ``1h``; App Mesh takes it as ``{Unit, Value}``."""

    milliseconds: int
    text: str

    def as_app_mesh(self) -> dict[str, Any]:
        if self.milliseconds % 1000 == 0:
            return {"Unit": "s", "Value": self.milliseconds // 1000}
        return {"Unit": "ms", "Value": self.milliseconds}

    @property
    def seconds(self) -> int:
        return self.milliseconds // 1000


@dataclass(frozen=True)
class HealthCheck:
    """A listener's active health check."""

    path: str | None = key("Path", default=None, doc="HTTP path (http and http2 only); default /.")
    protocol: Protocol | None = key("Protocol", default=None, doc="Default: the listener's protocol.")
    interval: Duration | None = key("Interval", default=None, doc="5s to 300s; default 5s.")
    timeout: Duration | None = key("Timeout", default=None, doc="2s to 60s; default 2s.")
    healthy_threshold: int | None = key("HealthyThreshold", default=None, minimum=2, maximum=10)
    unhealthy_threshold: int | None = key("UnhealthyThreshold", default=None, minimum=2, maximum=10)
    port: int | None = key("Port", default=None, minimum=1, maximum=65535, doc="Default: the listener's port.")


@dataclass(frozen=True)
class Timeouts:
    """Request and idle timeouts (``Idle`` only for tcp)."""

    per_request: Duration | None = key("PerRequest", default=None)
    idle: Duration | None = key("Idle", default=None)


@dataclass(frozen=True)
class ConnectionPool:
    """Connection pool limits: http MaxConnections/MaxPendingRequests, http2/grpc MaxRequests, tcp MaxConnections."""

    max_connections: int | None = key("MaxConnections", default=None, minimum=1)
    max_pending_requests: int | None = key("MaxPendingRequests", default=None, minimum=1)
    max_requests: int | None = key("MaxRequests", default=None, minimum=1)


@dataclass(frozen=True)
class OutlierDetection:
    """Eject hosts that keep failing."""

    max_server_errors: int = key("MaxServerErrors", minimum=1)
    interval: Duration = key("Interval")
    base_ejection_duration: Duration = key("BaseEjectionDuration")
    max_ejection_percent: int = key("MaxEjectionPercent", minimum=0, maximum=100)


SERVER_SIDE_ONLY = {
    "ServiceConnect": "Service Connect speaks TLS 1.3, server side only: its clients present no certificate.",
    "VpcLattice": "VPC Lattice's HTTPS listeners authenticate no client certificates; Lattice.Auth: AWS_IAM "
    "authenticates callers instead.",
}


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate and its private key, as files in the envoy container."""

    chain: str = key("Chain", doc="Path of the PEM certificate chain, e.g. /keys/chain.pem.")
    private_key: str = key("Key", doc="Path of the PEM private key, e.g. /keys/key.pem.")


@dataclass(frozen=True)
class ListenerCertificate:
    """A listener's own certificate: exactly one of Acm, Sds, File."""

    acm: Value = key("Acm", default=None, value=True, doc="ARN of an ACM private certificate.")
    sds: str | None = key("Sds", default=None, doc="Name of the secret envoy gets from its SDS (e.g. SPIRE) agent.")
    file: CertificateFiles | None = key("File", default=None)


@dataclass(frozen=True)
class ListenerTls:
    """TLS of one listener: the certificate it serves (App Mesh)."""

    certificate: ListenerCertificate = key("Certificate")


@dataclass(frozen=True)
class MutualFiles:
    """Mutual TLS from files in the envoy container: its client certificate, key, and the CA bundle it trusts."""

    chain: str = key("Chain", doc="Path of the PEM certificate chain every node presents.")
    private_key: str = key("Key", doc="Path of its PEM private key.")
    trust: str = key("Trust", doc="Path of the PEM bundle of the CAs whose client certificates are accepted.")


@dataclass(frozen=True)
class MutualTls:
    """Mutual TLS: every node presents a client certificate and listeners check it. Sds (with Trust) or File."""

    sds: str | None = key("Sds", default=None, doc="SDS secret of every node's certificate, e.g. a SPIFFE ID.")
    trust: str | None = key(
        "Trust", default=None, doc="With Sds: the SDS secret of the trust bundle, e.g. spiffe://corp."
    )
    file: MutualFiles | None = key("File", default=None)


@dataclass(frozen=True)
class Tls:
    """Encryption in transit between the services, on every backend (SPEC §9)."""

    certificate_authority: Value = key(
        "CertificateAuthority",
        default=None,
        value=True,
        doc="ARN of the AWS Private CA that issues the nodes' certificates and that clients trust.",
    )
    mode: TlsMode = key("Mode", default="STRICT", doc="PERMISSIVE (AppMesh only) also accepts plain text.")
    mutual: MutualTls | None = key(
        "Mutual",
        default=None,
        backends=("AppMesh",),
        elsewhere=SERVER_SIDE_ONLY,
        doc="Every node presents a client certificate; listeners check it.",
    )
    kms_key: Value = key(
        "KmsKey",
        default=None,
        value=True,
        backends=("ServiceConnect",),
        doc="ARN of the KMS key Service Connect encrypts the certificates' private keys with.",
    )
    role: Value = key(
        "Role",
        default=None,
        value=True,
        backends=("ServiceConnect",),
        doc="Logical ID or ARN of the ECS infrastructure role for TLS; default: one is made.",
    )


@dataclass(frozen=True)
class Listener:
    """A port a node (or router) receives traffic on."""

    port: int = key("Port", minimum=1, maximum=65535)
    protocol: Protocol = key("Protocol")
    health_check: HealthCheck | None = key("HealthCheck", default=None)
    timeout: Timeouts | None = key("Timeout", default=None)
    connection_pool: ConnectionPool | None = key("ConnectionPool", default=None)
    outlier_detection: OutlierDetection | None = key("OutlierDetection", default=None)
    tls: ListenerTls | None = key(
        "Tls",
        default=None,
        backends=("AppMesh",),
        elsewhere={
            "ServiceConnect": "Service Connect issues every certificate from Tls.CertificateAuthority itself.",
            "VpcLattice": "VPC Lattice serves Lattice.Certificate on its HTTPS listeners.",
        },
        doc="The listener's own certificate; default: one issued by Tls.CertificateAuthority.",
    )
    ingress_port: int | None = key(
        "IngressPort",
        default=None,
        minimum=1,
        maximum=65535,
        backends=("ServiceConnect",),
        elsewhere={"AppMesh": "On App Mesh, envoy takes the listener's traffic on its Port."},
        doc="The port the proxy listens on for this listener (IngressPortOverride).",
    )


@dataclass(frozen=True)
class RouterListener:
    """A router's listener: a port and a protocol."""

    port: int = key("Port", minimum=1, maximum=65535)
    protocol: Protocol = key("Protocol")


@dataclass(frozen=True)
class NamespaceRef:
    """A Cloud Map namespace made outside this template: by its ``Id``, or (ServiceConnect) its ``Arn``."""

    name: str = key("Name", doc="The namespace's name, e.g. corp.internal.")
    id: Value = key("Id", default=None, value=True, doc="The namespace ID, ns-...")
    arn: Value = key(
        "Arn",
        default=None,
        value=True,
        backends=("ServiceConnect",),
        elsewhere={"AppMesh": "App Mesh adds Cloud Map services to the namespace and needs its Id: write {Id, Name}."},
        doc="Its ARN, e.g. of one shared through AWS RAM.",
    )


@dataclass(frozen=True)
class Mesh:
    """The mesh: made by the macro, or an existing (possibly shared) one."""

    name: Value = key("Name", default=None, value=True, doc="Default: the stack name.")
    egress_filter: EgressFilter | None = key("EgressFilter", default=None, doc="DROP_ALL (default) or ALLOW_ALL.")
    existing: bool = key("Existing", default=False, doc="Use the mesh called Name; create none.")
    owner: str | None = key("Owner", default=None, doc="AWS account ID of a shared mesh's owner.")
    arn: Value = key(
        "Arn",
        default=None,
        value=True,
        backends=("VpcLattice",),
        elsewhere={
            "AppMesh": "App Mesh joins an existing mesh by its Name (Existing: true, Name).",
            "ServiceConnect": "Service Connect has no mesh: services of other stacks join the same namespace.",
        },
        doc="The ID or ARN of an existing service network (with Existing).",
    )


@dataclass(frozen=True)
class AccessLog:
    """The proxies' access log: envoy's on App Mesh (``/dev/stdout``), the Service Connect proxy's on ServiceConnect."""

    format: AccessLogFormat = key("Format", default="Text")
    enabled: bool = key("Enabled", default=True, doc="false: no access log.")


@dataclass(frozen=True)
class Envoy:
    """Options of the envoy sidecar."""

    image: Value = key("Image", default=None, value=True, doc="Default: the regional App Mesh envoy image.")
    log_level: LogLevel = key("LogLevel", default="info")
    tracing: Tracing | None = key("Tracing", default=None)
    environment: dict[str, Value] = key("Environment", default={}, value=True)


@dataclass(frozen=True)
class Lattice:
    """Options of the VPC Lattice backend (VpcLattice only)."""

    vpc: Value = key("Vpc", default=None, value=True, doc="Default: the namespace's Vpc.")
    auth: LatticeAuth = key("Auth", default="NONE", doc="AWS_IAM: auth policies from Backends; callers SigV4-sign.")
    infrastructure_role: Value = key(
        "InfrastructureRole", default=None, value=True, doc="Logical ID or ARN of an ECS infrastructure role."
    )
    certificate: Value = key("Certificate", default=None, value=True, doc="ACM certificate ARN for HTTPS listeners.")
    access_logs: Value = key(
        "AccessLogs", default=None, value=True, doc="Log group, bucket or Firehose stream (logical ID or ARN)."
    )


@dataclass(frozen=True)
class Node:
    """An ECS service (``Service``) or any DNS-discoverable target (``Hostname``)."""

    service: str | None = key("Service", default=None, doc="Logical ID of an AWS::ECS::Service.")
    container: str | None = key("Container", default=None, doc="Default: the task's only container.")
    hostname: Value = key("Hostname", default=None, value=True, doc="A DNS node's hostname.")
    listeners: tuple[Listener, ...] | None = key("Listeners", default=None)
    backends: tuple[str, ...] = key("Backends", default=(), doc="Names of services this node may call.")
    security_groups: tuple[Value, ...] = key("SecurityGroups", default=(), value=True)
    cloud_map_attributes: dict[str, Value] = key(
        "CloudMapAttributes",
        default={},
        value=True,
        backends=("AppMesh",),
        elsewhere={"ServiceConnect": "Service Connect makes and filters its own Cloud Map services."},
        doc="AppMesh only: the Cloud Map attributes this node's discovery filters on (default: the task "
        "definition's ECS_TASK_DEFINITION_FAMILY when several nodes share one Cloud Map service).",
    )


@dataclass(frozen=True)
class PathMatch:
    """A path matched exactly or by regular expression."""

    exact: str | None = key("Exact", default=None)
    regex: str | None = key("Regex", default=None)


@dataclass(frozen=True)
class Range:
    """An integer range, ``Start`` inclusive, ``End`` exclusive."""

    start: int = key("Start")
    end: int = key("End")


@dataclass(frozen=True)
class HeaderMatch:
    """A header (or gRPC metadata) condition: exactly one of Exact, Prefix, Suffix, Regex, Range."""

    name: str = key("Name")
    exact: str | None = key("Exact", default=None)
    prefix: str | None = key("Prefix", default=None)
    suffix: str | None = key("Suffix", default=None)
    regex: str | None = key("Regex", default=None)
    range: Range | None = key("Range", default=None)
    invert: bool = key("Invert", default=False)


@dataclass(frozen=True)
class QueryParameterMatch:
    """A query parameter, present (no Exact) or equal to Exact."""

    name: str = key("Name")
    exact: str | None = key("Exact", default=None)


@dataclass(frozen=True)
class Match:
    """What a route matches: http/http2 keys, or gRPC keys; tcp routes take only Port."""

    prefix: str | None = key("Prefix", default=None)
    path: PathMatch | None = key("Path", default=None)
    method: HttpMethod | None = key("Method", default=None)
    scheme: Scheme | None = key("Scheme", default=None)
    headers: tuple[HeaderMatch, ...] = key("Headers", default=())
    query_parameters: tuple[QueryParameterMatch, ...] = key("QueryParameters", default=())
    port: int | None = key("Port", default=None, minimum=1, maximum=65535)
    service_name: str | None = key("ServiceName", default=None)
    method_name: str | None = key("MethodName", default=None)
    metadata: tuple[HeaderMatch, ...] = key("Metadata", default=())


@dataclass(frozen=True)
class Retries:
    """A route's retry policy."""

    max_retries: int = key("MaxRetries", minimum=0)
    per_retry_timeout: Duration = key("PerRetryTimeout")
    events: tuple[RetryEvent, ...] = key("Events", default=())


@dataclass(frozen=True)
class Route:
    """One route of a router: a match, weighted targets and its policy."""

    targets: dict[str, int] = key("Targets", minimum=0, maximum=100, doc="Node name -> weight 0..100.")
    match: Match | None = key("Match", default=None)
    retries: Retries | None = key("Retries", default=None)
    timeout: Timeouts | None = key("Timeout", default=None)
    priority: int | None = key("Priority", default=None, minimum=0, maximum=1000)


@dataclass(frozen=True)
class Router:
    """A virtual router: listeners of one protocol and its routes."""

    routes: tuple[Route, ...] = key("Routes", min_items=1)
    listeners: tuple[RouterListener, ...] | None = key("Listeners", default=None)


@dataclass(frozen=True)
class TrafficTestRule:
    """Requests with this header value go to the new revision during an ECS blue/green deployment."""

    header: str = key("Header", doc="The header's name.")
    exact: str = key("Exact", doc="The value that marks a test request.")


@dataclass(frozen=True)
class ExternalService:
    """A service another stack runs: consumers may call it; nothing is made for it here."""

    dns_name: str = key("DnsName", doc="The name its clients call, e.g. payments.corp.internal.")
    port: int = key("Port", minimum=1, maximum=65535)
    protocol: Protocol = key("Protocol", default="tcp")
    security_groups: tuple[Value, ...] = key(
        "SecurityGroups", default=(), value=True, doc="Its security groups: opened to the consumers on Port."
    )


@dataclass(frozen=True)
class Service:
    """A name clients call, provided by a node or a router, or run by another stack (External)."""

    node: str | None = key("Node", default=None)
    router: str | None = key("Router", default=None)
    dns_name: str | None = key("DnsName", default=None, doc="Default: <service>.<namespace name>.")
    test_traffic: TrafficTestRule | None = key(
        "TestTraffic",
        default=None,
        backends=("ServiceConnect",),
        elsewhere={"AppMesh": "On App Mesh, a router's route that matches the header (Match.Headers) sends it on."},
        doc="The header that sends a request to the new revision during an ECS blue/green deployment.",
    )
    external: ExternalService | None = key("External", default=None)


@dataclass(frozen=True)
class Section:
    """The whole ``Composex::AppMesh`` section."""

    backend: Backend = key("Backend", default="AppMesh")
    mesh: Mesh = key("Mesh", default=Mesh())
    namespace: str | NamespaceRef | None = key(
        "Namespace",
        default=None,
        doc="Logical ID of a PrivateDnsNamespace (ServiceConnect: or HttpNamespace), {Id, Name} or {Arn, Name}.",
    )
    tls: Tls | None = key("Tls", default=None, doc="Encryption in transit between the services (SPEC §9).")
    access_log: AccessLog = key("AccessLog", default=AccessLog())
    envoy: Envoy = key("Envoy", default=Envoy())
    lattice: Lattice = key(
        "Lattice",
        default=Lattice(),
        backends=("VpcLattice",),
        elsewhere={
            "AppMesh": "For VPC Lattice, write Backend: VpcLattice.",
            "ServiceConnect": "For VPC Lattice, write Backend: VpcLattice.",
        },
        doc="Options of VPC Lattice.",
    )
    nodes: dict[str, Node] = key("Nodes", default={})
    routers: dict[str, Router] = key("Routers", default={})
    services: dict[str, Service] = key("Services", default={})
