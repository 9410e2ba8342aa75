"""Policy releases over the API: drafting, the lifecycle's steps, the diff, scope (I8)."""

import pytest
from django.urls import reverse

from exceptions_app.demo import data
from exceptions_app.models import PolicyStatus, PolicyVersion
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory, client_for
from workflows.models import AuditEvent

RULES = [
    {"name": "large", "description": "Over 50,000: two people", "action": "review",
     "expression": "output.amount > 50000.0", "priority": 90, "four_eyes": True},
    {"name": "unsure", "description": "Under 0.9: a person checks", "action": "review",
     "expression": "confidence < 0.9", "priority": 70},
    {"name": "small", "description": "Under 5,000: approved", "action": "auto",
     "expression": "output.amount < 5000.0"},
]
DRAFT = {"text": "# Invoices\n\nLarge ones need two people.", "rules": RULES,
         "default_action": "review", "default_reason": "Everything else is reviewed"}


class People:
    def __init__(self):
        self.owner = UserFactory(username="owner")
        self.analyst = UserFactory(username="analyst")
        self.outsider = UserFactory(username="outsider")
        self.use_case = UseCaseFactory(slug="invoice-approval", owner=self.owner,
                                       drafter=self.analyst, input_schema=data.INPUT_SCHEMA,
                                       output_schema=data.OUTPUT_SCHEMA)


@pytest.fixture
def people(db):
    return People()


def url(name, *, number=None, slug="invoice-approval"):
    kwargs = {"slug": slug} if number is None else {"slug": slug, "number": number}
    return reverse(name, kwargs=kwargs)


