"""The Lambda handler of the ComposeXMesh CloudFormation macro (SPEC §1): a thin shell around ``expand()``.

It never raises: bad input answers ``status: failure`` with the validation message; a bug answers
``Internal error: ...`` and logs the traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from . import SECTION_KEY
from .errors import InvalidSectionError
from .transform import Context, expand

logger = Logger(service="composex-mesh")
metrics = Metrics(namespace="ComposeXMesh", service="composex-mesh")


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer a CloudFormation macro event with ``{requestId, status, fragment, errorMessage}``."""
    try:
        return _handle(event, context)
    except Exception as error:  # the contract: a macro answers, whatever happens
        logger.exception("Internal error")
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        request_id = event.get("requestId", "") if isinstance(event, Mapping) else ""
        fragment = event.get("fragment") if isinstance(event, Mapping) else None
        return _answer(request_id, "failure", fragment, f"Internal error: {type(error).__name__}: {error}")
    finally:
        _flush_metrics()


def _handle(event: Any, lambda_context: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        metrics.add_metric(name="InvalidTemplates", unit=MetricUnit.Count, value=1)
        return _answer("", "failure", None, "The macro event must be a JSON object.")
    request_id = str(event.get("requestId", ""))
    fragment = event.get("fragment")
    logger.append_keys(request_id=request_id, transform_id=event.get("transformId"))
    if lambda_context is not None and hasattr(lambda_context, "aws_request_id"):
        logger.append_keys(lambda_request_id=lambda_context.aws_request_id)
    if not isinstance(fragment, Mapping):
        metrics.add_metric(name="InvalidTemplates", unit=MetricUnit.Count, value=1)
        return _answer(request_id, "failure", fragment, "The macro event has no template fragment (a JSON object).")
    context = Context.from_event(event)
    if SECTION_KEY not in fragment:
        logger.info("No section: the template is returned unchanged")
        metrics.add_metric(name="Passthroughs", unit=MetricUnit.Count, value=1)
        return _answer(request_id, "success", fragment, None)
    try:
        result = expand(fragment, context)
    except InvalidSectionError as error:
        logger.warning("Invalid section", extra={"error_count": len(error.errors)})
        metrics.add_metric(name="InvalidTemplates", unit=MetricUnit.Count, value=1)
        return _answer(request_id, "failure", fragment, error.message)
    summary = result.summary
    for warning in result.warnings:
        logger.warning(warning)
    logger.info(
        "Expanded",
        extra={
            "backend": summary.backend,
            "nodes": summary.nodes,
            "routers": summary.routers,
            "services": summary.services,
            "resources_added": summary.resources_added,
            "resources_patched": summary.resources_patched,
        },
    )
    metrics.add_dimension(name="Backend", value=summary.backend)
    metrics.add_metric(name="Expansions", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="NodesExpanded", unit=MetricUnit.Count, value=summary.nodes)
    metrics.add_metric(name="ResourcesAdded", unit=MetricUnit.Count, value=summary.resources_added)
    return _answer(request_id, "success", result.fragment, None)


def _answer(request_id: str, status: str, fragment: Any, error_message: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"requestId": request_id, "status": status, "fragment": fragment}
    if error_message is not None:
        answer["errorMessage"] = error_message
    return answer


def _flush_metrics() -> None:
    """Emit the metrics as one EMF log line; a failure to do so must not fail the macro."""
    try:
        metrics.flush_metrics()
    except Exception:
        logger.exception("Could not flush metrics")
