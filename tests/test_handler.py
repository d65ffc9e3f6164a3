"""The Lambda handler with real CloudFormation macro events (``sam/events/``): SPEC §1's contract."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from composex_mesh import SECTION_KEY, handler
from tests.lint import lint_errors

EVENTS = Path(__file__).resolve().parent.parent / "sam" / "events"


class LambdaContext:
    """The attributes Powertools reads from a real Lambda context."""

    function_name = "composex-mesh"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:composex-mesh"
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def invoke(event: Any) -> dict[str, Any]:
    answer: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
    return answer


def test_the_quickstart_event_expands_into_a_lint_clean_mesh() -> None:
    event = load_event("quickstart")
    original = copy.deepcopy(event)
    answer = invoke(event)
    assert answer["status"] == "success", answer.get("errorMessage")
    assert answer["requestId"] == event["requestId"]
    assert "errorMessage" not in answer
    fragment = answer["fragment"]
    assert SECTION_KEY not in fragment
    types = [resource["Type"] for resource in fragment["Resources"].values()]
    assert types.count("AWS::AppMesh::VirtualNode") == 3
    assert types.count("AWS::AppMesh::Mesh") == 1
    assert lint_errors(fragment) == []
    assert event == original, "the handler must not modify the event"


def test_a_template_without_the_section_comes_back_unchanged() -> None:
    event = load_event("no-section")
    answer = invoke(event)
    assert answer["status"] == "success"
    assert answer["fragment"] == event["fragment"]


def test_an_invalid_section_fails_with_every_error_and_its_path() -> None:
    answer = invoke(load_event("invalid-section"))
    assert answer["status"] == "failure"
    assert answer["errorMessage"] == (
        "Invalid Composex::AppMesh section. Number of errors found: 2. "
        "[Routers.time.Routes[0].Targets.clock] 300 is out of range: it must be from 0 to 100. "
        "[Nodes.frontend.Backends[1]] 'clocks' is not a service under Services."
    )


@pytest.mark.parametrize("event", [None, [], "text", {"requestId": "r1"}, {"requestId": "r2", "fragment": [1]}])
def test_malformed_events_get_an_answer_not_a_raise(event: Any) -> None:
    answer = invoke(event)
    assert answer["status"] == "failure"
    assert answer["errorMessage"]
    assert answer["requestId"] == (event.get("requestId", "") if isinstance(event, dict) else "")


def test_an_internal_bug_is_answered_as_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(handler, "expand", broken)
    answer = invoke(load_event("quickstart"))
    assert answer["status"] == "failure"
    assert answer["errorMessage"] == "Internal error: RuntimeError: boom"


def test_logs_carry_counts_but_never_the_template(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("quickstart")
    with caplog.at_level("DEBUG", logger="composex-mesh"):
        invoke(event)
    records = [record for record in caplog.records if record.name == "composex-mesh"]
    expanded = next(record for record in records if record.getMessage() == "Expanded")
    assert expanded.levelname == "INFO"
    assert expanded.__dict__["nodes"] == 3
    assert expanded.__dict__["resources_added"] > 0
    logged = json.dumps([{**record.__dict__, "args": None} for record in records], default=str)
    assert "ContainerDefinitions" not in logged
    assert "python:3.13-slim" not in logged
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics[-1]["Expansions"] in ([1.0], 1.0)
    assert metrics[-1]["NodesExpanded"] in ([3.0], 3.0)
