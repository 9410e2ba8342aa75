"""Read queries for the use case pages.

Scope (I8): a manager sees every use case; anyone else sees the use cases whose queues
they are a member of (directly or through a group), and those whose policy they draft or
own (``policy_selectors.policy_use_cases``). A use case's queues are its review
and QA queues, the queues of its process, the queues its active policy's rules send
cases to and the queues its escalation chain re-queues into. Everything else is absent,
which the pages answer with 404.
"""

from dataclasses import dataclass, field

from django.db.models import OuterRef, Q, QuerySet, Subquery

from exceptions_app.models import PolicyStatus, PolicyVersion, Rule, UseCase
from exceptions_app.policy_selectors import policy_use_cases
from workflows import selectors as work
from workflows.models import Activity, EscalationLevel, Queue
from workflows.services import raci

# Earlier policy versions listed on the page; older ones stay in the admin.
EARLIER_VERSIONS_SHOWN = 20


def visible_use_cases(*, user) -> QuerySet[UseCase]:
    """Every use case the user may see (I8)."""
    if not (user and user.is_authenticated):
        return UseCase.objects.none()
    if work.reads_everything(user):
        return UseCase.objects.all()
    member = work.member_queues(user=user).values("pk")
    return UseCase.objects.filter(
        Q(review_queue__in=member) | Q(qa_queue__in=member)
        | Q(process__in=Queue.objects.filter(pk__in=member).values("process"))
        | Q(process__in=EscalationLevel.objects.filter(queue__in=member).values("process"))
        | Q(pk__in=Rule.objects.filter(queue__in=member, policy__status=PolicyStatus.ACTIVE)
            .values("policy__use_case"))
        # Its policy's people (RACI), who may reach no queue of it: they draft and approve.
        | Q(pk__in=policy_use_cases(user=user).values("pk")))


def use_case_list(*, user) -> list[UseCase]:
    """The use cases the user may see with their owners (``owners``: the RACI matrix's
    Accountable), review queue and active version."""
    active = PolicyVersion.objects.filter(use_case=OuterRef("pk"), status=PolicyStatus.ACTIVE)
    use_cases = list(visible_use_cases(user=user).select_related("review_queue")
                     .annotate(active_version=Subquery(active.values("number")[:1]))
                     .order_by("name", "slug"))
    owners = raci.accountable_by_process(process_ids={u.process_id for u in use_cases})
    for use_case in use_cases:
        use_case.owners = owners.get(use_case.process_id, [])
    return use_cases


def use_case_owners(*, use_case: UseCase, activity: str = Activity.REVIEW) -> list:
    """Who is Accountable for the use case's ``activity`` (its business owner for
    ``review``): its process's RACI matrix says, and nothing else."""
    return raci.accountable(process=use_case.process, activity=activity)


@dataclass
class UseCaseQueue:
    """One of the use case's queues: what it is for, and its waiting work if the person
    works it (``summary`` is None otherwise)."""

    queue: Queue
    roles: list[str] = field(default_factory=list)
    summary: work.QueueSummary | None = None


@dataclass
class UseCasePage:
    use_case: UseCase
    policy: PolicyVersion | None  # the active version
    rules: list[Rule]
    earlier: list[PolicyVersion]  # the other versions, newest first
    more_earlier: bool  # there are versions beyond ``earlier``
    queues: list[UseCaseQueue]
    owners: list = field(default_factory=list)  # the Accountable, from the RACI matrix


def use_case_page(*, user, slug: str) -> UseCasePage | None:
    """Everything the use case page shows, in a fixed number of queries; None if the use
    case does not exist or is out of the user's scope."""
    use_case = (visible_use_cases(user=user)
                .select_related("process", "review_queue", "qa_queue")
                .filter(slug=slug).first())
    if use_case is None:
        return None
    versions = PolicyVersion.objects.filter(use_case=use_case)
    policy = (versions.filter(status=PolicyStatus.ACTIVE).select_related("approved_by")
              .first())
    earlier = list(versions.exclude(status=PolicyStatus.ACTIVE).order_by("-number")
                   [:EARLIER_VERSIONS_SHOWN + 1])
    rules = (list(policy.rules.select_related("queue").order_by("position"))
             if policy else [])
    return UseCasePage(use_case=use_case, policy=policy, rules=rules,
                       earlier=earlier[:EARLIER_VERSIONS_SHOWN],
                       more_earlier=len(earlier) > EARLIER_VERSIONS_SHOWN,
                       queues=_queues(user=user, use_case=use_case, rules=rules),
                       owners=use_case_owners(use_case=use_case))


def _queues(*, user, use_case: UseCase, rules: list[Rule]) -> list[UseCaseQueue]:
    """The use case's queues with what each is for; waiting counts for those the user
    works (managers: all). Three queries, however many queues and cases."""
    found: dict[int, UseCaseQueue] = {}

    def add(queue: Queue, role: str) -> None:
        entry = found.setdefault(queue.pk, UseCaseQueue(queue=queue))
        if role not in entry.roles:
            entry.roles.append(role)

    add(use_case.review_queue, "Review")
    if use_case.qa_queue_id:
        add(use_case.qa_queue, "QA sample")
    for rule in rules:
        if rule.queue_id:
            add(rule.queue, f"Rule {rule.name}")
    if use_case.process_id:
        for level in (EscalationLevel.objects.filter(process=use_case.process_id,
                                                     queue__isnull=False)
                      .select_related("queue").order_by("level")):
            add(level.queue, f"Escalation level {level.level}")
        for queue in Queue.objects.filter(process=use_case.process_id).order_by("name"):
            if queue.pk not in found:
                add(queue, "Process queue")
    summaries = {summary.queue.pk: summary
                 for summary in work.queue_summaries(user=user, queue_ids=list(found))}
    for queue_id, entry in found.items():
        entry.summary = summaries.get(queue_id)
    return list(found.values())
