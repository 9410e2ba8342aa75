"""The fault battery: the reliability load (bench/reliability_load.py) with faults injected
under it, then checks of what must hold whatever broke.

    .venv/bin/python bench/reliability.py --size small   # about 2.5 minutes (CI)
    .venv/bin/python bench/reliability.py --size full    # about 12 minutes

Faults, at fixed fractions of the load's duration (the times are printed):

- ``kill -9`` of a gunicorn worker (gunicorn starts another), twice;
- ``pg_terminate_backend`` of every connection to the bench's database, twice;
- ``kill -9`` of the Celery worker (queue ``celery``: the periodic jobs) and its pool,
  restarted 3 s later; later the same for the webhook worker, at the same moment as a
  gunicorn worker;
- ``kill -9`` of beat, restarted 3 s later;
- Redis killed and started again empty 4 s later (no persistence: whatever was queued
  is gone), and later ``FLUSHALL``;
- all along, two AI systems' receivers never answer in time: one says nothing for 30 s,
  one drips its answer a byte a second (bench/reliability_load.py, Receivers).

After the load the stack is left to recover (at most ``recovery`` seconds), then each
check prints PASS or FAIL; any FAIL exits 1 and keeps the processes' logs:

1. every decision answered 201 or 200 is stored exactly once, under the id it was
   answered with (each replay answered the same id);
2. every ``intercompany-review`` case whose first-response deadline passed has exactly
   one level-1 escalation, with exactly one audit event; none escalated early;
3. every resolution of a ``demo-ai`` decision reached its receiver at least once,
   verified, under its outbox message's id, and every retry of any webhook carried the
   id of its first attempt;
4. ``manage.py verify_audit_chain --accept-backfilled`` passes (the demo seed dates
   its history in the past on purpose);
5. no case or message is stuck: no claim whose lease expired without the sweep giving
   the case back, no outbox message overdue without the relay taking it;
6. background jobs never stalled behind a receiver: the oldest unsealed audit event
   and the oldest due SLA check stayed under 60 s old, each escalation came within
   60 s of its deadline, and each attempt at the slow receivers ended at the webhook
   deadline (plus 5 s);
7. no answer was a 500: 5xx only as 503 with Retry-After.
"""

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import gevent

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability_load import (  # noqa: E402 (after the path; Locust patches first)
    DATABASE,
    SLA_SWEEP_SECONDS,
    WEBHOOK_TIMEOUT_SECONDS,
    Credentials,
    LoadRun,
    Stack,
    report,
    run_load,
    wall,
)

BOUND_SECONDS = 60.0  # how stale a background job's work may get, faults included


@dataclass(frozen=True)
class Size:
    upstream: int
    reviewers: int
    duration: float  # seconds of load
    batch_size: int
    response_target: float  # intercompany-review's first-response target, seconds
    # Of the decisions, posted to intercompany-invoices: each of its review cases
    # escalates (nobody works that desk), and each escalation sends several notices.
    intercompany_share: float
    recovery: float  # seconds the stack gets to catch up after the load


SIZES = {
    "small": Size(upstream=10, reviewers=3, duration=60, batch_size=10, response_target=20,
                  intercompany_share=0.2, recovery=45),
    "full": Size(upstream=50, reviewers=6, duration=480, batch_size=50, response_target=60,
                 intercompany_share=0.03, recovery=180),
}


# --- The faults -------------------------------------------------------------------------------


def terminate_connections() -> int:
    answer = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc",
         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
         f"WHERE datname = '{DATABASE}' AND pid <> pg_backend_pid()", "postgres"],
        capture_output=True, text=True, check=True)
    return int(answer.stdout.strip() or 0)


def kill_a_web_worker(stack: Stack) -> str:
    workers = stack.web.children()
    if not workers:
        return "no gunicorn worker to kill"
    victim = workers[0]
    subprocess.run(["kill", "-9", str(victim)], check=False)
    return f"gunicorn worker {victim}"


def restart_after(process, seconds: float) -> None:
    process.held = True
    try:
        process.kill9()
        gevent.sleep(seconds)
        process.start()
    finally:
        process.held = False


