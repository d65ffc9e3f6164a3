"""The ``composex-mesh`` command line: render, validate, schema; exit codes, outputs and messages."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from composex_mesh import SECTION_KEY, __version__, cli, transform
from composex_mesh.cli import main
from composex_mesh.yaml_io import dump_template, load_template

HEADLINE = f"Invalid {SECTION_KEY} section. Number of errors found: "

# SPEC §2: two ECS nodes in awsvpc tasks, a Cloud Map namespace, one service the frontend calls.
TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Description: Two services in a mesh
Transform: ComposeXMesh
Parameters:
  VpcId:
    Type: AWS::EC2::VPC::Id
    Default: vpc-0123456789abcdef0
  SubnetIds:
    Type: List<AWS::EC2::Subnet::Id>
    Default: subnet-0123456789abcdef0,subnet-0fedcba9876543210
Composex::AppMesh:
  Nodes:
    frontend:
      Service: FrontendService
      Backends: [api]
    api:
      Service: ApiService
  Services:
    api: {Node: api}
Resources:
  Cluster:
    Type: AWS::ECS::Cluster
  PrivateNamespace:
    Type: AWS::ServiceDiscovery::PrivateDnsNamespace
    Properties:
      Name: corp.internal
      Vpc: !Ref VpcId
  FrontendSecurityGroup:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: frontend tasks
      VpcId: !Ref VpcId
  ApiSecurityGroup:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: api tasks
      VpcId: !Ref VpcId
  FrontendTaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: frontend
      Cpu: "256"
      Memory: "512"
      NetworkMode: awsvpc
      RequiresCompatibilities: [FARGATE]
      ContainerDefinitions:
        - Name: web
          Image: public.ecr.aws/docker/library/nginx:1.27
          Essential: true
          PortMappings:
            - {ContainerPort: 8080, Protocol: tcp, Name: http, AppProtocol: http}
  ApiTaskDefinition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: api
      Cpu: "256"
      Memory: "512"
      NetworkMode: awsvpc
      RequiresCompatibilities: [FARGATE]
      ContainerDefinitions:
        - Name: api
          Image: public.ecr.aws/docker/library/httpd:2.4
          Essential: true
          PortMappings:
            - {ContainerPort: 9090, Protocol: tcp, Name: http, AppProtocol: http}
  FrontendService:
    Type: AWS::ECS::Service
    Properties:
      Cluster: !Ref Cluster
      TaskDefinition: !Ref FrontendTaskDefinition
      LaunchType: FARGATE
      DesiredCount: 1
      NetworkConfiguration:
        AwsvpcConfiguration:
          Subnets: !Ref SubnetIds
          SecurityGroups: [!GetAtt FrontendSecurityGroup.GroupId]
  ApiService:
    Type: AWS::ECS::Service
    Properties:
      Cluster: !Ref Cluster
      TaskDefinition: !Ref ApiTaskDefinition
      LaunchType: FARGATE
      DesiredCount: 1
      NetworkConfiguration:
        AwsvpcConfiguration:
          Subnets: !Ref SubnetIds
          SecurityGroups: [!GetAtt ApiSecurityGroup.GroupId]
Outputs:
  ClusterName:
    Value: !Ref Cluster
"""

