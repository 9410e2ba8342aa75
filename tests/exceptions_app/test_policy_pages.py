"""The policy release pages: editor, live rule check, steps, diff, approvals, scope."""

import pytest
from django.test import Client
from django.urls import reverse

from exceptions_app.demo import data
from exceptions_app.models import PolicyStatus, PolicyVersion
from exceptions_app.services.policies import (
    RuleSpec,
    policy_approve,
    policy_create_draft,
    policy_propose,
)
from tests.exceptions_app.factories import UseCaseFactory
from tests.factories import UserFactory

RULES = [RuleSpec(name="large", description="Over 50,000", action="review",
                  expression="output.amount > 50000.0", priority=90),
         RuleSpec(name="unsure", description="Under 0.9", action="review",
                  expression="confidence < 0.9", priority=70)]


class Bench:
    def __init__(self):
        self.owner = UserFactory(username="owner")
        self.analyst = UserFactory(username="analyst")
        self.outsider = UserFactory(username="outsider")
        self.use_case = UseCaseFactory(slug="invoice-approval", owner=self.owner,
                                       drafter=self.analyst, input_schema=data.INPUT_SCHEMA,
                                       output_schema=data.OUTPUT_SCHEMA)
        self.policy = policy_create_draft(use_case=self.use_case, text="# Invoices",
                                          rules=RULES, author=self.analyst)

    def client(self, person) -> Client:
        client = Client()
        client.force_login(person)
        return client


@pytest.fixture
def bench(db):
    return Bench()


def url(name, **kwargs):
    return reverse(name, kwargs={"slug": "invoice-approval", **kwargs})


def editor_post(policy, rows, *, intent="save", text="# Invoices"):
    body = {"intent": intent, "text": text, "default_action": "review",
            "default_reason": "Everything else is reviewed", "default_priority": 50,
            "rules-TOTAL_FORMS": len(rows), "rules-INITIAL_FORMS": 0,
            "rules-MIN_NUM_FORMS": 0, "rules-MAX_NUM_FORMS": 1000}
    for index, row in enumerate(rows):
        body.update({f"rules-{index}-{key}": value for key, value in row.items()
                     if value is not None})
    return body


def row(order, name, expression, action="review", delete=False):
    return {"ORDER": order, "name": name, "description": f"{name} rule",
            "expression": expression, "action": action, "priority": 50,
            "DELETE": "on" if delete else None}


def test_the_editor_shows_the_text_the_rules_and_what_a_rule_can_use(bench):
    page = bench.client(bench.analyst).get(url("policy-edit", number=1)).content.decode()

    assert "# Invoices" in page
    assert "output.amount &gt; 50000.0" in page
    assert "<code>input.po_amount</code>" in page and "a number · PO amount" in page
    assert "<code>confidence</code>" in page and "<code>model_version</code>" in page
    assert 'hx-post="/use-cases/invoice-approval/policies/check-rule/"' in page


def test_saving_reorders_removes_and_adds_rules(bench):
    rows = [row(2, "large", "output.amount > 50000.0"),
            row(1, "unsure", "confidence < 0.9", delete=True),
            row(1, "vendor", "output.vendor != input.vendor")]

    response = bench.client(bench.analyst).post(url("policy-edit", number=1),
                                                editor_post(bench.policy, rows))

    assert response.status_code == 302
    assert list(bench.policy.rules.order_by("position").values_list("name", flat=True)) == [
        "vendor", "large"]


def test_a_rule_that_cannot_work_is_refused_on_the_page_and_nothing_is_saved(bench):
    rows = [row(1, "large", "output.amount > 50000.0"), row(2, "unsure", 'confidence < "0.9"')]

    response = bench.client(bench.analyst).post(url("policy-edit", number=1),
                                                editor_post(bench.policy, rows, text="Changed"))

    assert response.status_code == 400
    page = response.content.decode()
    assert "Rule 2 &#x27;unsure&#x27;, expression: line 1, column 12:" in page
    assert "Write the number without quotes: 0.9." in page
    bench.policy.refresh_from_db()
    assert bench.policy.text == "# Invoices"


def test_add_a_rule_gives_an_empty_row_and_saves_nothing(bench):
    rows = [row(1, "large", "output.amount > 50000.0")]

    response = bench.client(bench.analyst).post(
        url("policy-edit", number=1), editor_post(bench.policy, rows, intent="add-rule"))

    assert response.status_code == 200
    assert 'name="rules-1-expression"' in response.content.decode()
    assert bench.policy.rules.count() == 2


def test_the_live_check_answers_the_problem_or_that_the_rule_fits(bench):
    client = bench.client(bench.analyst)

    bad = client.post(url("policy-check-rule"), {"rules-0-expression": "input.po_amout > 1.0"})
    good = client.post(url("policy-check-rule"), {"rules-0-expression": "input.po_amount > 1.0"})

    assert "the input schema has no field &#x27;po_amout&#x27;" in bad.content.decode()
    assert "Fits the data contract." in good.content.decode()


