"""Read and write CloudFormation templates: JSON, or YAML with the short-form intrinsic tags.

Loading follows what CloudFormation does with YAML: YAML 1.1 scalars (``yes``/``no``/``on``/``off`` are
booleans, ``0755`` is an octal integer), except that timestamps are not a type (``2010-09-09`` stays a
string). Mapping keys are always strings, taken as written (``012345678901:`` is the string
``"012345678901"``). Short tags become the JSON long form: ``!Ref X`` -> ``{"Ref": "X"}``,
``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ``!Condition C`` -> ``{"Condition": "C"}``, and any
other ``!Name`` -> ``{"Fn::Name": ...}``. Duplicate keys, non-finite numbers and YAML-only types
(binary, set, omap, pairs) are errors with their line and column.

Dumping gives deterministic text: JSON indented by 2, or block-style YAML in insertion order, with
intrinsics written as short tags and every string quoted when a YAML reader could take it for another type,
so that ``load_template(dump_template(t, fmt)) == t``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Literal

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["TemplateFormat", "TemplateLoadError", "detect_format", "dump_template", "load_template"]

TemplateFormat = Literal["yaml", "json"]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_YAML = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _YAML + "str", _YAML + "map", _YAML + "seq"
_MERGE = _YAML + "merge"
_UNCONVERTED = frozenset({"Ref", "Condition"})
_SHORT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_MAX_NODES = 2_000_000
"""Bound on the alias-expanded size of a YAML document (a guard against "billion laughs")."""


class TemplateLoadError(ValueError):
    """The text is not a readable template; ``line`` and ``column`` (1-based) say where, when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = message
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f"line {line}, column {column}: " if column is not None else f"line {line}: "
        super().__init__(f"{where}{message}")

    @property
    def message(self) -> str:
        """The whole message, position first."""
        return str(self)


# --------------------------------------------------------------------------------------------- loading


def detect_format(text: str) -> TemplateFormat:
    """``"json"`` when the text starts (after blanks and a BOM) with ``{``, else ``"yaml"``."""
    return "json" if text.lstrip("\ufeff \t\r\n").startswith("{") else "yaml"


