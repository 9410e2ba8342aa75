"""The use case pages through Django's test client: what a person reads there, who may
read it (I8), and that the page costs a fixed number of queries."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exceptions_app.models import PolicyStatus, PolicyVersion
from tests.browser.workbench import build_workbench
from tests.exceptions_app.factories import PolicyVersionFactory, RuleFactory, UseCaseFactory
from tests.factories import QueueFactory, UserFactory
from workflows.actors import SYSTEM
from workflows.models import Activity, EscalationLevel, Process, RaciRole
from workflows.services import raci

pytestmark = pytest.mark.django_db

INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "po_amount": {"type": "number", "minimum": 0,
                      "description": "The purchase order's amount."},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "lines": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["po_amount"],
}


@pytest.fixture
def bench():
    """The invoice workbench, with a process whose RACI names the owners, an earlier
    retired version and a draft beside the active v3."""
    bench = build_workbench()
    use_case = bench.use_case
    process = Process.objects.create(slug="invoice-approval", name="Invoice approval")
    use_case.process = process
    use_case.description = "Supplier invoices the extractor reads before they are paid."
    use_case.input_schema = INPUT_SCHEMA
    use_case.save()
    bench.queue.process = process
    bench.queue.save()
    owner = bench.owner
    raci.set_assignments(process=process, activity=Activity.REVIEW,
                         role=RaciRole.RESPONSIBLE,
                         users=[bench.reviewer, bench.second_reviewer], actor=SYSTEM)
    raci.set_assignments(process=process, activity=Activity.REVIEW,
                         role=RaciRole.ACCOUNTABLE, users=[owner], actor=SYSTEM)
    raci.set_assignments(process=process, activity=Activity.ESCALATION,
                         role=RaciRole.INFORMED, groups=[Group.objects.create(name="AP leads")],
                         actor=SYSTEM)
    long_ago = timezone.now() - timedelta(days=90)
    PolicyVersionFactory(use_case=use_case, number=1, status=PolicyStatus.RETIRED,
                         text="The first policy.", approved_at=long_ago,
                         activated_at=long_ago)
    PolicyVersionFactory(use_case=use_case, number=4, status=PolicyStatus.DRAFT,
                         text="Next year's policy.", activated_at=None)
    return bench


def page_for(client, user, slug="invoice-approval"):
    client.force_login(user)
    return client.get(reverse("use-case", args=[slug]))


# -- what the page says ---------------------------------------------------------------------

def test_the_page_shows_the_use_case_its_owner_and_its_stage(client, bench):
    response = page_for(client, bench.manager)

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Invoice approval</h1>" in page
    assert "Supplier invoices the extractor reads before they are paid." in page
    assert "Business owner (Accountable): <strong>Olivia Owner</strong>" in page
    # Every stage with its meaning; the use case's own marked as the current step.
    assert 'aria-current="step"' in page
    current = page.split('aria-current="step"', 1)[1].split("</li>", 1)[0]
    assert "Automate" in current and "in-scope decisions pass, a sample is checked" in current
    for meaning in ("every decision is reviewed", "the rules decide, people take the rest",
                    "as automate, with a lower QA sample"):
        assert meaning in page
    # The QA sample rates, and which one applies now.
    assert "100% <span class=\"muted\">(applies now)</span>" in page
    assert "2%" in page and "Invoice QA" in page


def test_the_active_policy_reads_as_text_and_as_rules_in_order(client, bench):
    page = page_for(client, bench.manager).content.decode()

    # The Markdown is rendered, its headings below the page's own.
    assert "<h3>Invoice approval policy</h3>" in page
    assert "<strong>match their purchase order</strong>" in page
    assert 'href="https://example.com/ap" rel="noopener noreferrer nofollow"' in page
    assert "The first policy." not in page  # only the active version's text
    # The rules in their order, each in words, then the default.
    names = ["huge-amount", "large-amount", "low-confidence", "matches-po", "Otherwise"]
    positions = [page.index(f'<span class="rule__name">{name}</span>') for name in names]
    assert positions == sorted(positions)
    assert "Over 10,000: a second person confirms the decision" in page
    assert "<code>output.amount &gt; 10000.0</code>" in page
    large = page[positions[1]:positions[2]]
    assert "Send to review" in large and "priority 60" in large and "Four eyes" in large
    assert "Invoice review (the use case's)" in large
    huge = page[positions[0]:positions[1]]
    assert "Reject" in huge and "priority" not in huge  # a rejection waits in no queue
    default = page[positions[4]:]
    assert "No rule matched: the policy&#x27;s default applies" in default


def test_policy_markdown_cannot_inject_markup(client, bench):
    bench.policy.text = ('Hello <script>alert("x")</script> '
                         '<img src=x onerror="alert(1)"> [me](javascript:alert(2))')
    bench.policy.save()

    page = page_for(client, bench.manager).content.decode()

    policy = page.split('<div class="markdown">', 1)[1].split("</div>", 1)[0]
    assert "<script" not in policy and "onerror" not in policy
    assert "javascript:" not in policy


def test_versions_reason_codes_and_schemas_are_listed(client, bench):
    page = page_for(client, bench.manager).content.decode()

    versions = page.split('id="versions-heading"', 1)[1].split("</section>", 1)[0]
    assert [row.split("</td>")[0] for row in versions.split('data-label="Version">')[1:]] == [
        "v3", "v4", "v1"]
    assert "Retired" in versions and "Draft" in versions
    for label in ("The amount was extracted wrongly", "No matching purchase order"):
        assert label in page
    assert "<code>no-po</code>" in page
    # Input: fields in words and the schema itself, folded.
    assert "Po amount" in page and "The purchase order&#x27;s amount." in page
    assert "one of EUR, USD" in page and "list of object" in page and "at least 0" in page
    assert "&quot;po_amount&quot;: {" in page
    assert page.count('<details class="schema">') == 2
    assert "3 fields" in page and "JSON" in page


def test_the_queues_show_what_waits_in_them(client, bench):
    response = page_for(client, bench.manager)

    queues = {entry.queue.slug: entry for entry in response.context["queues"]}
    assert set(queues) == {"invoice-review", "invoice-qa"}
    assert queues["invoice-review"].roles == ["Review"]
    assert queues["invoice-review"].summary.open_count == 2  # the ordinary and four-eyes cases
    assert queues["invoice-qa"].summary.open_count == 1  # the QA sample
    page = response.content.decode()
    assert '<span class="stat__value">2</span>' in page


def test_the_raci_matrix_answers_who_owns_the_decision(client, bench):
    page = page_for(client, bench.manager).content.decode()

    answer = page.split("Who owns this decision?", 1)[1].split("</section>", 1)[0]
    review = answer.split('<th scope="row">Review</th>', 1)[1].split("</tr>", 1)[0]
    assert "Alice Moreau, Bob Okafor" in review and "Olivia Owner" in review
    assert "AP leads (group)" in answer
    edit = reverse("raci-matrix", args=["invoice-approval"])
    assert f'href="{edit}"' in page  # managers may change it


def test_without_a_process_the_page_says_nobody_is_named(client, bench):
    bench.use_case.process = None
    bench.use_case.save()

    page = page_for(client, bench.manager).content.decode()

    assert "Who owns this decision?" in page
    assert "nobody is named as Responsible, Accountable, Consulted or Informed" in page


def test_without_an_active_policy_the_page_says_decisions_are_refused(client, bench):
    PolicyVersion.objects.filter(pk=bench.policy.pk).update(status=PolicyStatus.RETIRED)

    page = page_for(client, bench.manager).content.decode()

    assert "No policy version is active" in page
    assert "How the policy is enforced" not in page


# -- who may see it (I8) -----------------------------------------------------------------

def test_a_reviewer_of_its_queue_reads_it_but_may_not_edit_the_matrix(client, bench):
    response = page_for(client, bench.reviewer)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Who owns this decision?" in page
    assert reverse("raci-matrix", args=["invoice-approval"]) not in page


def test_a_member_through_a_group_reads_it(client, bench):
    group = Group.objects.create(name="QA desk")
    bench.qa_queue.member_groups.add(group)
    member = UserFactory(username="gina")
    member.groups.add(group)

    assert page_for(client, member).status_code == 200


def test_a_member_of_a_queue_a_rule_sends_cases_to_reads_it(client, bench):
    legal = QueueFactory(slug="legal-review", name="Legal review")
    RuleFactory(policy=bench.policy, position=9, name="legal", action="review",
                expression="input.currency == 'USD'", queue=legal)
    lawyer = UserFactory(username="lara")
    legal.members.add(lawyer)

    response = page_for(client, lawyer)

    assert response.status_code == 200
    queues = {entry.queue.slug: entry for entry in response.context["queues"]}
    assert queues["legal-review"].roles == ["Rule legal"]
    # Waiting counts only for the queues the person works.
    assert queues["legal-review"].summary is not None
    assert queues["invoice-review"].summary is None


def test_a_member_of_an_escalation_desk_reads_it(client, bench):
    desk = QueueFactory(slug="escalations", name="Escalations")
    EscalationLevel.objects.create(process=bench.use_case.process, level=1, queue=desk,
                                   time_limit=timedelta(hours=4))
    clerk = UserFactory(username="eddie")
    desk.members.add(clerk)

    response = page_for(client, clerk)

    assert response.status_code == 200
    roles = {entry.queue.slug: entry.roles for entry in response.context["queues"]}
    assert roles["escalations"] == ["Escalation level 1"]


def test_an_outsider_gets_404_and_does_not_see_it_listed(client, bench):
    client.force_login(bench.outsider)  # reviews claims, not invoices

    assert client.get(reverse("use-case", args=["invoice-approval"])).status_code == 404
    listing = client.get(reverse("use-cases"))
    assert listing.status_code == 200
    assert "Invoice approval" not in listing.content.decode()
    assert "No use cases for you yet" in listing.content.decode()


def test_an_unknown_use_case_is_404(client, bench):
    assert page_for(client, bench.manager, slug="no-such-thing").status_code == 404


def test_anonymous_people_are_asked_to_sign_in(client, bench):
    for url in (reverse("use-cases"), reverse("use-case", args=["invoice-approval"])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_each_person_their_use_cases(client, bench):
    claims = UseCaseFactory(slug="claims-triage", name="Claims triage",
                            review_queue=QueueFactory(slug="claims-review"))
    PolicyVersionFactory(use_case=claims, number=2)

    client.force_login(bench.manager)
    page = client.get(reverse("use-cases")).content.decode()
    assert page.index("Claims triage") < page.index("Invoice approval")
    assert f'href="{reverse("use-case", args=["claims-triage"])}"' in page
    assert "v3" in page and "v2" in page and "Olivia Owner" in page

    client.force_login(bench.reviewer)
    page = client.get(reverse("use-cases")).content.decode()
    assert "Invoice approval" in page and "Claims triage" not in page

    client.force_login(bench.outsider)  # a member of claims-review
    page = client.get(reverse("use-cases")).content.decode()
    assert "Claims triage" in page and "Invoice approval" not in page


# -- cost --------------------------------------------------------------------------------

def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_page_does_a_fixed_number_of_queries(client, bench, django_assert_max_num_queries):
    client.force_login(bench.manager)
    url = reverse("use-case", args=["invoice-approval"])
    small = _queries(client, url)

    # Many more rules, versions, queues, escalation levels and RACI holders.
    for position in range(10, 40):
        queue = QueueFactory(slug=f"desk-{position}")
        RuleFactory(policy=bench.policy, position=position, name=f"rule-{position}",
                    queue=queue, expression="confidence < 0.5")
    for number in range(5, 40):
        PolicyVersionFactory(use_case=bench.use_case, number=number,
                             status=PolicyStatus.RETIRED, activated_at=None)
    for level in range(1, 6):
        EscalationLevel.objects.create(process=bench.use_case.process, level=level,
                                       queue=QueueFactory(slug=f"escalations-{level}"),
                                       time_limit=timedelta(hours=level))
    raci.set_assignments(process=bench.use_case.process, activity=Activity.INCIDENT,
                         role=RaciRole.CONSULTED,
                         users=[UserFactory(username=f"person{n}") for n in range(20)],
                         actor=SYSTEM)

    with django_assert_max_num_queries(small):
        response = client.get(url)
    assert len(response.context["queues"]) == 2 + 30 + 5
    assert small <= 16, small


def test_the_list_does_a_fixed_number_of_queries(client, bench, django_assert_max_num_queries):
    client.force_login(bench.reviewer)
    small = _queries(client, reverse("use-cases"))
    for n in range(20):
        use_case = UseCaseFactory(slug=f"use-case-x{n}", review_queue=bench.queue)
        PolicyVersionFactory(use_case=use_case, number=1)

    with django_assert_max_num_queries(small):
        response = client.get(reverse("use-cases"))
    assert len(response.context["use_cases"]) == 21


# -- navigation --------------------------------------------------------------------------

def test_the_main_navigation_reaches_every_page_and_marks_the_current_one(client, bench):
    client.force_login(bench.manager)
    page = client.get(reverse("use-cases")).content.decode()

    nav = page.split('<nav class="nav" aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    for name in ("approvals", "use-cases", "my-consults", "availability", "notifications",
                 "sla-dashboard", "raci-index", "delivery-log"):
        assert f'href="{reverse(name)}"' in nav, name
    assert f'action="{reverse("next-case")}"' in nav
    assert (f'<a href="{reverse("use-cases")}" aria-current="page">Use cases</a>' in nav)
    assert nav.count('aria-current="page"') == 1


def test_reviewers_do_not_get_the_managers_links(client, bench):
    client.force_login(bench.reviewer)
    page = client.get(reverse("use-case", args=["invoice-approval"])).content.decode()

    nav = page.split('<nav class="nav" aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert f'href="{reverse("use-cases")}" aria-current="page"' in nav
    for name in ("sla-dashboard", "raci-index", "delivery-log"):
        assert f'href="{reverse(name)}"' not in nav, name
    assert f'action="{reverse("next-case")}"' in nav  # alice works two queues


def test_the_home_page_keeps_its_own_next_case_button_only(client, bench):
    client.force_login(bench.reviewer)
    page = client.get(reverse("home")).content.decode()

    assert page.count(f'action="{reverse("next-case")}"') == 1 + 2  # the head's + per queue
    nav = page.split('<nav class="nav" aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert "next-case" not in nav and reverse("next-case") not in nav
