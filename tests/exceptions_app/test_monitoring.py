"""The monitoring page and its API: the quality and drift figures of one use case."""

import re
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from exceptions_app import monitoring
from exceptions_app.models import DriftAlert, DriftReference
from exceptions_app.services import quality
from tests.exceptions_app.quality_support import (
    DAY_1,
    DAY_2,
    T0,
    known_history,
    quality_use_case,
    queue_people,
)
from tests.factories import UserFactory, make_manager

PERIOD = f"since={DAY_1}&until={DAY_2}"



@pytest.fixture
def use_case(db, settings):
    settings.REVIEWER_HOURLY_COST = 36.0
    use_case = quality_use_case()
    use_case.reviewer, use_case.approver = queue_people(use_case)
    known_history(use_case, use_case.reviewer, use_case.approver)
    return use_case


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_api_answers_the_figures_of_the_period(use_case):
    response = api(use_case.reviewer).get(
        f"/api/v1/use-cases/inv/quality/?{PERIOD}&model_version=m1")

    assert response.status_code == 200
    body = response.json()
    assert (body["decisions"], body["routes"]) == (11, {"auto": 4, "review": 6, "reject": 1})
    assert body["override_rate"]["sample_size"] == 6
    assert body["override_rate"]["low"] == pytest.approx(0.187616, abs=1e-6)
    assert body["qa_accuracy"]["rate"] == 0.75
    assert body["calibration"]["expected_calibration_error"] == pytest.approx(0.404)
    assert body["latency_seconds"]["p50"] == pytest.approx(3600)
    assert body["estimated_error_rate"]["human_four_eyes"]["rate"] == 0.5
    assert body["drift"]["reference"] is None and "No drift reference" in body["drift"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field", "words"), [
    ("model_version=m9", "model_version", "has no decisions of the model version 'm9'"),
    ("since=yesterday", "since", "'yesterday' is not a date"),
    (f"since={DAY_2}&until={DAY_1}", "until", "ends before it starts"),
])
def test_a_bad_parameter_is_refused_by_name(use_case, query, field, words):
    response = api(use_case.reviewer).get(f"/api/v1/use-cases/inv/quality/?{query}")

    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


@pytest.mark.django_db
def test_an_outsider_sees_neither_the_page_nor_the_figures(use_case, client):
    outsider = UserFactory(username="outsider")
    client.force_login(outsider)

    assert api(outsider).get("/api/v1/use-cases/inv/quality/").status_code == 404
    assert client.get("/use-cases/inv/monitoring/").status_code == 404
    assert APIClient().get("/api/v1/use-cases/inv/quality/").status_code == 401


@pytest.mark.django_db
def test_the_page_shows_the_figures_and_draws_the_charts(use_case, client):
    client.force_login(use_case.reviewer)

    response = client.get(f"/use-cases/inv/monitoring/?{PERIOD}")

    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'data-figure="decisions">12<', page)
    assert re.search(r'data-figure="override-rate">50%<', page)
    assert re.search(r'data-figure="qa-accuracy">75%<', page)
    for title in ("Decisions per day by route", "Override rate per day",
                  "QA accuracy per day", "Reliability diagram"):
        assert title in page
    assert "<polygon class=\"band band--qa\"" in page  # the interval band
    assert "style=" not in page and "<script>" not in page  # CSP: no inline styles or scripts
    # Not the owner: no reference form.
    assert "Set reference" not in page


@pytest.mark.django_db
def test_the_use_case_page_links_to_monitoring(use_case, client):
    client.force_login(use_case.reviewer)

    page = client.get("/use-cases/inv/").content.decode()

    assert 'href="/use-cases/inv/monitoring/"' in page


@pytest.mark.django_db
def test_a_manager_sets_the_reference_from_the_page_and_a_short_window_is_explained(
        use_case, client):
    manager = make_manager(username="manager")
    client.force_login(manager)

    response = client.post("/use-cases/inv/monitoring/", {"since": DAY_1, "until": DAY_2})

    assert response.status_code == 200
    assert "holds 12 decisions; a drift reference needs at least 500" in \
        response.content.decode()
    assert not DriftReference.objects.exists()


@pytest.mark.django_db
def test_a_drift_alert_and_the_last_check_show_on_the_pages(use_case, client):
    # As check_drift leaves them (tested in test_drift.py).
    DriftReference.objects.create(
        use_case=use_case, since=T0, until=T0 + timedelta(days=7), decisions=5000,
        distributions={}, set_by=use_case.approver, set_at=T0, checked_at=T0,
        checked_decisions=1000, last_psi={"confidence": 0.04, "input.vendor": 0.31})
    DriftAlert.objects.create(use_case=use_case, feature="input.vendor", level="alert",
                              psi=0.31, raised_at=T0)
    client.force_login(use_case.reviewer)

    monitoring = client.get("/use-cases/inv/monitoring/").content.decode()
    detail = client.get("/use-cases/inv/").content.decode()

    assert "Drift alert:</strong> input.vendor has moved (PSI 0.31)" in monitoring
    assert "Drift alert:</strong> input.vendor has moved (PSI 0.31)" in detail
    assert 'class="psi--alert"' in monitoring and 'class="psi--ok"' in monitoring


@pytest.mark.django_db
def test_a_long_period_is_drawn_by_week(use_case):
    report = quality.quality_report(use_case=use_case, since=DAY_1 - timedelta(days=99),
                                    until=DAY_2)

    volume = monitoring.volume_chart(report)
    overrides = monitoring.rate_chart(report, "overrides")

    assert volume["per"] == "week" and len(volume["columns"]) == 15  # 101 days
    # Both days of the history fall in one week: its column holds all 12 decisions.
    assert [column["total"] for column in volume["columns"] if column["total"]] == [12]
    assert [(point["count"], point["total"]) for point in overrides["points"]] == [(3, 6)]


@pytest.mark.django_db
def test_a_reviewer_may_not_set_the_reference(use_case, client):
    client.force_login(use_case.reviewer)

    response = client.post("/use-cases/inv/monitoring/", {"since": DAY_1, "until": DAY_2})

    assert response.status_code == 403
    assert not DriftReference.objects.exists()