def load_template(text: str) -> dict[str, Any]:
    """Parse a JSON or YAML CloudFormation template into plain dicts, lists and scalars (JSON long form).

    Raises ``TemplateLoadError`` (with line and column) when the text cannot be read or is not a mapping.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise TemplateLoadError("The template is empty.")
    template = _load_json(text) if detect_format(text) == "json" else _load_yaml(text)
    if not isinstance(template, dict):
        kind = "a list" if isinstance(template, list) else "a scalar"
        raise TemplateLoadError(f"A template must be a mapping (a JSON object), not {kind}.", 1, 1)
    return template


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        json_error = TemplateLoadError(f"Invalid JSON: {error.msg}.", error.lineno, error.colno)
    except ValueError as error:
        raise TemplateLoadError(f"Invalid JSON: {error}.") from None
    except _DuplicateKeyError as error:
        # JSON is (nearly always) YAML too: let the YAML reader find both occurrences.
        try:
            _load_yaml(text)
        except TemplateLoadError as located:
            if "Duplicate key" in located.problem:
                raise located from None
        raise TemplateLoadError(f"Duplicate key {error.key!r}.") from None
    # Not JSON; a YAML flow mapping (``{Resources: ...}``) also starts with a brace.
    try:
        return _load_yaml(text)
    except TemplateLoadError:
        raise json_error from None


def _load_yaml(text: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise _from_yaml_error(error) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        raise TemplateLoadError(
            f"Invalid YAML: unacceptable character #x{error.character:04x}.", line, column
        ) from None
    except yaml.YAMLError as error:
        raise TemplateLoadError(f"Invalid YAML: {error}") from None
    finally:
        loader.dispose()
    if node is None:
        raise TemplateLoadError("The template is empty.")
    try:
        return _Builder().build(node)
    except RecursionError:
        raise TemplateLoadError("The template is nested too deeply.") from None


def _from_yaml_error(error: yaml.MarkedYAMLError) -> TemplateLoadError:
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "invalid YAML"
    if error.context and error.problem and error.context_mark is not None:
        problem = f"{problem} ({error.context} at line {error.context_mark.line + 1})"
    if mark is None:
        return TemplateLoadError(f"Invalid YAML: {problem}.")
    return TemplateLoadError(f"Invalid YAML: {problem}.", mark.line + 1, mark.column + 1)


def _error_at(node: Node, message: str) -> TemplateLoadError:
    return TemplateLoadError(message, node.start_mark.line + 1, node.start_mark.column + 1)


_SCALARS = SafeConstructor()
_TYPED: dict[str, Callable[[SafeConstructor, ScalarNode], Any]] = {
    _YAML + "bool": SafeConstructor.construct_yaml_bool,
    _YAML + "int": SafeConstructor.construct_yaml_int,
    _YAML + "float": SafeConstructor.construct_yaml_float,
    _YAML + "null": SafeConstructor.construct_yaml_null,
}
_AS_TEXT = frozenset({_STR, _YAML + "timestamp", _YAML + "value", _MERGE, "!"})
"""Scalars kept as written: CloudFormation has no timestamp type, so ``2010-09-09`` stays a string."""


class _Builder:
    """Turns composed YAML nodes into plain Python values, CloudFormation's way."""

    def __init__(self) -> None:
        self.budget = _MAX_NODES

    def build(self, node: Node) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _error_at(node, f"The template expands (through YAML aliases) to over {_MAX_NODES} values.")
        tag = node.tag
        if tag.startswith("!") and tag != "!":
            return self._intrinsic(tag[1:], node)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode) and tag in (_SEQ, "!"):
            return [self.build(child) for child in node.value]
        if isinstance(node, MappingNode) and tag in (_MAP, "!"):
            return self._mapping(node)
        raise _error_at(node, f"Unsupported YAML tag {tag!r}: CloudFormation templates are JSON data.")

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag in _AS_TEXT:
            return node.value
        construct = _TYPED.get(tag)
        if construct is None:
            raise _error_at(node, f"Unsupported YAML tag {tag!r}: CloudFormation templates are JSON data.")
        try:
            value = construct(_SCALARS, node)
        except (ValueError, KeyError, TypeError):
            raise _error_at(node, f"{node.value!r} is not a valid {tag.removeprefix(_YAML)}.") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _error_at(node, f"{node.value!r} is not a number JSON can hold.")
        return value

    def _intrinsic(self, name: str, node: Node) -> dict[str, Any]:
        key = name if name in _UNCONVERTED else f"Fn::{name}"
        if isinstance(node, ScalarNode):
            if key != "Fn::GetAtt":
                return {key: node.value}
            resource, dot, attribute = node.value.partition(".")
            if not (resource and dot and attribute):
                raise _error_at(node, f"!GetAtt {node.value!r} must be LogicalId.Attribute.")
            return {key: [resource, attribute]}
        if isinstance(node, SequenceNode):
            return {key: [self.build(child) for child in node.value]}
        if isinstance(node, MappingNode):
            return {key: self._mapping(node)}
        raise _error_at(node, f"Unsupported YAML node for !{name}.")

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise _error_at(node, "A mapping key must be a string, not a list or a mapping.")
        if node.tag.startswith("!") and node.tag != "!":
            raise _error_at(node, f"A mapping key cannot be an intrinsic function ({node.tag}).")
        if node.tag == _YAML + "null" and not node.style:
            raise _error_at(node, f"A mapping key cannot be null ({node.value!r}); quote it if it is a name.")
        return str(node.value)

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        explicit: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for source in self._merge_sources(value_node):
                    for key, value in source.items():
                        merged.setdefault(key, value)
                continue
            key = self._key(key_node)
            first = seen.get(key)
            if first is not None:
                raise _error_at(key_node, f"Duplicate key {key!r} (first defined at line {first.start_mark.line + 1}).")
            seen[key] = key_node
            explicit[key] = self.build(value_node)
        if not merged:
            return explicit
        merged.update(explicit)
        return merged

    def _merge_sources(self, node: Node) -> list[dict[str, Any]]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        built = []
        for source in sources:
            if not isinstance(source, MappingNode):
                raise _error_at(source, "A merge key (<<) takes a mapping or a list of mappings.")
            built.append(self._mapping(source))
        return built