def faults(stack: Stack) -> list[tuple[float, str, object]]:
    """(fraction of the load, what, action) in order."""
    return [
        (0.10, "kill -9 a gunicorn worker", lambda: kill_a_web_worker(stack)),
        (0.18, "pg_terminate_backend of the app's connections",
         lambda: f"{terminate_connections()} connections"),
        (0.26, "kill -9 the Celery worker (queue celery); back 3 s later",
         lambda: restart_after(stack.worker, 3)),
        (0.36, "Redis killed; back empty 4 s later",
         lambda: stack.restart_redis(down_seconds=4)),
        (0.48, "kill -9 beat; back 3 s later", lambda: restart_after(stack.beat, 3)),
        (0.58, "Redis FLUSHALL", lambda: stack.redis_client().flushall()),
        (0.68, "pg_terminate_backend of the app's connections",
         lambda: f"{terminate_connections()} connections"),
        (0.78, "kill -9 a gunicorn worker and the webhook worker at once; back 3 s later",
         lambda: (kill_a_web_worker(stack), restart_after(stack.webhook_worker, 3))),
    ]


def inject(stack: Stack, duration: float, happened: list[str]):
    def run(outcomes) -> None:
        for fraction, what, action in faults(stack):
            gevent.sleep(max(0.0, outcomes.started + fraction * duration - wall()))
            at = wall() - outcomes.started
            try:
                result = action()
            except Exception as exc:  # a fault that could not be injected is a finding
                result = f"could not: {exc!r}"
            detail = result if isinstance(result, str) else ""
            happened.append(f"{at:6.1f} s  {what}{f' ({detail})' if detail else ''}")
    return run


# --- Recovery and checks ----------------------------------------------------------------------


def recover(stack: Stack, seconds: float) -> float:
    """Wait until demo-ai's webhooks are delivered and every audit event is sealed."""
    from workflows.models import AuditEvent, Channel, OutboxMessage, OutboxStatus

    started = wall()
    while wall() - started < seconds:
        try:
            waiting = OutboxMessage.objects.filter(
                channel=Channel.WEBHOOK, status=OutboxStatus.PENDING,
                recipient=stack.receivers.url("demo-ai")).exists()
            unsealed = AuditEvent.objects.filter(seal__isnull=True).exists()
        except Exception:  # the connection the faults cut: take a new one
            from django.db import connection

            connection.close()
            waiting = unsealed = True
        if not waiting and not unsealed:
            break
        gevent.sleep(1)
    gevent.sleep(2 * SLA_SWEEP_SECONDS)  # a doubled escalation or delivery would show now
    return wall() - started


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def check_decisions(run: LoadRun) -> Check:
    from exceptions_app.models import Decision

    stored = defaultdict(list)
    for slug, external_id, pk in Decision.objects.filter(
            external_id__startswith="rel-").values_list("ai_system__slug", "external_id", "pk"):
        stored[(slug, external_id)].append(pk)
    accepted = run.outcomes.accepted
    missing = [key for key in accepted if key not in stored]
    twice = [key for key, pks in stored.items() if len(pks) > 1]
    unstable = [key for key, ids in accepted.items()
                if key in stored and ids != set(stored[key])]
    unanswered = len(set(stored) - set(accepted))
    return Check("every accepted decision stored exactly once",
                 not (missing or twice or unstable),
                 f"{len(accepted)} accepted: {len(missing)} missing, {len(twice)} stored "
                 f"twice, {len(unstable)} answered with another id; {unanswered} more stored "
                 f"whose answer the client never kept")


