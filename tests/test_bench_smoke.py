"""Keeps ``tests/benchmarks/bench.py`` from rotting: the generator and one measured 5-node expansion."""

from __future__ import annotations

from composex_mesh import SECTION_KEY
from tests.benchmarks import bench, meshgen


def test_the_generated_mesh_expands_through_the_handler_as_the_benchmark_measures_it() -> None:
    template = meshgen.template(5)
    assert len(template[SECTION_KEY]["Nodes"]) == 5
    assert meshgen.edge_count(5) == 8

    call, event = bench.expansion_call(5)
    fragment = call()
    assert SECTION_KEY not in fragment
    types = [resource["Type"] for resource in fragment["Resources"].values()]
    assert types.count("AWS::AppMesh::VirtualNode") == 5
    assert types.count("AWS::EC2::SecurityGroupIngress") == meshgen.edge_count(5)
    assert SECTION_KEY in event["fragment"], "the handler must not modify the event"

    row = bench.warm_row(5, repeat=1, rss=False)
    assert row.resources_added == len(fragment["Resources"]) - len(template["Resources"])
    assert row.expand_ms > 0 and row.floor_ms > 0 and row.peak_mb > 0
