"""Who sees which case (I8), asked two ways: the scope's query (``visible_cases``, for
lists and pages) and the rule asked of one loaded case (``may_see``, which the
transitions use). They must agree for every kind of person and every state."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from tests.factories import QueueFactory, UserFactory, make_case, make_manager
from workflows import selectors
from workflows.models import (
    Activity,
    Case,
    CaseState,
    ConsultRequest,
    Process,
    RaciAssignment,
    RaciRole,
)


@pytest.mark.django_db
def test_the_rule_for_one_case_agrees_with_the_scopes_query_for_everyone():
    process = Process.objects.create(slug="invoices", name="Invoices")
    queue = QueueFactory(process=process)
    other_queue = QueueFactory()
    member, through_group, responsible, holder, first, consulted, outsider = (
        UserFactory() for _ in range(7))
    queue.members.add(member)
    group = Group.objects.create(name="reviewers")
    group.user_set.add(through_group)
    queue.member_groups.add(group)
    RaciAssignment.objects.create(process=process, activity=Activity.REVIEW,
                                  role=RaciRole.RESPONSIBLE, user=responsible)
    auditor = UserFactory()
    auditor.user_permissions.add(Permission.objects.get(codename="read_everything"))
    auditor = get_user_model().objects.get(pk=auditor.pk)
    people = [member, through_group, responsible, holder, first, consulted, outsider,
              auditor, make_manager()]
    cases = []
    for home in (queue, other_queue):
        for state in CaseState.values:
            assignee = holder if state in (CaseState.ASSIGNED, CaseState.WAITING) else None
            case = make_case(home, state=state, assignee=assignee,
                             first_reviewer=first if state in (
                                 CaseState.PENDING_APPROVAL, CaseState.RESOLVED) else None)
            ConsultRequest.objects.create(case=case, consultee=consulted, question="View?",
                                          created_at=timezone.now())
            cases.append(case)

    seen_by_someone_not_everyone = 0
    for person in people:
        by_query = set(selectors.visible_cases(user=person).values_list("pk", flat=True))
        for case in cases:
            loaded = Case.objects.get(pk=case.pk)  # as a transition reads it: no scope
            assert selectors.may_see(case=loaded, user=person) == (case.pk in by_query), (
                person.username, case.queue.slug, case.state)
        seen_by_someone_not_everyone += 0 < len(by_query) < len(cases)
    # The rule is not trivially all or nothing: most of these people see part of it.
    assert seen_by_someone_not_everyone >= 6
