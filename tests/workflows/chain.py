"""A process with a RACI matrix and an escalation chain, for the RACI, escalation and
assignment tests.

The invoices process: ``member`` and ``second`` are Responsible for review, ``owner``
is Accountable, ``legal`` is Consulted, ``watcher`` is Informed (named directly and
through the ``finance`` group, so deduplication shows).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import Group

from tests.factories import QueueFactory, UserFactory
from workflows.actors import SYSTEM
from workflows.models import (
    Activity,
    EscalationLevel,
    EscalationOutcome,
    EscalationTarget,
    Process,
    Queue,
    RaciRole,
)
from workflows.services import raci


@dataclass
class Chain:
    process: Process
    queue: Queue
    escalations: Queue
    owner: object
    legal: object
    watcher: object
    director: object


def make_chain(queue, *, outcome=EscalationOutcome.REJECT, consult_required=True) -> Chain:
    """Level 1: the Accountable, 2 h, asks the Consulted. Level 2: the director, re-queued
    into an escalations queue, 4 h, ending in ``outcome``."""
    process = Process.objects.create(slug="invoices", name="Invoices")
    queue.process = process
    queue.save(update_fields=["process"])
    escalations = QueueFactory(slug="escalations", name="Escalations", process=process)
    owner = UserFactory(username="owner")
    legal = UserFactory(username="legal")
    watcher = UserFactory(username="watcher")
    director = UserFactory(username="director")
    finance = Group.objects.create(name="finance")
    watcher.groups.add(finance)
    responsible = list(queue.members.order_by("pk"))
    raci.set_assignments(process=process, activity=Activity.REVIEW,
                         role=RaciRole.RESPONSIBLE, users=responsible, actor=SYSTEM)
    raci.set_assignments(process=process, activity=Activity.ESCALATION,
                         role=RaciRole.ACCOUNTABLE, users=[owner], actor=SYSTEM)
    raci.set_assignments(process=process, activity=Activity.ESCALATION,
                         role=RaciRole.CONSULTED, users=[legal], actor=SYSTEM)
    raci.set_assignments(process=process, activity=Activity.ESCALATION,
                         role=RaciRole.INFORMED, users=[watcher], groups=[finance],
                         actor=SYSTEM)
    EscalationLevel.objects.create(process=process, level=1,
                                   target=EscalationTarget.ACCOUNTABLE,
                                   time_limit=timedelta(hours=2), consult=True,
                                   consult_required=consult_required)
    second = EscalationLevel.objects.create(process=process, level=2,
                                            target=EscalationTarget.USERS, queue=escalations,
                                            time_limit=timedelta(hours=4), outcome=outcome)
    second.users.add(director)
    return Chain(process=process, queue=queue, escalations=escalations, owner=owner,
                 legal=legal, watcher=watcher, director=director)
