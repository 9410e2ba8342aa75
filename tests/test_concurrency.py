"""tests.concurrency.run_concurrently: the racers start together and report back in order."""

import threading

import pytest

from tests.concurrency import run_concurrently


def test_every_racer_waits_for_the_others_and_answers_in_order():
    arrived = []

    def racer(index):
        arrived.append(index)
        return (index, len(arrived))

    outcomes = run_concurrently(racer, times=4)

    assert [index for index, _ in outcomes] == [0, 1, 2, 3]
    assert sorted(arrived) == [0, 1, 2, 3]


def test_a_racers_error_is_raised_in_the_tests_thread_after_all_finished():
    finished = threading.Event()

    def fails():
        raise ValueError("lost the race")

    with pytest.raises(AssertionError, match="1 of 2 calls raised") as raised:
        run_concurrently(fails, finished.set)

    assert isinstance(raised.value.__cause__, ValueError)
    assert finished.is_set()


def test_errors_can_be_the_outcome_under_test():
    def conflict():
        raise LookupError("409")

    outcomes = run_concurrently(lambda: "won", conflict, return_exceptions=True)

    assert outcomes[0] == "won" and isinstance(outcomes[1], LookupError)
