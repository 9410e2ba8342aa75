"""The synthetic upstream AI (``exceptions_app.demo.simulation``)."""

import random
from statistics import mean

import pytest

from exceptions_app.contracts import contract_errors
from exceptions_app.demo.data import INPUT_SCHEMA, OUTPUT_SCHEMA
from exceptions_app.demo.reviewers import ReviewerStyle, answer
from exceptions_app.demo.setup import seed_demo
from exceptions_app.demo.simulation import (
    DRIFT_VENDORS,
    Scenario,
    SimulationError,
    careful_output,
    post_decisions,
    synthetic_decision,
    synthetic_decisions,
)


def test_the_same_seed_draws_the_same_invoices():
    first = synthetic_decisions(count=200, error_rate=0.2, seed=7)

    assert first == synthetic_decisions(count=200, error_rate=0.2, seed=7)
    assert first != synthetic_decisions(count=200, error_rate=0.2, seed=8)
    assert [s.body["external_id"] for s in first[:2]] == ["sim-s7-000001", "sim-s7-000002"]


def test_unseeded_runs_get_their_own_external_ids():
    first = synthetic_decisions(count=3, error_rate=0.1)
    second = synthetic_decisions(count=3, error_rate=0.1)

    assert {s.body["external_id"] for s in first}.isdisjoint(
        s.body["external_id"] for s in second)


@pytest.mark.parametrize("error_rate", [0.0, 0.1, 0.3])
def test_the_share_of_wrong_outputs_is_the_one_asked_for(error_rate):
    decisions = synthetic_decisions(count=4000, error_rate=error_rate, seed=11)

    wrong = [s for s in decisions if s.wrong]
    assert abs(len(wrong) / len(decisions) - error_rate) < 0.02
    for synthetic in decisions:
        assert (synthetic.body["output"] != synthetic.truth) == synthetic.wrong
        assert bool(synthetic.error) == synthetic.wrong
    if wrong:
        average = sum(s.body["confidence"] for s in decisions) / len(decisions)
        assert sum(s.body["confidence"] for s in wrong) / len(wrong) < average


def test_invoices_keep_the_contract_and_vary_like_real_ones():
    rng = random.Random(3)
    decisions = [synthetic_decision(rng, external_id=f"x-{n}", error_rate=0.2)
                 for n in range(1000)]

    for synthetic in decisions:
        assert contract_errors(INPUT_SCHEMA, synthetic.body["input"]) == []
        assert contract_errors(OUTPUT_SCHEMA, synthetic.body["output"]) == []
        assert contract_errors(OUTPUT_SCHEMA, synthetic.truth) == []
    inputs = [s.body["input"] for s in decisions]
    assert {invoice["currency"] for invoice in inputs} == {"EUR", "USD", "GBP", "CHF"}
    assert len({invoice["vendor"] for invoice in inputs}) == 10
    off_po = [s for s in decisions if abs(s.truth["amount"] - s.body["input"]["po_amount"])
              > 0.02 * s.body["input"]["po_amount"]]
    assert 0.05 < len(off_po) / len(decisions) < 0.2
    assert any(s.truth["amount"] > 50000 for s in decisions)
    assert {s.error for s in decisions if s.wrong} == {"amount", "vendor"}


@pytest.mark.django_db(transaction=True)
def test_a_refused_key_stops_the_run(live_server):
    seed_demo()
    decisions = synthetic_decisions(count=2, error_rate=0.0, seed=1)

    with pytest.raises(SimulationError, match="refused"):
        post_decisions(decisions=decisions, url=live_server.url, api_key="not.a-key", rate=0)


def test_an_unreachable_server_is_named():
    decisions = synthetic_decisions(count=1, error_rate=0.0, seed=1)

    with pytest.raises(SimulationError, match=r"Cannot reach http://127\.0\.0\.1:9"):
        post_decisions(decisions=decisions, url="http://127.0.0.1:9", api_key="k", rate=0,
                       max_retries=0)


