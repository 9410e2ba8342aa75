"""Each rule of the engine's vocabulary is written once; these tests tie the copies together."""

from django.db.models import Q

from workflows.models import (
    CLAIMABLE_STATES,
    CLOSED_STATES,
    HAND_UP_STATES,
    HELD_STATES,
    OPEN_STATES,
    RUNNING_STATES,
    Case,
    CaseState,
)

# -- case-state groups ------------------------------------------------------------------------

INDEX_GROUPS = {
    "case_claimable_idx": CLAIMABLE_STATES,
    "case_waiting_age_idx": CLAIMABLE_STATES,
    "case_sla_check_idx": RUNNING_STATES,
    "case_open_idx": OPEN_STATES,
}


def test_each_partial_state_index_covers_exactly_the_group_it_claims():
    indexes = {index.name: index for index in Case._meta.indexes}
    for name, group in INDEX_GROUPS.items():
        assert indexes[name].condition == Q(state__in=list(group)), name


def test_every_state_conditioned_index_is_tied_to_a_group():
    conditioned = {index.name for index in Case._meta.indexes
                   if index.condition is not None and "state" in str(index.condition)}
    assert conditioned == {*INDEX_GROUPS, "case_lease_idx"}


def test_open_and_closed_split_the_states():
    assert set(OPEN_STATES) | set(CLOSED_STATES) == set(CaseState.values)
    assert not set(OPEN_STATES) & set(CLOSED_STATES)


def test_narrower_groups_are_open_states():
    for group in (CLAIMABLE_STATES, RUNNING_STATES, HELD_STATES, HAND_UP_STATES):
        assert set(group) <= set(OPEN_STATES)
    assert set(OPEN_STATES) - set(RUNNING_STATES) == {CaseState.WAITING}


def test_escalate_and_reassign_start_from_the_hand_up_states():
    transitions = list(Case._meta.get_field("state").get_all_transitions(Case))
    for name in ("escalate", "reassign"):
        assert {t.source for t in transitions if t.name == name} == set(HAND_UP_STATES), name
