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

import bisect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "KeyPositions",
    "TemplateFormat",
    "TemplateLoadError",
    "detect_format",
    "dump_template",
    "key_positions",
    "load_template",
]

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


# ------------------------------------------------------------------------------------------- positions


@dataclass
class _Located:
    """Where a key (or list item) is written, 1-based, and the keys or items of its value."""

    line: int
    column: int
    keys: dict[str, _Located] | None = None
    items: list[_Located] | None = None


class KeyPositions:
    """The line and column of every key and list item of a template, for messages that point at the text."""

    def __init__(self, root: _Located) -> None:
        self._root = root

    def locate(self, path: str) -> tuple[int, int]:
        """Where ``path`` (``Resources.Api.Properties.PortMappings[0]``) is written: its key, list item, or the
        nearest ancestor that exists. Keys are matched whole, so a key may itself contain dots."""
        node, rest = self._root, path
        while rest:
            if rest.startswith("["):
                index, close, after = rest[1:].partition("]")
                if not (close and index.isdigit() and node.items is not None and int(index) < len(node.items)):
                    break
                node, rest = node.items[int(index)], after
                continue
            rest = rest.removeprefix(".")
            keys = node.keys or {}
            matches = [key for key in keys if rest == key or rest.startswith((f"{key}.", f"{key}["))]
            if not matches:
                break
            key = max(matches, key=len)
            node, rest = keys[key], rest[len(key) :]
        return node.line, node.column


def key_positions(text: str) -> KeyPositions | None:
    """The positions of a JSON or YAML template's keys; None when the text is not readable (``load_template``
    says why)."""
    text = text.removeprefix("\ufeff")
    try:
        if detect_format(text) == "json":
            try:
                return KeyPositions(_JsonPositions(text).document())
            except ValueError:
                pass  # a YAML flow mapping, or not a template: YAML decides
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError):
        return None
    if node is None:
        return None
    try:
        return KeyPositions(_YamlPositions().located(node, node))
    except RecursionError:
        return None


class _YamlPositions:
    """Positions of a composed YAML document's keys and items; an aliased node's are found once and shared."""

    def __init__(self) -> None:
        self._done: dict[int, _Located] = {}

    def located(self, node: Node, at: Node) -> _Located:
        """``node``'s keys or items, placed where ``at`` (its key, or itself) is written."""
        inner = self._inner(node)
        return _Located(at.start_mark.line + 1, at.start_mark.column + 1, inner.keys, inner.items)

    def _inner(self, node: Node) -> _Located:
        done = self._done.get(id(node))
        if done is not None:
            return done
        result = _Located(node.start_mark.line + 1, node.start_mark.column + 1)
        self._done[id(node)] = result
        tag = node.tag
        if tag.startswith("!") and tag != "!":  # a short-form intrinsic: the single key of its long form
            name = tag[1:]
            value = _Located(result.line, result.column)
            if isinstance(node, SequenceNode):
                value.items = self._items(node)
            elif isinstance(node, MappingNode):
                value.keys = self._keys(node)
            result.keys = {name if name in _UNCONVERTED else f"Fn::{name}": value}
        elif isinstance(node, SequenceNode):
            result.items = self._items(node)
        elif isinstance(node, MappingNode):
            result.keys = self._keys(node)
        return result

    def _items(self, node: SequenceNode) -> list[_Located]:
        return [self.located(child, child) for child in node.value]

    def _keys(self, node: MappingNode) -> dict[str, _Located]:
        keys: dict[str, _Located] = {}
        merged: dict[str, _Located] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for source in value_node.value if isinstance(value_node, SequenceNode) else [value_node]:
                    for key, child in (self._inner(source).keys or {}).items():
                        merged.setdefault(key, child)
            elif isinstance(key_node, ScalarNode):
                keys.setdefault(str(key_node.value), self.located(value_node, key_node))
        for key, child in merged.items():
            keys.setdefault(key, child)
        return keys


class _JsonPositions:
    """Positions of a JSON document's keys and items (``json`` itself keeps none); raises ValueError if invalid."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = [0]
        self.lines.extend(index + 1 for index, char in enumerate(text) if char == "\n")
        self.decoder = json.JSONDecoder()

    def document(self) -> _Located:
        index = self._skip(0)
        located, end = self._value(index, index)
        if self._skip(end) != len(self.text):
            raise ValueError("extra data")
        return located

    def _at(self, index: int) -> _Located:
        line = bisect.bisect_right(self.lines, index)
        return _Located(line, index - self.lines[line - 1] + 1)

    def _skip(self, index: int) -> int:
        while index < len(self.text) and self.text[index] in " \t\r\n":
            index += 1
        return index

    def _expect(self, index: int, char: str) -> int:
        index = self._skip(index)
        if not self.text.startswith(char, index):
            raise ValueError(f"expected {char!r}")
        return index + 1

    def _value(self, index: int, at: int) -> tuple[_Located, int]:
        located = self._at(at)
        char = self.text[index : index + 1]
        if char == "{":
            located.keys = {}
            index = self._skip(index + 1)
            while not self.text.startswith("}", index):
                if located.keys:
                    index = self._skip(self._expect(index, ","))
                key_at = index
                key, index = self.decoder.raw_decode(self.text, self._expect(index, '"') - 1)
                if not isinstance(key, str):
                    raise ValueError("a key must be a string")
                index = self._skip(self._expect(index, ":"))
                child, index = self._value(index, key_at)
                located.keys.setdefault(key, child)
                index = self._skip(index)
            return located, index + 1
        if char == "[":
            located.items = []
            index = self._skip(index + 1)
            while not self.text.startswith("]", index):
                if located.items:
                    index = self._skip(self._expect(index, ","))
                child, index = self._value(index, index)
                located.items.append(child)
                index = self._skip(index)
            return located, index + 1
        _, end = self.decoder.raw_decode(self.text, index)
        return located, end


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
