"""Read queries for policy releases: whose policies a person may see, their versions,
and the proposals waiting for a person's approval.

Scope (I8): a manager or an auditor (reading) sees every use case's policies; anyone
else those of the use cases whose RACI matrix names them (directly or through a group)
Responsible or Accountable for ``policy_change``, or Accountable for ``review`` (the
business owner).
Everything else is absent: the pages and the API answer 404.
"""

from django.db.models import Q, QuerySet

from exceptions_app.activities import DomainActivity
from exceptions_app.models import PolicyStatus, PolicyVersion, UseCase
from exceptions_app.services.policies import may_approve, may_draft
from workflows.models import Activity, RaciAssignment, RaciRole, reads_everything


def policy_use_cases(*, user) -> QuerySet[UseCase]:
    """The use cases whose policy versions ``user`` may read (and, unless an auditor,
    draft and propose: the services decide who may take each step)."""
    if not (user and user.is_authenticated and user.is_active):
        return UseCase.objects.none()
    if user.is_superuser or reads_everything(user):
        return UseCase.objects.all()
    cells = RaciAssignment.objects.filter(
        Q(activity=DomainActivity.POLICY_CHANGE,
          role__in=[RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE])
        | Q(activity=Activity.REVIEW, role=RaciRole.ACCOUNTABLE),
    ).filter(Q(user=user) | Q(group__in=user.groups.all()))
    return UseCase.objects.filter(process__in=cells.values("process"))


def may_see_policies(*, user, use_case: UseCase) -> bool:
    """``policy_use_cases`` for one use case; no query for a manager or an auditor."""
    if user and user.is_authenticated and (user.is_superuser or reads_everything(user)):
        return True
    return policy_use_cases(user=user).filter(pk=use_case.pk).exists()


def policy_use_case(*, user, slug: str) -> UseCase | None:
    return policy_use_cases(user=user).select_related("process", "review_queue").filter(
        slug=slug).first()


def versions(*, use_case: UseCase) -> QuerySet[PolicyVersion]:
    """Newest first, with their authors and approvers."""
    return (PolicyVersion.objects.filter(use_case=use_case)
            .select_related("created_by", "approved_by").order_by("-number"))


def version(*, use_case: UseCase, number: int) -> PolicyVersion | None:
    return versions(use_case=use_case).filter(number=number).first()


def proposals_for(*, user) -> list[PolicyVersion]:
    """Proposed versions ``user`` may approve: of use cases they are Accountable for
    policy changes, drafted by someone else (four eyes)."""
    proposed = (PolicyVersion.objects.filter(status=PolicyStatus.PROPOSED,
                                             use_case__in=policy_use_cases(user=user))
                .exclude(created_by=user)
                .select_related("use_case__process", "created_by").order_by("use_case__slug",
                                                                            "number"))
    approvable: dict[int, bool] = {}
    waiting = []
    for policy in proposed:
        if policy.use_case_id not in approvable:
            approvable[policy.use_case_id] = may_approve(user=user, use_case=policy.use_case)
        if approvable[policy.use_case_id]:
            waiting.append(policy)
    return waiting


def steps_for(policy: PolicyVersion, *, user) -> list[str]:
    """The steps of the version's life ``user`` may take now, in the order the pages
    offer them: "edit", "propose", "approve", "send_back", "activate", "rollback"."""
    use_case = policy.use_case
    drafts = may_draft(user=user, use_case=use_case)
    owns = may_approve(user=user, use_case=use_case)
    authored = user.pk == policy.created_by_id
    allowed = {
        PolicyStatus.DRAFT: [("edit", drafts), ("propose", drafts)],
        PolicyStatus.PROPOSED: [("approve", owns and not authored),
                                ("send_back", owns or authored)],
        PolicyStatus.APPROVED: [("activate", owns)],
        PolicyStatus.RETIRED: [("rollback", owns)],
    }.get(policy.status, [])
    return [step for step, may in allowed if may]


def default_comparison(policy: PolicyVersion) -> PolicyVersion | None:
    """What a version is compared with when nobody says: the active one, else the one
    before it (for the active one itself, the one before it)."""
    others = PolicyVersion.objects.filter(use_case_id=policy.use_case_id).exclude(pk=policy.pk)
    active = others.filter(status=PolicyStatus.ACTIVE).first()
    return active or others.filter(number__lt=policy.number).order_by("-number").first()