def check_escalations(load_started) -> Check:
    from django.utils import timezone

    from workflows.models import AuditEvent, Case, Escalation

    now = timezone.now()
    cutoff = now - timedelta(seconds=SLA_SWEEP_SECONDS + 30)
    cases = Case.objects.filter(queue__slug="intercompany-review", created_at__gte=load_started)
    due = set(cases.filter(response_due_at__lte=cutoff).values_list("pk", flat=True))
    not_yet = set(cases.filter(response_due_at__gt=now).values_list("pk", flat=True))
    escalations = list(Escalation.objects.filter(case__in=cases))
    per_level = Counter((escalation.case_id, escalation.level) for escalation in escalations)
    lost = [pk for pk in due if (pk, 1) not in per_level]
    doubled = [key for key, count in per_level.items() if count > 1]
    early = [escalation.pk for escalation in escalations if escalation.case_id in not_yet]
    events = Counter(AuditEvent.objects.filter(verb="case.escalated", object_type="case")
                     .values_list("data__escalation", flat=True))
    unaudited = [escalation.pk for escalation in escalations if events[escalation.pk] != 1]
    return Check("every due escalation exactly once",
                 bool(due) and not (lost or doubled or early or unaudited),
                 f"{len(due)} cases due {SLA_SWEEP_SECONDS + 30:.0f} s or more before the "
                 f"check: {len(lost)} not escalated; of all {len(escalations)} escalations "
                 f"of the run's cases, {len(doubled)} doubled, {len(early)} early, "
                 f"{len(unaudited)} without exactly one audit event")


def check_deliveries(stack: Stack, load_started) -> Check:
    from exceptions_app.models import Decision
    from exceptions_app.services.callbacks import resolution_dedup_key
    from workflows.models import CaseState, OutboxMessage

    deliveries = stack.receivers.deliveries
    resolved = list(Decision.objects.filter(
        ai_system__slug="demo-ai", case__state=CaseState.RESOLVED,
        case__closed_at__gte=load_started).values_list("pk", "case_id"))
    messages = {message.dedup_key: str(message.pk) for message in OutboxMessage.objects.filter(
        dedup_key__in=[resolution_dedup_key(case_id) for _, case_id in resolved])}
    received = defaultdict(set)
    for delivery in deliveries:
        if delivery.system == "demo-ai" and delivery.verified:
            received[delivery.decision_id].add(delivery.webhook_id)
    undelivered = [pk for pk, case_id in resolved
                   if messages.get(resolution_dedup_key(case_id)) not in received.get(pk, ())]
    ids_per_decision = defaultdict(set)
    for delivery in deliveries:
        ids_per_decision[(delivery.system, delivery.decision_id)].add(delivery.webhook_id)
    unstable = [key for key, ids in ids_per_decision.items() if len(ids) > 1]
    refused = sum(1 for delivery in deliveries
                  if delivery.system == "demo-ai" and not delivery.verified)
    repeats = sum(1 for delivery in deliveries if delivery.system == "demo-ai") - len(received)
    return Check("every resolution delivered at least once with a stable id",
                 bool(resolved) and not (undelivered or unstable or refused),
                 f"{len(resolved)} demo-ai resolutions: {len(undelivered)} not delivered, "
                 f"{repeats} delivered again (at least once allows it), {refused} refused "
                 f"signatures; {len(unstable)} webhooks whose retries changed id (of "
                 f"{len(ids_per_decision)}, the slow receivers' included)")


def check_audit_chain(stack: Stack) -> Check:
    verified = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "verify_audit_chain",
         "--accept-backfilled"], cwd=ROOT, env=stack.env, capture_output=True, text=True)
    lines = (verified.stdout + verified.stderr).strip().splitlines()
    return Check("manage.py verify_audit_chain", verified.returncode == 0,
                 " ".join(lines[:1] + lines[-1:]) if lines else "(no output)")


def check_nothing_stuck() -> Check:
    from django.utils import timezone

    from workflows.models import Case, CaseState, OutboxMessage, OutboxStatus

    # Lease expiry runs every 30 s and the relays every 10 s: past that and a minute of
    # grace, nobody is going to move these, unless the relay is still working through
    # a backlog (it delivered something within the last half minute): that is slow,
    # and reported, but not stuck.
    now = timezone.now()
    stale = now - timedelta(seconds=30 + BOUND_SECONDS)
    expired_claims = Case.objects.filter(state=CaseState.ASSIGNED,
                                         lease_expires_at__lt=stale).count()
    overdue = OutboxMessage.objects.filter(status=OutboxStatus.PENDING,
                                           next_attempt_at__lt=stale).count()
    draining = OutboxMessage.objects.filter(
        delivered_at__gte=now - timedelta(seconds=30)).count()
    states = dict(Counter(Case.objects.values_list("state", flat=True)))
    return Check("no case stuck in a state nobody can move it from",
                 expired_claims == 0 and (overdue == 0 or draining > 0),
                 f"{expired_claims} claims past their lease; {overdue} outbox messages "
                 f"overdue, {draining} delivered in the last 30 s (a backlog being worked "
                 f"through is not stuck); cases by state {states}")


