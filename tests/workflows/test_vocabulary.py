"""Each rule of the engine's vocabulary is written once; these tests tie the copies together."""

import re
from pathlib import Path

import pytest
from django.db import models
from django.db.models import Q

from workflows import verbs
from workflows.actors import SYSTEM
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
    "case_open_list_idx": OPEN_STATES,
}


def test_each_partial_state_index_covers_exactly_the_group_it_claims():
    indexes = {index.name: index for index in Case._meta.indexes}
    for name, group in INDEX_GROUPS.items():
        assert indexes[name].condition == Q(state__in=list(group)), name


def test_every_state_conditioned_index_is_tied_to_a_group():
    conditioned = {index.name for index in Case._meta.indexes
                   if index.condition is not None and "state" in str(index.condition)}
    assert conditioned == {*INDEX_GROUPS, "case_lease_idx", "case_pending_approval_idx"}


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


# -- audit verbs ------------------------------------------------------------------------------

APPS = [Path(__file__).resolve().parents[2] / app for app in ("workflows", "exceptions_app")]
BARE_VERB = re.compile(r"""(\bverb\s*=\s*\(?\s*|["']verb["']\s*:\s*)["'][a-z_]+\.[a-z_]+["']""")


def test_every_verb_has_its_own_wording():
    for vocabulary in verbs._vocabularies:
        for member in vocabulary:
            assert re.fullmatch(r"[a-z_]+\.[a-z_]+", member.value), member
            # TextChoices makes a label from the name when none is given: not wording.
            assert member.label != member.name.replace("_", " ").title(), member


def test_no_call_site_writes_a_bare_verb_string():
    offenders = [f"{path}:{number}" for app in APPS for path in app.rglob("*.py")
                 if "migrations" not in path.parts
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if BARE_VERB.search(line)]
    assert offenders == []


def test_a_verb_defined_twice_is_refused():
    class Again(models.TextChoices):
        CLAIMED = "case.claimed", "Claimed again"

    with pytest.raises(ValueError, match=r"case\.claimed"):
        verbs.register(Again)
    assert verbs.wording("case.claimed") == "Claimed"


def test_an_unknown_verb_from_an_old_row_is_spelt_out():
    assert verbs.wording("case.long_gone") == "Long gone"


# -- who works a queue, who is a manager --------------------------------------------------------


@pytest.mark.django_db
def test_every_question_about_queue_membership_gets_the_same_answer():
    from django.contrib.auth.models import Group

    from tests.factories import CaseFactory, QueueFactory, UserFactory, make_manager
    from workflows import selectors
    from workflows.models import Queue

    queue, other = QueueFactory(), QueueFactory()
    direct, via_group, outsider, inactive = UserFactory(), UserFactory(), UserFactory(), \
        UserFactory(is_active=False)
    group = Group.objects.create(name="reviewers")
    group.user_set.add(via_group, inactive)
    queue.members.add(direct)
    queue.member_groups.add(group)
    other.members.add(outsider)
    case = CaseFactory(queue=queue)

    workers = {direct.pk, via_group.pk}
    assert set(selectors.queue_workers(queue_id=queue.pk).values_list("pk", flat=True)) == workers
    assert selectors.queue_worker_ids([queue.pk, other.pk]) == {
        queue.pk: {*workers, inactive.pk}, other.pk: {outsider.pk}}
    for person in (direct, via_group, outsider):
        works = person.pk in workers
        assert selectors.works_queue(user=person, queue_id=queue.pk) is works
        assert Queue.objects.filter(pk=queue.pk,
                                    pk__in=selectors.member_queue_ids(person)).exists() is works
        assert selectors.visible_cases(user=person).filter(pk=case.pk).exists() is works
    # A manager is not a member, but may do what members may.
    manager = make_manager()
    assert not selectors.works_queue(user=manager, queue_id=queue.pk)
    assert selectors.is_manager(manager) and not selectors.is_manager(direct)


def test_the_manager_rule_is_one_function():
    from workflows import models, selectors

    assert selectors.is_manager is models.is_manager


