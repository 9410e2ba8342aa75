"""Guardrails: the kill switch, the daily caps, probation of a new model version, QA
sampling by stratum, and the automatic demotion on QA errors or drift, exactly once."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from exceptions_app.models import Decision, DriftAlert, DriftLevel, Route, Stage
from exceptions_app.services import guardrails
from exceptions_app.stage_models import StageChange
from exceptions_app.verbs import StageVerb
from tests.concurrency import run_concurrently
from tests.exceptions_app.stage_support import NOW, post, review, staged_use_case
from tests.factories import UserFactory
from workflows.models import Activity, AuditEvent, Notification, RaciAssignment, RaciRole
from workflows.services import outbox


def routes(decisions) -> list[str]:
    return [decision.route for decision in decisions]


# --- Kill switch ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_kill_switch_sends_every_decision_to_review_from_the_next_one_on():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)
    assert routes(post(use_case, 1, prefix="before")) == [Route.AUTO]

    guardrails.set_kill_switch(use_case=use_case, on=True, actor=owner,
                               reason="Supplier fraud under investigation")
    held = post(use_case, 2, prefix="during")

    assert routes(held) == [Route.REVIEW, Route.REVIEW]
    assert held[0].reasons[0]["text"] == ("Kill switch on: every decision is reviewed "
                                          "(Supplier fraud under investigation)")
    assert held[0].case.queue == use_case.review_queue

    guardrails.set_kill_switch(use_case=use_case, on=False, actor=owner)
    assert routes(post(use_case, 1, prefix="after")) == [Route.AUTO]
    assert list(AuditEvent.objects.filter(verb__startswith="guardrail.kill")
                .values_list("verb", flat=True).order_by("id")) == [
        StageVerb.KILL_SWITCH_ON, StageVerb.KILL_SWITCH_OFF]


@pytest.mark.django_db
def test_the_kill_switch_needs_a_reason_and_a_person_who_may_throw_it():
    use_case, owner, reviewer = staged_use_case(Stage.ASSIST)

    with pytest.raises(ValidationError) as missing:
        guardrails.set_kill_switch(use_case=use_case, on=True, actor=owner, reason="")
    assert "reason" in missing.value.message_dict
    with pytest.raises(PermissionDenied):
        guardrails.set_kill_switch(use_case=use_case, on=True, actor=reviewer, reason="Why not")


# --- Daily caps -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_past_the_daily_count_cap_decisions_go_to_review_until_the_next_day():
    use_case, _owner, _reviewer = staged_use_case(Stage.ASSIST, daily_auto_cap=3)

    first = post(use_case, 2, prefix="a")
    second = post(use_case, 3, prefix="b")
    next_day = post(use_case, 1, prefix="c", now=NOW + timedelta(days=1))

    assert routes(first + second) == [Route.AUTO] * 3 + [Route.REVIEW] * 2
    assert second[1].reasons[0]["text"].startswith("Daily cap reached: 3 decisions")
    assert routes(next_day) == [Route.AUTO]


@pytest.mark.django_db
def test_past_the_daily_value_cap_decisions_go_to_review():
    use_case, _owner, _reviewer = staged_use_case(Stage.ASSIST, daily_value_cap=10_000,
                                                value_field="po_amount")

    decisions = post(use_case, 3, po_amount=4100.0, amount=4100.0)

    assert routes(decisions) == [Route.AUTO, Route.AUTO, Route.REVIEW]
    assert decisions[2].reasons[0]["text"].startswith("Daily value cap reached")


@pytest.mark.django_db
def test_a_value_cap_needs_a_declared_numeric_input_field():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)

    with pytest.raises(ValidationError) as no_field:
        guardrails.update_guardrails(use_case=use_case, actor=owner, daily_value_cap=5000.0)
    with pytest.raises(ValidationError) as text_field:
        guardrails.update_guardrails(use_case=use_case, actor=owner, daily_value_cap=5000.0,
                                     value_field="vendor")

    assert no_field.value.message_dict["value_field"] == [
        "A daily value cap needs the input field that holds each decision's value."]
    assert text_field.value.message_dict["value_field"] == [
        'The input field "vendor" is not a number in the input schema; the value cap '
        'adds numbers.']


@pytest.mark.django_db
def test_guardrail_changes_are_audited_with_before_and_after():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)

    guardrails.update_guardrails(use_case=use_case, actor=owner, daily_auto_cap=100,
                                 min_agreement=0.97)

    event = AuditEvent.objects.get(verb=StageVerb.GUARDRAILS_CHANGED)
    assert event.data["before"] == {"daily_auto_cap": None, "min_agreement": 0.95}
    assert event.data["after"] == {"daily_auto_cap": 100, "min_agreement": 0.97}
    assert event.data["slug"] == "inv"


# --- Probation --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_model_versions_first_decisions_are_reviewed_then_it_is_released():
    use_case, owner, _reviewer = staged_use_case(Stage.ASSIST)
    assert routes(post(use_case, 1, model_version="m1")) == [Route.AUTO]
    guardrails.update_guardrails(use_case=use_case, actor=owner, probation_decisions=3)

    known = post(use_case, 1, model_version="m1", prefix="known")
    new = post(use_case, 2, model_version="m2", prefix="new-a") + \
        post(use_case, 2, model_version="m2", prefix="new-b")

    assert routes(known) == [Route.AUTO]  # seen before probation was switched on
    assert routes(new) == [Route.REVIEW, Route.REVIEW, Route.REVIEW, Route.AUTO]
    assert new[2].reasons[0]["text"] == ("Model version m2 is on probation: its first 3 "
                                         "decisions are reviewed (this is number 3)")


# --- QA strata --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_qa_samples_are_drawn_per_confidence_band():
    use_case, owner, _reviewer = staged_use_case(Stage.AUTOMATE)
    guardrails.update_guardrails(use_case=use_case, actor=owner, qa_strata={
        "by": "confidence", "bands": [{"below": 0.95, "rate": 1.0}, {"rate": 0.0}]})

    unsure = post(use_case, 3, confidence=0.92, prefix="unsure")
    sure = post(use_case, 3, confidence=0.99, prefix="sure")

    assert [d.qa_sampled for d in unsure] == [True] * 3
    assert all(d.case.queue == use_case.qa_queue for d in unsure)
    assert [d.qa_sampled for d in sure] == [False] * 3
    assert routes(unsure + sure) == [Route.AUTO] * 6


@pytest.mark.django_db
def test_qa_samples_are_drawn_per_value_of_a_declared_field():
    use_case, owner, _reviewer = staged_use_case(Stage.AUTOMATE)
    guardrails.update_guardrails(use_case=use_case, actor=owner, qa_strata={
        "by": "input.currency", "rates": {"USD": 1.0}, "other": 0.0})

    dollars = post(use_case, 2, prefix="usd", input={"vendor": "ACME", "po_amount": 10.0,
                                                    "currency": "USD"})
    euros = post(use_case, 2, prefix="eur")

    assert [d.qa_sampled for d in dollars + euros] == [True, True, False, False]


@pytest.mark.django_db
@pytest.mark.parametrize(("strata", "field", "message"), [
    ({"by": "confidence", "bands": [{"below": 0.9, "rate": 0.5}, {"below": 0.95, "rate": 0.1}]},
     "qa_strata", 'QA strata: the last confidence band is open-ended (no "below"), so every '
                  'confidence has a band.'),
    ({"by": "confidence", "bands": [{"below": 0.9, "rate": 0.5}, {"rate": 1.5}]},
     "qa_strata", "QA strata: the rate of band 2 must be a fraction between 0 and 1, not 1.5."),
    ({"by": "input.country", "rates": {"DE": 0.1}},
     "qa_strata", 'QA strata: the input schema declares no field "country".'),
])
def test_malformed_qa_strata_are_refused_at_save(strata, field, message):
    use_case, owner, _reviewer = staged_use_case(Stage.AUTOMATE)

    with pytest.raises(ValidationError) as refused:
        guardrails.update_guardrails(use_case=use_case, actor=owner, qa_strata=strata)

    assert refused.value.message_dict[field] == [message]


# --- Demotion ---------------------------------------------------------------------------------


def _incident_informed(use_case):
    informed = UserFactory(username="compliance")
    RaciAssignment.objects.create(process=use_case.process, activity=Activity.INCIDENT,
                                  role=RaciRole.INFORMED, user=informed)
    return informed


def _qa_errors(use_case, reviewer, *, count=5, agree=2, prefix="qa"):
    review(post(use_case, count, prefix=prefix), reviewer, agree=agree)


@pytest.mark.django_db
def test_qa_errors_over_the_bound_demote_one_stage_once(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    use_case, _owner, reviewer = staged_use_case(Stage.AUTOMATE, qa_error_bound=0.2,
                                                qa_error_min_sample=5)
    informed = _incident_informed(use_case)
    _qa_errors(use_case, reviewer, agree=2)  # 3 of 5 QA samples corrected: 60%

    first = guardrails.check_use_case(use_case=use_case, now=NOW + timedelta(hours=1))
    use_case.refresh_from_db()
    again = guardrails.check_use_case(use_case=use_case, now=NOW + timedelta(hours=2))

    assert first.demoted_to == Stage.ASSIST
    assert again.demoted_to is None
    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST
    event = AuditEvent.objects.get(verb=StageVerb.STAGE_DEMOTED)
    assert event.actor is None and event.data["reason"].startswith("QA error rate 60.0%")
    outbox.relay_due()
    assert set(Notification.objects.values_list("user__username", flat=True)) == {
        "owner", informed.username}


@pytest.mark.django_db
def test_qa_errors_under_the_bound_or_too_few_demote_nothing():
    use_case, _owner, reviewer = staged_use_case(Stage.AUTOMATE, qa_error_bound=0.5,
                                                qa_error_min_sample=5)
    _qa_errors(use_case, reviewer, count=4, agree=0)  # 100% wrong, but only four samples

    assert guardrails.check_use_case(use_case=use_case).demoted_to is None
    _qa_errors(use_case, reviewer, count=1, agree=1, prefix="qa-more")  # 5 samples, 80% wrong
    assert guardrails.check_use_case(use_case=use_case).demoted_to == Stage.ASSIST


@pytest.mark.django_db
def test_a_drift_alert_demotes_one_stage_once_however_often_it_is_checked(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    use_case, _owner, _reviewer = staged_use_case(Stage.AUTOMATE)
    DriftAlert.objects.create(use_case=use_case, feature="input.po_amount",
                              level=DriftLevel.ALERT, psi=0.41, raised_at=NOW)

    for minute in range(3):
        use_case.refresh_from_db()
        guardrails.check_use_case(use_case=use_case, now=NOW + timedelta(minutes=minute))

    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST
    assert StageChange.objects.get().trigger.startswith("drift:")


@pytest.mark.django_db
def test_a_drift_warning_demotes_nothing():
    use_case, _owner, _reviewer = staged_use_case(Stage.AUTOMATE)
    DriftAlert.objects.create(use_case=use_case, feature="confidence", level=DriftLevel.WARN,
                              psi=0.12, raised_at=NOW)

    assert guardrails.check_use_case(use_case=use_case).demoted_to is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_demote_exactly_once(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)
    use_case, _owner, reviewer = staged_use_case(Stage.AUTOMATE, qa_error_bound=0.2,
                                                qa_error_min_sample=5)
    _qa_errors(use_case, reviewer, agree=1)
    DriftAlert.objects.create(use_case=use_case, feature="confidence", level=DriftLevel.ALERT,
                              psi=0.5, raised_at=NOW)

    # Eight checkers at once, each having read the use case at automate: QA errors and the
    # drift alert are two triggers, each seen four times.
    results = run_concurrently(
        lambda index: guardrails.check_use_case(
            use_case=type(use_case).objects.get(pk=use_case.pk),
            now=NOW + timedelta(hours=1, seconds=index)), times=8)

    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST
    assert [result.demoted_to for result in results].count(Stage.ASSIST) == 1
    assert StageChange.objects.count() == 1
    assert AuditEvent.objects.filter(verb=StageVerb.STAGE_DEMOTED).count() == 1
    assert Decision.objects.filter(use_case=use_case).count() == 5
