"""Backtests: what a policy version would have done with decisions already recorded.

A backtest judges each decision of a window with the version under test and with the
version active when the backtest was asked for, and counts where their routes differ
(auto -> review, review -> auto, ...), keeping a few examples of each. Where people have
resolved a decision, it also says how the changed routes compare with what they decided:
the draft would have passed on its own decisions the reviewers corrected, or sent to
review decisions the reviewers accepted as they were.

Routes are the policy's own (as in the assist stage): in the audit stage everything is
reviewed whatever the rules say, which would hide every difference between versions.

Requests are quick (``request_backtest``); the work runs as a Celery job
(``tasks.run_backtest`` -> ``run``), writing its progress as it goes.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from exceptions_app.activities import DomainActivity
from exceptions_app.models import (
    Backtest,
    BacktestStatus,
    Decision,
    PolicyStatus,
    PolicyVersion,
    Route,
    Stage,
    UseCase,
)
from exceptions_app.policy import (
    CompiledPolicy,
    Evaluation,
    compile_policy,
    evaluate,
    evaluation_context,
    judge,
)
from exceptions_app.routing import UseCaseRouting, route_decision
from exceptions_app.services.quality import Proportion
from exceptions_app.verbs import DomainVerb
from workflows import actors
from workflows import selectors as engine_selectors
from workflows.models import RaciRole, Verdict
from workflows.services import audit, background_jobs, raci

EXAMPLES_PER_CHANGE = 5
# Decisions read per round trip, and how often the progress is written.
CHUNK = 5_000
# The most decisions one backtest judges: a larger window is refused when asked for.
MAX_DECISIONS = 5_000_000


def may_backtest(*, user, use_case: UseCase) -> bool:
    """Managers, and whoever the RACI matrix makes Responsible or Accountable for the
    use case's policy changes: the people who draft and approve versions."""
    if engine_selectors.is_manager(user):
        return True
    owners = {person.pk for role in (RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE)
              for person in raci.holders(process=use_case.process,
                                         activity=DomainActivity.POLICY_CHANGE, role=role)}
    return user.pk in owners


@transaction.atomic
def request_backtest(*, policy: PolicyVersion, actor, last: int | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     now: datetime | None = None) -> Backtest:
    """Queue a backtest of ``policy`` over the last ``last`` decisions of its use case or
    those received from ``since`` to ``until``; audited ``policy.backtest_requested``."""
    actors.require(actor)
    use_case = policy.use_case
    if not may_backtest(user=actor, use_case=use_case):
        raise PermissionDenied("Only managers and the people Responsible or Accountable for "
                               f"{use_case}'s policy changes can backtest its policies.")
    _check_window(last=last, since=since, until=until)
    baseline = PolicyVersion.objects.filter(use_case=use_case,
                                            status=PolicyStatus.ACTIVE).first()
    if baseline is None:
        raise ValidationError({"policy": f"{use_case} has no active policy to compare "
                                         "this version with."})
    now = now or timezone.now()
    backtest = Backtest.objects.create(
        use_case=use_case, policy=policy, baseline=baseline, last=last, since=since,
        until=until, requested_by=actor, requested_at=now)
    audit.record(actor=actor, verb=DomainVerb.POLICY_BACKTEST_REQUESTED,
                 object_type="policy", object_id=policy.pk, now=now,
                 data={"backtest": backtest.pk, "baseline": baseline.number,
                       "version": policy.number, **_window_data(backtest)})
    transaction.on_commit(lambda: _enqueue(backtest.pk))
    return backtest


def _enqueue(backtest_id: int) -> None:
    from exceptions_app.tasks import run_backtest

    background_jobs.hand_over(run_backtest, backtest_id, what="backtest")


def enqueue_waiting(*, now: datetime | None = None) -> int:
    """Hand over again the backtests queued over a minute ago, and those a lost worker left
    running; what a worker has done already it skips (``run``)."""
    waiting = background_jobs.waiting(Backtest.objects, queued=BacktestStatus.QUEUED,
                                      running=BacktestStatus.RUNNING,
                                      now=now or timezone.now())
    for backtest_id in waiting:
        _enqueue(backtest_id)
    return len(waiting)


def _check_window(*, last, since, until) -> None:
    if last is not None:
        if since is not None or until is not None:
            raise ValidationError({"last": "Give either a number of recent decisions or a "
                                           "period, not both."})
        if not 1 <= last <= MAX_DECISIONS:
            raise ValidationError({"last": f"The number of recent decisions must be from 1 "
                                           f"to {MAX_DECISIONS:,}."})
        return
    if since is None or until is None:
        raise ValidationError({"last": "Give a number of recent decisions, or a period with "
                                       "both its start and its end."})
    if since >= until:
        raise ValidationError({"until": "The period's end must come after its start."})


