"""The section's parser and cross-key checks (SPEC §2): types, enums, ranges, references, gathered errors."""

from __future__ import annotations

from typing import Any

import pytest

from composex_mesh import model
from composex_mesh.checks import check_routes, check_section
from composex_mesh.errors import ErrorCollector, InvalidSectionError, SectionError
from composex_mesh.fields import fields_of
from composex_mesh.parse import SectionParser
from composex_mesh.schema import section_json_schema


def parse(raw: Any, parameters: dict[str, Any] | None = None) -> tuple[model.Section | None, list[str]]:
    errors = ErrorCollector()
    parser = SectionParser(errors, parameters or {})
    section = parser.parse_section(raw)
    if section is not None:
        check_section(section, errors, frozenset(parser.broken_names))
    return section, [str(error) for error in errors.errors]


def minimal(**extra: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "Nodes": {"web": {"Service": "WebService", "Backends": ["api"]}, "api": {"Service": "ApiService"}},
        "Services": {"api": {"Node": "api"}},
    }
    section.update(extra)
    return section


def test_a_valid_section_parses_with_defaults() -> None:
    section, errors = parse(minimal())
    assert errors == []
    assert section is not None
    assert section.backend == "AppMesh"
    assert section.mesh == model.Mesh(name=None, egress_filter=None, existing=False, owner=None)
    assert section.envoy.log_level == "info"
    assert section.nodes["web"].backends == ("api",)
    assert section.nodes["api"].listeners is None


def test_durations_become_milliseconds_and_app_mesh_units() -> None:
    raw = minimal()
    raw["Nodes"]["api"]["Listeners"] = [
        {"Port": 8080, "Protocol": "http", "Timeout": {"PerRequest": "250ms", "Idle": "5m"}}
    ]
    section, errors = parse(raw)
    assert errors == []
    assert section is not None
    listeners = section.nodes["api"].listeners
    assert listeners is not None
    timeout = listeners[0].timeout
    assert timeout is not None and timeout.per_request is not None and timeout.idle is not None
    assert timeout.per_request.as_app_mesh() == {"Unit": "ms", "Value": 250}
    assert timeout.idle.as_app_mesh() == {"Unit": "s", "Value": 300}


def test_integers_given_as_strings_and_parameter_refs_are_accepted() -> None:
    raw = minimal()
    raw["Nodes"]["api"]["Listeners"] = [{"Port": {"Ref": "ApiPort"}, "Protocol": "tcp"}]
    section, errors = parse(raw, {"ApiPort": "9090"})
    assert errors == []
    assert section is not None
    listeners = section.nodes["api"].listeners
    assert listeners is not None and listeners[0].port == 9090


def test_unknown_keys_get_a_did_you_mean() -> None:
    raw = minimal(Servics={})
    raw["Nodes"]["web"]["Backend"] = ["api"]
    _, errors = parse(raw)
    assert "[Servics] is not a valid key. Did you mean 'Services'?" in errors
    assert "[Nodes.web.Backend] is not a valid key. Did you mean 'Backends'?" in errors


def test_enums_and_ranges_are_checked_by_the_macro() -> None:
    raw = minimal(Mesh={"EgressFilter": "DROP"})
    raw["Nodes"]["api"]["Listeners"] = [{"Port": 70000, "Protocol": "htpp"}]
    _, errors = parse(raw)
    assert "[Mesh.EgressFilter] 'DROP' is not one of DROP_ALL, ALLOW_ALL. Did you mean 'DROP_ALL'?" in errors
    assert "[Nodes.api.Listeners[0].Port] 70000 is out of range: it must be from 1 to 65535." in errors
    assert (
        "[Nodes.api.Listeners[0].Protocol] 'htpp' is not one of http, http2, grpc, tcp. Did you mean 'http'?" in errors
    )


def test_every_error_of_a_document_is_reported_together() -> None:
    raw = minimal(
        Routers={"time": {"Routes": [{"Targets": {"api": 300}}]}},
        Services={"api": {"Node": "api"}, "time": {"Router": "time"}},
    )
    raw["Nodes"]["web"]["Backends"] = ["api", "tme"]
    raw["Nodes"]["db"] = {"Service": "DbService", "Hostname": "db.example.com"}
    _, errors = parse(raw)
    assert errors == [
        "[Routers.time.Routes[0].Targets.api] 300 is out of range: it must be from 0 to 100.",
        "[Nodes.web.Backends[1]] 'tme' is not a service under Services. Did you mean 'time'?",
        "[Nodes.db] needs exactly one of Service or Hostname; found Service and Hostname.",
    ]


