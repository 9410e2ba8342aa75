"""Stages earned from evidence: the gates refuse a move up below them and name each gate
that fails; above them the Accountable signs off and the evidence is kept; down is always
allowed with a reason."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from exceptions_app.models import Stage
from exceptions_app.services import stages
from exceptions_app.stage_models import Guardrails, StageChange, StageMove
from exceptions_app.verbs import StageVerb
from tests.exceptions_app.stage_support import NOW, post, review, staged_use_case
from tests.factories import make_manager
from tests.workflows.sla_support import publish
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_below_the_gates_the_move_up_is_refused_naming_each_gate_that_fails():
    use_case, owner, reviewer = staged_use_case(min_reviewed=5, min_agreement=0.9)
    review(post(use_case, 3), reviewer, agree=2)

    with pytest.raises(stages.StageRefused) as refused:
        stages.advance_stage(use_case=use_case, actor=owner, now=NOW + timedelta(hours=1))

    assert refused.value.problems == [
        "Reviewed decisions: needs at least 5, has 3.",
        "Agreement with reviewers: needs at least 90%, has 66.7%."]
    use_case.refresh_from_db()
    assert use_case.stage == Stage.AUDIT
    assert not AuditEvent.objects.filter(verb=StageVerb.STAGE_ADVANCED).exists()


def test_above_the_gates_the_accountable_signs_off_and_the_evidence_is_recorded():
    use_case, owner, reviewer = staged_use_case(min_reviewed=4, min_agreement=0.75)
    review(post(use_case, 4), reviewer, agree=3)

    change = stages.advance_stage(use_case=use_case, actor=owner, note="Four of four fine",
                                  now=NOW + timedelta(hours=1))

    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST
    assert (change.from_stage, change.to_stage, change.move) == ("audit", "assist", "advanced")
    event = AuditEvent.objects.get(verb=StageVerb.STAGE_ADVANCED)
    assert event.actor == owner
    assert event.data["signed_off_by"] == "owner"
    assert event.data["note"] == "Four of four fine"
    assert (event.data["before"], event.data["after"]) == ({"stage": "audit"},
                                                           {"stage": "assist"})
    evidence = event.data["evidence"]
    assert evidence["current_model_version"] == "m1"
    assert evidence["versions"][0]["agreement"]["count"] == 3
    assert evidence["versions"][0]["agreement"]["sample_size"] == 4
    assert evidence["versions"][0]["sla_compliance"]["sample_size"] == 4
    assert [gate["gate"] for gate in evidence["gates"]] == ["reviewed", "agreement", "sla"]
    assert all(gate["met"] for gate in evidence["gates"])


def test_the_default_gates_ask_for_500_reviewed_decisions_at_95_percent():
    use_case, _owner, reviewer = staged_use_case()
    review(post(use_case, 3), reviewer, agree=3)

    evidence = stages.stage_evidence(use_case=use_case, now=NOW + timedelta(hours=1))

    assert [(gate.key, gate.requirement, gate.met) for gate in evidence.gates] == [
        ("reviewed", "at least 500", False), ("agreement", "at least 95%", True),
        ("sla", "at least 90%", True)]


def test_cases_resolved_after_their_due_time_fail_the_sla_gate():
    use_case, owner, reviewer = staged_use_case(min_reviewed=2, min_agreement=0.5)
    publish(use_case.review_queue, response=timedelta(minutes=30),
            resolution=timedelta(hours=1), now=NOW - timedelta(days=1))
    review(post(use_case, 2), reviewer, agree=2, minutes=90)

    with pytest.raises(stages.StageRefused) as refused:
        stages.advance_stage(use_case=use_case, actor=owner, now=NOW + timedelta(hours=2))

    assert refused.value.problems == ["SLA compliance: needs at least 90%, has 0.0%."]


def test_only_the_accountable_for_stage_changes_signs_off():
    use_case, _owner, reviewer = staged_use_case(min_reviewed=1, min_agreement=0.5)
    review(post(use_case, 1), reviewer, agree=1)

    with pytest.raises(PermissionDenied, match="owner"):
        stages.advance_stage(use_case=use_case, actor=make_manager(), now=NOW)
    assert not StageChange.objects.exists()


def test_the_move_to_optimize_needs_the_lower_end_of_qa_accuracy_over_its_bound():
    use_case, owner, reviewer = staged_use_case(Stage.AUTOMATE, min_qa_reviewed=10,
                                                min_qa_accuracy_low=0.95)
    sampled = post(use_case, 10)
    assert all(decision.qa_sampled for decision in sampled)
    review(sampled, reviewer, agree=10)

    with pytest.raises(stages.StageRefused) as refused:
        stages.advance_stage(use_case=use_case, actor=owner, now=NOW + timedelta(hours=1))
    # Ten of ten: the Wilson interval's lower end is 72.2%, not enough for 95%.
    assert refused.value.problems == [
        "QA accuracy (95% interval's lower end): needs at least 95%, has 72.2%."]

    Guardrails.objects.filter(use_case=use_case).update(min_qa_accuracy_low=0.7)
    stages.advance_stage(use_case=use_case, actor=owner, now=NOW + timedelta(hours=1))
    use_case.refresh_from_db()
    assert use_case.stage == Stage.OPTIMIZE


def test_the_gates_weigh_the_current_model_version_not_the_earlier_ones():
    use_case, _owner, reviewer = staged_use_case(min_reviewed=3, min_agreement=0.9)
    review(post(use_case, 3, model_version="m1"), reviewer, agree=3)
    review(post(use_case, 1, model_version="m2", now=NOW + timedelta(minutes=1)), reviewer,
           agree=1)

    evidence = stages.stage_evidence(use_case=use_case, now=NOW + timedelta(hours=1))

    assert evidence.current_version == "m2"
    assert [version.model_version for version in evidence.versions] == ["m1", "m2"]
    assert not evidence.gates_met  # m2 has one reviewed decision of the three needed


def test_going_down_needs_a_reason_and_is_always_allowed():
    use_case, owner, _reviewer = staged_use_case(Stage.AUTOMATE)

    with pytest.raises(ValidationError) as missing:
        stages.lower_stage(use_case=use_case, actor=owner, reason="  ")
    assert "reason" in missing.value.message_dict

    change = stages.lower_stage(use_case=use_case, actor=make_manager(),
                                reason="Vendor master data migration this week")

    use_case.refresh_from_db()
    assert use_case.stage == Stage.ASSIST
    assert change.move == StageMove.LOWERED
    event = AuditEvent.objects.get(verb=StageVerb.STAGE_LOWERED)
    assert event.data["reason"] == "Vendor master data migration this week"


def test_there_is_nothing_below_audit():
    use_case, owner, _reviewer = staged_use_case(Stage.AUDIT)

    with pytest.raises(stages.StageRefused, match="audit stage already"):
        stages.lower_stage(use_case=use_case, actor=owner, reason="Just in case")


def test_a_reviewer_may_not_move_the_stage_down():
    use_case, _owner, reviewer = staged_use_case(Stage.ASSIST)

    with pytest.raises(PermissionDenied):
        stages.lower_stage(use_case=use_case, actor=reviewer, reason="I'd rather not")
