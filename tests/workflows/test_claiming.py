from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from tests.concurrency import run_concurrently
from tests.factories import QueueFactory, UserFactory, make_case
from workflows import tasks
from workflows.models import AuditEvent, Case, CaseState
from workflows.services import assignment, claiming, transitions
from workflows.services.errors import ReviewerAway

S = CaseState


@pytest.mark.django_db
def test_claim_next_takes_the_most_urgent_case_first(queue, member):
    now = timezone.now()
    later = make_case(queue, priority=50, due_at=now + timedelta(hours=2))
    sooner = make_case(queue, priority=50, due_at=now + timedelta(hours=1))
    urgent = make_case(queue, priority=90, due_at=now + timedelta(hours=8))

    claimed = [claiming.claim_next(user=member, now=now).pk for _ in range(3)]

    assert claimed == [urgent.pk, sooner.pk, later.pk]


@pytest.mark.django_db
def test_a_claim_is_a_lease_with_one_audit_event(queue, member):
    now = timezone.now()
    case = make_case(queue)

    claimed = claiming.claim_next(user=member, now=now)

    assert claimed.pk == case.pk
    case.refresh_from_db()
    assert case.state == S.ASSIGNED and case.assignee == member
    assert case.lease_expires_at == now + queue.lease_time
    assert case.first_claimed_at == now and case.version == 2
    [event] = AuditEvent.objects.filter(case=case)
    assert (event.verb, event.actor) == ("case.claimed", member)


@pytest.mark.django_db
def test_second_claimer_gets_the_next_case(queue, member, second_member):
    first, second = make_case(queue, priority=80), make_case(queue, priority=20)

    assert claiming.claim_next(user=member).pk == first.pk
    assert claiming.claim_next(user=second_member).pk == second.pk
    assert claiming.claim_next(user=member) is None


@pytest.mark.django_db
def test_claim_next_skips_cases_in_progress_and_closed(queue, member, second_member):
    for state in (S.ASSIGNED, S.WAITING, S.PENDING_APPROVAL, S.RESOLVED, S.CANCELLED):
        make_case(queue, state=state, assignee=second_member, priority=99)
    escalated = make_case(queue, state=S.ESCALATED, priority=10)

    assert claiming.claim_next(user=member).pk == escalated.pk
    assert claiming.claim_next(user=member) is None


@pytest.mark.django_db
def test_claim_next_only_offers_the_users_queues(queue, member, outsider):
    make_case(queue)

    assert claiming.claim_next(user=outsider) is None
    assert claiming.claim_next(user=member, queue=QueueFactory(slug="empty")) is None


@pytest.mark.django_db
def test_group_membership_counts_as_membership(queue):
    reviewers = Group.objects.create(name="reviewers")
    queue.member_groups.add(reviewers)
    user = UserFactory(username="via-group")
    user.groups.add(reviewers)
    case = make_case(queue)

    assert claiming.claim_next(user=user).pk == case.pk


@pytest.mark.django_db
def test_claim_next_across_queues_takes_the_most_urgent(queue, member):
    other = QueueFactory(slug="payments")
    other.members.add(member)
    make_case(queue, priority=40)
    urgent = make_case(other, priority=70)

    assert claiming.claim_next(user=member).pk == urgent.pk


@pytest.mark.django_db
def test_claim_next_in_one_queue_stays_in_it(queue, member):
    other = QueueFactory(slug="payments")
    other.members.add(member)
    make_case(other, priority=90)
    mine = make_case(queue, priority=10)

    assert claiming.claim_next(user=member, queue=queue).pk == mine.pk


@pytest.mark.django_db
def test_claiming_a_case_someone_holds_is_refused(queue, member, second_member):
    case = make_case(queue, state=S.ASSIGNED, assignee=second_member)

    with pytest.raises(TransitionNotAllowed, match="someone else"):
        claiming.claim(case_id=case.pk, user=member)


