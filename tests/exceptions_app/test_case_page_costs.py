"""What the case page of a decision reads (issue 15): the case, the decision with its
policy and use case, the timeline, and the holder's lease, each once; a document or a
consult only when the case has one.

Above that, every signed-in page reads its session, its person, their permissions and
the top bar's counts (4-6 queries here), which these maxima include.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exceptions_app.models import Decision, DecisionDocument, DocumentKind, FetchStatus
from exceptions_app.presenters import presenter
from tests.browser.workbench import build_workbench
from workflows.models import CaseState
from workflows.services import claiming, transitions

pytestmark = pytest.mark.django_db

ORDINARY = "inv-2026-000123"  # low confidence: ordinary review
FOUR_EYES = "inv-2026-000124"  # over 10,000: needs a second person


@pytest.fixture
def bench():
    return build_workbench()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def case_page(client, case) -> tuple[str, list[str]]:
    client.get(reverse("case", args=[case.pk]))  # the first view fills per-process caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("case", args=[case.pk]))
    assert response.status_code == 200
    return response.content.decode(), [query["sql"] for query in queries.captured_queries]


def reads(table: str, sql: list[str]) -> int:
    return sum(query.startswith(f'SELECT "{table}".') for query in sql)


def test_the_holders_case_page_reads_each_thing_it_shows_once(bench):
    case = claiming.claim(case_id=bench.case(ORDINARY).pk, user=bench.reviewer)

    page, sql = case_page(signed_in(bench.reviewer), case)

    assert "Your decision" in page and "Why a person sees this" in page
    # The case, its lease renewed, the decision, the timeline; the top bar's three.
    assert len(sql) <= 10, "\n".join(sql)
    # The case with its queue, people and resolution in one plain statement.
    assert sum(" FROM workflows_case c JOIN " in query for query in sql) == 1
    assert not reads("workflows_case", sql)
    # The decision with its use case, policy and AI system in one plain statement.
    assert sum(' FROM "exceptions_app_decision" t0 JOIN ' in query for query in sql) == 1
    assert not reads("exceptions_app_decision", sql)
    assert sum(' FROM "workflows_auditevent" m ' in query for query in sql) == 1  # plain
    assert not reads("exceptions_app_decisiondocument", sql)
    assert not reads("workflows_consultrequest", sql)
    assert not reads("workflows_user", sql[2:])  # the timeline's people were read with it


def test_a_waiting_case_offers_its_member_the_claim_without_asking_about_the_queue(bench):
    page, sql = case_page(signed_in(bench.reviewer), bench.case(ORDINARY))

    assert "Take this case" in page
    assert len(sql) <= 9, "\n".join(sql)


def test_the_approvers_case_page_reads_no_more_than_the_holders(bench):
    case = claiming.claim(case_id=bench.case(FOUR_EYES).pk, user=bench.reviewer)
    transitions.resolve(case_id=case.pk, user=bench.reviewer, verdict="accepted",
                        output=None, reason_code="")
    case.refresh_from_db()
    assert case.state == CaseState.PENDING_APPROVAL

    page, sql = case_page(signed_in(bench.second_reviewer), case)

    assert "Approve the resolution" in page
    assert len(sql) <= 10, "\n".join(sql)


def test_a_document_is_read_only_for_a_decision_that_has_one(bench):
    case = bench.case(ORDINARY)
    DecisionDocument.objects.create(
        decision=case.decision, kind=DocumentKind.URL, fetch_status=FetchStatus.FAILED,
        source_url="https://docs.example.com/inv-123.pdf", fetch_error="timed out")

    page, sql = case_page(signed_in(bench.reviewer), case)

    assert reads("exceptions_app_decisiondocument", sql) == 1
    assert "Source document" in page and "https://docs.example.com/inv-123.pdf" in page
    assert "timed out" in page


def test_a_case_pages_decision_is_read_as_a_list_reads_it(bench):
    documented = bench.case(ORDINARY)
    DecisionDocument.objects.create(
        decision=documented.decision, kind=DocumentKind.URL, fetch_status=FetchStatus.FAILED,
        source_url="https://docs.example.com/inv-123.pdf", fetch_error="timed out")
    cases = [documented, bench.case(FOUR_EYES)]
    listed = presenter.present_many(cases=cases)

    for case in cases:
        alone = presenter.present(case=case)
        (panel,), (listed_panel,) = alone.panels, listed[case.pk].panels
        decision, listed_decision = panel.context["decision"], listed_panel.context["decision"]
        fields = [field.attname for field in Decision._meta.concrete_fields]
        assert ([getattr(decision, name) for name in fields]
                == [getattr(listed_decision, name) for name in fields])
        for relation in ("use_case", "policy_version", "ai_system"):
            assert (getattr(decision, relation).__dict__.keys()
                    == getattr(listed_decision, relation).__dict__.keys())
            assert getattr(decision, relation).pk == getattr(listed_decision, relation).pk
        assert decision.has_documents is listed_decision.has_documents
        assert panel.context["documents"] == listed_panel.context["documents"]
        assert alone.summary == listed[case.pk].summary
        assert alone.breadcrumb == listed[case.pk].breadcrumb
    assert [presenter.present(case=case).panels[0].context["decision"].has_documents
            for case in cases] == [True, False]
