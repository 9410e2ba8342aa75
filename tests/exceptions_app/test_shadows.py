"""A proposed version in shadow: it routes the decisions received while it runs, beside
the active version, and the comparison reads like a backtest's."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from exceptions_app.models import PolicyStatus, Shadow, ShadowOutcome, ShadowStatus
from exceptions_app.services import backtests, shadows
from exceptions_app.verbs import DomainVerb
from tests.exceptions_app.quality_support import (
    T0,
    known_history,
    lowered_threshold_draft,
    quality_use_case,
    queue_people,
)
from tests.factories import UserFactory, client_for, make_manager
from workflows.models import AuditEvent


@pytest.fixture
def use_case(db):
    return quality_use_case()


@pytest.fixture
def proposed(use_case):
    draft = lowered_threshold_draft(use_case)
    type(draft).objects.filter(pk=draft.pk).update(status=PolicyStatus.PROPOSED)
    draft.refresh_from_db()
    return draft


@pytest.fixture
def manager():
    return make_manager()


@pytest.fixture
def shadow(use_case, proposed, manager):
    """Started an hour before the known history begins, for two days."""
    shadow = shadows.start_shadow(policy=proposed, actor=manager, days=2,
                                  now=T0 - timedelta(hours=1))
    known_history(use_case, *queue_people(use_case))
    return shadow


@pytest.mark.django_db
def test_a_shadow_routes_the_decisions_received_while_it_runs(shadow):
    shadows.advance(shadow.pk, now=T0 + timedelta(days=1, hours=1))

    shadow.refresh_from_db()
    assert (shadow.judged, shadow.status) == (12, ShadowStatus.RUNNING)
    assert ShadowOutcome.objects.filter(shadow=shadow).count() == 12
    changed = ShadowOutcome.objects.filter(shadow=shadow, baseline_route="review",
                                           route="auto")
    assert sorted(changed.values_list("decision__external_id", flat=True)) == ["r2", "r3"]


@pytest.mark.django_db
def test_its_comparison_is_the_backtest_of_the_same_decisions(shadow, proposed, manager):
    shadows.advance(shadow.pk, now=T0 + timedelta(days=3))
    backtest = backtests.run(backtests.request_backtest(policy=proposed, actor=manager,
                                                        last=100).pk)

    assert shadows.comparison(shadow) == backtest.result


@pytest.mark.django_db
def test_a_pass_waits_for_decisions_to_settle_and_records_each_once(shadow):
    # Decisions received in the last minute may still have a smaller id committing.
    shadows.advance(shadow.pk, now=T0 + timedelta(seconds=30))
    assert Shadow.objects.get(pk=shadow.pk).judged == 0

    shadows.advance(shadow.pk, now=T0 + timedelta(hours=2))
    shadows.advance(shadow.pk, now=T0 + timedelta(hours=3))
    assert Shadow.objects.get(pk=shadow.pk).judged == 11  # day one's; b1 came a day later
    assert ShadowOutcome.objects.filter(shadow=shadow).count() == 11


@pytest.mark.django_db
def test_a_shadow_finishes_once_its_period_is_over_and_routed(shadow):
    shadows.advance(shadow.pk, now=shadow.ends_at + timedelta(minutes=2))

    shadow.refresh_from_db()
    assert (shadow.status, shadow.judged) == (ShadowStatus.FINISHED, 12)
    # Finished: a later pass changes nothing.
    assert shadows.advance(shadow.pk, now=shadow.ends_at + timedelta(days=1)).judged == 12


@pytest.mark.django_db
def test_starting_and_stopping_are_audited(use_case, proposed, manager):
    shadow = shadows.start_shadow(policy=proposed, actor=manager, days=7)
    shadows.stop_shadow(shadow=shadow, actor=manager)

    assert Shadow.objects.get(pk=shadow.pk).status == ShadowStatus.STOPPED
    verbs = list(AuditEvent.objects.filter(object_type="policy").order_by("id")
                 .values_list("verb", flat=True))
    assert verbs == [DomainVerb.POLICY_SHADOW_STARTED, DomainVerb.POLICY_SHADOW_STOPPED]
    with pytest.raises(shadows.ShadowConflict):
        shadows.stop_shadow(shadow=shadow, actor=manager)


@pytest.mark.django_db
def test_only_a_proposed_version_runs_in_shadow_once_at_a_time(use_case, proposed, manager):
    active = use_case.policies.get(status=PolicyStatus.ACTIVE)
    with pytest.raises(ValidationError) as refused:
        shadows.start_shadow(policy=active, actor=manager, days=7)
    assert "Only a proposed version runs in shadow" in str(refused.value)

    shadows.start_shadow(policy=proposed, actor=manager, days=7)
    with pytest.raises(ValidationError, match="already runs in shadow"):
        shadows.start_shadow(policy=proposed, actor=manager, days=7)
    with pytest.raises(ValidationError, match="from 1 to 90 days"):
        shadows.start_shadow(policy=proposed, actor=manager, days=91)
    with pytest.raises(PermissionDenied):
        shadows.start_shadow(policy=proposed, actor=UserFactory(), days=7)


@pytest.mark.django_db
def test_shadows_by_api(use_case, proposed, manager):
    client = client_for(manager)

    started = client.post(f"/api/v1/use-cases/{use_case.slug}/shadows/",
                          {"version": proposed.number, "days": 7}, format="json")
    assert started.status_code == 201, started.json()
    detail = client.get(started.json()["url"]).json()
    assert (detail["status"], detail["version"], detail["comparison"]["decisions"]) == (
        "running", proposed.number, 0)
    assert client.post(started.json()["url"] + "stop/").status_code == 200
    assert client.post(started.json()["url"] + "stop/").status_code == 409
    refused = client.post(f"/api/v1/use-cases/{use_case.slug}/shadows/",
                          {"version": proposed.number, "days": 0}, format="json")
    assert refused.status_code == 400 and "days" in refused.json()


@pytest.mark.django_db
def test_a_manager_starts_a_shadow_from_the_page_and_reads_its_comparison(
        use_case, proposed, manager, client):
    client.force_login(manager)
    page = client.get(f"/use-cases/{use_case.slug}/backtests/")
    assert b"Start the shadow" in page.content

    started = client.post(f"/use-cases/{use_case.slug}/shadows/",
                          {"version": proposed.number, "days": 7})
    assert started.status_code == 302
    shadow = Shadow.objects.get()
    known_history(use_case, *queue_people(use_case))
    shadows.advance(shadow.pk, now=T0 + timedelta(days=3))

    text = client.get(started["Location"]).content.decode()
    assert 'data-figure="changed">2<' in text
    assert "Stop the shadow" in text
    stopped = client.post(f"/shadows/{shadow.pk}/stop/", follow=True)
    assert b"Shadow stopped" in stopped.content
    refused = client.post(f"/use-cases/{use_case.slug}/shadows/",
                          {"version": proposed.number, "days": 500})
    assert refused.status_code == 400
