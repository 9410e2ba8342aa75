"""Simulated reviewers: people working the queues through the API with a chosen accuracy
and speed, so that quality metrics have human labels to measure.

Each reviewer takes the most urgent case it may work (``claim-next``), reads it, thinks
for about ``seconds``, and resolves it as a person who judges right ``accuracy`` of the
time would: knowing the truth of the simulated invoice, it accepts a right output and
corrects a wrong one with the true output; otherwise it does the opposite (accepts the
wrong output, or "corrects" a right one with a misread amount). In blind review it
answers with its own output, as the page asks. Four-eyes cases resolved by another
reviewer are approved when there is nothing to claim. For a case the run did not post,
the right output is what a careful person reads off the invoice.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from exceptions_app.demo.simulation import SimulationError, SyntheticDecision, careful_output

CASES = "/api/v1/cases/"


@dataclass(frozen=True)
class ReviewerStyle:
    accuracy: float = 0.95  # share of cases judged right
    seconds: float = 2.0  # mean thinking time per case (exponential)


@dataclass
class ReviewTally:
    """What the reviewers did: verdicts given, approvals, and how many were judged right."""

    verdicts: Counter = field(default_factory=Counter)
    approvals: int = 0
    judged_right: int = 0
    refused: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def resolved(self, verdict: str, right: bool) -> None:
        with self.lock:
            self.verdicts[verdict] += 1
            self.judged_right += right


def answer(case: Mapping, truth: SyntheticDecision | None, *, style: ReviewerStyle,
           rng: random.Random) -> tuple[dict, bool]:
    """The resolve body this reviewer sends for the case, and whether it judged right.

    The right output is the run's truth of the invoice, or, for a case the run did not
    post, what a careful person reads off its input (``careful_output``)."""
    blind = case["suggestion"] is None
    right_output = truth.truth if truth else careful_output(case["subject"]["input"])
    suggested = None if blind else case["suggestion"]["output"]
    right = rng.random() < style.accuracy
    if right:
        chosen = right_output
    elif suggested is not None and suggested != right_output:
        chosen = suggested  # misses the AI's mistake
    else:
        chosen = dict(right_output, amount=round(right_output["amount"] * 1.1, 2))
    if blind:
        return {"verdict": "corrected", "output": chosen, "version": case["version"]}, right
    if chosen == suggested:
        return {"verdict": "accepted", "version": case["version"]}, right
    codes = [item["code"] for item in case.get("reason_codes") or []]
    return {"verdict": "corrected", "output": chosen, "version": case["version"],
            "reason_code": codes[0] if codes else "",
            "notes": "Checked against the invoice."}, right


def work_queues(*, url: str, tokens: list[str], truths: Mapping[str, SyntheticDecision],
                style: ReviewerStyle, until: Callable[[], bool], seed: int | None = None,
                on_resolved: Callable[[], None] | None = None) -> ReviewTally:
    """Run one simulated reviewer per person token; each stops once ``until()`` is true
    and it finds nothing to claim or approve. Answers what they did."""
    tally = ReviewTally()
    errors: list[Exception] = []
    threads = [threading.Thread(target=_reviewer, daemon=True, kwargs={
        "url": url, "token": token, "truths": truths, "style": style, "until": until,
        "rng": random.Random(None if seed is None else seed + index), "tally": tally,
        "errors": errors, "on_resolved": on_resolved}) for index, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return tally


def _reviewer(*, url, token, truths, style, until, rng, tally, errors, on_resolved):
    try:
        with httpx.Client(base_url=url.rstrip("/"), timeout=30.0,
                          headers={"Authorization": f"Token {token}"}) as client:
            while True:
                claimed = client.post(f"{CASES}claim-next/", json={})
                if claimed.status_code == 401:
                    raise SimulationError("A reviewer token was refused (401): issue one with "
                                          "`manage.py issue_user_token <username>`.")
                if claimed.status_code == 200:
                    _resolve(client, claimed.json(), truths, style, rng, tally)
                    if on_resolved is not None:
                        on_resolved()
                elif not _approve_one(client, tally):
                    if until():
                        return
                    time.sleep(0.5)
    except Exception as exc:  # reported by work_queues in the caller's thread
        errors.append(exc)


def _resolve(client, case, truths, style, rng, tally) -> None:
    truth = truths.get(case["subject"].get("external_id", ""))
    body, right = answer(case, truth, style=style, rng=rng)
    if style.seconds:
        time.sleep(rng.expovariate(1 / style.seconds))
    resolved = client.post(f"{CASES}{case['id']}/resolve/", json=body)
    if resolved.status_code == 200:
        tally.resolved(body["verdict"], right)
    else:
        tally.refused[resolved.status_code] += 1


def _approve_one(client, tally) -> bool:
    """Approve one four-eyes case another reviewer resolved; False when there is none."""
    waiting = client.get(CASES, params={"state": "pending_approval"})
    for case in waiting.json().get("results", []) if waiting.status_code == 200 else []:
        approved = client.post(f"{CASES}{case['id']}/approve/", json={"version": case["version"]})
        if approved.status_code == 200:
            with tally.lock:
                tally.approvals += 1
            return True
    return False