@pytest.mark.django_db
def test_an_outsider_cannot_claim(queue, outsider):
    case = make_case(queue)

    with pytest.raises(Case.DoesNotExist):
        claiming.claim(case_id=case.pk, user=outsider)


@pytest.mark.django_db
def test_the_holder_renews_the_lease(queue, member, second_member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member)

    renewed = claiming.renew_lease(case_id=case.pk, user=member,
                                   now=now + timedelta(minutes=9))

    assert renewed.lease_expires_at == now + timedelta(minutes=9) + queue.lease_time
    with pytest.raises(PermissionDenied):
        claiming.renew_lease(case_id=case.pk, user=second_member)


@pytest.mark.django_db
def test_renewing_a_lease_keeps_the_version_and_is_not_audited(queue, member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member, now=now)

    claiming.renew_lease(case_id=case.pk, user=member, now=now + timedelta(minutes=9))

    stored = Case.objects.get(pk=case.pk)
    assert stored.lease_expires_at == now + timedelta(minutes=9) + queue.lease_time
    # The holder's open forms stay valid; a renewal every minute is not history.
    assert stored.version == case.version
    assert not AuditEvent.objects.filter(case=case).exists()


@pytest.mark.django_db
def test_a_lapsed_lease_is_not_revived(queue, member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member, now=now)
    lapsed = now + queue.lease_time + timedelta(seconds=1)

    with pytest.raises(TransitionNotAllowed, match="lapsed"):
        claiming.renew_lease(case_id=case.pk, user=member, now=lapsed)

    assert Case.objects.get(pk=case.pk).lease_expires_at == now + queue.lease_time
    assert claiming.expire_leases(now=lapsed) == 1


@pytest.mark.django_db
def test_a_manager_changing_the_priority_of_their_own_claim_renews_its_lease(queue, manager,
                                                                            member):
    now = timezone.now()
    queue.members.add(manager)
    own = make_case(queue, state=S.ASSIGNED, assignee=manager, now=now)
    others = make_case(queue, state=S.ASSIGNED, assignee=member, now=now)
    later = now + timedelta(minutes=9)

    transitions.change_priority(case_id=own.pk, user=manager, priority=80, now=later)
    transitions.change_priority(case_id=others.pk, user=manager, priority=80, now=later)

    assert Case.objects.get(pk=own.pk).lease_expires_at == later + queue.lease_time
    # Someone else's claim is theirs to keep alive: the manager's edit does not renew it.
    assert Case.objects.get(pk=others.pk).lease_expires_at == now + queue.lease_time


@pytest.mark.django_db
def test_a_case_held_without_a_lease_stays_without_one(queue, member):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=None)  # held for its owner

    assert claiming.extend_lease(case=Case.objects.get(pk=case.pk), user=member) is False
    assert Case.objects.get(pk=case.pk).lease_expires_at is None


@pytest.mark.django_db
def test_without_row_locks_a_claimer_who_loses_the_race_takes_the_next_case(
        queue, member, second_member, monkeypatch):
    if connection.features.has_select_for_update_skip_locked:
        pytest.skip("PostgreSQL locks its candidate; this is SQLite's conditional update")
    taken, free = make_case(queue, priority=90), make_case(queue, priority=10)
    stale = [Case.objects.get(pk=taken.pk), Case.objects.get(pk=free.pk)]
    claiming.claim(case_id=taken.pk, user=second_member)  # between our read and our write

    class StaleRead(list):
        def select_related(self, *fields):
            return self

    monkeypatch.setattr(claiming.selectors, "workable_cases",
                        lambda **kwargs: StaleRead(stale))

    assert claiming.claim_next(user=member).pk == free.pk
    assert Case.objects.get(pk=taken.pk).assignee == second_member


@pytest.mark.django_db
def test_nobody_signed_in_claims_nothing(queue):
    from django.contrib.auth.models import AnonymousUser

    make_case(queue)

    assert claiming.claim_next(user=AnonymousUser()) is None


# -- lease expiry (I3) --------------------------------------------------------------------

