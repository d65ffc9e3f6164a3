"""Differential fuzz of ``backends.base.build``'s fast type check against troposphere itself.

    .venv/bin/python tests/benchmarks/fuzz_build.py [--seed N] [--cases N]

Records every ``build()`` input of the golden cases and of a generated mesh, mutates them (wrong types,
intrinsics where objects or lists go, tuples, unknown or attribute-named keys, removed required keys, odd
logical IDs) and checks that the fast check either answers exactly what ``from_dict(...).to_dict()`` answers
(same ``repr``: types, key order) with no container shared with the input, or declines (``None``), which it
must whenever troposphere raises. Also checks ``base.deepcopy`` against ``copy.deepcopy``, aliasing included.
Run it after touching the fast check or moving the troposphere pin.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from composex_mesh.backends import base, fastcheck  # noqa: E402
from composex_mesh.transform import Context, expand  # noqa: E402
from tests.benchmarks import meshgen  # noqa: E402
from tests.golden import case_names, run_case  # noqa: E402

ODD: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.5,
    "1",
    "true",
    "x",
    "",
    [],
    {},
    (1,),
    ("a",),
    [1, "a"],
    {"Ref": "X"},
    {"Fn::GetAtt": ["A", "B"]},
    {"Condition": "C"},
    {"Fn::If": ["c", 1, 2]},
    {"a": 1},
    {"Ref": "X", "b": 1},
    [{"Ref": "X"}],
    [{"a": 1}],
    65536,
    -2,
    "8080",
    {"Fn::Sub": "x"},
    ["x", {"Ref": "Y"}],
    b"x",
]
KEYS = ["Bogus", "Metadata", "Condition", "DependsOn", "Name", "Port", "Type"]


def samples() -> list[tuple[Any, str, dict[str, Any]]]:
    """Every (class, logical ID, properties) that ``build`` sees on the golden cases and a 6-node mesh."""
    seen: list[tuple[Any, str, dict[str, Any]]] = []
    checked = base.checked

    def record(resource_type: Any, logical_id: Any, properties: Any) -> Any:
        seen.append((resource_type, logical_id, copy.deepcopy(properties)))
        return checked(resource_type, logical_id, properties)

    base.checked = record
    try:
        for case in case_names():
            with contextlib.suppress(Exception):
                run_case(case)
        expand(meshgen.template(6), Context())
    finally:
        base.checked = checked
    return seen


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _containers(value: Any, found: set[int]) -> set[int]:
    if isinstance(value, dict | list):
        found.add(id(value))
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, found)
    return found


def mutate(rng: random.Random, properties: dict[str, Any]) -> dict[str, Any]:
    properties = copy.deepcopy(properties)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(list(_paths(properties)))
        if not path:
            continue
        parent: Any = properties
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        roll = rng.random()
        if roll < 0.5:
            parent[last] = copy.deepcopy(rng.choice(ODD))
        elif roll < 0.65 and isinstance(parent, dict):
            del parent[last]
        elif roll < 0.75 and isinstance(parent, dict):
            parent[rng.choice(KEYS)] = copy.deepcopy(rng.choice(ODD))
        elif roll < 0.85:
            parent[last] = tuple(parent[last]) if isinstance(parent[last], list) else [parent[last]]
        else:
            parent[last] = {"Ref": "P"} if rng.random() < 0.5 else copy.deepcopy(parent[last])
    return properties


def troposphere_answer(resource_type: Any, logical_id: Any, properties: Any) -> Any:
    with contextlib.redirect_stderr(io.StringIO()):  # troposphere reports failing validators on stderr
        try:
            typed = resource_type.from_dict(logical_id, fastcheck.wrap_intrinsics(properties)).to_dict()
        except Exception as error:
            return error
    return {"Type": typed["Type"], **({"Properties": typed["Properties"]} if "Properties" in typed else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=20_000)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    recorded = samples()
    counts = {"fast": 0, "declined": 0, "troposphere raises": 0}
    for _ in range(args.cases):
        resource_type, recorded_id, properties = rng.choice(recorded)
        logical_id: object = recorded_id
        data = mutate(rng, properties) if rng.random() < 0.9 else copy.deepcopy(properties)
        if rng.random() < 0.02:
            logical_id = rng.choice(["", "a-b", "X" * 300, 5])
        before = repr(data)
        fast = base.checked(resource_type, logical_id, data)
        assert repr(data) == before, "the fast check modified its input"
        expected = troposphere_answer(resource_type, logical_id, data)
        if isinstance(expected, Exception):
            counts["troposphere raises"] += 1
            assert fast is None, (resource_type, logical_id, data, expected, fast)
        elif fast is None:
            counts["declined"] += 1
        else:
            counts["fast"] += 1
            assert repr(fast) == repr(expected), (resource_type, logical_id, data, fast, expected)
            assert not _containers(data, set()) & _containers(fast, set()), "output shares a container with input"
            shared: dict[str, Any] = {"a": [1, {"b": 2}]}
            tree = {"x": data, "y": shared, "z": shared, "w": [shared["a"], shared["a"]]}
            copied = base.deepcopy(tree)
            assert repr(copied) == repr(copy.deepcopy(tree))
            assert copied["y"] is copied["z"] and copied["w"][0] is copied["w"][1] is copied["y"]["a"]
    print(f"{len(recorded)} recorded build() inputs, {args.cases} cases (seed {args.seed}): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
