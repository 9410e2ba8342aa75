"""The synthetic upstream AI (``exceptions_app.demo.simulation``)."""

import random

import pytest

from exceptions_app.contracts import contract_errors
from exceptions_app.demo.data import INPUT_SCHEMA, OUTPUT_SCHEMA
from exceptions_app.demo.setup import seed_demo
from exceptions_app.demo.simulation import (
    SimulationError,
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
