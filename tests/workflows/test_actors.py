"""Who acts is said explicitly (``workflows/actors.py``): ``SYSTEM`` for the system's own
work, a person otherwise. ``actor=None`` is a bug and is refused, never read as "the
system" with its permission checks skipped."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied

from tests.factories import UserFactory
from tests.workflows.sla_support import open_case, publish, utc
from workflows.actors import SYSTEM
from workflows.models import Activity, AuditEvent, Process, RaciAssignment, RaciRole
from workflows.services import audit, escalation, queues, raci, sweeper

T = utc(2026, 3, 2, 10, 0)


@pytest.fixture
def process(db):
    return Process.objects.create(slug="invoices", name="Invoices")


@pytest.mark.django_db
def test_a_service_called_with_actor_none_by_mistake_is_refused(process, queue):
    ann = UserFactory(username="ann")

    with pytest.raises(TypeError, match="actor is required"):
        raci.set_assignments(process=process, activity=Activity.REVIEW,
                             role=RaciRole.RESPONSIBLE, users=[ann], actor=None)
    with pytest.raises(TypeError, match="actor is required"):
        queues.queue_update(queue=queue, actor=None, lease_seconds=60)
    with pytest.raises(TypeError, match="actor is required"):
        escalation.escalate(case_id=open_case(queue, now=T).pk, cause="manual",
                            expected_level=0, actor=None)
    with pytest.raises(TypeError, match="Say who acted"):
        audit.record(verb="case.opened", object_type="case", object_id=1)

    assert not RaciAssignment.objects.exists()
    assert not AuditEvent.objects.exclude(verb="case.opened").exists()


@pytest.mark.django_db
def test_only_the_explicit_system_actor_skips_the_managers_check(process):
    ann = UserFactory(username="ann")

    with pytest.raises(PermissionDenied):
        raci.set_assignments(process=process, activity=Activity.REVIEW,
                             role=RaciRole.RESPONSIBLE, users=[ann], actor=ann)
    raci.set_assignments(process=process, activity=Activity.REVIEW,
                         role=RaciRole.RESPONSIBLE, users=[ann], actor=SYSTEM)

    event, = AuditEvent.objects.filter(verb="raci.changed")
    assert (event.actor, event.actor_label) == (None, "system")


@pytest.mark.django_db
def test_the_sweepers_warnings_and_escalations_are_audited_as_the_system(settings, queue,
                                                                         member):
    settings.SLA_NUDGES_ENABLED = False
    publish(queue, response=timedelta(minutes=10), resolution=timedelta(hours=1),
            fraction=0.5)
    case = open_case(queue, now=T)

    sweeper.sweep(now=T + timedelta(minutes=5))
    sweeper.sweep(now=T + timedelta(minutes=10))

    events = AuditEvent.objects.filter(case=case, verb__in=["case.sla_warning",
                                                           "case.escalated"])
    assert sorted(event.verb for event in events) == ["case.escalated", "case.sla_warning"]
    assert {(event.actor_id, event.actor_label) for event in events} == {(None, "system")}
