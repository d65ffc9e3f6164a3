"""The ``composex-mesh-validate`` pre-commit hook, run for real by ``pre-commit try-repo`` on a sample repository.

pre-commit installs this repository, as a user's project would get it, into an environment of its own (pip, from
the package index); the first run takes a minute.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_cli import PLAIN, TEMPLATE, _two_errors

ROOT = Path(__file__).resolve().parents[1]


def test_the_hook_is_declared() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "composex-mesh-validate"
    assert hook["entry"] == "composex-mesh validate --skip-untransformed"
    assert hook["language"] == "python" and hook["types_or"] == ["yaml", "json"]


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)


def _skip_reason() -> str | None:
    if importlib.util.find_spec("pre_commit") is None:
        return "pre-commit is not installed: it comes with the dev extras (pip install -e '.[dev]')"
    if shutil.which("git") is None:
        return "git is not installed: pre-commit needs it"
    if _git("rev-parse", "--is-inside-work-tree", cwd=ROOT).stdout.strip() != "true":
        return f"{ROOT} is not a git work tree: pre-commit try-repo needs one"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_pre_commit_try_repo_validates_only_templates_that_use_the_transform(tmp_path: Path) -> None:
    sample = tmp_path / "project"
    sample.mkdir()
    files = {
        "stacks/mesh.yaml": TEMPLATE,
        "stacks/broken.yaml": _two_errors(),
        "stacks/plain.yaml": PLAIN.replace("Transform: ComposeXMesh\n", "Transform: AWS::Serverless-2016-10-31\n"),
        "charts/values.yaml": "image: {{ .Values.image }}\n",  # not even YAML: skipped, never read as a template
        "package.json": '{"name": "project"}\n',
    }
    for name, text in files.items():
        (sample / name).parent.mkdir(parents=True, exist_ok=True)
        (sample / name).write_text(text, encoding="utf-8")
    assert _git("init", "-q", cwd=sample).returncode == 0
    assert _git("add", ".", cwd=sample).returncode == 0
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    command = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "composex-mesh-validate", "--all-files", "-v"]
    failed = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, check=False, timeout=900)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "stacks/broken.yaml:18:7: [Nodes.api.Colour] is not a valid key." in output
    assert "stacks/broken.yaml:15:23: [Nodes.frontend.Backends[1]] 'nowhere' is not a service under Services." in output
    assert "stacks/mesh.yaml: valid" in output
    assert "plain.yaml" not in output and "values.yaml" not in output and "package.json" not in output
    assert "composex-mesh validate" in output and "Failed" in output