def _window_data(backtest: Backtest) -> dict:
    if backtest.last is not None:
        return {"last": backtest.last}
    return {"since": backtest.since.isoformat(), "until": backtest.until.isoformat()}


def window_decisions(backtest: Backtest):
    """The window's decisions, newest first (withdrawn ones included: they were routed)."""
    decisions = Decision.objects.filter(use_case_id=backtest.use_case_id)
    if backtest.last is not None:
        return decisions.order_by("-id")[:backtest.last]
    return decisions.filter(received_at__gte=backtest.since,
                            received_at__lt=backtest.until).order_by("-id")


@dataclass(frozen=True)
class Judged:
    """One decision as both versions route it."""

    decision_id: int
    case_id: int | None
    external_id: str
    verdict: str | None  # what people said of it, if they resolved it
    baseline: str
    candidate: str
    rule: str | None  # the candidate's deciding rule (None: its default)


@dataclass
class _Tally:
    """What a backtest counts as it reads decisions."""

    decisions: int = 0

    def __post_init__(self):
        self.routes = {"baseline": Counter(), "candidate": Counter()}
        self.changes: Counter = Counter()
        self.labelled: Counter = Counter()
        self.accepted: Counter = Counter()
        self.examples: dict[tuple[str, str], list[dict]] = {}
        self.corrected_examples: list[dict] = []
        # Per version: labelled decisions it would auto-pass, and of those not accepted.
        self.auto_labelled = Counter()
        self.auto_not_accepted = Counter()

    def add(self, judged: Judged) -> None:
        baseline, candidate, verdict = judged.baseline, judged.candidate, judged.verdict
        self.decisions += 1
        self.routes["baseline"][baseline] += 1
        self.routes["candidate"][candidate] += 1
        accepted = verdict == Verdict.ACCEPTED
        if verdict is not None:
            for version, route in (("baseline", baseline), ("candidate", candidate)):
                if route == Route.AUTO:
                    self.auto_labelled[version] += 1
                    self.auto_not_accepted[version] += not accepted
        if baseline == candidate:
            return
        change = (baseline, candidate)
        self.changes[change] += 1
        example = example_of(judged)
        examples = self.examples.setdefault(change, [])
        if len(examples) < EXAMPLES_PER_CHANGE:
            examples.append(example)
        if verdict is not None:
            self.labelled[change] += 1
            self.accepted[change] += accepted
            if candidate == Route.AUTO and not accepted and (
                    len(self.corrected_examples) < EXAMPLES_PER_CHANGE):
                self.corrected_examples.append(example)

    def as_result(self) -> dict:
        changes = [
            {"from": before, "to": after, "count": count,
             "labelled": self.labelled[(before, after)],
             "accepted": self.accepted[(before, after)],
             "examples": self.examples[(before, after)]}
            for (before, after), count in sorted(self.changes.items(),
                                                 key=lambda item: (-item[1], item[0]))]
        return {
            "decisions": self.decisions,
            "unchanged": self.decisions - sum(self.changes.values()),
            "routes": {version: {route: counts[route] for route in Route.values}
                       for version, counts in self.routes.items()},
            "changes": changes,
            "corrected_but_auto_passed": {
                "count": sum(self.labelled[change] - self.accepted[change]
                             for change in self.changes if change[1] == Route.AUTO),
                "examples": self.corrected_examples},
            "auto_errors": {
                version: Proportion(self.auto_not_accepted[version],
                                    self.auto_labelled[version]).as_dict()
                for version in ("baseline", "candidate")},
        }


def example_of(judged: Judged) -> dict:
    return {"decision": judged.decision_id, "case": judged.case_id,
            "external_id": judged.external_id, "rule": judged.rule, "verdict": judged.verdict}


