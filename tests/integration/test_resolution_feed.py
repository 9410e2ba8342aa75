"""Resolutions pulled as well as pushed: the AI system's feed of resolutions, a resolved
decision's answer carrying its resolution, the lookup by external id, and resolutions
made while no callback URL was set being sent once one is."""

import threading

import pytest
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from exceptions_app.models import AiSystem
from exceptions_app.services import use_cases
from tests.exceptions_app.factories import AiSystemFactory, issue_key, make_decision_case
from workflows.actors import SYSTEM
from workflows.models import Channel, OutboxMessage, Verdict
from workflows.services import claiming, transitions

FEED = "/api/v1/resolutions/"
DECISIONS = "/api/v1/decisions/"


@pytest.fixture
def system(invoice_use_case, member):
    return AiSystemFactory(slug="invoice-bot", owner=member, use_cases=[invoice_use_case])


def api_of(system: AiSystem) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {issue_key(system)}")
    return client


def resolve(decision, user, verdict=Verdict.ACCEPTED, **kwargs):
    claiming.claim(case_id=decision.case_id, user=user)
    kwargs.setdefault("output", None)
    kwargs.setdefault("reason_code", "")
    return transitions.resolve(case_id=decision.case_id, user=user, verdict=verdict, **kwargs)


def read(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    return [item["external_id"] for item in body["results"]], body["next"]


@pytest.mark.django_db
def test_the_feed_gives_each_resolution_once_in_order_and_what_arrives_later(
        invoice_use_case, system, member):
    decisions = [make_decision_case(invoice_use_case, ai_system=system, external_id=f"inv-{n}")
                 for n in range(4)]
    for decision in decisions[:3]:
        resolve(decision, member)
    client = api_of(system)

    first, after_first = read(client, f"{FEED}?page_size=2")
    rest, after_all = read(client, after_first)
    nothing_yet, still_there = read(client, after_all)
    resolve(decisions[3], member)
    new, _ = read(client, still_there)

    assert (first, rest, nothing_yet, new) == (["inv-0", "inv-1"], ["inv-2"], [], ["inv-3"])
    assert still_there == after_all  # an empty page keeps the reader's place


@pytest.mark.django_db
def test_a_feed_item_says_what_the_webhook_says(invoice_use_case, system, member):
    decision = make_decision_case(invoice_use_case, ai_system=system)
    resolve(decision, member, verdict=Verdict.CORRECTED,
            output={"action": "hold", "amount": 4100.0}, reason_code="wrong-amount",
            notes="The PO says 4,100.")

    [item] = api_of(system).get(FEED).json()["results"]

    assert {key: item[key] for key in item if key != "resolved_at"} == {
        "decision_id": decision.pk, "external_id": "inv-1", "use_case": "invoices",
        "verdict": "corrected", "output": {"action": "hold", "amount": 4100.0},
        "reason_code": "wrong-amount", "notes": "The PO says 4,100.",
        "reviewer": "member", "approver": None, "position": 1}
    decision.case.refresh_from_db()
    assert parse_datetime(item["resolved_at"]) == decision.case.closed_at


@pytest.mark.django_db
def test_feed_items_read_as_values_are_the_decisions_resolutions(
        invoice_use_case, system, member, second_member, manager, django_assert_num_queries):
    """The feed builds its items from plain values; a decision's detail (and the webhook)
    from model instances: every verdict, and a four-eyes approval, read the same."""
    accepted, corrected, rejected = (
        make_decision_case(invoice_use_case, ai_system=system, external_id=name)
        for name in ("inv-a", "inv-c", "inv-r"))
    resolve(accepted, member)
    resolve(corrected, member, verdict=Verdict.CORRECTED, reason_code="wrong-amount",
            output={"action": "hold", "amount": 4100.0}, notes="The PO says 4,100.")
    resolve(rejected, member, verdict=Verdict.REJECTED, reason_code="wrong-amount")
    approved = make_decision_case(invoice_use_case, ai_system=system, external_id="inv-4",
                                  four_eyes=True)
    resolve(approved, second_member)
    transitions.approve(case_id=approved.case_id, user=manager)
    client = api_of(system)

    with django_assert_num_queries(2):  # the key and the page
        items = client.get(FEED).json()["results"]
    details = [client.get(f"{DECISIONS}{decision.pk}/").json()["resolution"]
               for decision in (accepted, corrected, rejected, approved)]

    assert items == details
    assert [item["approver"] for item in items] == [None, None, None, "manager"]
    assert [item["output"] for item in items][1:3] == [{"action": "hold", "amount": 4100.0},
                                                       None]


@pytest.mark.django_db
def test_another_systems_resolutions_are_not_in_the_feed(invoice_use_case, system, member):
    other = AiSystemFactory(slug="other-bot", use_cases=[invoice_use_case])
    resolve(make_decision_case(invoice_use_case, ai_system=other, external_id="theirs"), member)
    resolve(make_decision_case(invoice_use_case, ai_system=system, external_id="mine"), member)

    assert read(api_of(system), FEED)[0] == ["mine"]
    assert read(api_of(other), FEED)[0] == ["theirs"]


@pytest.mark.django_db
@pytest.mark.parametrize("cursor", ["abc", "YWZ0ZXI9eA==", "cD0x"])  # junk, after=x, p=1
def test_a_cursor_the_api_did_not_give_answers_400_naming_it(system, cursor):
    response = api_of(system).get(FEED, {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


@pytest.mark.django_db
def test_the_feed_needs_the_systems_key(system):
    assert APIClient().get(FEED).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_resolution_committing_late_is_not_passed_by_one_committing_earlier(
        invoice_use_case, system, member, second_member):
    """The second resolution waits for the first one's commit to take its place, so a
    reader polling meanwhile never sees place 2 before place 1 exists."""
    early, late = (make_decision_case(invoice_use_case, ai_system=system, external_id=name)
                   for name in ("first", "second"))
    claiming.claim(case_id=early.case_id, user=member)
    claiming.claim(case_id=late.case_id, user=second_member)
    placed, release = threading.Event(), threading.Event()

    def resolve_and_hold():
        try:
            with transaction.atomic():
                transitions.resolve(case_id=early.case_id, user=member,
                                    verdict=Verdict.ACCEPTED, output=None, reason_code="")
                placed.set()
                release.wait(10)
        finally:
            connection.close()

    def resolve_meanwhile():
        placed.wait(10)
        try:
            transitions.resolve(case_id=late.case_id, user=second_member,
                                verdict=Verdict.ACCEPTED, output=None, reason_code="")
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve_and_hold),
               threading.Thread(target=resolve_meanwhile)]
    for thread in threads:
        thread.start()
    placed.wait(10)
    client = api_of(system)
    seen_while_open = read(client, FEED)[0]
    release.set()
    for thread in threads:
        thread.join(20)

    assert seen_while_open == []
    assert read(client, FEED)[0] == ["first", "second"]


@pytest.mark.django_db
def test_a_resolved_decision_carries_its_resolution(invoice_use_case, system, member):
    decision = make_decision_case(invoice_use_case, ai_system=system)
    client = api_of(system)
    before = client.get(f"{DECISIONS}{decision.pk}/").json()

    resolve(decision, member, verdict=Verdict.REJECTED, reason_code="wrong-amount")
    after = client.get(f"{DECISIONS}{decision.pk}/").json()

    assert before["resolution"] is None
    assert after["resolution"]["verdict"] == "rejected"
    assert after["resolution"]["output"] is None
    assert after["resolution"]["position"] == 1


@pytest.mark.django_db
def test_a_decision_is_found_by_the_external_id_it_was_posted_with(
        invoice_use_case, system, member):
    for name in ("inv-7", "inv-8"):
        make_decision_case(invoice_use_case, ai_system=system, external_id=name)
    other = AiSystemFactory(slug="other-bot", use_cases=[invoice_use_case])
    make_decision_case(invoice_use_case, ai_system=other, external_id="inv-7")
    client = api_of(system)

    found = client.get(DECISIONS, {"external_id": "inv-7"}).json()["results"]
    unknown = client.get(DECISIONS, {"external_id": "nope"}).json()["results"]
    everything = client.get(DECISIONS).json()["results"]

    assert [(d["external_id"], d["id"]) for d in found] == [
        ("inv-7", AiSystem.objects.get(slug="invoice-bot").decisions.get(external_id="inv-7").pk)]
    assert unknown == []
    assert [d["external_id"] for d in everything] == ["inv-8", "inv-7"]  # newest first


@pytest.mark.django_db
def test_resolutions_made_without_a_callback_url_are_sent_once_one_is_set(
        invoice_use_case, system, member, nudges):
    resolved = [make_decision_case(invoice_use_case, ai_system=system, external_id=f"inv-{n}")
                for n in range(2)]
    for decision in resolved:
        resolve(decision, member)
    assert not OutboxMessage.objects.exists()

    use_cases.ai_system_update(ai_system=system, actor=SYSTEM,
                               callback_url="https://ai.example.com/hooks")
    use_cases.ai_system_update(ai_system=system, actor=SYSTEM,
                               callback_url="https://ai.example.com/hooks/v2")

    sent = sorted((m.payload["data"]["position"], m.payload["data"]["external_id"], m.channel,
                   m.recipient) for m in OutboxMessage.objects.all())
    assert sent == [(1, "inv-0", Channel.WEBHOOK, "https://ai.example.com/hooks"),
                    (2, "inv-1", Channel.WEBHOOK, "https://ai.example.com/hooks")]


@pytest.mark.django_db
def test_a_nul_character_in_the_external_id_is_refused_by_name(system):
    response = api_of(system).get(DECISIONS, {"external_id": "inv\x00-1"})

    assert response.status_code == 400
    assert response.json() == {"external_id": ["Cannot hold a NUL character."]}
