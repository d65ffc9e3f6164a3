"""Reading and writing templates: short tags, CloudFormation's YAML scalars, errors with positions, round trips."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composex_mesh.yaml_io import (
    TemplateFormat,
    TemplateLoadError,
    detect_format,
    dump_template,
    key_positions,
    load_template,
)

GOLDEN_INPUTS = sorted((Path(__file__).parent / "golden" / "input").glob("*.y*ml"))


def same(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1 and 1.0 from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def value_of(text: str) -> Any:
    return load_template(f"Value: {text}\n")["Value"]


# ------------------------------------------------------------------------------------------ short tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!Ref Bucket", {"Ref": "Bucket"}),
        ("!Ref AWS::Region", {"Ref": "AWS::Region"}),
        ("!Ref 123", {"Ref": "123"}),
        ("!GetAtt Db.Endpoint.Address", {"Fn::GetAtt": ["Db", "Endpoint.Address"]}),
        ("!GetAtt Role.Arn", {"Fn::GetAtt": ["Role", "Arn"]}),
        ("!GetAtt [Role, Arn]", {"Fn::GetAtt": ["Role", "Arn"]}),
        ("!GetAtt [Role, !Ref Attr]", {"Fn::GetAtt": ["Role", {"Ref": "Attr"}]}),
        ('!Sub "${AWS::StackName}-mesh"', {"Fn::Sub": "${AWS::StackName}-mesh"}),
        ("!Sub ['${A}.x', {A: !Ref B}]", {"Fn::Sub": ["${A}.x", {"A": {"Ref": "B"}}]}),
        ("!Join ['', [a, !Ref B]]", {"Fn::Join": ["", ["a", {"Ref": "B"}]]}),
        ("!Select [0, !GetAZs '']", {"Fn::Select": [0, {"Fn::GetAZs": ""}]}),
        ("!Split [',', 'a,b']", {"Fn::Split": [",", "a,b"]}),
        ("!If [C, yes, !Ref AWS::NoValue]", {"Fn::If": ["C", True, {"Ref": "AWS::NoValue"}]}),
        ("!Equals [!Ref Env, prod]", {"Fn::Equals": [{"Ref": "Env"}, "prod"]}),
        (
            "!And [!Condition A, !Not [!Condition B]]",
            {"Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]},
        ),
        ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
        ("!FindInMap [M, !Ref AWS::Region, Ami]", {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Ami"]}),
        ("!Base64 hello", {"Fn::Base64": "hello"}),
        ("!Cidr [10.0.0.0/16, 6, 8]", {"Fn::Cidr": ["10.0.0.0/16", 6, 8]}),
        ("!GetAZs us-east-1", {"Fn::GetAZs": "us-east-1"}),
        ("!ImportValue {'Fn::Sub': '${Net}-vpc'}", {"Fn::ImportValue": {"Fn::Sub": "${Net}-vpc"}}),
        ("!Condition IsProd", {"Condition": "IsProd"}),
        (
            "!Transform {Name: AWS::Include, Parameters: {Location: s3://b/k}}",
            {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/k"}}},
        ),
        ("!ToJsonString {a: 1}", {"Fn::ToJsonString": {"a": 1}}),
        ("!Length [1, 2]", {"Fn::Length": [1, 2]}),
        ("!SomethingNew [x]", {"Fn::SomethingNew": ["x"]}),
        ("!Ref", {"Ref": ""}),
    ],
)
def test_short_tags_become_the_long_form(text: str, expected: Any) -> None:
    assert same(value_of(text), expected)


def test_block_scalar_under_a_tag() -> None:
    template = load_template("UserData: !Base64\n  Fn::Sub: |\n    #!/bin/bash\n    echo ${AWS::Region}\n")
    assert template == {"UserData": {"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${AWS::Region}\n"}}}


def test_getatt_without_attribute_is_an_error_with_position() -> None:
    with pytest.raises(TemplateLoadError) as caught:
        load_template("A: 1\nB: !GetAtt Role\n")
    assert (caught.value.line, caught.value.column) == (2, 4)
    assert "LogicalId.Attribute" in str(caught.value)


# --------------------------------------------------------------------------------- CloudFormation's YAML


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010-09-09", "2010-09-09"),
        ("2012-10-17", "2012-10-17"),
        ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),
        ("yes", True),
        ("No", False),
        ("ON", True),
        ("off", False),
        ("true", True),
        ("y", "y"),
        ("n", "n"),
        ("'yes'", "yes"),
        ("42", 42),
        ("-7", -7),
        ("0755", 493),
        ("0x1F", 31),
        ("1_000", 1000),
        ("012345678901", "012345678901"),
        ("1.5", 1.5),
        ("1e5", "1e5"),
        ("'42'", "42"),
        ("~", None),
        ("null", None),
        ("", None),
        ("!!str 42", "42"),
        ("!!int '42'", 42),
        ("hello world", "hello world"),
        ("'it''s'", "it's"),
    ],
)
def test_yaml_scalars_read_as_cloudformation_reads_them(text: str, expected: Any) -> None:
    assert same(value_of(text), expected)


def test_keys_are_strings_as_written() -> None:
    template = load_template("M:\n  012345678901: a\n  123456789012: b\n  yes: c\n  1.50: d\n  'q': e\n")
    assert list(template["M"]) == ["012345678901", "123456789012", "yes", "1.50", "q"]


def test_json_is_read_as_json() -> None:
    text = '{"AWSTemplateFormatVersion": "2010-09-09", "A": 1e5, "B": [true, null], "C": "yes"}'
    assert detect_format(text) == "json"
    assert same(
        load_template(text), {"AWSTemplateFormatVersion": "2010-09-09", "A": 100000.0, "B": [True, None], "C": "yes"}
    )


def test_byte_order_mark_is_ignored() -> None:
    assert load_template("\ufeffA: 1\n") == {"A": 1}
    assert load_template('\ufeff{"A": 1}') == {"A": 1}


def test_yaml_flow_mapping_at_top_level_is_yaml() -> None:
    assert load_template("{A: !Ref B}") == {"A": {"Ref": "B"}}


def test_anchors_and_merge_keys_are_resolved() -> None:
    template = load_template("X: &base {A: 1, B: 2}\nY: *base\nZ:\n  <<: *base\n  B: 3\n")
    assert template == {"X": {"A": 1, "B": 2}, "Y": {"A": 1, "B": 2}, "Z": {"A": 1, "B": 3}}
    assert template["X"] is not template["Y"]


def test_loaded_values_are_plain_types() -> None:
    template = load_template("A: !Ref B\nC: [1, {D: E}]\n")
    assert type(template) is dict and type(template["A"]) is dict and type(template["C"]) is list


# ---------------------------------------------------------------------------------------------- errors


def test_duplicate_yaml_key_names_both_lines() -> None:
    with pytest.raises(TemplateLoadError) as caught:
        load_template("Resources:\n  A:\n    Type: X\n  B:\n    Type: Y\n  A:\n    Type: Z\n")
    error = caught.value
    assert (error.line, error.column) == (6, 3)
    assert "Duplicate key 'A'" in str(error) and "line 2" in str(error)
    assert str(error).startswith("line 6, column 3: ")


def test_duplicate_key_inside_flow_mapping() -> None:
    with pytest.raises(TemplateLoadError, match="Duplicate key 'a'"):
        load_template("X: {a: 1, a: 2}\n")


def test_duplicate_json_key_names_the_line() -> None:
    with pytest.raises(TemplateLoadError) as caught:
        load_template('{\n  "Resources": {},\n  "Outputs": {},\n  "Resources": {}\n}\n')
    assert caught.value.line == 4
    assert "Duplicate key 'Resources'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("A: 1\nB: [1, 2\nC: 3\n", 3, 2, "Invalid YAML"),
        ("A:\n  - b\n c: d\n", 3, 2, "Invalid YAML"),
        ('{\n  "A": 1,\n  "B": [\n}', 4, 1, "Invalid JSON"),
        ("A: b\nC: \x01\n", 2, 4, "unacceptable character"),
        ("- A\n- B\n", 1, 1, "must be a mapping"),
        ("A: !!binary aGk=\n", 1, 4, "Unsupported YAML tag"),
        ("A: !!set {a, b}\n", 1, 4, "Unsupported YAML tag"),
        ("A: .inf\n", 1, 4, "JSON"),
        ("A: !!int abc\n", 1, 4, "not a valid int"),
        ("? [a, b]\n: c\n", 1, 3, "must be a string"),
        ("~: 1\n", 1, 1, "cannot be null"),
        ("A: 1\n---\nB: 2\n", 2, 1, "single document"),
    ],
)
def test_bad_input_is_reported_with_its_position(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(TemplateLoadError) as caught:
        load_template(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"line {line}, column {column}: ")


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n", "\ufeff"])
def test_empty_template_is_an_error(text: str) -> None:
    with pytest.raises(TemplateLoadError, match="empty"):
        load_template(text)


def test_scalar_template_is_an_error() -> None:
    with pytest.raises(TemplateLoadError, match="not a scalar"):
        load_template("just text\n")


def test_alias_bomb_is_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 8):
        previous = chr(ord("a") + index - 1)
        current = chr(ord("a") + index)
        lines.append(f"{current}: &{current} [{', '.join(['*' + previous] * 10)}]")
    with pytest.raises(TemplateLoadError, match="aliases"):
        load_template("\n".join(lines) + "\n")


def test_template_load_error_is_a_value_error() -> None:
    assert issubclass(TemplateLoadError, ValueError)
    error = TemplateLoadError("boom", 3, 4)
    assert error.message == "line 3, column 4: boom" and error.problem == "boom"
    assert str(TemplateLoadError("plain")) == "plain"


# ---------------------------------------------------------------------------------------------- dumping

SAMPLE: dict[str, Any] = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "A sample",
    "Parameters": {"Env": {"Type": "String", "Default": "yes", "AllowedValues": ["yes", "no", "on", "off"]}},
    "Mappings": {"Accounts": {"012345678901": {"Name": "a"}, "123456789012": {"Name": "b"}}},
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
                "Path": "/",
                "Tags": [{"Key": "Count", "Value": "007"}, {"Key": "Float", "Value": "1e5"}],
            },
        },
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "Condition": "IsProd",
            "Properties": {
                "BucketName": {"Fn::Sub": "${AWS::StackName}-bucket"},
                "Arn": {"Fn::GetAtt": ["Role", "Arn"]},
                "Dotted": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
                "StringGetAtt": {"Fn::GetAtt": "Role.Arn"},
                "Nested": {"Fn::If": ["IsProd", {"Ref": "AWS::NoValue"}, {"Fn::Join": ["", ["a", {"Ref": "B"}]]}]},
                "Script": {"Fn::Base64": {"Fn::Sub": "#!/bin/bash\necho ${AWS::Region}\n"}},
                "Empty": "",
                "Null": None,
                "Numbers": [1, -2, 1.5, 1e20, 0.1, True, False],
                "ForEach": {"Fn::ForEach::Things": ["X", ["a"], {"${X}": {"Type": "T"}}]},
            },
        },
    },
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "yes"]}, "Both": {"Fn::And": [{"Condition": "IsProd"}]}},
}


def test_dump_json_is_indented_with_a_trailing_newline() -> None:
    text = dump_template({"A": {"Ref": "B"}, "Z": [1, "é"]}, "json")
    assert text == '{\n  "A": {\n    "Ref": "B"\n  },\n  "Z": [\n    1,\n    "é"\n  ]\n}\n'


def test_dump_yaml_uses_short_tags_and_block_style() -> None:
    text = dump_template(SAMPLE)
    assert "BucketName: !Sub ${AWS::StackName}-bucket\n" in text
    assert "Arn: !GetAtt Role.Arn\n" in text
    assert "Dotted: !GetAtt Db.Endpoint.Address\n" in text
    assert "StringGetAtt:\n        Fn::GetAtt: Role.Arn\n" in text  # the string form would read back as a list
    assert "- !Ref AWS::NoValue\n" in text
    assert "- !Condition IsProd\n" in text
    assert "Script: !Base64\n        Fn::Sub: |\n          #!/bin/bash\n          echo ${AWS::Region}\n" in text
    assert "Fn::ForEach::Things:" in text
    assert "{" not in text.replace("${", "")  # block style throughout


def test_dump_yaml_quotes_what_would_read_as_another_type() -> None:
    text = dump_template(SAMPLE)
    assert "AWSTemplateFormatVersion: '2010-09-09'\n" in text
    assert "Version: '2012-10-17'\n" in text
    assert "Default: 'yes'\n" in text
    assert "'012345678901':" in text and "'123456789012':" in text
    assert "Value: '007'\n" in text and "Value: '1e5'\n" in text
    assert "Empty: ''\n" in text


def test_dump_yaml_keeps_key_order_and_indents_sequences() -> None:
    text = dump_template({"Z": 1, "A": [{"K": "v"}], "M": 2})
    assert text == "Z: 1\nA:\n  - K: v\nM: 2\n"


def test_dump_yaml_writes_no_aliases_for_shared_objects() -> None:
    shared = {"Key": "Team", "Value": "mesh"}
    text = dump_template({"A": {"Tags": [shared]}, "B": {"Tags": [shared]}})
    assert "&" not in text and "*" not in text
    assert load_template(text) == {"A": {"Tags": [shared]}, "B": {"Tags": [shared]}}


def test_dump_does_not_touch_its_input_and_is_deterministic() -> None:
    before = copy.deepcopy(SAMPLE)
    first = dump_template(SAMPLE)
    assert before == SAMPLE
    assert dump_template(copy.deepcopy(SAMPLE)) == first
    assert dump_template(SAMPLE, "json") == dump_template(copy.deepcopy(SAMPLE), "json")


def test_dump_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="format"):
        bad: Any = "toml"
        dump_template({}, bad)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_sample_round_trips(fmt: TemplateFormat) -> None:
    assert same(load_template(dump_template(SAMPLE, fmt)), SAMPLE)


TRICKY_STRINGS = [
    "",
    " ",
    " leading",
    "trailing ",
    "2010-09-09",
    "2001-12-14t21:59:43.10-05:00",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "N",
    "true",
    "False",
    "null",
    "~",
    "Null",
    "0",
    "007",
    "0755",
    "012345678901",
    "1e5",
    "1.5",
    "-1",
    "+1",
    ".5",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "1:30",
    ".inf",
    "-.inf",
    ".NaN",
    "a: b",
    "a:b",
    "- x",
    "-",
    "? x",
    "#c",
    "a #b",
    "&a",
    "*a",
    "!Ref X",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "[x]",
    "{x}",
    "'",
    '"',
    "\\",
    "a'b",
    'a"b',
    ",",
    "<<",
    "=",
    "line\nbreak",
    "trailing newline\n",
    "two\n\n",
    "\n",
    "\nleading",
    "  indented\nblock",
    "tab\tinside",
    "\t",
    "nel\x85x",
    "ls\u2028x",
    "ps\u2029x",
    "bell\x07",
    "nul\x00",
    "del\x7f",
    "bom\ufeff",
    "é ü 中文 🚀",
    "x" * 300,
    "${AWS::StackName}-mesh",
    "arn:${AWS::Partition}:iam::aws:policy/X",
]


@pytest.mark.parametrize("text", TRICKY_STRINGS)
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_tricky_strings_round_trip_as_values_keys_and_tag_arguments(text: str, fmt: TemplateFormat) -> None:
    template = {
        "Value": text,
        "List": [text, {"Ref": text}, {"Fn::Sub": text}, {"Fn::GetAtt": ["A", text]} if text else None],
        "Keys": {text: text},
        "Ref": {"Ref": text},
    }
    assert same(load_template(dump_template(template, fmt)), template)


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=[path.name for path in GOLDEN_INPUTS])
def test_golden_inputs_round_trip(path: Path) -> None:
    template = load_template(path.read_text(encoding="utf-8"))
    assert same(load_template(dump_template(template, "yaml")), template)
    assert same(load_template(dump_template(template, "json")), template)
    assert same(json.loads(dump_template(template, "json")), template)


# ---------------------------------------------------------------------------------------------- property

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
_names = st.one_of(st.from_regex(r"\A[A-Za-z][A-Za-z0-9]{0,12}\Z"), _text)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(TRICKY_STRINGS),
)


def _intrinsics(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda name: {"Ref": name}, _names),
        st.builds(lambda name: {"Condition": name}, _names),
        st.builds(lambda a, b: {"Fn::GetAtt": [a, b]}, _names, _names),
        st.builds(lambda text: {"Fn::Sub": text}, _text),
        st.builds(
            lambda text, mapping: {"Fn::Sub": [text, mapping]}, _text, st.dictionaries(_names, children, max_size=3)
        ),
        st.builds(lambda items: {"Fn::Join": ["", items]}, st.lists(children, max_size=3)),
        st.builds(lambda items: {"Fn::If": items}, st.lists(children, min_size=3, max_size=3)),
        st.builds(lambda name, value: {f"Fn::{name}": value}, st.from_regex(r"\A[A-Z][A-Za-z]{0,10}\Z"), children),
    )


_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_names, children, max_size=4),
        _intrinsics(children),
    ),
    max_leaves=25,
)
_templates = st.dictionaries(_names, _values, min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(_templates)
def test_round_trip_property_yaml(template: dict[str, Any]) -> None:
    text = dump_template(template, "yaml")
    assert same(load_template(text), template), text
    assert dump_template(load_template(text), "yaml") == text


@settings(max_examples=150, deadline=None)
@given(_templates)
def test_round_trip_property_json(template: dict[str, Any]) -> None:
    assert same(load_template(dump_template(template, "json")), template)


@settings(max_examples=100, deadline=None)
@given(_templates)
def test_yaml_and_json_agree(template: dict[str, Any]) -> None:
    assert same(load_template(dump_template(template, "yaml")), load_template(dump_template(template, "json")))


def test_floats_keep_their_type_and_value() -> None:
    for number in (0.0, -0.0, 1.0, 1e20, 1e-7, 5e-324, 1.7976931348623157e308, 123456.789):
        loaded = load_template(dump_template({"X": number}))["X"]
        assert isinstance(loaded, float) and loaded == number and math.copysign(1, loaded) == math.copysign(1, number)


# --------------------------------------------------------------------------------------------- positions

POSITIONED = """\
Transform: ComposeXMesh
Composex::AppMesh:
  Nodes:
    frontend:
      Service: FrontendService
      Backends: [api, nowhere]
    db.primary:
      Hostname: !GetAtt Db.Endpoint.Address
      SecurityGroups:
        - !If [UseSg, !Ref Sg, !Ref AWS::NoValue]
  Defaults: &defaults {Port: 8080, Protocol: http}
  Listener:
    <<: *defaults
    Protocol: http2
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", (1, 1)),
        ("Transform", (1, 1)),
        ("Composex::AppMesh", (2, 1)),
        ("Composex::AppMesh.Nodes.frontend", (4, 5)),
        ("Composex::AppMesh.Nodes.frontend.Backends[1]", (6, 23)),
        ("Composex::AppMesh.Nodes.frontend.Backends[7]", (6, 7)),
        ("Composex::AppMesh.Nodes.frontend.Listeners[0].Port", (4, 5)),
        ("Composex::AppMesh.Nodes.db.primary.Hostname", (8, 7)),
        ("Composex::AppMesh.Nodes.db.primary.Hostname.Fn::GetAtt", (8, 17)),
        ("Composex::AppMesh.Nodes.db.primary.SecurityGroups[0].Fn::If[1]", (10, 23)),
        ("Composex::AppMesh.Listener.Port", (11, 24)),
        ("Composex::AppMesh.Listener.Protocol", (14, 5)),
        ("Resources.Api", (1, 1)),
    ],
)
def test_key_positions_point_at_the_key_or_the_nearest_ancestor(path: str, expected: tuple[int, int]) -> None:
    positions = key_positions(POSITIONED)
    assert positions is not None
    assert positions.locate(path) == expected