def draft(people, **changes) -> dict:
    response = client_for(people.analyst).post(url("policy-list"), {**DRAFT, **changes},
                                               format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def step(person, name, number, **body):
    return client_for(person).post(url(f"policy-{name}", number=number), body, format="json")


def test_a_draft_goes_through_its_whole_life_over_the_api(people):
    created = draft(people)
    assert (created["number"], created["status"], created["steps"]) == (1, "draft",
                                                                        ["edit", "propose"])
    assert [rule["name"] for rule in created["rules"]] == ["large", "unsure", "small"]

    changed = client_for(people.analyst).patch(url("policy-detail", number=1),
                                               {"text": "# Invoices, clearer"}, format="json")
    assert changed.status_code == 200 and changed.json()["text"] == "# Invoices, clearer"
    assert step(people.analyst, "propose", 1).json()["status"] == "proposed"
    assert client_for(people.owner).get(url("policy-detail", number=1)).json()["steps"] == [
        "approve", "send_back"]
    assert step(people.owner, "approve", 1).json()["status"] == "approved"
    activated = step(people.owner, "activate", 1).json()

    assert (activated["status"], activated["approved_by"]) == ("active", "owner")
    assert list(AuditEvent.objects.filter(object_type="policy_version").order_by("id")
                .values_list("verb", flat=True)) == [
        "policy.drafted", "policy.edited", "policy.proposed", "policy.approved",
        "policy.activated"]


def test_a_rule_comparing_a_number_with_text_is_refused_with_its_position(people):
    rules = [RULES[0], {**RULES[1], "expression": 'confidence < "0.9"'}]

    response = client_for(people.analyst).post(url("policy-list"), {**DRAFT, "rules": rules},
                                               format="json")

    assert response.status_code == 400
    [problem] = response.json()["rules"]
    assert problem.startswith("Rule 2 'unsure', expression: line 1, column 12: ")
    assert "Write the number without quotes: 0.9." in problem
    assert not PolicyVersion.objects.exists()


def test_one_rule_is_checked_alone_against_the_contract(people):
    client = client_for(people.analyst)

    typo = client.post(url("policy-rule-check"), {"expression": "input.po_amout > 1.0"},
                       format="json").json()
    fine = client.post(url("policy-rule-check"), {"expression": "input.po_amount > 1.0"},
                       format="json").json()

    assert typo["problems"][0].startswith("line 1, column 7: the input schema has no field "
                                          "'po_amout'")
    assert fine == {"problems": []}


def test_the_author_cannot_approve_and_gets_403(people):
    draft(people)
    step(people.analyst, "propose", 1)

    refused = step(people.analyst, "approve", 1)

    assert refused.status_code == 403
    assert PolicyVersion.objects.get().status == PolicyStatus.PROPOSED


def test_a_step_that_does_not_fit_the_status_is_409_with_the_status(people):
    draft(people)

    approve = step(people.owner, "approve", 1)
    edit = client_for(people.analyst).patch(url("policy-detail", number=1), {"text": "x"},
                                            format="json")
    step(people.analyst, "propose", 1)
    step(people.owner, "approve", 1)
    frozen = client_for(people.analyst).patch(url("policy-detail", number=1),
                                              {"text": "Sneaky"}, format="json")

    assert approve.status_code == 409
    assert approve.json() == {"detail": "Cannot approve invoice-approval v1: it is draft, and "
                                        "only proposed versions can be approved.",
                              "status": "draft"}
    assert edit.status_code == 200
    assert frozen.status_code == 409 and frozen.json()["status"] == "approved"
    assert PolicyVersion.objects.get().text == "x"


def test_rollback_over_the_api_needs_a_reason_and_reactivates_the_version(people):
    for number in (1, 2):
        draft(people)
        step(people.analyst, "propose", number)
        step(people.owner, "approve", number)
        step(people.owner, "activate", number)

    unexplained = step(people.owner, "rollback", 1, reason="")
    rolled_back = step(people.owner, "rollback", 1, reason="v2 misroutes large invoices")

    assert unexplained.status_code == 400 and unexplained.json() == {
        "reason": ["Say why you roll back."]}
    assert rolled_back.status_code == 200 and rolled_back.json()["status"] == "active"
    assert dict(PolicyVersion.objects.values_list("number", "status")) == {1: "active",
                                                                          2: "retired"}


def test_the_diff_names_rules_added_removed_and_changed_and_the_text_lines(people):
    draft(people)
    draft(people, text="# Invoices\n\nLarge ones need two people.\nSmall ones pass.",
          rules=[{**RULES[1], "expression": "confidence < 0.95"}, RULES[2],
                 {"name": "vendor", "description": "Vendor differs", "action": "review",
                  "expression": "output.vendor != input.vendor"}])

    diff = client_for(people.owner).get(url("policy-diff", number=2) + "?against=1").json()

    assert (diff["from"], diff["to"], diff["text_changed"]) == (1, 2, True)
    assert [line["text"] for line in diff["text"] if line["kind"] == "added"] == [
        "Small ones pass."]
    assert [(rule["kind"], rule["name"], rule["fields"]) for rule in diff["rules"]] == [
        ("removed", "large", []), ("changed", "unsure", ["expression"]),
        ("same", "small", []), ("added", "vendor", [])]
    unsure = diff["rules"][1]
    assert (unsure["before"]["expression"], unsure["after"]["expression"]) == (
        "confidence < 0.9", "confidence < 0.95")


def test_an_outsider_finds_no_policies_and_cannot_draft(people):
    draft(people)
    outsider = client_for(people.outsider)

    answers = [outsider.get(url("policy-list")).status_code,
               outsider.get(url("policy-detail", number=1)).status_code,
               outsider.get(url("policy-diff", number=1) + "?against=1").status_code,
               outsider.post(url("policy-list"), DRAFT, format="json").status_code,
               outsider.post(url("policy-approve", number=1)).status_code]

    assert answers == [404] * 5
    assert PolicyVersion.objects.count() == 1


def test_a_version_the_use_case_does_not_have_is_404(people):
    assert client_for(people.owner).get(url("policy-detail", number=7)).status_code == 404
