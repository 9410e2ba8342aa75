"""Backtests and threshold tuning on a known history (``quality_support.known_history``):
every figure below is counted by hand from that history."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from exceptions_app.models import Backtest, BacktestStatus, PolicyStatus
from exceptions_app.services import backtests, thresholds
from exceptions_app.verbs import DomainVerb
from tests.exceptions_app.quality_support import (
    DAY_1,
    DAY_2,
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
def history(use_case):
    return known_history(use_case, *queue_people(use_case))


@pytest.fixture
def draft(use_case):
    return lowered_threshold_draft(use_case)


def _backtest(draft, **window):
    backtest = backtests.request_backtest(policy=draft, actor=make_manager(), **window)
    return backtests.run(backtest.pk)


@pytest.mark.django_db
def test_a_backtest_counts_the_changed_routes_and_what_reviewers_said_of_them(history, draft):
    backtest = _backtest(draft, last=100)

    result = backtest.result
    assert backtest.status == BacktestStatus.DONE
    assert (backtest.processed, backtest.total) == (12, 12)
    assert result["decisions"] == 12 and result["unchanged"] == 10
    assert result["routes"]["baseline"] == {"auto": 5, "review": 6, "reject": 1}
    assert result["routes"]["candidate"] == {"auto": 7, "review": 4, "reject": 1}
    # r2 (0.45) and r3 (0.42) would pass on their own; the reviewers corrected r2 and
    # rejected r3.
    [change] = result["changes"]
    assert (change["from"], change["to"], change["count"]) == ("review", "auto", 2)
    assert (change["labelled"], change["accepted"]) == (2, 0)
    assert {example["external_id"] for example in change["examples"]} == {"r2", "r3"}
    assert {example["rule"] for example in change["examples"]} == {None}
    corrected = result["corrected_but_auto_passed"]
    assert corrected["count"] == 2
    assert {example["verdict"] for example in corrected["examples"]} == {"corrected",
                                                                         "rejected"}
    # Auto-passed and labelled: a1-a4 (a3 corrected) today; with r2 and r3 besides.
    assert result["auto_errors"]["baseline"]["count"] == 1
    assert result["auto_errors"]["baseline"]["sample_size"] == 4
    assert result["auto_errors"]["candidate"]["count"] == 3
    assert result["auto_errors"]["candidate"]["sample_size"] == 6


@pytest.mark.django_db
def test_a_backtest_over_a_period_reads_only_the_decisions_received_in_it(history, draft):
    backtest = _backtest(draft, since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))

    assert backtest.result["decisions"] == 1  # b1, the second day's
    assert backtest.result["changes"] == []


@pytest.mark.django_db
def test_the_last_n_decisions_are_the_most_recent(history, draft):
    assert _backtest(draft, last=1).result["routes"]["candidate"]["auto"] == 1  # b1


@pytest.mark.django_db
def test_a_backtest_request_is_audited_and_refused_to_people_outside_the_policy(
        history, draft, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(backtests, "_enqueue", queued.append)
    manager = make_manager()
    with django_capture_on_commit_callbacks(execute=True):
        backtest = backtests.request_backtest(policy=draft, actor=manager, last=50)

    assert queued == [backtest.pk]
    assert backtest.status == BacktestStatus.QUEUED
    event = AuditEvent.objects.get(verb=DomainVerb.POLICY_BACKTEST_REQUESTED)
    assert (event.actor, event.data["last"], event.data["version"]) == (manager, 50, 2)
    with pytest.raises(PermissionDenied):
        backtests.request_backtest(policy=draft, actor=UserFactory(), last=50)


@pytest.mark.django_db
@pytest.mark.parametrize("window, field", [
    ({}, "last"),
    ({"last": 0}, "last"),
    ({"last": 5, "since": T0, "until": T0 + timedelta(days=1)}, "last"),
    ({"since": T0}, "last"),
    ({"since": T0, "until": T0}, "until"),
])
def test_a_window_that_is_not_one_is_refused_by_name(history, draft, window, field):
    with pytest.raises(ValidationError) as refused:
        backtests.request_backtest(policy=draft, actor=make_manager(), **window)
    assert field in refused.value.message_dict
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_running_a_finished_backtest_again_changes_nothing(history, draft):
    backtest = _backtest(draft, last=100)
    finished_at = backtest.finished_at

    assert backtests.run(backtest.pk).finished_at == finished_at


@pytest.mark.django_db
def test_the_threshold_curve_trades_passed_decisions_against_their_errors(history, use_case):
    curve = thresholds.threshold_curve(use_case=use_case, since=DAY_1, until=DAY_2)

    # Labelled: r1 .35 ok, r2 .45 corrected, r3 .42 rejected, r4 .38 ok, f1 .95 corrected,
    # f2 .96 ok, a1 .95 ok, a2 .92 ok, a3 .97 corrected, a4 .85 ok.
    assert curve.labelled == 10
    by_threshold = {round(point.threshold, 2): point for point in curve.points}
    assert len(curve.points) == 101
    at_090 = by_threshold[0.9]  # f1, f2, a1, a2, a3
    assert (at_090.auto_passed.successes, at_090.auto_passed.total) == (5, 10)
    assert (at_090.errors.successes, at_090.errors.total) == (2, 5)
    at_042 = by_threshold[0.42]  # the 0.42 of r3 counts as at the threshold
    assert at_042.auto_passed.successes == 8
    assert (at_042.errors.successes, at_042.errors.total) == (4, 8)
    assert by_threshold[0.0].auto_passed.successes == 10
    assert by_threshold[1.0].auto_passed.successes == 0
    # Ten labels cannot show an error rate under 2% at any threshold.
    assert curve.suggested is None


@pytest.mark.django_db
def test_the_suggested_threshold_is_the_lowest_whose_error_interval_is_tolerated(
        history, use_case):
    def suggested(tolerated_error):
        return thresholds.threshold_curve(use_case=use_case, since=DAY_1, until=DAY_2,
                                          tolerated_error=tolerated_error).suggested

    # At 0.00 all ten pass, four in error: Wilson's upper bound is 0.6873, and no
    # threshold has a lower one (0.46: 2 of 6, 0.70; 0.93: 2 of 4, 0.85).
    assert suggested(0.69).threshold == 0.0
    assert suggested(0.69).auto_passed.successes == 10
    assert suggested(0.68) is None


# --- By API ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_backtest_asked_for_by_api_answers_202_and_its_result_at_its_address(
        history, draft, use_case, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(backtests, "_enqueue", backtests.run)  # the worker's part, inline
    client = client_for(make_manager())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/use-cases/{use_case.slug}/backtests/",
                               {"version": 2, "last": 100}, format="json")

    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    done = client.get(response.json()["url"]).json()
    active = use_case.policies.get(status=PolicyStatus.ACTIVE)
    assert (done["status"], done["version"], done["baseline_version"]) == (
        "done", 2, active.number)
    assert done["result"]["changes"][0]["count"] == 2
    listed = client.get(f"/api/v1/use-cases/{use_case.slug}/backtests/").json()
    assert [item["id"] for item in listed] == [done["id"]]


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"version": 9, "last": 10}, "version"),
    ({"version": 2}, "last"),
    ({"version": 2, "last": "many"}, "last"),
])
def test_a_bad_backtest_request_names_its_field(history, draft, use_case, body, field):
    response = client_for(make_manager()).post(
        f"/api/v1/use-cases/{use_case.slug}/backtests/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_a_reviewer_of_the_use_case_may_not_backtest_it(history, draft, use_case):
    reviewer = use_case.review_queue.members.get(username="reviewer")

    response = client_for(reviewer).post(f"/api/v1/use-cases/{use_case.slug}/backtests/",
                                         {"version": 2, "last": 10}, format="json")

    assert response.status_code == 403
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_the_threshold_curve_by_api(history, use_case):
    client = client_for(make_manager())
    url = f"/api/v1/use-cases/{use_case.slug}/thresholds/?since=2026-03-02&until=2026-03-03"

    curve = client.get(url + "&tolerated_error=0.69").json()
    assert curve["labelled"] == 10 and len(curve["points"]) == 101
    assert curve["suggested"]["threshold"] == 0.0
    assert client.get(url + "&tolerated_error=2").json() == {
        "tolerated_error": ["'2' is not a fraction between 0 and 1 (0.02 tolerates 2% errors)."]}
    assert "model_version" in client.get(url + "&model_version=nope").json()


# --- Pages ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_runs_a_backtest_from_its_page_and_reads_what_would_change(
        history, draft, use_case, client, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(backtests, "_enqueue", backtests.run)
    client.force_login(make_manager())
    page = client.get(f"/use-cases/{use_case.slug}/backtests/")
    assert page.status_code == 200 and b"v2 (draft)" in page.content

    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(f"/use-cases/{use_case.slug}/backtests/",
                            {"version": 2, "last": 100})
    assert asked.status_code == 302
    result = client.get(asked["Location"])

    text = result.content.decode()
    assert 'data-figure="changed">2<' in text
    assert 'data-figure="corrected">2<' in text
    assert "r2" in text and "r3" in text
    assert "hx-trigger" not in text  # finished: the page stops polling


@pytest.mark.django_db
def test_a_backtest_still_running_polls_and_shows_its_progress(history, draft, client):
    manager = make_manager()
    backtest = backtests.request_backtest(policy=draft, actor=manager, last=100)
    client.force_login(manager)

    page = client.get(f"/backtests/{backtest.pk}/", HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every 1s"' in page.content.decode()
    assert b"decisions judged" in page.content
    assert b"<html" not in page.content  # htmx gets the fragment alone


@pytest.mark.django_db
def test_a_reviewer_sees_the_backtests_but_cannot_ask_for_one(history, draft, use_case,
                                                               client):
    client.force_login(use_case.review_queue.members.get(username="reviewer"))

    assert b"New backtest" not in client.get(f"/use-cases/{use_case.slug}/backtests/").content
    assert client.post(f"/use-cases/{use_case.slug}/backtests/",
                       {"version": 2, "last": 10}).status_code == 403


@pytest.mark.django_db
def test_someone_outside_the_use_case_finds_none_of_its_pages(history, draft, use_case,
                                                              client):
    backtest = backtests.request_backtest(policy=draft, actor=make_manager(), last=10)
    client.force_login(UserFactory())

    for path in (f"/use-cases/{use_case.slug}/backtests/",
                 f"/use-cases/{use_case.slug}/threshold/", f"/backtests/{backtest.pk}/"):
        assert client.get(path).status_code == 404, path


@pytest.mark.django_db
def test_the_threshold_page_draws_the_curve_and_names_a_bad_parameter(history, use_case,
                                                                      client):
    client.force_login(make_manager())
    url = f"/use-cases/{use_case.slug}/threshold/?since=2026-03-02&until=2026-03-03"

    page = client.get(url + "&tolerated_error=0.69").content.decode()
    assert 'data-figure="labelled">10<' in page
    assert 'data-figure="suggested">0.00<' in page
    assert "<polyline" in page
    refused = client.get(url + "&tolerated_error=abc")
    assert refused.status_code == 400
    assert "is not a fraction between 0 and 1" in refused.content.decode()


# --- The job ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_backtest_another_worker_is_running_is_left_to_it(history, draft):
    backtest = backtests.request_backtest(policy=draft, actor=make_manager(), last=100)
    Backtest.objects.filter(pk=backtest.pk).update(status=BacktestStatus.RUNNING,
                                                   heartbeat_at=timezone.now())

    assert backtests.run(backtest.pk).status == BacktestStatus.RUNNING
    assert Backtest.objects.get(pk=backtest.pk).result == {}


@pytest.mark.django_db
def test_waiting_and_lost_backtests_are_handed_over_again(history, draft, monkeypatch):
    handed = []
    monkeypatch.setattr(backtests, "_enqueue", handed.append)
    manager, now = make_manager(), timezone.now()
    just_asked = backtests.request_backtest(policy=draft, actor=manager, last=10, now=now)
    waiting = backtests.request_backtest(policy=draft, actor=manager, last=10,
                                         now=now - timedelta(minutes=2))
    lost = backtests.request_backtest(policy=draft, actor=manager, last=10,
                                      now=now - timedelta(hours=1))
    Backtest.objects.filter(pk=lost.pk).update(status=BacktestStatus.RUNNING,
                                               heartbeat_at=now - timedelta(minutes=11))
    handed.clear()

    assert backtests.enqueue_waiting(now=now) == 2
    assert sorted(handed) == sorted([waiting.pk, lost.pk])
    assert just_asked.pk not in handed
    # The lost one starts again from the beginning and finishes.
    assert backtests.run(lost.pk).status == BacktestStatus.DONE