@pytest.mark.django_db
def test_an_expired_lease_returns_the_case_to_the_queue_once(queue, member):
    now = timezone.now()
    case = make_case(queue)
    claiming.claim(case_id=case.pk, user=member, now=now)
    fresh = make_case(queue, state=S.ASSIGNED, assignee=member, now=now + queue.lease_time)

    later = now + queue.lease_time + timedelta(seconds=1)
    assert claiming.expire_leases(now=later) == 1
    assert claiming.expire_leases(now=later) == 0  # a second sweep finds nothing

    case.refresh_from_db()
    assert case.state == S.OPEN and case.assignee is None and case.lease_expires_at is None
    [event] = AuditEvent.objects.filter(case=case, verb="case.lease_expired")
    assert event.data["assignee"] == member.pk and event.actor is None
    fresh.refresh_from_db()
    assert fresh.state == S.ASSIGNED
    # Back in the queue: the next claimer gets it.
    assert claiming.claim_next(user=member, now=later).pk == case.pk


@pytest.mark.django_db
def test_expiry_works_in_bounded_batches(queue, member):
    now = timezone.now()
    for _ in range(5):
        make_case(queue, state=S.ASSIGNED, assignee=member, now=now - timedelta(hours=1))

    assert claiming.expire_leases(now=now, batch_size=2) == 2
    assert claiming.expire_leases(now=now, batch_size=10) == 3


@pytest.mark.django_db
def test_the_beat_task_expires_leases(queue, member):
    make_case(queue, state=S.ASSIGNED, assignee=member,
              now=timezone.now() - timedelta(hours=1))

    assert tasks.expire_claim_leases() == 1


@pytest.mark.django_db
def test_a_renewed_lease_does_not_expire(queue, member):
    now = timezone.now()
    taken = now - queue.lease_time / 2
    case = make_case(queue, state=S.ASSIGNED, assignee=member, now=taken)
    claiming.renew_lease(case_id=case.pk, user=member, now=now)

    # Past the first lease's end, within the renewed one.
    assert claiming.expire_leases(now=taken + queue.lease_time + timedelta(seconds=1)) == 0