# -- time spent -----------------------------------------------------------------------------------


def test_a_stint_adds_its_length_once_and_a_dropped_one_nothing():
    from datetime import UTC, datetime, timedelta

    from workflows.services import work_time

    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    case = Case(time_spent_seconds=10)
    work_time.start_stint(case, start)
    # A stint is no first response by itself (a hand-off starts one too).
    assert (case.work_started_at, case.first_claimed_at) == (start, None)
    work_time.end_stint(case, start + timedelta(minutes=2))
    work_time.end_stint(case, start + timedelta(minutes=5))  # no stint open: nothing
    assert (case.time_spent_seconds, case.work_started_at) == (130, None)
    work_time.start_stint(case, start + timedelta(hours=1))
    work_time.drop_stint(case)
    assert (case.time_spent_seconds, case.work_started_at) == (130, None)


# -- the version counter and partial writes ----------------------------------------------------

# A field none of these write paths touches; each test has the path change it on the way,
# as a new field would be, and checks it is stored along with one version bump.
RARE = "title"


def _touching(monkeypatch, module, name):
    step = getattr(module, name)

    def touched(case, *args, **kwargs):
        case.title = f"changed by {module.__name__}.{name}"
        return step(case, *args, **kwargs)

    monkeypatch.setattr(module, name, touched)
    return f"changed by {module.__name__}.{name}"


def _stored(case):
    return Case.objects.values_list(RARE, "version").get(pk=case.pk)


@pytest.mark.django_db
def test_a_field_an_escalation_changes_is_stored_with_one_version_bump(queue, member,
                                                                       monkeypatch):
    from tests.factories import make_case
    from tests.workflows.chain import make_chain
    from workflows.services import escalation

    case = make_case(make_chain(queue).queue, state=CaseState.ASSIGNED, assignee=member)
    title = _touching(monkeypatch, escalation, "_restart_clock")

    escalation.escalate(actor=SYSTEM, case_id=case.pk, cause="resolution_breach",
                        expected_level=0)

    assert _stored(case) == (title, case.version + 1)


@pytest.mark.django_db
def test_a_field_a_claim_changes_is_stored_with_one_version_bump(queue, member, monkeypatch):
    from tests.factories import make_case
    from workflows.services import claiming

    case = make_case(queue)
    title = _touching(monkeypatch, claiming, "start_stint")

    claiming.claim_next(user=member, queue=queue)

    assert _stored(case) == (title, case.version + 1)


@pytest.mark.django_db
def test_a_field_a_transition_changes_is_stored_with_one_version_bump(queue, member,
                                                                      monkeypatch):
    from tests.factories import make_case
    from workflows.services import transitions

    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    title = _touching(monkeypatch, transitions, "end_stint")

    transitions.release(case_id=case.pk, user=member)

    assert _stored(case) == (title, case.version + 1)


@pytest.mark.django_db
def test_a_field_a_push_assignment_changes_is_stored_with_one_version_bump(queue, member,
                                                                           monkeypatch):
    from tests.factories import make_case
    from workflows.models import AssignmentMode
    from workflows.services import assignment, work_time

    queue.assignment_mode = AssignmentMode.ROUND_ROBIN
    queue.save()
    case = make_case(queue)
    title = _touching(monkeypatch, work_time, "start_stint")

    assignment.push_assign(case_ids=[case.pk])

    assert _stored(case) == (title, case.version + 1)


@pytest.mark.django_db
def test_a_field_a_lease_sweep_changes_is_stored_with_one_version_bump(queue, member,
                                                                       monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import make_case
    from workflows.services import claiming

    case = make_case(queue, state=CaseState.ASSIGNED, assignee=member)
    title = _touching(monkeypatch, claiming, "drop_stint")

    claiming.expire_leases(now=timezone.now() + timedelta(days=1))

    assert _stored(case) == (title, case.version + 1)


def test_a_partial_write_names_every_changed_field():
    case = Case(pk=1, title="before", priority=50)
    values = case.field_values()
    case.title, case.priority = "after", 80
    assert sorted(case.changed_since(values)) == ["priority", "title"]
