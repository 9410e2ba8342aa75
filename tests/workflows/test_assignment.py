from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, make_case
from workflows.actors import SYSTEM
from workflows.models import (
    Activity,
    AssignmentMode,
    AuditEvent,
    Case,
    CaseState,
    Process,
    RaciRole,
    ReviewerStatus,
)
from workflows.services import assignment, raci, transitions
from workflows.services.cases import NewCase, open_cases

S = CaseState


@pytest.fixture
def push_queue(db):
    queue = QueueFactory(slug="push", name="Push", assignment_mode=AssignmentMode.ROUND_ROBIN,
                         max_open_per_reviewer=3)
    people = [UserFactory(username=name) for name in ("ann", "bob", "cyd")]
    queue.members.add(*people)
    queue.people = people
    return queue


def _open(queue, count: int) -> list[Case]:
    return open_cases(specs=[NewCase(queue=queue, title=f"Case {n}") for n in range(count)],
                      actor_label="test", now=timezone.now())


def _holders(cases) -> list[str]:
    return [Case.objects.get(pk=case.pk).assignee.username for case in cases]


# -- push ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_round_robin_gives_each_member_a_case_in_turn(push_queue):
    cases = _open(push_queue, 5)

    assert _holders(cases) == ["ann", "bob", "cyd", "ann", "bob"]
    assert all(case.state == S.ASSIGNED for case in cases)  # the caller sees it too
    push_queue.refresh_from_db()
    assert push_queue.last_pushed_to.username == "bob"
    assert _holders(_open(push_queue, 1)) == ["cyd"]  # the turn carries over
    events = AuditEvent.objects.filter(verb="case.assigned")
    assert events.count() == 6 and {e.data["strategy"] for e in events} == {"round_robin"}


@pytest.mark.django_db
def test_pushed_work_is_not_a_first_response_until_the_reviewer_acts(push_queue):
    [case] = _open(push_queue, 1)

    case = Case.objects.get(pk=case.pk)
    assert case.state == S.ASSIGNED and case.first_claimed_at is None
    later = timezone.now() + timedelta(minutes=3)
    transitions.release(case_id=case.pk, user=case.assignee, now=later)
    assert Case.objects.get(pk=case.pk).first_claimed_at == later


@pytest.mark.django_db
def test_least_loaded_fills_up_the_lightest_first(push_queue):
    push_queue.assignment_mode = AssignmentMode.LEAST_LOADED
    push_queue.save()
    ann, bob, _ = push_queue.people
    for _ in range(2):
        make_case(push_queue, state=S.ASSIGNED, assignee=ann)
    make_case(push_queue, state=S.WAITING, assignee=bob)

    cases = _open(push_queue, 3)

    assert sorted(_holders(cases)) == ["bob", "cyd", "cyd"]
    assert assignment.open_loads(p.pk for p in push_queue.people) == {
        p.pk: 2 for p in push_queue.people}


@pytest.mark.django_db
def test_push_skips_the_away_and_stops_at_the_cap(push_queue):
    _, bob, cyd = push_queue.people
    ReviewerStatus.objects.create(user=cyd, available=False)
    make_case(push_queue, state=S.ASSIGNED, assignee=bob)

    cases = _open(push_queue, 7)

    # ann takes 3, bob 2 more (he had one): the cap of 3 each; the rest wait for a claim.
    assert Counter(c.assignee.username for c in Case.objects.filter(
        pk__in=[c.pk for c in cases], state=S.ASSIGNED)) == {"ann": 3, "bob": 2}
    assert Case.objects.filter(pk__in=[c.pk for c in cases], state=S.OPEN).count() == 2


@pytest.mark.django_db
def test_only_the_responsible_for_review_are_pushed_work(push_queue):
    bob = push_queue.people[1]
    process = Process.objects.create(slug="p", name="P")
    push_queue.process = process
    push_queue.save()
    raci.set_assignments(process=process, activity=Activity.REVIEW,
                         role=RaciRole.RESPONSIBLE, users=[bob], actor=SYSTEM)

    assert set(_holders(_open(push_queue, 3))) == {"bob"}


@pytest.mark.django_db
def test_a_pull_queue_is_left_alone_without_extra_queries(queue, member):
    _open(queue, 1)  # the queue's SLA terms are cached from then on
    with CaptureQueriesContext(connection) as one:
        _open(queue, 1)
    with CaptureQueriesContext(connection) as many:
        cases = _open(queue, 20)

    assert len(many) == len(one)
    assert all(c.state == S.OPEN and c.assignee_id is None for c in cases)
    assert assignment.push_assign(case_ids=[c.pk for c in cases]) == 0
    assert not AuditEvent.objects.filter(verb="case.assigned").exists()


# -- away and back -------------------------------------------------------------------------

