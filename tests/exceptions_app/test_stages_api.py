"""The stage by API and on its page: evidence for those who may see the use case, moves
and the kill switch for those who may make them, 404 for everyone else (I8)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.models import Route, Stage
from exceptions_app.stage_models import Guardrails
from exceptions_app.verbs import StageVerb
from tests.exceptions_app.stage_support import post, review, staged_use_case
from tests.factories import UserFactory, client_for
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_evidence_reads_per_model_version_with_intervals_and_the_gates():
    use_case, _owner, reviewer = staged_use_case(min_reviewed=2)
    now = timezone.now()
    review(post(use_case, 2, now=now), reviewer, agree=2, now=now)

    body = client_for(reviewer).get(f"/api/v1/use-cases/{use_case.slug}/stage/").json()

    assert body["stage"] == "audit" and body["next_stage"] == "assist"
    (version,) = body["versions"]
    assert version["model_version"] == "m1" and version["decisions"] == 2
    assert version["agreement"]["count"] == 2 and version["agreement"]["sample_size"] == 2
    assert 0.34 < version["agreement"]["low"] < 0.35  # Wilson, two of two
    assert [gate["gate"] for gate in body["gates"] if gate["met"]] == ["reviewed",
                                                                       "agreement", "sla"]
    assert body["guardrails"]["min_reviewed"] == 2 and body["history"] == []


def test_an_outsider_does_not_find_the_stage_or_its_page():
    use_case, _owner, _reviewer = staged_use_case()
    outsider = client_for(UserFactory())

    assert outsider.get(f"/api/v1/use-cases/{use_case.slug}/stage/").status_code == 404
    outsider.force_login(UserFactory(username="nosy"))
    assert outsider.get(f"/use-cases/{use_case.slug}/stage/").status_code == 404
    assert outsider.post(f"/api/v1/use-cases/{use_case.slug}/kill-switch/",
                         {"on": True, "reason": "x"}, format="json").status_code == 404


def test_a_move_up_below_the_gates_is_409_naming_each_gate():
    use_case, owner, _reviewer = staged_use_case(min_reviewed=3)

    response = client_for(owner).post(f"/api/v1/use-cases/{use_case.slug}/stage/advance/",
                                      {"note": "Looks fine"}, format="json")

    assert response.status_code == 409
    assert response.json()["problems"][0] == "Reviewed decisions: needs at least 3, has 0."
    assert response.json()["evidence"]["next_stage"] == "assist"


def test_a_reviewer_may_not_sign_off_and_is_told_who_may():
    use_case, _owner, reviewer = staged_use_case(min_reviewed=1)

    response = client_for(reviewer).post(f"/api/v1/use-cases/{use_case.slug}/stage/advance/",
                                         {}, format="json")

    assert response.status_code == 403
    assert "owner" in response.json()["detail"]


def test_the_owner_signs_off_by_api_above_the_gates():
    use_case, owner, reviewer = staged_use_case(min_reviewed=1)
    now = timezone.now()
    review(post(use_case, 1, now=now), reviewer, agree=1, now=now)

    response = client_for(owner).post(f"/api/v1/use-cases/{use_case.slug}/stage/advance/",
                                      {"note": "Good start"}, format="json")

    assert response.status_code == 200
    assert (response.json()["from_stage"], response.json()["to_stage"]) == ("audit", "assist")
    assert response.json()["evidence"]["gates_met"] is True
    assert AuditEvent.objects.filter(verb=StageVerb.STAGE_ADVANCED, actor=owner).count() == 1


def test_moving_down_by_api_needs_a_reason():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)
    client = client_for(owner)

    missing = client.post(f"/api/v1/use-cases/{use_case.slug}/stage/lower/", {}, format="json")
    lowered = client.post(f"/api/v1/use-cases/{use_case.slug}/stage/lower/",
                          {"reason": "Quarter-end close"}, format="json")
    bottom = client.post(f"/api/v1/use-cases/{use_case.slug}/stage/lower/",
                         {"reason": "Again"}, format="json")

    assert missing.status_code == 400 and "reason" in missing.json()
    assert lowered.status_code == 200 and lowered.json()["to_stage"] == "audit"
    assert bottom.status_code == 409


def test_the_kill_switch_by_api_reviews_the_next_decision():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)

    response = client_for(owner).post(f"/api/v1/use-cases/{use_case.slug}/kill-switch/",
                                      {"on": True, "reason": "Model rollback"}, format="json")

    assert response.status_code == 200 and response.json()["kill_switch"] is True
    assert [d.route for d in post(use_case, 1, now=timezone.now())] == [Route.REVIEW]


def test_guardrail_settings_are_validated_by_name():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)
    client = client_for(owner)

    bad = client.patch(f"/api/v1/use-cases/{use_case.slug}/guardrails/",
                       {"min_agreement": 95, "speed": 3}, format="json")
    worse = client.patch(f"/api/v1/use-cases/{use_case.slug}/guardrails/",
                         {"min_agreement": 95}, format="json")
    good = client.patch(f"/api/v1/use-cases/{use_case.slug}/guardrails/",
                        {"daily_auto_cap": 250, "probation_decisions": 50}, format="json")

    assert bad.status_code == 400 and list(bad.json()) == ["speed"]
    assert worse.status_code == 400
    assert worse.json()["min_agreement"] == ["A fraction between 0 and 1 (0.95 is 95%), not 95."]
    assert good.status_code == 200 and good.json()["daily_auto_cap"] == 250
    assert Guardrails.objects.get(use_case=use_case).probation_decisions == 50


def test_the_page_shows_the_gates_and_signs_off_with_a_form():
    use_case, owner, reviewer = staged_use_case(min_reviewed=1)
    now = timezone.now() - timedelta(minutes=30)
    review(post(use_case, 1, now=now), reviewer, agree=1, now=now)
    client = client_for(owner)
    client.force_login(owner)

    page = client.get(f"/use-cases/{use_case.slug}/stage/")
    signed = client.post(f"/use-cases/{use_case.slug}/stage/",
                         {"action": "advance", "note": "First week clean"}, follow=True)

    assert page.status_code == 200
    assert b"Gates to Assist" in page.content and b"Sign off: move to Assist" in page.content
    assert b"is now at the Assist stage" in signed.content
    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST


def test_a_reviewer_sees_the_page_without_the_forms():
    use_case, _owner, reviewer = staged_use_case()
    client = client_for(reviewer)
    client.force_login(reviewer)

    page = client.get(f"/use-cases/{use_case.slug}/stage/")
    refused = client.post(f"/use-cases/{use_case.slug}/stage/",
                          {"action": "kill-on", "reason": "Because"})

    assert page.status_code == 200
    assert b"Sign off" not in page.content and b"Kill switch:" not in page.content
    assert b"Accountable for stage changes: owner" in page.content
    assert refused.status_code == 403
