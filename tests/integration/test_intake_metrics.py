"""The domain's intake on /metrics: its decisions counted under the names operators
already scrape (``backstop_decisions_received``), registered through ``workflows.hooks``."""

from datetime import timedelta

import pytest
import time_machine

from tests.exceptions_app.factories import UseCaseFactory
from tests.workflows.metrics_support import samples, scrape

pytestmark = pytest.mark.django_db


def test_the_decisions_counter_keeps_its_scraped_name_and_starts_at_zero(client):
    _, families = scrape(client)

    assert families["backstop_decisions_received"].type == "counter"
    assert samples(families, "backstop_decisions_received") == {(): 0}


def test_metrics_count_decisions_of_the_last_five_minutes_per_use_case(client, ai_client):
    UseCaseFactory(slug="claims-triage")
    body = {"use_case": "invoice-approval", "model_version": "m1", "confidence": 0.5,
            "input": {"po_amount": 10.0}, "output": {"amount": 10.0}}
    for n in range(3):
        assert ai_client.post("/api/v1/decisions/", {**body, "external_id": f"d{n}"},
                              format="json").status_code == 201

    _, families = scrape(client)
    assert samples(families, "backstop_decisions_received_last_5m") == {
        (("use_case", "claims-triage"),): 0, (("use_case", "invoice-approval"),): 3}
    with time_machine.travel(timedelta(minutes=6)):
        _, later = scrape(client)
    assert samples(later, "backstop_decisions_received_last_5m")[
        (("use_case", "invoice-approval"),)] == 0


def test_metrics_count_every_decision_received_since_the_start(client, ai_client):
    body = {"use_case": "invoice-approval", "model_version": "m1", "confidence": 0.5,
            "input": {"po_amount": 10.0}, "output": {"amount": 10.0}}
    ai_client.post("/api/v1/decisions/", {**body, "external_id": "d0"}, format="json")
    _, before = scrape(client)
    for n in range(1, 4):
        assert ai_client.post("/api/v1/decisions/", {**body, "external_id": f"d{n}"},
                              format="json").status_code == 201
    ai_client.post("/api/v1/decisions/", {**body, "external_id": "d1"}, format="json")  # replay

    with time_machine.travel(timedelta(hours=2)):
        _, later = scrape(client)

    [total_before] = samples(before, "backstop_decisions_received").values()
    assert samples(later, "backstop_decisions_received") == {(): total_before + 3}
    assert later["backstop_decisions_received"].type == "counter"
