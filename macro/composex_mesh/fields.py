"""Introspection of the model's dataclasses, shared by the parser and the JSON Schema."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import model


@dataclass(frozen=True)
class FieldSpec:
    """One section key of a model class."""

    attribute: str
    key: str
    hint: Any
    required: bool
    default: Any
    minimum: int | None
    maximum: int | None
    doc: str
    value: bool
    min_items: int | None
    backends: tuple[str, ...] = ()
    """The only backends that take this key; empty: every backend."""
    elsewhere: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Per other backend: what it does instead (the hint of the error)."""


@functools.cache
def fields_of(cls: type) -> tuple[FieldSpec, ...]:
    """The keys of a model class, in declaration order."""
    hints = typing.get_type_hints(cls, vars(model))
    specs = []
    for item in dataclasses.fields(cls):
        meta = item.metadata
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = None
        specs.append(
            FieldSpec(
                attribute=item.name,
                key=meta["key"],
                hint=hints[item.name],
                required=required,
                default=default,
                minimum=meta["minimum"],
                maximum=meta["maximum"],
                doc=meta["doc"],
                value=meta["value"],
                min_items=meta["min_items"],
                backends=meta.get("backends", ()),
                elsewhere=meta.get("elsewhere", {}),
            )
        )
    return tuple(specs)


def split_optional(hint: Any) -> tuple[Any, ...]:
    """The members of a union hint other than ``None`` (a one-tuple for a plain hint)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(arg for arg in typing.get_args(hint) if arg is not type(None))
    return (hint,)


def is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def did_you_mean(word: str, candidates: typing.Iterable[str]) -> str:
    """`` Did you mean 'X'?`` for the closest candidate, or an empty string."""
    options = sorted(candidates)
    lowered = {option.lower(): option for option in options}
    if word.lower() in lowered:
        return f" Did you mean '{lowered[word.lower()]}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class PartialList(tuple):  # type: ignore[type-arg]
    """The items of a section list that parsed, when others did not: each keeps its index as written, so that the
    checks report on every valid item at its own index (SPEC §2: one problem never hides another)."""

    indexes: tuple[int, ...]

    def __new__(cls, items: typing.Iterable[tuple[int, Any]]) -> PartialList:
        pairs = list(items)
        made = super().__new__(cls, [item for _, item in pairs])
        made.indexes = tuple(index for index, _ in pairs)
        return made


def indexed(items: typing.Sequence[Any] | None) -> list[tuple[int, Any]]:
    """``enumerate(items)`` with the indexes as written (a ``PartialList`` keeps them)."""
    if not items:
        return []
    indexes = getattr(items, "indexes", None)
    return list(zip(indexes if indexes is not None else range(len(items)), items, strict=True))
