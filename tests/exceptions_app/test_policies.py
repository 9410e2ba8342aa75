"""Policy versions' lifecycle: draft, propose, approve (frozen), activate, retire, roll back."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from exceptions_app.activities import DomainActivity
from exceptions_app.models import PolicyStatus, PolicyVersion, Rule
from exceptions_app.services.policies import (
    PolicyConflict,
    RuleSpec,
    policy_activate,
    policy_approve,
    policy_create_draft,
    policy_propose,
    policy_rollback,
    policy_send_back,
    policy_update_draft,
)
from tests.exceptions_app.factories import AiSystemFactory, UseCaseFactory
from tests.exceptions_app.intake_support import client_for, invoice
from tests.factories import UserFactory
from workflows.models import AuditEvent, RaciRole
from workflows.services import raci

RULES = [
    RuleSpec(name="huge-amount", description="Over 50,000: rejected",
             expression="output.amount > 50000.0", action="reject"),
    RuleSpec(name="low-confidence", description="Under 0.9: a person checks it",
             expression="confidence < 0.9", action="review", priority=70),
    RuleSpec(name="matches-po", description="Matches its PO within 2%: approved",
             expression="output.amount <= input.po_amount * 1.02", action="auto"),
]


@pytest.fixture
def owner():
    return UserFactory(username="owner")


@pytest.fixture
def analyst():
    return UserFactory(username="analyst")


@pytest.fixture
def use_case(owner, analyst):
    return UseCaseFactory(slug="invoice-approval", owner=owner, drafter=analyst)


def draft(use_case, author, *, rules=RULES, text="Approve invoices that match their PO."):
    return policy_create_draft(use_case=use_case, text=text, rules=rules, author=author)


def approved(use_case, author, owner, **kwargs):
    policy = draft(use_case, author, **kwargs)
    policy_propose(policy=policy, actor=author)
    return policy_approve(policy=policy, actor=owner)


def verbs(policy) -> list[str]:
    return list(AuditEvent.objects.filter(object_type="policy_version", object_id=str(policy.pk))
                .order_by("id").values_list("verb", flat=True))


@pytest.mark.django_db
def test_a_draft_is_numbered_after_the_latest_version_and_keeps_its_rules(use_case, analyst):
    first = draft(use_case, analyst)
    second = draft(use_case, analyst)

    assert (first.number, second.number) == (1, 2)
    assert second.status == PolicyStatus.DRAFT
    assert list(second.rules.values_list("position", "name", "action")) == [
        (1, "huge-amount", "reject"), (2, "low-confidence", "review"), (3, "matches-po", "auto")]
    event = AuditEvent.objects.get(verb="policy.drafted", object_id=str(second.pk))
    assert event.actor == analyst
    assert [rule["name"] for rule in event.data["rules"]] == [
        "huge-amount", "low-confidence", "matches-po"]


@pytest.mark.django_db
def test_a_bad_expression_is_refused_naming_the_rule_and_position(use_case, analyst):
    rules = [RULES[0], RuleSpec(name="typo", description="Broken", action="review",
                                expression="confidence < ")]

    with pytest.raises(ValidationError) as refused:
        draft(use_case, analyst, rules=rules)

    [message] = refused.value.message_dict["rules"]
    assert message.startswith("Rule 2 'typo', expression: line 1, column 14: Syntax error")
    assert not PolicyVersion.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("spec", "problem"), [
    (RuleSpec(name="bare", description="d", expression="amount > 1.0", action="auto"),
     "Rule 1 'bare', expression: Unknown name 'amount'"),
    (RuleSpec(name="odd", description="d", expression="true", action="approve"),
     "Rule 1 'odd', action: Value 'approve' is not a valid choice."),
    (RuleSpec(name="Not A Slug", description="d", expression="true", action="auto"),
     "Rule 1 'Not A Slug', name: Enter a valid “slug”"),
])
def test_every_rule_problem_is_named(use_case, analyst, spec, problem):
    with pytest.raises(ValidationError) as refused:
        draft(use_case, analyst, rules=[spec])

    assert refused.value.message_dict["rules"][0].startswith(problem)


@pytest.mark.django_db
def test_two_rules_cannot_share_a_name(use_case, analyst):
    with pytest.raises(ValidationError, match="Rule 2 'huge-amount': another rule has this name"):
        draft(use_case, analyst, rules=[RULES[0], RULES[0]])


@pytest.mark.django_db
def test_a_draft_can_be_edited_and_the_edit_is_audited(use_case, analyst):
    policy = draft(use_case, analyst)

    policy_update_draft(policy=policy, actor=analyst, text="New words", rules=RULES[:1])

    policy.refresh_from_db()
    assert policy.text == "New words"
    assert list(policy.rules.values_list("name", flat=True)) == ["huge-amount"]
    event = AuditEvent.objects.get(verb="policy.edited")
    assert len(event.data["before"]["rules"]) == 3
    assert len(event.data["after"]["rules"]) == 1


@pytest.mark.django_db
def test_a_refused_edit_changes_nothing(use_case, analyst):
    policy = draft(use_case, analyst)
    bad = [RuleSpec(name="x", description="d", expression="1 +", action="auto")]

    with pytest.raises(ValidationError):
        policy_update_draft(policy=policy, actor=analyst, text="Changed", rules=bad)

    policy.refresh_from_db()
    assert policy.text == "Approve invoices that match their PO."
    assert policy.rules.count() == 3


@pytest.mark.django_db
def test_the_raci_matrix_decides_who_approves_for_the_use_case(use_case, analyst, owner):
    successor = UserFactory(username="successor")
    raci.set_assignments(process=use_case.process, activity=DomainActivity.POLICY_CHANGE,
                         role=RaciRole.ACCOUNTABLE, users=[successor],
                         actor=UserFactory(username="root", is_superuser=True))
    policy = draft(use_case, analyst)
    policy_propose(policy=policy, actor=analyst)

    with pytest.raises(PermissionDenied, match=r"Accountable owner \(successor\)"):
        policy_approve(policy=policy, actor=owner)
    policy_approve(policy=policy, actor=successor)

    assert PolicyVersion.objects.get(pk=policy.pk).approved_by == successor


@pytest.mark.django_db
def test_approval_is_the_owners_and_never_the_authors(use_case, analyst, owner):
    policy = draft(use_case, analyst)
    policy_propose(policy=policy, actor=analyst)

    with pytest.raises(PermissionDenied, match="Only the use case's Accountable owner"):
        policy_approve(policy=policy, actor=analyst)
    with pytest.raises(PermissionDenied, match="Only the use case's Accountable owner"):
        policy_approve(policy=policy, actor=UserFactory(username="outsider"))
    policy_approve(policy=policy, actor=owner)

    policy.refresh_from_db()
    assert (policy.status, policy.approved_by) == (PolicyStatus.APPROVED, owner)
    assert policy.approved_at is not None
    assert verbs(policy) == ["policy.drafted", "policy.proposed", "policy.approved"]


@pytest.mark.django_db
def test_the_owner_cannot_approve_their_own_draft(use_case, owner):
    policy = draft(use_case, owner)
    policy_propose(policy=policy, actor=owner)

    with pytest.raises(PermissionDenied, match="another person"):
        policy_approve(policy=policy, actor=owner)


@pytest.mark.django_db
def test_only_a_proposed_version_can_be_approved(use_case, analyst, owner):
    policy = draft(use_case, analyst)

    with pytest.raises(PolicyConflict, match="it is draft, and only proposed versions"):
        policy_approve(policy=policy, actor=owner)


@pytest.mark.django_db
def test_an_approved_version_is_frozen(use_case, analyst, owner):
    policy = approved(use_case, analyst, owner)

    with pytest.raises(PolicyConflict, match="only a draft can change"):
        policy_update_draft(policy=policy, actor=analyst, text="Sneaky")
    with pytest.raises(PolicyConflict):
        policy_update_draft(policy=policy, actor=owner, rules=[])

    policy.refresh_from_db()
    assert policy.text == "Approve invoices that match their PO."
    assert policy.rules.count() == 3


@pytest.mark.django_db
def test_a_policy_that_passes_everything_unseen_cannot_be_proposed(use_case, analyst):
    policy = policy_create_draft(use_case=use_case, text="Pass all", rules=[], author=analyst,
                                 default_action="auto")

    with pytest.raises(ValidationError, match="let every decision through unseen"):
        policy_propose(policy=policy, actor=analyst)


@pytest.mark.django_db
def test_activating_retires_the_previous_version(use_case, analyst, owner):
    first = approved(use_case, analyst, owner)
    policy_activate(policy=first, actor=owner)
    second = approved(use_case, analyst, owner)

    policy_activate(policy=second, actor=owner)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (PolicyStatus.RETIRED, PolicyStatus.ACTIVE)
    assert PolicyVersion.objects.filter(use_case=use_case, status="active").count() == 1
    activated = AuditEvent.objects.get(verb="policy.activated", object_id=str(second.pk))
    assert activated.data == {"use_case": "invoice-approval", "number": 2, "previous": 1,
                              "rollback": False}
    assert verbs(first)[-1] == "policy.retired"


@pytest.mark.django_db
def test_rollback_reactivates_an_earlier_version_in_one_step_with_its_reason(
        use_case, analyst, owner):
    first = approved(use_case, analyst, owner)
    policy_activate(policy=first, actor=owner)
    second = approved(use_case, analyst, owner)
    policy_activate(policy=second, actor=owner)

    policy_rollback(policy=first, actor=owner, reason="v2 sends every invoice to review")

    statuses = dict(PolicyVersion.objects.values_list("number", "status"))
    assert statuses == {1: "active", 2: "retired"}
    event = AuditEvent.objects.filter(verb="policy.rolled_back").get()
    assert event.data == {"use_case": "invoice-approval", "number": 1, "previous": 2,
                          "rollback": True, "reason": "v2 sends every invoice to review"}
    assert verbs(first)[-1] == "policy.rolled_back"
    assert verbs(second)[-1] == "policy.retired"
    assert PolicyVersion.objects.count() == 2  # the same version again, not a copy


@pytest.mark.django_db
def test_a_rollback_needs_a_reason_an_owner_and_an_earlier_approved_version(
        use_case, analyst, owner):
    first = approved(use_case, analyst, owner)
    policy_activate(policy=first, actor=owner)
    second = approved(use_case, analyst, owner)
    policy_activate(policy=second, actor=owner)
    third = draft(use_case, analyst)

    with pytest.raises(ValidationError, match="Say why you roll back"):
        policy_rollback(policy=first, actor=owner, reason="  ")
    with pytest.raises(PermissionDenied):
        policy_rollback(policy=first, actor=analyst, reason="I prefer it")
    with pytest.raises(PolicyConflict, match="it is draft"):
        policy_rollback(policy=third, actor=owner, reason="never approved")
    with pytest.raises(PolicyConflict, match="it is active"):
        policy_rollback(policy=second, actor=owner, reason="already active")
    with pytest.raises(PolicyConflict, match="only approved versions can be activated"):
        policy_activate(policy=first, actor=owner)  # going back is a rollback, with a reason

    assert dict(PolicyVersion.objects.values_list("number", "status")) == {
        1: "retired", 2: "active", 3: "draft"}
    assert not AuditEvent.objects.filter(verb="policy.rolled_back").exists()


@pytest.mark.django_db
def test_only_the_owner_activates_and_only_approved_versions(use_case, analyst, owner):
    policy = draft(use_case, analyst)
    with pytest.raises(PolicyConflict, match="only approved versions can be activated"):
        policy_activate(policy=policy, actor=owner)
    policy_propose(policy=policy, actor=analyst)
    policy_approve(policy=policy, actor=owner)

    with pytest.raises(PermissionDenied):
        policy_activate(policy=policy, actor=analyst)

    policy.refresh_from_db()
    assert policy.status == PolicyStatus.APPROVED


@pytest.mark.django_db
def test_the_database_holds_one_active_version_per_use_case(use_case, analyst, owner):
    first = approved(use_case, analyst, owner)
    policy_activate(policy=first, actor=owner)
    second = approved(use_case, analyst, owner)

    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=second.pk).update(status=PolicyStatus.ACTIVE)


@pytest.mark.django_db
def test_the_status_changes_only_through_its_transitions(use_case, analyst):
    policy = draft(use_case, analyst)

    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        policy.status = PolicyStatus.APPROVED


@pytest.mark.django_db
def test_only_the_people_the_matrix_names_draft_and_propose(use_case, analyst, owner):
    outsider = UserFactory(username="outsider")

    with pytest.raises(PermissionDenied, match="Responsible or Accountable for policy"):
        draft(use_case, outsider)
    policy = draft(use_case, analyst)
    with pytest.raises(PermissionDenied):
        policy_update_draft(policy=policy, actor=outsider, text="Mine now")
    with pytest.raises(PermissionDenied):
        policy_propose(policy=policy, actor=outsider)
    policy_propose(policy=policy, actor=owner)  # the owner may propose a colleague's draft

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.PROPOSED


@pytest.mark.django_db
def test_a_proposal_sent_back_is_a_draft_again_with_the_reason(use_case, analyst, owner):
    policy = draft(use_case, analyst)
    policy_propose(policy=policy, actor=analyst)

    with pytest.raises(ValidationError, match="Say why it goes back to draft"):
        policy_send_back(policy=policy, actor=owner, reason="")
    with pytest.raises(PermissionDenied):
        policy_send_back(policy=policy, actor=UserFactory(), reason="no")
    policy_send_back(policy=policy, actor=owner, reason="Say what happens in other currencies")
    policy_update_draft(policy=policy, actor=analyst, text="Amounts in EUR only.")

    policy.refresh_from_db()
    assert (policy.status, policy.text) == (PolicyStatus.DRAFT, "Amounts in EUR only.")
    event = AuditEvent.objects.get(verb="policy.sent_back")
    assert event.data["reason"] == "Say what happens in other currencies"
    with pytest.raises(PolicyConflict, match="only proposed versions can be sent back"):
        policy_send_back(policy=policy, actor=owner, reason="again")


@pytest.mark.django_db
def test_a_rule_that_fails_on_every_decision_is_refused_when_proposed(use_case, analyst):
    """A draft saved before type-checking (or before the contract changed) is checked
    again when it is proposed."""
    policy = draft(use_case, analyst)
    Rule.objects.filter(policy=policy, name="low-confidence").update(
        expression='confidence < "0.9"')

    with pytest.raises(ValidationError) as refused:
        policy_propose(policy=policy, actor=analyst)

    [problem] = refused.value.message_dict["rules"]
    assert problem.startswith("Rule 2 'low-confidence', expression: line 1, column 12: ")
    assert "compares a number (confidence) and text" in problem

    assert PolicyVersion.objects.get(pk=policy.pk).status == PolicyStatus.DRAFT


@pytest.mark.django_db
def test_intake_judges_with_the_newly_active_version(use_case, analyst, owner):
    lenient = approved(use_case, analyst, owner)
    policy_activate(policy=lenient, actor=owner)
    client = client_for(AiSystemFactory(slug="invoice-bot", use_cases=[use_case]))
    first = client.post("/api/v1/decisions/", invoice("inv-1"), format="json").json()
    strict = approved(use_case, analyst, owner, rules=[
        RuleSpec(name="everything", description="Every invoice is reviewed for now",
                 expression="true", action="review")])

    policy_activate(policy=strict, actor=owner)
    second = client.post("/api/v1/decisions/", invoice("inv-2"), format="json").json()
    replay = client.post("/api/v1/decisions/", invoice("inv-1"), format="json").json()

    assert (first["policy_version"], first["route"]) == (1, "auto")
    assert (second["policy_version"], second["route"]) == (2, "review")
    assert replay["policy_version"] == 1  # a replay answers the first answer
    assert Rule.objects.filter(policy=strict).count() == 1


def test_the_documented_lifecycle_is_the_models():
    """docs/ARCHITECTURE.md draws the policy version's transitions; they must be these."""
    documented = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"
    [graph] = re.findall(r"```mermaid\nflowchart LR\n(.*?)```", documented.read_text(),
                         flags=re.S)
    arrows = set(re.findall(r"(\w+) -->\|(\w+)\| (\w+)", graph))

    assert arrows == {(transition.source, transition.name, transition.target)
                      for transition in PolicyVersion().get_all_status_transitions()}