@pytest.mark.django_db
def test_away_with_a_delegate_moves_the_work_to_them(queue, member, second_member):
    assigned = make_case(queue, state=S.ASSIGNED, assignee=member)
    waiting = make_case(queue, state=S.WAITING, assignee=member)
    done = make_case(queue, state=S.RESOLVED, assignee=member)

    moved = assignment.set_away(user=member, delegate=second_member, actor=member)

    assert moved == 2
    assigned, waiting, done = (Case.objects.get(pk=c.pk) for c in (assigned, waiting, done))
    assert (assigned.state, assigned.assignee) == (S.ASSIGNED, second_member)
    assert (waiting.state, waiting.assignee) == (S.WAITING, second_member)
    assert done.assignee == member
    assert AuditEvent.objects.filter(verb="case.delegated").count() == 2
    away = AuditEvent.objects.get(verb="reviewer.away")
    assert away.actor == member and away.data["delegate"] == second_member.pk
    status = ReviewerStatus.objects.get(user=member)
    assert (status.available, status.delegate) == (False, second_member)


@pytest.mark.django_db
def test_delegated_work_is_not_the_delegates_first_response(queue, member, second_member):
    pushed = make_case(queue, state=S.ASSIGNED, assignee=member)
    Case.objects.filter(pk=pushed.pk).update(first_claimed_at=None)  # pushed, untouched

    assignment.set_away(user=member, delegate=second_member, actor=member)

    pushed = Case.objects.get(pk=pushed.pk)
    assert pushed.assignee == second_member and pushed.first_claimed_at is None


@pytest.mark.django_db
def test_away_without_a_delegate_gives_claims_back_to_the_queue(queue, member, manager):
    assigned = make_case(queue, state=S.ASSIGNED, assignee=member)
    waiting = make_case(queue, state=S.WAITING, assignee=member)

    moved = assignment.set_away(user=member, actor=manager)

    assert moved == 1
    assigned, waiting = (Case.objects.get(pk=c.pk) for c in (assigned, waiting))
    assert (assigned.state, assigned.assignee) == (S.OPEN, None)
    assert (waiting.state, waiting.assignee) == (S.WAITING, member)  # a manager reassigns
    away = AuditEvent.objects.get(verb="reviewer.away")
    assert (away.data["moved"], away.data["kept"]) == ([assigned.pk], [waiting.pk])
    assert AuditEvent.objects.filter(verb="case.released", case=assigned).count() == 1


@pytest.mark.django_db
def test_only_the_reviewer_or_a_manager_changes_availability(queue, member, second_member,
                                                             outsider):
    for someone_else in (second_member, outsider):
        with pytest.raises(PermissionDenied):
            assignment.set_away(user=member, actor=someone_else)
    with pytest.raises(ValidationError):
        assignment.set_away(user=member, delegate=member, actor=member)
    ReviewerStatus.objects.create(user=second_member, available=False)
    with pytest.raises(ValidationError, match="away too"):
        assignment.set_away(user=member, delegate=second_member, actor=member)
    assert not ReviewerStatus.objects.filter(user=member).exists()


@pytest.fixture
def refunds(member):
    """A second queue the member works, which ``second`` does not."""
    queue = QueueFactory(slug="refunds", name="Refunds")
    queue.members.add(member)
    return queue


@pytest.mark.django_db
def test_a_delegate_takes_only_the_cases_of_queues_they_work(queue, refunds, member,
                                                             second_member):
    theirs = make_case(queue, state=S.ASSIGNED, assignee=member)
    waiting_theirs = make_case(queue, state=S.WAITING, assignee=member)
    not_theirs = make_case(refunds, state=S.ASSIGNED, assignee=member)
    waiting_not_theirs = make_case(refunds, state=S.WAITING, assignee=member)

    moved = assignment.set_away(user=member, delegate=second_member, actor=member)

    assert moved == 3
    cases = {c.pk: c for c in Case.objects.all()}
    assert (cases[theirs.pk].state, cases[theirs.pk].assignee) == (S.ASSIGNED, second_member)
    assert (cases[waiting_theirs.pk].state, cases[waiting_theirs.pk].assignee) == (
        S.WAITING, second_member)
    assert (cases[not_theirs.pk].state, cases[not_theirs.pk].assignee) == (S.OPEN, None)
    # A waiting case cannot go back to a queue: it stays with its holder, as without a
    # delegate, and the away event lists it.
    assert cases[waiting_not_theirs.pk].assignee == member
    away = AuditEvent.objects.get(verb="reviewer.away")
    assert sorted(away.data["moved"]) == sorted([theirs.pk, waiting_theirs.pk, not_theirs.pk])
    assert (away.data["returned"], away.data["kept"]) == ([not_theirs.pk],
                                                          [waiting_not_theirs.pk])
    released = AuditEvent.objects.get(verb="case.released", case=not_theirs)
    assert (released.actor, released.data["reason"]) == (member, "member is away")
    assert set(AuditEvent.objects.filter(verb="case.delegated")
               .values_list("case", flat=True)) == {theirs.pk, waiting_theirs.pk}