def test_key_positions_of_json_point_at_the_key() -> None:
    text = dump_template(load_template(POSITIONED), "json")
    positions = key_positions(text)
    assert positions is not None
    lines = text.splitlines()

    def written(path: str) -> str:
        assert positions is not None
        line, column = positions.locate(path)
        return str(lines[line - 1][column - 1 :])

    assert written("Composex::AppMesh.Nodes.frontend.Backends[1]") == '"nowhere"'
    assert written("Composex::AppMesh.Nodes.db.primary.Hostname").startswith('"Hostname": {')
    assert written("Composex::AppMesh.Nodes.db.primary.SecurityGroups[0].Fn::If[2]").startswith("{")
    assert written("Composex::AppMesh.Nodes.frontend.Missing.Key").startswith('"frontend": {')
    assert positions.locate("") == (1, 1)


def test_key_positions_of_compact_json_and_of_unreadable_text() -> None:
    positions = key_positions('{"A": {"B": [1, {"C": "x"}]},\n "D": "e"}')
    assert positions is not None
    assert positions.locate("A.B[1].C") == (1, 18)
    assert positions.locate("D") == (2, 2)
    assert key_positions("{A: {B: 1}}") is not None  # a YAML flow mapping
    assert key_positions("A: [unclosed") is None
    assert key_positions("") is None