def check_background(run: LoadRun, load_started) -> Check:
    from workflows.models import Channel, DeliveryAttempt, Escalation

    samples = run.sampler.samples
    sealing = max((s["sealing_lag"] for s in samples if "sealing_lag" in s), default=0.0)
    sla = max((s["sla_lag"] for s in samples if "sla_lag" in s), default=0.0)
    lags = [(escalation.created_at - escalation.due_at).total_seconds()
            for escalation in Escalation.objects.filter(created_at__gte=load_started,
                                                        due_at__isnull=False)]
    escalation_lag = max(lags, default=0.0)
    attempts = DeliveryAttempt.objects.filter(
        message__channel=Channel.WEBHOOK, attempted_at__gte=load_started,
        message__recipient__regex=r"/(timeout|drip)-ai$")
    longest = max(attempts.values_list("duration_ms", flat=True), default=0) / 1000
    passed = (max(sealing, sla, escalation_lag) <= BOUND_SECONDS
              and longest <= WEBHOOK_TIMEOUT_SECONDS + 5 and attempts.exists())
    return Check("background jobs never stalled behind a receiver", passed,
                 f"oldest unsealed audit event at most {sealing:.0f} s, oldest due SLA check "
                 f"{sla:.0f} s, escalation {escalation_lag:.0f} s after its deadline (bound "
                 f"{BOUND_SECONDS:.0f} s); {attempts.count()} attempts at the slow receivers, "
                 f"the longest {longest:.1f} s (deadline {WEBHOOK_TIMEOUT_SECONDS:.0f} s)")


def check_no_500s(run: LoadRun) -> Check:
    errors = run.outcomes.server_errors
    bad = [error for error in errors if error[2] != 503 or not error[3]]
    by_status = Counter(f"{status}{'' if retry_after else ' without Retry-After'}"
                        for _, _, status, retry_after in errors)
    first = ("; first: " + ", ".join(f"{at:.0f} s {what} {status}"
                                     for at, what, status, _ in bad[:3])) if bad else ""
    return Check("no 500s (503 with Retry-After allowed during faults)", not bad,
                 f"5xx answers {dict(by_status) or 'none'}{first}")


def run_checks(stack: Stack, run: LoadRun, load_started) -> list[Check]:
    return [check_decisions(run), check_escalations(load_started),
            check_deliveries(stack, load_started), check_audit_chain(stack),
            check_nothing_stuck(), check_background(run, load_started), check_no_500s(run)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args()
    size = SIZES[args.size]
    began = time.monotonic()
    stack = Stack(response_target=size.response_target)
    checks: list[Check] = []
    try:
        credentials: Credentials = stack.start()
        from django.utils import timezone

        print(f"Stack up in {time.monotonic() - began:.0f} s ({stack.url}, Redis on "
              f"{stack.redis_port}, logs in {stack.workdir}); {args.size} load: "
              f"{size.upstream} upstream clients, {size.reviewers} reviewers and an "
              f"approver for {size.duration:.0f} s", flush=True)
        load_started = timezone.now()
        happened: list[str] = []
        run = run_load(stack, credentials, upstream=size.upstream, reviewers=size.reviewers,
                       duration=size.duration, batch_size=size.batch_size,
                       intercompany_share=size.intercompany_share,
                       during=inject(stack, size.duration, happened))
        print("Faults:", *happened, sep="\n  ")
        print("\n".join(report(run)))
        waited = recover(stack, size.recovery)
        print(f"Recovery: {waited:.0f} s", flush=True)
        checks = run_checks(stack, run, load_started)
    finally:
        stack.stop()
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    failed = not checks or not all(check.passed for check in checks)
    if failed:
        for process in stack.processes:
            print(process.output()[-3000:])
        print(f"Logs kept in {stack.workdir}")
    else:
        shutil.rmtree(stack.workdir, ignore_errors=True)
    print(f"{'FAILED' if failed else 'PASSED'} in {time.monotonic() - began:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
