"""Opening cases: one at a time or many in one batch, each with its audit event."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from workflows.models import AssignmentMode, AuditEvent, Case, Queue
from workflows.services import assignment, audit, sla


@dataclass(frozen=True)
class NewCase:
    queue: Queue
    title: str
    priority: int = 50
    requires_four_eyes: bool = False


def open_cases(*, specs: Sequence[NewCase], actor_label: str, now: datetime,
               audit_data: Sequence[dict] | None = None) -> list[Case]:
    """Insert the cases and one ``case.opened`` event each, in the caller's transaction.

    A fixed number of queries whatever the number of cases; the SLA clocks start
    under each queue's current policy (``sla.start_clocks``).
    """
    cases = [Case(queue=spec.queue, title=spec.title[:300], priority=spec.priority,
                  requires_four_eyes=spec.requires_four_eyes, created_at=now)
             for spec in specs]
    sla.start_clocks(cases, now=now)
    Case.objects.bulk_create(cases)
    sla.nudge(cases, now=now)
    events = [
        audit.build(verb="case.opened", object_type="case", object_id=case.pk, case_id=case.pk,
                    actor_label=actor_label, now=now,
                    data={"queue": spec.queue.slug, "priority": spec.priority,
                          "four_eyes": spec.requires_four_eyes, "state": case.state,
                          **(extra or {})})
        for case, spec, extra in zip(cases, specs, audit_data or [None] * len(specs), strict=True)
    ]
    AuditEvent.objects.bulk_create(events)
    # Push queues hand each new case to a reviewer at once (audited after the opening);
    # pull queues, the default, cost no query here.
    pushed = {case.pk for case in cases if case.queue.assignment_mode != AssignmentMode.PULL}
    if pushed and assignment.push_assign(case_ids=list(pushed), now=now):
        for case in cases:
            if case.pk in pushed:
                case.refresh_from_db()
    return cases
