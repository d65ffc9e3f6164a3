"""The section's policies in App Mesh's CloudFormation shapes: listeners, matches, retries, timeouts."""

from __future__ import annotations

from typing import Any

from .. import model

_PROTOCOL_KEYS = {"http": "HTTP", "http2": "HTTP2", "grpc": "GRPC", "tcp": "TCP"}
_TIMEOUT_KEYS = {"http": "HTTP", "http2": "HTTP2", "grpc": "GRPC", "tcp": "TCP"}
ROUTE_KEYS = {"http": "HttpRoute", "http2": "Http2Route", "grpc": "GrpcRoute", "tcp": "TcpRoute"}


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """The entries whose value was given."""
    return {key: value for key, value in values.items() if value is not None and value != [] and value != {}}


ENVOY_JSON_LOG = (
    ("start_time", "%START_TIME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    ("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
)
"""The fields of envoy's default access log line, as App Mesh's JSON format: ``AccessLog: {Format: Json}``."""


def logging(access_log: model.AccessLog) -> dict[str, Any] | None:
    """A virtual node's access log to ``/dev/stdout``: envoy's default text line, or its fields as JSON."""
    if not access_log.enabled:
        return None
    file: dict[str, Any] = {"Path": "/dev/stdout"}
    if access_log.format == "Json":
        file["Format"] = {"Json": [{"Key": key, "Value": value} for key, value in ENVOY_JSON_LOG]}
    return {"AccessLog": {"File": file}}


def duration(value: model.Duration | None) -> dict[str, Any] | None:
    return value.as_app_mesh() if value is not None else None


def listener(item: model.Listener) -> dict[str, Any]:
    """A virtual node listener with its health check, timeouts, pool and outlier detection."""
    return drop_none(
        {
            "PortMapping": {"Port": item.port, "Protocol": item.protocol},
            "HealthCheck": health_check(item) if item.health_check else None,
            "Timeout": listener_timeout(item.protocol, item.timeout),
            "ConnectionPool": connection_pool(item.protocol, item.connection_pool),
            "OutlierDetection": outlier_detection(item.outlier_detection),
        }
    )


def health_check(item: model.Listener) -> dict[str, Any]:
    check = item.health_check
    assert check is not None
    protocol = check.protocol or item.protocol
    return drop_none(
        {
            "Protocol": protocol,
            "Path": (check.path or "/") if protocol in ("http", "http2") else None,
            "Port": check.port,
            "IntervalMillis": check.interval.milliseconds if check.interval else 5000,
            "TimeoutMillis": check.timeout.milliseconds if check.timeout else 2000,
            "HealthyThreshold": check.healthy_threshold or 2,
            "UnhealthyThreshold": check.unhealthy_threshold or 2,
        }
    )


def timeouts(protocol: str, value: model.Timeouts | None) -> dict[str, Any] | None:
    if value is None:
        return None
    per_request = None if protocol == "tcp" else duration(value.per_request)
    return drop_none({"PerRequest": per_request, "Idle": duration(value.idle)}) or None


def listener_timeout(protocol: str, value: model.Timeouts | None) -> dict[str, Any] | None:
    shaped = timeouts(protocol, value)
    return {_TIMEOUT_KEYS[protocol]: shaped} if shaped else None


def connection_pool(protocol: str, pool: model.ConnectionPool | None) -> dict[str, Any] | None:
    if pool is None:
        return None
    values = drop_none(
        {
            "MaxConnections": pool.max_connections,
            "MaxPendingRequests": pool.max_pending_requests,
            "MaxRequests": pool.max_requests,
        }
    )
    return {_PROTOCOL_KEYS[protocol]: values}


def outlier_detection(value: model.OutlierDetection | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "MaxServerErrors": value.max_server_errors,
        "Interval": value.interval.as_app_mesh(),
        "BaseEjectionDuration": value.base_ejection_duration.as_app_mesh(),
        "MaxEjectionPercent": value.max_ejection_percent,
    }


def header_match(header: model.HeaderMatch) -> dict[str, Any]:
    method = drop_none(
        {
            "Exact": header.exact,
            "Prefix": header.prefix,
            "Suffix": header.suffix,
            "Regex": header.regex,
            "Range": {"Start": header.range.start, "End": header.range.end} if header.range else None,
        }
    )
    return drop_none({"Name": header.name, "Invert": header.invert or None, "Match": method})


def route_match(protocol: str, match: model.Match | None) -> dict[str, Any] | None:
    """The route's match; http routes without one match every path (``Prefix: /``)."""
    if protocol == "tcp":
        return drop_none({"Port": match.port}) if match and match.port else None
    if protocol == "grpc":
        if match is None:
            return {}
        return drop_none(
            {
                "ServiceName": match.service_name,
                "MethodName": match.method_name,
                "Metadata": [header_match(item) for item in match.metadata],
                "Port": match.port,
            }
        )
    if match is None:
        return {"Prefix": "/"}
    shaped = drop_none(
        {
            "Prefix": match.prefix,
            "Path": drop_none({"Exact": match.path.exact, "Regex": match.path.regex}) if match.path else None,
            "Method": match.method,
            "Scheme": match.scheme,
            "Headers": [header_match(item) for item in match.headers],
            "QueryParameters": [
                drop_none({"Name": item.name, "Match": drop_none({"Exact": item.exact}) or None})
                for item in match.query_parameters
            ],
            "Port": match.port,
        }
    )
    if "Prefix" not in shaped and "Path" not in shaped:
        shaped = {"Prefix": "/", **shaped}
    return shaped


def retry_policy(protocol: str, retries: model.Retries | None) -> dict[str, Any] | None:
    if retries is None or protocol == "tcp":
        return None
    events = set(retries.events)
    return drop_none(
        {
            "MaxRetries": retries.max_retries,
            "PerRetryTimeout": retries.per_retry_timeout.as_app_mesh(),
            "HttpRetryEvents": [event for event in model.HTTP_RETRY_EVENTS if event in events],
            "TcpRetryEvents": [event for event in model.TCP_RETRY_EVENTS if event in events],
            "GrpcRetryEvents": [event for event in model.GRPC_RETRY_EVENTS if event in events],
        }
    )
