"""One active version and one approval under real concurrency, on PostgreSQL."""

import pytest

from exceptions_app.models import PolicyStatus, PolicyVersion
from exceptions_app.services.policies import (
    PolicyConflict,
    RuleSpec,
    policy_activate,
    policy_approve,
    policy_create_draft,
    policy_propose,
)
from tests.concurrency import run_concurrently
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory
from workflows.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RULES = [RuleSpec(name="unsure", description="Under 0.9", expression="confidence < 0.9",
                  action="review")]


def proposed(use_case, author):
    policy = policy_create_draft(use_case=use_case, text="Check the unsure ones.",
                                 rules=RULES, author=author)
    return policy_propose(policy=policy, actor=author)


def test_versions_activated_at_once_leave_exactly_one_active():
    owner, analyst = UserFactory(), UserFactory()
    use_case = UseCaseFactory(owner=owner, drafter=analyst)
    versions = [policy_approve(policy=proposed(use_case, analyst), actor=owner)
                for _ in range(4)]

    outcomes = run_concurrently(*[lambda v=v: policy_activate(policy=v, actor=owner)
                                  for v in versions], return_exceptions=True)

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    statuses = sorted(PolicyVersion.objects.values_list("status", flat=True))
    assert statuses == [PolicyStatus.ACTIVE] + [PolicyStatus.RETIRED] * 3
    assert AuditEvent.objects.filter(verb="policy.activated").count() == 4
    assert AuditEvent.objects.filter(verb="policy.retired").count() == 3


def test_two_owners_approving_at_once_approve_once():
    owner, analyst = UserFactory(is_superuser=True), UserFactory()
    use_case = UseCaseFactory(owner=UserFactory(), drafter=analyst)
    policy = proposed(use_case, analyst)

    outcomes = run_concurrently(lambda: policy_approve(policy=policy, actor=owner),
                                lambda: policy_approve(policy=policy, actor=owner),
                                return_exceptions=True)

    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], PolicyConflict)
    assert AuditEvent.objects.filter(verb="policy.approved").count() == 1
