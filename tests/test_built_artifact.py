"""The Lambda artifact that `sam build` made, run by the runtime's Python on the sample macro events.

Opt-in, because it needs a build and a python3.13:

    PYENV_VERSION=3.11.7:3.12.1:3.13.0 sam build --config-file sam/samconfig.toml
    COMPOSEX_BUILT_ARTIFACT=.aws-sam/build/Function .venv/bin/python -m pytest -q tests/test_built_artifact.py

COMPOSEX_ARTIFACT_PYTHON names the interpreter (default ``python3.13``, the function's runtime). It runs
isolated (``-I -S``: no site-packages, no user site, no PYTHON* variables) with only the artifact
folder added to ``sys.path``, so the handler sees what the Lambda runtime would (boto3 aside): the
code and the dependencies that the build vendored, nothing from this repository's venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = (ROOT / "template.yaml").read_text(encoding="utf-8")
EVENTS = sorted((ROOT / "sam" / "events").glob("*.json"))
ARTIFACT_ENV = "COMPOSEX_BUILT_ARTIFACT"
PYTHON_ENV = "COMPOSEX_ARTIFACT_PYTHON"

pytestmark = pytest.mark.skipif(
    not os.environ.get(ARTIFACT_ENV),
    reason=f"set {ARTIFACT_ENV} to a `sam build` output folder (.aws-sam/build/Function) to run",
)

# Runs inside the artifact's interpreter: argv = artifact dir, event file, result file.
RUNNER = r"""
import json, sys, time
artifact, event_path, result_path = sys.argv[1:4]
sys.path.insert(0, artifact)

class LambdaContext:
    function_name = "ComposeXMesh-macro"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ComposeXMesh-macro"
    memory_limit_in_mb = 256
    log_group_name = "/aws/lambda/ComposeXMesh-macro"
    log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"
    def __init__(self, request_id):
        self.aws_request_id = request_id
        self._deadline = time.monotonic() + 60
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)

with open(event_path, encoding="utf-8") as f:
    event = json.load(f)
import composex_mesh.handler as handler_module
started = time.perf_counter()
response = handler_module.lambda_handler(event, LambdaContext(event.get("requestId", "local")))
elapsed = time.perf_counter() - started
origins = {name: getattr(sys.modules.get(name), "__file__", None)
           for name in ("composex_mesh", "troposphere", "yaml", "aws_lambda_powertools")}
with open(result_path, "w", encoding="utf-8") as f:
    json.dump({"response": response, "origins": origins, "seconds": elapsed,
               "version": list(sys.version_info[:2])}, f)
"""


@pytest.fixture(scope="module")
def artifact() -> Path:
    path = Path(os.environ[ARTIFACT_ENV]).resolve()
    assert (path / "composex_mesh" / "handler.py").is_file(), f"{path} is not a built function folder"
    return path


@pytest.fixture(scope="module")
def artifact_python() -> str:
    name = os.environ.get(PYTHON_ENV, "python3.13")  # keep in step with the template's Runtime
    found = shutil.which(name)
    assert found, f"{name} not found; set {PYTHON_ENV}"
    return found


def run_in_artifact(artifact: Path, python: str, event_path: Path, tmp_path: Path) -> dict[str, Any]:
    result_path = tmp_path / "result.json"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS_"))},
        # What the function's Environment and the Lambda runtime set.
        "POWERTOOLS_SERVICE_NAME": "composex-mesh",
        "POWERTOOLS_METRICS_NAMESPACE": "ComposeXMesh",
        "LOG_LEVEL": "INFO",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "ComposeXMesh-macro",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(artifact),
    }
    completed = subprocess.run(
        [python, "-I", "-S", "-c", RUNNER, str(artifact), str(event_path), str(result_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return result


def test_there_are_sample_events() -> None:
    assert EVENTS, "no sample events in sam/events/*.json"


@pytest.mark.parametrize("event_path", EVENTS, ids=[p.stem for p in EVENTS])
def test_built_handler_answers_the_event(
    artifact: Path, artifact_python: str, event_path: Path, tmp_path: Path
) -> None:
    """quickstart/serviceconnect: transformed; no-section: unchanged; invalid-*: a failure status."""
    event = json.loads(event_path.read_text(encoding="utf-8"))

    result = run_in_artifact(artifact, artifact_python, event_path, tmp_path)

    # Everything came from the artifact, nothing from this repository or its venv.
    for module, origin in result["origins"].items():
        if origin is not None:
            assert Path(origin).resolve().is_relative_to(artifact), f"{module} loaded from {origin}"
    assert result["origins"]["composex_mesh"] is not None
    if PYTHON_ENV not in os.environ:  # the default interpreter is the function's runtime
        runtime = re.search(r"^\s+Runtime:\s*python(\d+)\.(\d+)\s*$", TEMPLATE, re.MULTILINE)
        assert runtime and result["version"] == [int(runtime.group(1)), int(runtime.group(2))]

    response = result["response"]
    assert response["requestId"] == event["requestId"]
    if event_path.stem.startswith("invalid"):
        # SPEC §1/§2: never raises; bad input gives status failure and the error list.
        assert response["status"] == "failure"
        assert response["errorMessage"].startswith("Invalid Composex::AppMesh section. Number of errors found:")
    elif "Composex::AppMesh" not in event["fragment"]:
        # SPEC §1: a template with the transform but no section comes back unchanged.
        assert response["status"] == "success", response.get("errorMessage")
        assert response["fragment"] == event["fragment"]
    else:
        assert response["status"] == "success", response.get("errorMessage")
        fragment = response["fragment"]
        assert "Composex::AppMesh" not in fragment
        # SPEC §5: nothing of the user's template is lost; the macro adds resources.
        assert set(event["fragment"]["Resources"]) < set(fragment["Resources"])
    print(f"{event_path.name}: python {result['version']}, handler {result['seconds'] * 1000:.0f} ms")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q", "-s"]))
