"""Never crash, never lose a line: the invariants of ``invariants.py`` over generated macro events."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from composex_mesh import SECTION_KEY
from tests.lint import lint_errors

from . import profile
from .invariants import check_event
from .strategies import Generated, broken_events, json_values, valid_events


def _label(outcome: Any) -> None:
    event(outcome.status if not outcome.errors else f"failure at {outcome.errors[0][0].split('.')[0] or 'section'}")


@profile(150)
@given(valid_events(backend="AppMesh"))
def test_valid_app_mesh_meshes_expand_and_keep_every_line(generated: Generated) -> None:
    outcome = check_event(generated.event)
    assert outcome.status == "success", outcome.answer.get("errorMessage")


@profile(100)
@given(valid_events(backend="ServiceConnect"))
def test_valid_service_connect_meshes_expand_and_keep_every_line(generated: Generated) -> None:
    outcome = check_event(generated.event)
    assert outcome.status == "success", outcome.answer.get("errorMessage")


@profile(350)
@given(broken_events())
def test_broken_sections_fail_with_grounded_errors_or_expand_intact(generated: Generated) -> None:
    _label(check_event(generated.event))


@profile(150)
@given(broken_events(max_mutations=8, wide=True))
def test_mutations_anywhere_in_the_template_and_event_are_answered(generated: Generated) -> None:
    _label(check_event(generated.event))


@profile(100)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"requestId": json_values, "fragment": json_values}),
        st.fixed_dictionaries(
            {"requestId": st.text(max_size=8), "fragment": st.fixed_dictionaries({SECTION_KEY: json_values})},
            optional={"params": json_values, "templateParameterValues": json_values, "region": json_values},
        ),
    )
)
def test_malformed_events_are_answered(raw_event: Any) -> None:
    _label(check_event(raw_event))


@profile(4)
@given(valid_events(lint_clean=True))
def test_a_sample_of_expanded_meshes_passes_cfn_lint(generated: Generated) -> None:
    outcome = check_event(generated.event, determinism=False)
    assert outcome.status == "success", outcome.answer.get("errorMessage")
    assert lint_errors(outcome.answer["fragment"], region=generated.event["region"]) == []


def _on_lattice(generated: Generated) -> dict[str, Any]:
    """The same event with ``Backend: VpcLattice`` written in the section (what a user switching backends does)."""
    event = copy.deepcopy(generated.event)
    section = event.get("fragment", {}).get(SECTION_KEY)
    if isinstance(section, dict):
        section["Backend"] = "VpcLattice"
    return event


@profile(100)
@given(valid_events())
def test_meshes_switched_to_vpc_lattice_expand_intact_or_fail_with_grounded_errors(generated: Generated) -> None:
    """Sections written for App Mesh or Service Connect, on VPC Lattice: what Lattice cannot express is an error at
    a path the user wrote (retries, regex matches...), everything else expands and keeps every line."""
    _label(check_event(_on_lattice(generated)))


@profile(100)
@given(broken_events())
def test_broken_sections_on_vpc_lattice_fail_with_grounded_errors_or_expand_intact(generated: Generated) -> None:
    _label(check_event(_on_lattice(generated)))