# --------------------------------------------------------------------------------------------- dumping


def dump_template(template: dict[str, Any], fmt: TemplateFormat = "yaml") -> str:
    """Serialise a template deterministically, ending with a newline.

    ``"json"``: indented by 2, keys in insertion order, non-ASCII kept. ``"yaml"``: block style, keys in
    insertion order, intrinsics as short tags (``!Ref X``, ``!GetAtt A.B``, ``!Sub ...``), multi-line
    strings as literal blocks, and no anchors or aliases (CloudFormation rejects them).
    """
    if fmt == "json":
        return json.dumps(template, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt != "yaml":
        raise ValueError(f"Unknown template format {fmt!r}: use 'yaml' or 'json'.")
    text: str = yaml.dump(
        template,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000_000,
    )
    return text


class _Dumper(yaml.SafeDumper):
    """Block-style CloudFormation YAML: short tags, indented sequences, no anchors or aliases."""

    def choose_scalar_style(self) -> str:
        """Write ``!Ref X``, not PyYAML's ``!Ref 'X'``: a tagged scalar is never resolved implicitly."""
        event = self.event
        tag = getattr(event, "tag", None)
        if tag and tag.startswith("!") and not getattr(event, "style", None) and not self.canonical:
            if self.analysis is None:
                self.analysis = self.analyze_scalar(getattr(event, "value", ""))
            analysis = self.analysis
            plain_ok = analysis.allow_flow_plain if self.flow_level else analysis.allow_block_plain
            if plain_ok and not analysis.empty and not analysis.multiline:
                return ""
        style: str = super().choose_scalar_style()
        return style

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


_ODD_BREAKS = re.compile("[\r\x85\u2028\u2029]")


def _style(value: str) -> str | None:
    """Literal blocks for multi-line text; double quotes (escapes) for line breaks a reader would normalise."""
    if _ODD_BREAKS.search(value):
        return '"'
    return "|" if "\n" in value else None


def _represent_str(dumper: _Dumper, value: str) -> ScalarNode:
    return dumper.represent_scalar(_STR, value, style=_style(value))


def _short_form(dumper: _Dumper, key: str, value: Any) -> Node | None:
    if key in _UNCONVERTED:
        name = key
    elif key.startswith("Fn::") and _SHORT_NAME.match(key[4:]):
        name = key[4:]
    else:
        return None
    tag = f"!{name}"
    if name == "GetAtt":
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(part, str) and part for part in value)
            and "." not in value[0]
        ):
            dotted = f"{value[0]}.{value[1]}"
            return dumper.represent_scalar(tag, dotted, style=_style(dotted))
        # The dotted string form would read back as a list: keep it long.
        return dumper.represent_sequence(tag, value) if isinstance(value, list) else None
    if isinstance(value, str):
        return dumper.represent_scalar(tag, value, style=_style(value))
    if isinstance(value, list):
        return dumper.represent_sequence(tag, value)
    if isinstance(value, dict):
        return dumper.represent_mapping(tag, value)
    return None


def _represent_dict(dumper: _Dumper, value: dict[str, Any]) -> Node:
    if len(value) == 1:
        ((key, inner),) = value.items()
        if isinstance(key, str):
            node = _short_form(dumper, key, inner)
            if node is not None:
                return node
    return dumper.represent_mapping(_MAP, value)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
# Quote, besides what YAML 1.1 would read as another type, what other readers might: y/n (YAML 1.1's full
# boolean list), numbers with leading zeros, YAML 1.2 / JSON numbers (1e5, 0o17, .5).
_Dumper.add_implicit_resolver(_YAML + "bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_Dumper.add_implicit_resolver(
    _YAML + "float",
    re.compile(
        r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[bB][01]+
        |\.(?:inf|Inf|INF|nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)