def test_a_reference_to_a_part_that_failed_to_parse_is_not_reported_twice() -> None:
    raw = minimal(Services={"api": {"Node": "api", "DnsNam": "x"}})
    _, errors = parse(raw)
    assert errors == ["[Services.api.DnsNam] is not a valid key. Did you mean 'DnsName'?"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"Services": {"api": {"Node": "api", "Router": "r"}}},
            "[Services.api] needs exactly one of Node or Router or External; found Node and Router.",
        ),
        ({"Services": {"api": {}}}, "[Services.api] needs exactly one of Node or Router or External; found none."),
        (
            {"Routers": {"r": {"Routes": [{"Targets": {"api": 0}}]}}},
            "[Routers.r.Routes[0].Targets] needs at least one weight above 0.",
        ),
        ({"Routers": {"r": {"Routes": []}}}, "[Routers.r.Routes] must have at least 1 item(s)."),
        ({"Mesh": {"Existing": True}}, "[Mesh.Name] is required when Existing is true: it names the mesh to join."),
        ({"Mesh": {"Owner": "1234"}}, "[Mesh.Owner] '1234' is not an AWS account ID (12 digits)."),
        (
            {"Nodes": {"bad.name": {"Service": "S"}}},
            "[Nodes.bad.name] 'bad.name' is not a valid name: use letters, digits, '-' and '_', 1 to 255 characters.",
        ),
    ],
)
def test_cross_key_rules(change: dict[str, Any], expected: str) -> None:
    _, errors = parse(minimal(**change))
    assert expected in errors


def test_listener_policies_must_fit_the_protocol() -> None:
    raw = minimal()
    raw["Nodes"]["api"]["Listeners"] = [
        {
            "Port": 5432,
            "Protocol": "tcp",
            "HealthCheck": {"Path": "/health", "Interval": "1s"},
            "Timeout": {"PerRequest": "5s"},
            "ConnectionPool": {"MaxConnections": 10, "MaxRequests": 5},
        }
    ]
    _, errors = parse(raw)
    assert errors == [
        "[Nodes.api.Listeners[0].HealthCheck.Path] is for http and http2 health checks, not tcp.",
        "[Nodes.api.Listeners[0].HealthCheck.Interval] 1s is out of range: it must be from 5s to 300s.",
        "[Nodes.api.Listeners[0].Timeout.PerRequest] is for http, http2 and grpc listeners; a tcp listener takes only Idle.",
        "[Nodes.api.Listeners[0].ConnectionPool.MaxRequests] is for http2 and grpc listeners, not tcp.",
    ]


def test_the_failure_message_has_the_sam_style_headline() -> None:
    error = InvalidSectionError([SectionError("Nodes.a", "is wrong."), SectionError("", "is empty.")])
    assert error.message == (
        "Invalid Composex::AppMesh section. Number of errors found: 2. [Nodes.a] is wrong. [Composex::AppMesh] is empty."
    )


def test_the_json_schema_covers_every_key_of_the_model() -> None:
    schema = section_json_schema()
    definitions = schema["$defs"]
    for cls in (model.Node, model.Listener, model.Route, model.Match, model.Mesh, model.Envoy, model.Service):
        assert set(definitions[cls.__name__]["properties"]) == {spec.key for spec in fields_of(cls)}
        assert definitions[cls.__name__]["additionalProperties"] is False
    assert schema["properties"]["Backend"] == {
        "enum": ["AppMesh", "ServiceConnect", "VpcLattice"],
        "default": "AppMesh",
    }
    assert definitions["Listener"]["properties"]["Port"] == {"type": "integer", "minimum": 1, "maximum": 65535}
    assert definitions["Router"]["required"] == ["Routes"]


def route_errors(protocol: model.Protocol, routes: list[dict[str, Any]], ports: tuple[int, ...] = (8080,)) -> list[str]:
    """Errors of check_routes for a router listening on ``ports`` with ``protocol``."""
    raw = minimal(Routers={"r": {"Routes": routes}})
    section, errors = parse(raw)
    assert errors == [] and section is not None
    collector = ErrorCollector()
    listeners = tuple(model.RouterListener(port=port, protocol=protocol) for port in ports)
    check_routes("Routers.r", "r", listeners, section.routers["r"].routes, collector)
    return [str(error) for error in collector.errors]


