"""``deepcopy`` for JSON-shaped data: the templates the macro reads and writes."""

from __future__ import annotations

import copy
from typing import Any

_ATOMS = frozenset((str, int, float, bool, type(None)))


class _NotJson(Exception):
    """Something other than dicts, lists and scalars: ``copy.deepcopy`` does the copy."""


def deepcopy(value: Any) -> Any:
    """``copy.deepcopy(value)``, several times faster on plain JSON data (dicts, lists, scalars).

    Same result, shared sub-objects (YAML aliases) included: they stay shared in the copy. Any other type
    anywhere in ``value`` and ``copy.deepcopy`` does the whole copy.
    """
    try:
        return _json_copy(value, {})
    except _NotJson:
        return copy.deepcopy(value)


def _json_copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        done = memo.get(id(value))
        if done is not None:
            return done
        copied: dict[Any, Any] = {}
        memo[id(value)] = copied
        for key, item in value.items():
            if type(key) not in _ATOMS:
                raise _NotJson
            copied[key] = item if type(item) in _ATOMS else _json_copy(item, memo)
        return copied
    if kind is list:
        done = memo.get(id(value))
        if done is not None:
            return done
        items: list[Any] = []
        memo[id(value)] = items
        for item in value:
            items.append(item if type(item) in _ATOMS else _json_copy(item, memo))
        return items
    raise _NotJson