def run(backtest_id: int) -> Backtest:
    """Do a queued backtest. Idempotent: a finished one, or one another worker is running
    (its heartbeat is recent), is left as it is; one whose worker was lost starts again."""
    with transaction.atomic():
        backtest = Backtest.objects.select_for_update().get(pk=backtest_id)
        now = timezone.now()
        if background_jobs.is_taken(backtest, running=BacktestStatus.RUNNING, now=now):
            return backtest
        backtest.status, backtest.started_at, backtest.heartbeat_at = (
            BacktestStatus.RUNNING, now, now)
        backtest.processed = 0
        backtest.total = window_decisions(backtest).count()
        backtest.save(update_fields=["status", "started_at", "heartbeat_at", "processed",
                                     "total"])
    try:
        tally = judge_window(backtest, progress=lambda done: _progress(backtest, done))
    except Exception as exc:
        Backtest.objects.filter(pk=backtest.pk).update(
            status=BacktestStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
        raise
    backtest.result = tally.as_result()
    backtest.status, backtest.finished_at = BacktestStatus.DONE, timezone.now()
    backtest.processed = tally.decisions
    backtest.save(update_fields=["result", "status", "finished_at", "processed"])
    return backtest


def _progress(backtest: Backtest, done: int) -> None:
    Backtest.objects.filter(pk=backtest.pk).update(processed=done, heartbeat_at=timezone.now())


def judge_decisions(decisions, *, baseline: PolicyVersion, candidate: PolicyVersion,
                    use_case: UseCase) -> Iterator[Judged]:
    """Route each decision of the queryset with both versions, in its order.

    JSON is read as text and parsed with orjson, and one evaluation context serves both
    versions: for a million decisions the ORM's JSON decoding and a second conversion
    would cost more than the rules. A version whose rules loop over lists goes through
    ``judge``, which bounds what they may loop over exactly as intake does.
    """
    versions = (compile_policy(baseline), compile_policy(candidate))
    keys = _keys_read_by(*versions)
    routing = _policy_routing(use_case)
    max_list_items = settings.MAX_RULE_LIST_ITEMS
    rows = (decisions
            .annotate(input_text=Cast("input", TextField()),
                      output_text=Cast("output", TextField()),
                      meta_text=Cast("meta", TextField()),
                      verdict=F("labelled_example__verdict"))
            .values_list("id", "case_id", "external_id", "input_text", "output_text",
                         "meta_text", "confidence", "model_version", "verdict")
            .iterator(chunk_size=CHUNK))
    for decision_id, case_id, external_id, input_text, output_text, meta_text, confidence, \
            model_version, verdict in rows:
        decision = {"input": orjson.loads(input_text), "output": orjson.loads(output_text),
                    "meta": orjson.loads(meta_text) if meta_text else {},
                    "confidence": confidence, "model_version": model_version}
        context = evaluation_context(**decision, keys=keys)
        (baseline_route, _), (candidate_route, rule) = (
            _route(routing, version, external_id,
                   judge(version, **decision, max_list_items=max_list_items)
                   if version.list_macro_depth else evaluate(version, context))
            for version in versions)
        yield Judged(decision_id=decision_id, case_id=case_id, external_id=external_id,
                     verdict=verdict, baseline=baseline_route, candidate=candidate_route,
                     rule=rule)


def judge_window(backtest: Backtest, *, progress=None) -> _Tally:
    """Judge every decision of the backtest's window; ``progress(done)`` now and then."""
    tally = _Tally()
    for judged in judge_decisions(window_decisions(backtest), baseline=backtest.baseline,
                                  candidate=backtest.policy, use_case=backtest.use_case):
        tally.add(judged)
        if progress is not None and tally.decisions % CHUNK == 0:
            progress(tally.decisions)
    return tally


def _keys_read_by(*policies: CompiledPolicy) -> dict:
    """The keys any of the policies reads (None where one may read any)."""
    keys = {}
    for name in ("input", "output", "meta"):
        reads = [(policy.keys_read or {}).get(name) for policy in policies]
        keys[name] = None if any(read is None for read in reads) else frozenset().union(*reads)
    return keys


def _policy_routing(use_case: UseCase) -> UseCaseRouting:
    # The policy's own routes: assist, with no QA sample to move a decision elsewhere.
    return UseCaseRouting(slug=use_case.slug, stage=Stage.ASSIST,
                          review_queue_id=use_case.review_queue_id, qa_queue_id=None,
                          automate_qa_rate=0.0, optimize_qa_rate=0.0)


def _route(routing: UseCaseRouting, policy: CompiledPolicy, external_id: str,
           evaluation: Evaluation) -> tuple[str, str | None]:
    """The route and the name of the rule that decided it (None: the default)."""
    result = route_decision(use_case=routing, policy=policy, evaluation=evaluation,
                            external_id=external_id)
    return result.route, evaluation.matched.name if evaluation.matched else None


def recent_backtests(*, use_case: UseCase, limit: int = 20) -> list[Backtest]:
    return list(Backtest.objects.filter(use_case=use_case)
                .select_related("policy", "baseline", "requested_by")[:limit])