@pytest.mark.django_db
def test_a_delegate_who_works_none_of_the_queues_is_refused_and_gets_nothing(
        queue, member, outsider):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        assignment.set_away(user=member, delegate=outsider, actor=member)

    assert "delegate" in refused.value.message_dict
    assert "works none of member's queues" in refused.value.message_dict["delegate"][0]
    assert Case.objects.get(pk=case.pk).assignee == member
    assert not ReviewerStatus.objects.filter(user=member).exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_hand_over_refuses_someone_outside_the_queue_like_a_reassignment(queue, member,
                                                                           outsider):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    with pytest.raises(ValidationError) as refused:
        transitions.hand_over(case_id=case.pk, user=member, holder=member, to_user=outsider,
                              reason="member is away")

    assert "does not work the queue 'Invoices'" in refused.value.message_dict["delegate"][0]
    assert Case.objects.get(pk=case.pk).assignee == member
    assert "hand_over" not in transitions.available_transitions(case=case, user=member)


@pytest.mark.django_db
def test_delegates_through_a_group_or_managers_take_the_cases_over(queue, member, manager):
    colleague = UserFactory(username="colleague")
    team = Group.objects.create(name="invoice-team")
    colleague.groups.add(team)
    queue.member_groups.add(team)
    first = make_case(queue, state=S.ASSIGNED, assignee=member)

    assert assignment.set_away(user=member, delegate=colleague, actor=member) == 1
    assert Case.objects.get(pk=first.pk).assignee == colleague

    assignment.set_available(user=member, actor=member)
    second = make_case(queue, state=S.ASSIGNED, assignee=member)
    assert assignment.set_away(user=member, delegate=manager, actor=member) == 1
    assert Case.objects.get(pk=second.pk).assignee == manager


@pytest.mark.django_db
def test_the_delegate_choices_are_exactly_who_the_service_accepts(queue, refunds, member,
                                                                  second_member, outsider,
                                                                  manager):
    colleague = UserFactory(username="colleague")
    team = Group.objects.create(name="refund-team")
    colleague.groups.add(team)
    refunds.member_groups.add(team)
    UserFactory(username="retired", is_active=False).review_queues.add(queue)
    make_case(refunds, state=S.ASSIGNED, assignee=member)

    choices = assignment.delegate_choices(user=member)

    assert [p.username for p in choices] == ["colleague", "manager", "second"]
    for person in get_user_model().objects.exclude(pk=member.pk):
        try:
            with transaction.atomic():
                assignment.set_away(user=member, delegate=person, actor=member)
                transaction.set_rollback(True)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == (person in choices), person.username
    assert [p.username for p in assignment.delegate_choices(user=outsider)] == ["manager"]


@pytest.mark.django_db
def test_back_from_away_gets_pushed_work_again(push_queue):
    ann = push_queue.people[0]
    assignment.set_away(user=ann, actor=ann)
    assert "ann" not in _holders(_open(push_queue, 2))

    assignment.set_available(user=ann, actor=ann)
    assignment.set_available(user=ann, actor=ann)  # already back: nothing more

    assert assignment.is_available(ann)
    assert AuditEvent.objects.filter(verb="reviewer.available").count() == 1
    assert "ann" in _holders(_open(push_queue, 3))


# -- the pages -----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_reviewer_marks_themself_away_and_back_on_their_page(client, queue, member,
                                                               second_member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    client.force_login(member)
    url = reverse("availability")

    assert client.get(url).status_code == 200
    away = client.post(url, {"action": "away", "delegate": second_member.pk}, follow=True)

    assert b"1 open case moved" in away.content
    assert Case.objects.get(pk=case.pk).assignee == second_member
    assert not assignment.is_available(member)
    client.post(url, {"action": "available"})
    assert assignment.is_available(member)


@pytest.mark.django_db
def test_the_admin_marks_reviewers_back_through_the_service(client, member, manager):
    assignment.set_away(user=member, actor=member)
    manager.is_staff = True
    manager.save()
    manager.user_permissions.add(Permission.objects.get(codename="view_reviewerstatus"))
    client.force_login(manager)
    changelist = reverse("admin:workflows_reviewerstatus_changelist")

    response = client.post(changelist, {"action": "mark_available", "_selected_action": [
        ReviewerStatus.objects.get(user=member).pk]})

    assert response.status_code == 302
    assert assignment.is_available(member)
    assert AuditEvent.objects.get(verb="reviewer.available").actor == manager
