"""I1 under real concurrency: threads posting the same external_ids at once, on PostgreSQL."""

import random
from collections import defaultdict

import pytest
from django.db.models import Count, Sum
from rest_framework.test import APIClient

from exceptions_app.models import DailyQuality, Decision
from tests.concurrency import run_concurrently
from tests.exceptions_app.factories import issue_key
from tests.exceptions_app.intake_support import invoice
from workflows.models import AuditEvent, Case

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]



def clients_with_keys(system, count: int) -> list[APIClient]:
    """``count`` clients of one AI system, on a mix of its keys."""
    keys = [issue_key(system) for _ in range(3)]
    clients = []
    for n in range(count):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {keys[n % len(keys)]}")
        clients.append(client)
    return clients


def test_concurrent_duplicates_store_one_decision_and_all_get_its_id(ai_client):
    clients = clients_with_keys(ai_client.ai_system, 12)
    for round_ in range(5):
        body = invoice(f"inv-race-{round_}", confidence=0.5)

        responses = run_concurrently(*[
            lambda client=client, body=body: client.post("/api/v1/decisions/", body,
                                                         format="json")
            for client in clients], return_exceptions=True)

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200] * 11 + [201], statuses
        assert len({response.json()["id"] for response in responses}) == 1
        assert len({response.json()["case"]["id"] for response in responses}) == 1

    assert Decision.objects.count() == 5
    assert Case.objects.count() == 5
    assert AuditEvent.objects.filter(verb="decision.received").count() == 5
    assert AuditEvent.objects.filter(verb="case.opened").count() == 5


def test_concurrent_different_bodies_for_one_external_id_store_the_winner_only(ai_client):
    clients = clients_with_keys(ai_client.ai_system, 8)
    bodies = [invoice("inv-contested", amount=4100.0 + n) for n in range(8)]

    responses = run_concurrently(*[
        lambda client=client, body=body: client.post("/api/v1/decisions/", body, format="json")
        for client, body in zip(clients, bodies, strict=True)], return_exceptions=True)

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [422] * 7
    winner = next(r for r in responses if r.status_code == 201).json()
    assert Decision.objects.get().output == winner["output"]


def test_overlapping_batches_lose_nothing_and_duplicate_nothing(ai_client):
    clients = clients_with_keys(ai_client.ai_system, 6)
    ids = [f"inv-batch-{n:04d}" for n in range(300)]
    body_of = {external_id: invoice(external_id, confidence=0.5 if n % 3 == 0 else 0.95)
               for n, external_id in enumerate(ids)}
    batches = []
    for n in range(6):
        # Each batch overlaps its neighbours by half, in its own shuffled order.
        chosen = ids[n * 40:n * 40 + 80] + random.Random(n).sample(ids, 20)
        random.Random(100 + n).shuffle(chosen)
        batches.append([body_of[external_id] for external_id in chosen])

    responses = run_concurrently(*[
        lambda client=client, batch=batch: client.post(
            "/api/v1/decisions/batch/", {"decisions": batch}, format="json")
        for client, batch in zip(clients, batches, strict=True)], return_exceptions=True)

    assert [response.status_code for response in responses] == [200] * 6
    answers = defaultdict(list)  # external_id -> [(status, decision id)]
    for batch, response in zip(batches, responses, strict=True):
        for item, result in zip(batch, response.json()["results"], strict=True):
            assert result["decision"]["external_id"] == item["external_id"]
            answers[item["external_id"]].append((result["status"], result["decision"]["id"]))
    posted = {item["external_id"] for batch in batches for item in batch}
    stored = dict(Decision.objects.values_list("external_id", "pk"))
    assert set(stored) == posted  # nothing lost, nothing extra
    assert Decision.objects.count() == len(posted)  # no duplicates
    for external_id, got in answers.items():
        assert [status for status, _ in got].count(201) <= 1
        assert {decision_id for _, decision_id in got} == {stored[external_id]}
    # Whoever stored a decision answered 201 for it: exactly one 201 per stored decision.
    assert sum(status == 201 for got in answers.values() for status, _ in got) == len(posted)
    assert AuditEvent.objects.filter(verb="decision.received").count() == len(posted)
    assert Case.objects.count() == AuditEvent.objects.filter(verb="case.opened").count() == (
        Decision.objects.exclude(case=None).count())
    # The quality rollups count each stored decision once, through the retries.
    counted = dict(DailyQuality.objects.order_by().values_list("route")
                   .annotate(n=Sum("decisions")))
    assert counted == dict(Decision.objects.order_by().values_list("route")
                           .annotate(n=Count("pk")))