# -- concurrency on PostgreSQL ------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_claimers_claim_a_thousand_cases_each_exactly_once(queue):
    reviewers = [UserFactory(username=f"reviewer{n}") for n in range(20)]
    queue.members.add(*reviewers)
    now = timezone.now()
    Case.objects.bulk_create(
        Case(queue=queue, title=f"Case {n}", priority=n % 7 * 10, created_at=now,
             due_at=now + timedelta(minutes=n % 97))
        for n in range(1000))

    def claim_until_empty(index):
        mine = []
        while (case := claiming.claim_next(user=reviewers[index])) is not None:
            mine.append(case.pk)
        return mine

    claims = run_concurrently(claim_until_empty, times=20)

    everything = [pk for mine in claims for pk in mine]
    assert len(everything) == 1000
    assert len(set(everything)) == 1000  # no double claims
    assert all(mine for mine in claims)  # nobody starved
    assert Case.objects.filter(state=S.ASSIGNED).count() == 1000
    per_case = Counter(AuditEvent.objects.filter(verb="case.claimed")
                       .values_list("case_id", flat=True))
    assert len(per_case) == 1000 and set(per_case.values()) == {1}
    holders = dict(Case.objects.values_list("pk", "assignee_id"))
    for reviewer, mine in zip(reviewers, claims, strict=True):
        assert {holders[pk] for pk in mine} == {reviewer.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_claimers_across_several_queues_never_share_a_case(queue):
    queues = [queue, QueueFactory(slug="payments"), QueueFactory(slug="refunds")]
    reviewers = [UserFactory(username=f"reviewer{n}") for n in range(8)]
    for q in queues:
        q.members.add(*reviewers)
    now = timezone.now()
    Case.objects.bulk_create(
        Case(queue=queues[n % 3], title=f"Case {n}", priority=n % 5 * 10, created_at=now,
             due_at=now + timedelta(minutes=n))
        for n in range(150))

    def claim_until_empty(index):
        mine = []
        while (case := claiming.claim_next(user=reviewers[index])) is not None:
            mine.append(case.pk)
        return mine

    everything = [pk for mine in run_concurrently(claim_until_empty, times=8) for pk in mine]
    assert len(everything) == len(set(everything)) == 150


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_expire_a_lease_exactly_once(queue, member):
    now = timezone.now()
    cases = [make_case(queue, state=S.ASSIGNED, assignee=member, now=now - timedelta(hours=1))
             for _ in range(30)]

    expired = run_concurrently(*[lambda: claiming.expire_leases(now=now)] * 2)

    assert sum(expired) == 30
    assert Case.objects.filter(state=S.OPEN).count() == 30
    per_case = Counter(AuditEvent.objects.filter(verb="case.lease_expired")
                       .values_list("case_id", flat=True))
    assert per_case == {case.pk: 1 for case in cases}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_expiry_racing_the_holders_release_happens_once(queue, member):
    now = timezone.now()
    case = make_case(queue, state=S.ASSIGNED, assignee=member, now=now - timedelta(hours=1))
    from workflows.services import transitions

    def either(index):
        if index == 0:
            return claiming.expire_leases(now=now)
        try:
            transitions.release(case_id=case.pk, user=member, now=now)
        except Exception as exc:
            return type(exc).__name__
        return "released"

    outcome = run_concurrently(either, times=2)

    case.refresh_from_db()
    assert case.state == S.OPEN and case.version == 2
    assert outcome in ([1, "CaseConflict"], [1, "TransitionNotAllowed"], [0, "released"])
    assert AuditEvent.objects.filter(case=case).count() == 1


# -- away means away --------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_reviewer_marked_away_cannot_claim_until_available_again(queue, member):
    case = make_case(queue)
    away_at = timezone.now() - timedelta(hours=2)
    assignment.set_away(user=member, actor=member, now=away_at)

    with pytest.raises(ReviewerAway, match=r"You are marked away since .*: mark yourself "
                                           r"available to take cases\.") as refused:
        claiming.claim_next(user=member)
    with pytest.raises(ReviewerAway):
        claiming.claim(case_id=case.pk, user=member)

    assert refused.value.away_since == away_at
    case.refresh_from_db()
    assert (case.state, case.assignee) == (S.OPEN, None)
    assert not AuditEvent.objects.filter(verb="case.claimed").exists()
    assignment.set_available(user=member, actor=member)
    assert claiming.claim_next(user=member).pk == case.pk


@pytest.mark.django_db
def test_a_reviewer_marked_away_takes_nothing_from_a_named_queue_or_across_queues(
        queue, member):
    make_case(queue)
    assignment.set_away(user=member, actor=member)

    for where in ({"queue": queue}, {"queue_slug": queue.slug}, {}):
        with pytest.raises(ReviewerAway):
            claiming.claim_next(user=member, **where)

    assert not Case.objects.filter(state=S.ASSIGNED).exists()
    assert not AuditEvent.objects.filter(verb="case.claimed").exists()


@pytest.mark.django_db
def test_the_away_refusal_names_the_time_in_the_active_zone(queue, member):
    make_case(queue)
    assignment.set_away(user=member, actor=member,
                        now=datetime(2026, 1, 5, 8, 30, tzinfo=UTC))

    with timezone.override(ZoneInfo("Europe/Berlin")), pytest.raises(ReviewerAway) as refused:
        claiming.claim_next(user=member)

    assert "since Jan 5, 09:30 CET:" in str(refused.value)


@pytest.mark.django_db
def test_an_away_reviewer_still_gets_404_for_a_case_they_may_not_see(queue, outsider):
    case = make_case(queue)
    assignment.set_away(user=outsider, actor=outsider)

    with pytest.raises(Case.DoesNotExist):
        claiming.claim(case_id=case.pk, user=outsider)