def test_save_and_propose_then_the_owner_sees_it_waiting_and_approves(bench):
    rows = [row(1, "large", "output.amount > 50000.0")]
    bench.client(bench.analyst).post(url("policy-edit", number=1),
                                     editor_post(bench.policy, rows, intent="propose"))
    owner = bench.client(bench.owner)

    waiting = owner.get(reverse("policy-approvals")).content.decode()
    author_waiting = bench.client(bench.analyst).get(reverse("policy-approvals")).content.decode()
    approved = owner.post(url("policy-step", number=1, step="approve"), follow=True)

    assert "Invoice Approval" in waiting and ">v1<" in waiting
    assert "Nothing waits for your approval." in author_waiting
    assert "v1: approve done; it is now approved." in approved.content.decode()
    assert PolicyVersion.objects.get().status == PolicyStatus.APPROVED


def test_a_step_that_does_not_fit_or_is_not_yours_is_a_message_not_an_error(bench):
    policy_propose(policy=bench.policy, actor=bench.analyst)
    author = bench.client(bench.analyst)

    own = author.post(url("policy-step", number=1, step="approve"), follow=True)
    early = bench.client(bench.owner).post(url("policy-step", number=1, step="activate"),
                                           follow=True)

    assert ("Only the use case&#x27;s Accountable owner (owner) can approve invoice-approval v1."
            in own.content.decode())
    assert ("Cannot activate invoice-approval v1: it is proposed, and only approved versions "
            "can be activated.") in early.content.decode()
    assert PolicyVersion.objects.get().status == PolicyStatus.PROPOSED


def test_the_version_page_offers_only_the_steps_the_person_may_take(bench):
    policy_propose(policy=bench.policy, actor=bench.analyst)

    as_owner = bench.client(bench.owner).get(url("policy-version", number=1)).content.decode()
    as_author = bench.client(bench.analyst).get(url("policy-version", number=1)).content.decode()

    assert ">Approve</button>" in as_owner and ">Send back to draft</button>" in as_owner
    assert ">Approve</button>" not in as_author and ">Send back to draft</button>" in as_author


def test_the_diff_page_shows_the_rule_table_and_the_changed_lines(bench):
    policy_propose(policy=bench.policy, actor=bench.analyst)
    policy_approve(policy=bench.policy, actor=bench.owner)
    policy_create_draft(use_case=bench.use_case, text="# Invoices\n\nTwo people over 50,000.",
                        rules=[RULES[0], RuleSpec(name="unsure", description="Under 0.95",
                                                  action="review",
                                                  expression="confidence < 0.95")],
                        author=bench.analyst)

    page = bench.client(bench.owner).get(url("policy-compare", number=2)).content.decode()

    assert "What changed from v1 to v2" in page
    assert "0 added, 0 removed, 1 changed, 0 moved" in page
    assert "confidence &lt; 0.95" in page and "confidence &lt; 0.9<" in page
    assert "text-diff__line--added" in page and "Two people over 50,000." in page


def test_an_outsider_finds_none_of_the_pages(bench):
    outsider = bench.client(bench.outsider)

    answers = [outsider.get(url("policy-versions")).status_code,
               outsider.get(url("policy-version", number=1)).status_code,
               outsider.get(url("policy-edit", number=1)).status_code,
               outsider.get(url("policy-compare", number=1)).status_code,
               outsider.post(url("policy-check-rule"), {"expression": "true"}).status_code,
               outsider.post(url("policy-new")).status_code,
               outsider.post(url("policy-step", number=1, step="propose")).status_code]

    assert answers == [404] * 7
    assert "Nothing waits" in outsider.get(reverse("policy-approvals")).content.decode()


def test_a_new_draft_starts_from_the_active_version(bench):
    response = bench.client(bench.analyst).post(url("policy-new"), follow=True)

    assert response.redirect_chain[-1][0] == url("policy-edit", number=2)
    second = PolicyVersion.objects.get(number=2)
    assert (second.text, second.rules.count()) == ("# Invoices", 2)


def test_the_use_case_page_links_to_the_releases_only_for_policy_people(bench):
    reviewer = UserFactory(username="reviewer")
    bench.use_case.review_queue.members.add(reviewer)
    link = "Draft, approve, compare and roll back"

    as_owner = bench.client(bench.owner).get(reverse("use-case", args=["invoice-approval"]))
    as_reviewer = bench.client(reviewer).get(reverse("use-case", args=["invoice-approval"]))

    assert link in as_owner.content.decode()
    assert as_reviewer.status_code == 200 and link not in as_reviewer.content.decode()
