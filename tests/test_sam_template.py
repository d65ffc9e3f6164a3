"""The SAM stack that installs the macro (template.yaml) and its samconfig (sam/samconfig.toml).

cfn-lint applies the AWS::Serverless-2016-10-31 transform itself, so linting template.yaml checks
the stack CloudFormation would really see, not only the SAM shorthand.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_all
from cfnlint.decode.decode import decode_str
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "sam" / "samconfig.toml"


@pytest.fixture(scope="module")
def template_text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def template(template_text: str) -> dict[str, Any]:
    decoded, errors = decode_str(template_text)
    assert not errors, [str(e) for e in errors]
    assert isinstance(decoded, dict)
    return decoded


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {lid: res for lid, res in template["Resources"].items() if res.get("Type") == type_}


@pytest.fixture(scope="module")
def function(template: dict[str, Any]) -> dict[str, Any]:
    functions = _of_type(template, "AWS::Serverless::Function")
    assert list(functions) == ["Function"], "exactly one AWS::Serverless::Function, logical ID Function"
    props: dict[str, Any] = functions["Function"]["Properties"]
    return props


def test_template_is_lint_clean_everywhere(template_text: str) -> None:
    # All regions, informational and experimental rules included; the SAM transform is applied.
    matches = lint_all(template_text)
    assert [str(m) for m in matches] == []


def test_linter_really_checks_the_transformed_template(template_text: str) -> None:
    # Guards the test above against a linter that silently checks nothing.
    broken = template_text.replace("Runtime: python3.13", "Runtime: python2.7", 1)
    assert broken != template_text
    rule_ids = {m.rule.id for m in lint_all(broken)}
    assert "E2533" in rule_ids  # deprecated runtime


def test_uses_the_sam_transform(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


def test_macro_is_named_by_a_parameter_defaulting_to_composexmesh(template: dict[str, Any]) -> None:
    macros = _of_type(template, "AWS::CloudFormation::Macro")
    assert len(macros) == 1
    (macro,) = macros.values()
    assert macro["Properties"]["Name"] == {"Ref": "MacroName"}
    assert template["Parameters"]["MacroName"]["Default"] == "ComposeXMesh"
    assert re.fullmatch(template["Parameters"]["MacroName"]["AllowedPattern"], "ComposeXMesh")
    assert macro["Properties"]["FunctionName"] == {"Fn::GetAtt": ["Function", "Arn"]}


def test_handler_module_exists_and_defines_the_handler(function: dict[str, Any]) -> None:
    code_dir = ROOT / function["CodeUri"]
    assert code_dir.is_dir()
    module, _, attribute = function["Handler"].rpartition(".")
    module_file = code_dir.joinpath(*module.split(".")).with_suffix(".py")
    assert module_file.is_file(), f"{function['Handler']}: no {module_file.relative_to(ROOT)}"
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.ImportFrom):
            defined |= {alias.asname or alias.name for alias in node.names}
    assert attribute in defined, f"{module_file.relative_to(ROOT)} defines no top-level {attribute}"
    for package_dir in module_file.relative_to(code_dir).parents[:-1]:
        assert (code_dir / package_dir / "__init__.py").is_file()


def test_runtime_architecture_and_limits(function: dict[str, Any]) -> None:
    runtime = re.fullmatch(r"python3\.(\d+)", function["Runtime"])
    assert runtime, function["Runtime"]
    assert int(runtime.group(1)) >= 12
    assert function["Architectures"] == ["arm64"]
    assert function["Timeout"] >= 30
    assert function["MemorySize"] >= 128


def test_powertools_environment(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "composex-mesh"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ComposeXMesh"
    assert variables["LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_parameter_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["LogLevel"]["Default"] == "INFO"
    assert parameters["LogRetentionInDays"]["Default"] == 30
    assert parameters["LogRetentionInDays"]["Default"] in parameters["LogRetentionInDays"]["AllowedValues"]


def test_function_logs_to_its_own_log_group(template: dict[str, Any], function: dict[str, Any]) -> None:
    log_groups = _of_type(template, "AWS::Logs::LogGroup")
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    log_group = log_groups["FunctionLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    # /aws/lambda/<function name>, both spelled with the same Fn::Sub string.
    function_name = function["FunctionName"]["Fn::Sub"]
    assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{function_name}"}
    # The longest allowed macro name still gives a valid Lambda function name (64 characters at most).
    bound = re.search(r"\{1,(\d+)\}", template["Parameters"]["MacroName"]["AllowedPattern"])
    assert bound, "MacroName's AllowedPattern should bound its length"
    longest = int(bound.group(1))
    assert len(function_name.replace("${MacroName}", "x" * longest)) <= 64


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["MacroName"]["Value"] == {"Ref": "MacroName"}
    assert outputs["FunctionArn"]["Value"] == {"Fn::GetAtt": ["Function", "Arn"]}
    assert outputs["LogGroupName"]["Value"] == {"Ref": "FunctionLogGroup"}


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not pinned with ==: {line}"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"listed twice: {name}"
        pins[name] = specifiers[0].version
    return pins


def test_lambda_requirements_pin_the_project_dependencies(function: dict[str, Any]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = ROOT / function["CodeUri"] / "requirements.txt"
    project_pins = _pins(pyproject["project"]["dependencies"])
    lambda_pins = _pins(requirements.read_text(encoding="utf-8").splitlines())
    assert project_pins, "pyproject.toml lists no dependencies"
    assert lambda_pins == project_pins


def test_samconfig() -> None:
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    build = config["default"]["build"]["parameters"]
    assert build["cached"] is True and build["parallel"] is True
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["stack_name"] == "composex-mesh-macro"
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert config["default"]["validate"]["parameters"]["lint"] is True


def test_the_function_may_write_to_its_own_log_group_and_nothing_else(
    template: dict[str, Any], function: dict[str, Any]
) -> None:
    """Its own role (SAM's would carry AWSLambdaBasicExecutionRole: logs on every log group of the account)."""
    assert function["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "Policies" not in function
    roles = _of_type(template, "AWS::IAM::Role")
    assert list(roles) == ["FunctionRole"]
    role = roles["FunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert [item["Principal"] for item in role["AssumeRolePolicyDocument"]["Statement"]] == [
        {"Service": "lambda.amazonaws.com"}
    ]
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}