def test_route_policies_must_fit_the_router_protocol() -> None:
    retries = {"MaxRetries": 2, "PerRetryTimeout": "2s", "Events": ["unavailable"]}
    assert route_errors("tcp", [{"Targets": {"api": 1}, "Retries": retries, "Timeout": {"PerRequest": "1s"}}]) == [
        "[Routers.r.Routes[0].Retries] is for http, http2 and grpc routes; App Mesh does not retry tcp.",
        "[Routers.r.Routes[0].Timeout.PerRequest] is for http, http2 and grpc routes; a tcp route takes only Idle.",
    ]
    assert route_errors("http", [{"Targets": {"api": 1}, "Retries": retries}]) == [
        "[Routers.r.Routes[0].Retries.Events[0]] 'unavailable' is a gRPC retry event; http routes take server-error, gateway-error, client-error, stream-error, connection-error."
    ]
    assert route_errors("grpc", [{"Targets": {"api": 1}, "Retries": retries}]) == []


def test_route_matches_must_fit_the_protocol_and_not_repeat() -> None:
    routes = [
        {"Targets": {"api": 1}, "Match": {"Prefix": "/a"}},
        {"Targets": {"api": 1}, "Match": {"Prefix": "/a"}},
        {"Targets": {"api": 1}, "Match": {"ServiceName": "svc"}},
    ]
    assert route_errors("http", routes) == [
        "[Routers.r.Routes[1].Match] is the same as the match of Routes[0]: only the first of the two would ever match.",
        "[Routers.r.Routes[2].Match.ServiceName] is a grpc match key, but router 'r' listens on http: a router's routes all use its listener protocol.",
    ]


def test_routes_of_a_router_with_several_listeners_name_their_port() -> None:
    routes: list[dict[str, Any]] = [
        {"Targets": {"api": 1}},
        {"Targets": {"api": 1}, "Match": {"Prefix": "/", "Port": 9999}},
    ]
    assert route_errors("http", routes, ports=(8080, 8081)) == [
        "[Routers.r.Routes[0].Match.Port] is required: router 'r' has several listeners.",
        "[Routers.r.Routes[1].Match.Port] 9999 is not a listener port of router 'r'.",
    ]


CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def test_tls_parses_into_the_model_with_intrinsics_kept() -> None:
    tls = {
        "CertificateAuthority": {"Fn::ImportValue": "MeshCa"},
        "Mutual": {"Sds": "spiffe://c/mesh", "Trust": "spiffe://c"},
    }
    listeners = [
        {"Port": 80, "Protocol": "http", "Tls": {"Certificate": {"File": {"Chain": "/c.pem", "Key": "/k.pem"}}}}
    ]
    raw = minimal(Tls=tls)
    raw["Nodes"]["api"]["Listeners"] = listeners
    section, errors = parse(raw)
    assert errors == [] and section is not None and section.tls is not None
    assert section.tls.certificate_authority == {"Fn::ImportValue": "MeshCa"}
    assert section.tls.mode == "STRICT"
    assert section.tls.mutual == model.MutualTls(sds="spiffe://c/mesh", trust="spiffe://c")
    listener = (section.nodes["api"].listeners or ())[0]
    assert listener.tls == model.ListenerTls(model.ListenerCertificate(file=model.CertificateFiles("/c.pem", "/k.pem")))


def test_keys_of_other_backends_are_errors_naming_the_backends_that_take_them() -> None:
    _, errors = parse(
        minimal(Backend="ServiceConnect", Tls={"CertificateAuthority": CA_ARN, "Mutual": {"Sds": "a", "Trust": "b"}})
    )
    assert errors == [
        "[Tls.Mutual] is for Backend: AppMesh only, not ServiceConnect. Service Connect speaks TLS 1.3, server side "
        "only: its clients present no certificate. Remove it."
    ]
    _, errors = parse(minimal(Tls={"CertificateAuthority": CA_ARN, "Role": "Role", "KmsKey": {"Ref": "Key"}}))
    assert errors == [
        "[Tls.KmsKey] is for Backend: ServiceConnect only, not AppMesh. Remove it.",
        "[Tls.Role] is for Backend: ServiceConnect only, not AppMesh. Remove it.",
    ]


def test_the_json_schema_has_tls_and_says_which_backends_take_a_key() -> None:
    definitions = section_json_schema()["$defs"]
    assert set(definitions["Tls"]["properties"]) == {"CertificateAuthority", "Mode", "Mutual", "KmsKey", "Role"}
    assert definitions["Tls"]["properties"]["Mode"] == {
        "enum": ["STRICT", "PERMISSIVE"],
        "description": "PERMISSIVE (AppMesh only) also accepts plain text.",
        "default": "STRICT",
    }
    assert definitions["Tls"]["properties"]["KmsKey"]["description"].endswith("Backend ServiceConnect only.")
    assert definitions["ListenerCertificate"]["properties"]["Sds"] == {
        "type": "string",
        "minLength": 1,
        "description": "Name of the secret envoy gets from its SDS (e.g. SPIRE) agent.",
    }
    assert definitions["MutualFiles"]["required"] == ["Chain", "Key", "Trust"]