PLAIN = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: ComposeXMesh
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      Tags: [{Key: Version, Value: "2012-10-17"}]
"""


def _with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def _write(tmp_path: Path, text: str, name: str = "stack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _types(template: dict[str, Any]) -> list[str]:
    return [resource["Type"] for resource in template["Resources"].values()]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[transform.Context]:
    """Replace the transform by a recorder of the context the CLI builds (no real expansion)."""
    contexts: list[transform.Context] = []

    def fake_expand(fragment: Any, context: transform.Context | None = None) -> transform.ExpandResult:
        assert context is not None
        contexts.append(context)
        return transform.ExpandResult(fragment=dict(fragment))

    monkeypatch.setattr(transform, "expand", fake_expand)
    return contexts


# ---------------------------------------------------------------------------------------------- render


def test_render_writes_the_processed_yaml_and_a_summary(
    template_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(template_file)]) == 0
    out, err = capsys.readouterr()
    result = load_template(out)
    assert SECTION_KEY not in result and "Transform" not in result
    assert "AWS::AppMesh::Mesh" in _types(result) and "AWS::AppMesh::VirtualNode" in _types(result)
    source = load_template(TEMPLATE)
    assert result["Resources"]["Cluster"] == source["Resources"]["Cluster"]
    assert result["Outputs"] == source["Outputs"]
    assert result["AWSTemplateFormatVersion"] == "2010-09-09"
    assert "backend AppMesh: 2 nodes, 0 routers, 1 service;" in err
    assert "  AWS::AppMesh::VirtualNode: 2\n" in err
    listed = [line.rsplit(":", 1)[0].strip() for line in err.splitlines() if line.startswith("  ")]
    assert listed and listed == sorted(listed)
    assert "Traceback" not in err


def test_render_is_byte_for_byte_deterministic(template_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(template_file)]) == 0
    first = capsys.readouterr().out
    assert main(["render", str(template_file)]) == 0
    assert capsys.readouterr().out == first


def test_render_json_to_a_file_matches_the_yaml(
    template_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.json"
    assert main(["render", str(template_file), "-o", str(target)]) == 0
    out, _ = capsys.readouterr()
    assert out == ""
    text = target.read_text(encoding="utf-8")
    assert text.startswith("{\n  ") and text.endswith("}\n")
    assert main(["render", str(template_file), "--format", "yaml"]) == 0
    assert load_template(capsys.readouterr().out) == json.loads(text)


def test_render_json_input_gives_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, dump_template(load_template(TEMPLATE), "json"), "stack.json")
    assert main(["render", str(path)]) == 0
    json.loads(capsys.readouterr().out)


def test_render_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEMPLATE))
    assert main(["render", "-", "--format", "json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "AWS::AppMesh::Mesh" in _types(json.loads(out))
    assert err == ""


def test_render_with_service_connect_backend(template_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(template_file), "--backend", "ServiceConnect"]) == 0
    out, err = capsys.readouterr()
    result = load_template(out)
    assert not any(kind.startswith("AWS::AppMesh::") for kind in _types(result))
    assert "ServiceConnectConfiguration" in result["Resources"]["FrontendService"]["Properties"]
    assert "backend ServiceConnect:" in err


def test_transform_parameters_choose_the_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(
        TEMPLATE, "Transform: ComposeXMesh", "Transform: [{Name: ComposeXMesh, Parameters: {Backend: ServiceConnect}}]"
    )
    assert main(["render", str(_write(tmp_path, text))]) == 0
    out, err = capsys.readouterr()
    assert "backend ServiceConnect:" in err
    assert "Transform" not in load_template(out)


def test_other_transforms_stay_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Transform: ComposeXMesh", "Transform: [AWS::Serverless-2016-10-31, ComposeXMesh]")
    assert main(["render", str(_write(tmp_path, text))]) == 0
    out, err = capsys.readouterr()
    result = load_template(out)
    assert result["Transform"] == ["AWS::Serverless-2016-10-31"]
    assert list(result)[:4] == ["AWSTemplateFormatVersion", "Description", "Transform", "Parameters"]
    assert "warning: this command runs only ComposeXMesh" in err
    assert "not the last transform" not in err


def test_warns_when_not_the_last_transform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Transform: ComposeXMesh", "Transform: [ComposeXMesh, AWS::Serverless-2016-10-31]")
    assert main(["render", str(_write(tmp_path, text))]) == 0
    out, err = capsys.readouterr()
    assert load_template(out)["Transform"] == ["AWS::Serverless-2016-10-31"]
    assert "warning: ComposeXMesh is not the last transform" in err


def test_warns_when_the_transform_is_not_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Transform: ComposeXMesh\n", "")
    assert main(["render", str(_write(tmp_path, text))]) == 0
    assert "warning: the template's Transform does not list ComposeXMesh" in capsys.readouterr().err


def test_template_without_the_section_comes_back_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(_write(tmp_path, PLAIN))]) == 0
    out, err = capsys.readouterr()
    expected = load_template(PLAIN)
    del expected["Transform"]
    assert load_template(out) == expected
    assert "Value: '2012-10-17'" in out
    assert f"no {SECTION_KEY} section" in err


def test_invalid_section_exits_1_with_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Backends: [api]", "Backends: [api, nowhere]")
    text = _with(text, "    api: {Node: api}", "    api: {Node: api, Router: ghost}")
    path = _write(tmp_path, text)
    for command in ("render", "validate"):
        assert main([command, str(path)]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        lines = err.splitlines()
        count = int(lines[0].removeprefix(HEADLINE).rstrip("."))
        assert lines[0] == f"{HEADLINE}{count}." and count >= 2
        assert len(lines) == count + 1
        assert all(re.match(rf"{re.escape(str(path))}:\d+:\d+: \[", line) for line in lines[1:])
        assert f"{path}:15:23: [Nodes.frontend.Backends[1]] 'nowhere' is not a service under Services." in lines
        assert "Traceback" not in err


def test_backend_option_is_overridden_by_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Composex::AppMesh:\n", "Composex::AppMesh:\n  Backend: AppMesh\n")
    assert main(["render", str(_write(tmp_path, text)), "--backend", "ServiceConnect"]) == 0
    err = capsys.readouterr().err
    assert "backend AppMesh:" in err
    assert "warning: --backend ServiceConnect is overridden by Backend: AppMesh in the section" in err


# ------------------------------------------------------------------------------------ error positions


def _two_errors(text: str = TEMPLATE) -> str:
    text = _with(text, "Backends: [api]", "Backends: [api, nowhere]")
    return _with(text, "    api:\n      Service: ApiService", "    api:\n      Service: ApiService\n      Colour: blue")


def test_errors_point_at_their_keys_in_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _two_errors())
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{HEADLINE}2.",
        f"{path}:18:7: [Nodes.api.Colour] is not a valid key. Valid keys: Service, Container, Hostname, "
        "Listeners, Backends, SecurityGroups, CloudMapAttributes.",
        f"{path}:15:23: [Nodes.frontend.Backends[1]] 'nowhere' is not a service under Services.",
    ]


def test_errors_point_at_their_keys_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = dump_template(load_template(_two_errors()), "json")
    path = _write(tmp_path, text, "stack.json")
    assert main(["render", str(path)]) == 1
    lines = text.splitlines()
    for line in capsys.readouterr().err.splitlines()[1:]:
        match = re.match(rf"{re.escape(str(path))}:(\d+):(\d+): \[([^ ]+)\] ", line)
        assert match, line
        written = lines[int(match[1]) - 1][int(match[2]) - 1 :]
        expected = {"Nodes.frontend.Backends[1]": '"nowhere"', "Nodes.api.Colour": '"Colour": "blue"'}
        assert written == expected[match[3]]


def test_template_level_paths_and_missing_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(TEMPLATE, "Transform: ComposeXMesh", "Transform:\n  Name: ComposeXMesh\n  Parameters: {Bakend: X}")
    text = _with(text, "    api:\n      Service: ApiService", "    api:\n      Service: ApiService\n      Backends: [api]")
    text = _with(text, "  Services:\n    api: {Node: api}", "  Services:\n    api: {Node: api}\n    web: {}")
    path = _write(tmp_path, text)
    assert main(["validate", str(path), "--error-format", "json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    found = {(item["path"], item["line"], item["column"]) for item in json.loads(err)}
    assert ("Transform.Parameters.Bakend", 5, 16) in found  # a template-level path
    assert ("Services.web", 23, 5) in found  # the key of the mapping that lacks Node or Router
    assert all(set(item) == {"file", "line", "column", "path", "message", "severity"} for item in json.loads(err))


def test_json_error_format_lists_errors_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with(
        TEMPLATE,
        "  Services:\n",
        "  Routers:\n    spare:\n      Routes: [{Targets: {api: 1}}]\n  Services:\n",
    )
    path = _write(tmp_path, text)
    assert main(["render", str(path), "--error-format", "json", "-o", str(tmp_path / "out.yaml")]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    (warning,) = json.loads(err)
    assert warning == {
        "file": str(path),
        "line": 19,
        "column": 5,
        "path": "Routers.spare",
        "message": "no service uses this router: nothing can reach its routes.",
        "severity": "warning",
    }
    assert main(["render", str(path), "-o", str(tmp_path / "out.yaml")]) == 0
    assert f"{path}:19:5: warning: [Routers.spare] no service uses this router" in capsys.readouterr().err
    assert main(["validate", str(_write(tmp_path, TEMPLATE)), "--error-format", "json"]) == 0
    assert capsys.readouterr().err == "[]\n"


def test_unreadable_template_in_json_error_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "Resources:\n  A: [unclosed\n")
    assert main(["validate", str(path), "--error-format", "json"]) == 1
    (error,) = json.loads(capsys.readouterr().err)
    assert error["path"] is None and error["line"] == 3 and error["message"].startswith("Invalid YAML: ")


# -------------------------------------------------------------------------------------------- validate


def test_validate_a_valid_template(template_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(template_file), "--region", "eu-west-1"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{template_file}: valid\n"
    assert "Traceback" not in err


def test_validate_several_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = _write(tmp_path, TEMPLATE, "good.yaml"), _write(tmp_path, _two_errors(), "bad.yaml")
    assert main(["validate", str(good), str(bad), str(good)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{good}: valid\n{good}: valid\n"
    assert err.count(f"{HEADLINE}2.") == 1 and f"{bad}:15:23: [Nodes.frontend.Backends[1]]" in err
    assert main(["validate", str(good), str(bad), "--error-format", "json"]) == 1
    assert {item["file"] for item in json.loads(capsys.readouterr().err)} == {str(bad)}


def test_validate_skips_untransformed_files_quietly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _write(tmp_path, _with(PLAIN, "Transform: ComposeXMesh", "Transform: AWS::Serverless-2016-10-31"), "o.yaml")
    helm = _write(tmp_path, "image: {{ .Values.image }}\n", "values.yaml")
    section_only = _write(tmp_path, _with(TEMPLATE, "Transform: ComposeXMesh\n", ""), "section.yaml")
    ours = _write(tmp_path, _two_errors(), "ours.yaml")
    assert main(["validate", "--skip-untransformed", str(other), str(helm), str(section_only)]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["validate", "--skip-untransformed", str(helm), str(ours)]) == 1
    err = capsys.readouterr().err
    assert str(helm) not in err and f"{ours}:18:7: [Nodes.api.Colour]" in err
    broken = _write(tmp_path, "Transform: ComposeXMesh\nResources: [unclosed\n", "broken.yaml")
    assert main(["validate", "--skip-untransformed", str(broken)]) == 1
    assert capsys.readouterr().err.startswith(f"{broken}:3:1: Invalid YAML: ")


def test_validate_without_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_write(tmp_path, PLAIN))]) == 0
    assert f"valid (no {SECTION_KEY} section)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- context building


def test_context_from_options_defaults_and_transform_parameters(
    tmp_path: Path, captured: list[transform.Context], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _with(
        TEMPLATE, "Transform: ComposeXMesh", "Transform: {Name: ComposeXMesh, Parameters: {Backend: ServiceConnect}}"
    )
    text = _with(
        text, "Parameters:\n", "Parameters:\n  Env:\n    Type: String\n  Size:\n    Type: Number\n    Default: 3\n"
    )
    path = _write(tmp_path, text)
    argv = ["render", str(path), "--region", "eu-west-1", "--account", "111122223333", "-p", "Env=a=b"]
    assert main([*argv, "--no-quota-check"]) == 0
    context = captured[-1]
    assert context.region == "eu-west-1" and context.account_id == "111122223333"
    assert context.check_quotas is False
    assert dict(context.params) == {"Backend": "ServiceConnect"}
    assert dict(context.template_parameter_values) == {
        "Env": "a=b",
        "Size": "3",
        "VpcId": "vpc-0123456789abcdef0",
        "SubnetIds": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    }
    assert main(["render", str(path), "--backend", "AppMesh", "--parameter", "SubnetIds=subnet-1"]) == 0
    context = captured[-1]
    assert context.region == "us-east-1" and context.account_id == "123456789012" and context.check_quotas
    assert dict(context.params) == {"Backend": "AppMesh"}
    assert context.template_parameter_values["SubnetIds"] == ["subnet-1"]
    assert "Env" not in context.template_parameter_values
    capsys.readouterr()


def test_transform_parameter_can_refer_to_a_template_parameter(
    tmp_path: Path, captured: list[transform.Context]
) -> None:
    text = _with(
        TEMPLATE, "Transform: ComposeXMesh", "Transform: [{Name: ComposeXMesh, Parameters: {Backend: !Ref Mode}}]"
    )
    text = _with(text, "Parameters:\n", "Parameters:\n  Mode:\n    Type: String\n    Default: ServiceConnect\n")
    assert main(["validate", str(_write(tmp_path, text))]) == 0
    assert dict(captured[-1].params) == {"Backend": "ServiceConnect"}


def test_unknown_parameter_is_invalid_input(template_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(template_file), "--parameter", "Nope=1"]) == 1
    assert "no parameter named Nope" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- other exits


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["render"],
        ["frobnicate"],
        ["render", "x.yaml", "--parameter", "NoEquals"],
        ["render", "x.yaml", "--account", "12345"],
        ["render", "x.yaml", "--region", "Mars"],
        ["render", "x.yaml", "--backend", "Istio"],
        ["render", "x.yaml", "--format", "toml"],
        ["graph", "x.yaml", "--format", "png"],
        ["validate", "x.yaml", "--error-format", "xml"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("composex-mesh: error: cannot read ") and "Traceback" not in err


def test_unwritable_output_exits_2(template_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(template_file), "-o", str(tmp_path / "no" / "such" / "dir.yaml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_unparsable_template_exits_1_with_position(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "Resources:\n  A:\n    Type: X\n  A:\n    Type: Y\n")
    assert main(["render", str(path)]) == 1
    err = capsys.readouterr().err
    assert err == f"{path}:4:3: Duplicate key 'A' (first defined at line 2).\n"


def test_internal_error_exits_3_without_traceback(
    template_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(fragment: Any, context: Any = None) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(transform, "expand", broken)
    assert main(["render", str(template_file)]) == 3
    out, err = capsys.readouterr()
    assert err == "Internal error: RuntimeError: boom\n" and out == ""


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"composex-mesh {__version__}\n"
    assert main(["render", "--help"]) == 0
    assert "--parameter" in capsys.readouterr().out


def test_schema_prints_the_section_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object" and "Nodes" in schema["properties"]


def test_parser_is_buildable_without_importing_the_transform() -> None:
    assert cli.build_parser().prog == "composex-mesh"


def test_python_dash_m_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "composex_mesh", "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout == f"composex-mesh {__version__}\n"