def test_a_drift_changes_the_invoices_after_its_start_and_not_before():
    plain = synthetic_decisions(count=2000, error_rate=0.1, seed=4)
    drifting = synthetic_decisions(count=2000, error_rate=0.1, seed=4,
                                   scenario=Scenario(error_rate=0.1, drift_after=1000))

    assert drifting[:1000] == plain[:1000]
    before, after = drifting[:1000], drifting[1000:]
    new_vendors = {vendor.name for vendor in DRIFT_VENDORS}
    assert not any(s.body["input"]["vendor"] in new_vendors for s in before)
    assert 0.2 < sum(s.body["input"]["vendor"] in new_vendors for s in after) / 1000 < 0.4
    assert mean(s.truth["amount"] for s in after) > 1.3 * mean(s.truth["amount"] for s in before)
    assert mean(s.body["confidence"] for s in after) < mean(s.body["confidence"] for s in before)
    for synthetic in after:
        assert contract_errors(INPUT_SCHEMA, synthetic.body["input"]) == []


def test_a_new_model_version_takes_over_midway():
    decisions = synthetic_decisions(count=100, error_rate=0.1, seed=2, scenario=Scenario(
        new_model_after=60, new_model="invoice-extractor-4.0.0"))

    versions = [s.body["model_version"] for s in decisions]
    assert "invoice-extractor-4.0.0" not in versions[:60]
    assert set(versions[60:]) == {"invoice-extractor-4.0.0"}


def test_careful_output_is_the_truth_the_generator_knows():
    for synthetic in synthetic_decisions(count=500, error_rate=0.3, seed=9):
        if synthetic.truth["action"] != "reject":  # duplicates show only in history
            assert careful_output(synthetic.body["input"]) == synthetic.truth


@pytest.mark.parametrize(("accuracy", "expected"), [(1.0, True), (0.0, False)])
def test_a_reviewer_judges_right_as_often_as_its_accuracy(accuracy, expected):
    right_ai = next(s for s in synthetic_decisions(count=50, error_rate=0.0, seed=3)
                    if s.truth["action"] != "reject")
    wrong_ai = next(s for s in synthetic_decisions(count=200, error_rate=0.5, seed=3) if s.wrong)
    style, rng = ReviewerStyle(accuracy=accuracy, seconds=0), random.Random(1)

    def case(synthetic, blind=False):
        return {"id": 1, "version": 3, "subject": {"input": synthetic.body["input"]},
                "suggestion": None if blind else {"output": synthetic.body["output"]},
                "reason_codes": [{"code": "wrong-amount", "label": "Wrong amount"}]}

    on_right, judged = answer(case(right_ai), right_ai, style=style, rng=rng)
    on_wrong, _ = answer(case(wrong_ai), wrong_ai, style=style, rng=rng)
    blind, _ = answer(case(wrong_ai, blind=True), wrong_ai, style=style, rng=rng)

    assert judged is expected
    if expected:
        assert on_right == {"verdict": "accepted", "version": 3}
        assert on_wrong["verdict"] == "corrected" and on_wrong["output"] == wrong_ai.truth
        assert on_wrong["reason_code"] == "wrong-amount"
        assert blind == {"verdict": "corrected", "output": wrong_ai.truth, "version": 3}
    else:
        assert on_right["verdict"] == "corrected" and on_right["output"] != right_ai.truth
        assert on_wrong == {"verdict": "accepted", "version": 3}
        assert blind["output"] != wrong_ai.truth


def test_subtle_errors_are_cents_off_and_as_sure_as_right_answers():
    decisions = synthetic_decisions(count=3000, error_rate=0.2, seed=5,
                                    scenario=Scenario(error_rate=0.2, subtle_errors=True))

    wrong = [s for s in decisions if s.wrong]
    right = [s for s in decisions if not s.wrong]
    assert wrong and all(s.error == "amount" for s in wrong)
    for synthetic in wrong:
        assert 0 < abs(synthetic.body["output"]["amount"] - synthetic.truth["amount"]) < 1
        assert synthetic.body["output"]["vendor"] == synthetic.truth["vendor"]
    assert abs(mean(s.body["confidence"] for s in wrong)
               - mean(s.body["confidence"] for s in right)) < 0.01
