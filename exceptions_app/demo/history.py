"""The demo's history: decisions received over the last business days and hours,
worked by the reviewers through the case services, with the engine's periodic jobs run
at the moments they would have run (a simulator of the product in use)."""


import heapq
import itertools
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile
from django.db.models import Min

from exceptions_app.demo.data import (
    CALENDAR_NAME,
    CALENDAR_TIME_ZONE,
    DEMO_SEED,
    ERROR_RATE,
    HISTORY_DAYS,
    HISTORY_PER_DAY,
    INTERCOMPANY_DECISIONS,
    INTERCOMPANY_MINUTES_APART,
    INTERCOMPANY_SLUG,
    LEFT_UNCLAIMED,
    RECENT_DECISIONS,
    REVIEWERS,
)
from exceptions_app.demo.invoice_pdf import invoice_pdf
from exceptions_app.demo.simulation import SyntheticDecision, synthetic_decision
from exceptions_app.models import AiSystem, Decision
from exceptions_app.services.documents import upload_document
from exceptions_app.services.intake import submit_decisions
from workflows.business_time import is_open
from workflows.models import Calendar, Case, CaseState, Verdict
from workflows.services import claiming, sla, sweeper, transitions


def seed_work(*, ai_system: AiSystem, users: dict, now: datetime) -> int:
    """Decisions and the reviewers' work on them, into a database without decisions.

    History: on each of the last ``HISTORY_DAYS`` business days, invoices arrive during
    office hours and the reviewers claim and decide them in time (a second person
    approves the large ones), except the last ones of the latest day, which nobody
    picks up: the SLA clock escalates them along the chain. Today: ``RECENT_DECISIONS``
    arrive over the last two hours and the reviewers are busy with some (one claimed,
    one waiting for the vendor, one large invoice pending approval and, if the chain
    has not yet moved it on, the forgotten case sent up to the owner by hand). Between
    events the engine's periodic jobs run at the instants they come due. Answers the
    decisions posted.
    """
    if Decision.objects.exists():
        return 0
    calendar = sla.business_calendar(Calendar.objects.get(name=CALENDAR_NAME))
    zone = ZoneInfo(CALENDAR_TIME_ZONE)
    rng = random.Random(DEMO_SEED)
    timeline = _Timeline(users=users)
    numbers = itertools.count(1)
    days = _business_days_before(now.astimezone(zone).date(), count=HISTORY_DAYS,
                                 calendar=calendar, zone=zone)
    for day_index, day in enumerate(days):  # the oldest first
        latest_day = day_index == len(days) - 1
        for slot in range(HISTORY_PER_DAY):
            received = datetime.combine(day, time(9, 10), tzinfo=zone) + timedelta(
                minutes=40 * slot + rng.randint(0, 15))
            synthetic = synthetic_decision(rng, external_id=f"demo-{next(numbers):04d}",
                                           error_rate=ERROR_RATE)
            unclaimed = latest_day and slot >= HISTORY_PER_DAY - LEFT_UNCLAIMED
            timeline.add(received, "receive", synthetic=synthetic, work=not unclaimed,
                         reviewer=REVIEWERS[slot % 2])
    for n in range(1, RECENT_DECISIONS + 1):
        synthetic = synthetic_decision(rng, external_id=f"demo-{next(numbers):04d}",
                                       error_rate=ERROR_RATE)
        received = now - timedelta(minutes=3 * (RECENT_DECISIONS - n), seconds=17 * n % 60)
        timeline.add(received, "receive", synthetic=synthetic, work=False)
    # Today's work in progress, in the order it happened.
    timeline.add(now - timedelta(minutes=50), "escalate_by_hand", reviewer="reviewer")
    timeline.add(now - timedelta(minutes=31), "ask_vendor", reviewer="reviewer2")
    timeline.add(now - timedelta(minutes=19), "four_eyes", reviewer="reviewer")
    timeline.add(now - timedelta(minutes=4), "claim_next", reviewer="reviewer")
    return timeline.run(ai_system=ai_system, until=now)


def seed_intercompany_work(*, ai_system: AiSystem, now: datetime) -> int:
    """The automated use case's last hours, into a use case without decisions.

    ``INTERCOMPANY_DECISIONS`` arrive ``INTERCOMPANY_MINUTES_APART`` minutes apart up to
    ``now``, day or night, as intercompany invoices do. The rules approve most, and a
    sample of those goes to the blind QA queue; the others wait on the round-the-clock
    desk, where nobody has picked them up yet: the older ones are at risk or breached,
    whatever the time of day. Answers the decisions posted.
    """
    if Decision.objects.filter(use_case__slug=INTERCOMPANY_SLUG).exists():
        return 0
    rng = random.Random(DEMO_SEED + 1)
    timeline = _Timeline(users={})
    for n in range(1, INTERCOMPANY_DECISIONS + 1):
        synthetic = synthetic_decision(rng, external_id=f"demo-ic-{n:04d}",
                                       error_rate=ERROR_RATE, use_case=INTERCOMPANY_SLUG)
        received = now - timedelta(minutes=INTERCOMPANY_MINUTES_APART
                                   * (INTERCOMPANY_DECISIONS - n) + 1)
        timeline.add(received, "receive", synthetic=synthetic, work=False)
    return timeline.run(ai_system=ai_system, until=now)


def _business_days_before(today: date, *, count: int, calendar, zone: ZoneInfo) -> list[date]:
    """The ``count`` business days before ``today``, oldest first (open at noon)."""
    days, day = [], today
    while len(days) < count:
        day -= timedelta(days=1)
        if is_open(calendar, datetime.combine(day, time(12), tzinfo=zone)):
            days.append(day)
    return days[::-1]


class _Timeline:
    """Events in time order, with the engine's periodic jobs run in between."""

    def __init__(self, *, users: dict):
        self.users = users
        self.events: list = []
        self.order = itertools.count()
        self.posted = 0

    def add(self, at: datetime, kind: str, **details) -> None:
        heapq.heappush(self.events, (at, next(self.order), kind, details))

    def run(self, *, ai_system: AiSystem, until: datetime) -> int:
        while self.events:
            at, _, kind, details = heapq.heappop(self.events)
            run_periodic_jobs(until=at)
            getattr(self, f"_{kind}")(at, ai_system=ai_system, **details)
        run_periodic_jobs(until=until)
        return self.posted

    def _receive(self, at: datetime, *, ai_system: AiSystem, synthetic: SyntheticDecision,
                 work: bool, reviewer: str = "") -> None:
        [result] = submit_decisions(ai_system=ai_system, items=[synthetic.body], now=at)
        self.posted += result.status == 201
        case = result.decision.case if result.decision else None
        if case is not None:
            attach_invoice(ai_system=ai_system, decision_id=result.decision.pk,
                           invoice=synthetic.body["input"], now=at)
        if case is None or not work:
            return
        # Claimed well inside the first-response window, decided within minutes.
        claim_at = at + (case.response_due_at - at) * 0.4
        self.add(claim_at, "claim", case_id=case.pk, reviewer=reviewer)
        self.add(claim_at + timedelta(minutes=4 + case.pk % 11), "decide", case_id=case.pk,
                 reviewer=reviewer, synthetic=synthetic)

    def _claim(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        claiming.claim(case_id=case_id, user=self.users[reviewer], now=at)

    def _decide(self, at: datetime, *, case_id: int, reviewer: str,
                synthetic: SyntheticDecision, **_) -> None:
        case = _resolve_as_a_reviewer_would(case_id=case_id, user=self.users[reviewer],
                                            synthetic=synthetic, now=at)
        if case.state == CaseState.PENDING_APPROVAL:
            self.add(at + timedelta(minutes=20), "approve", case_id=case_id)

    def _approve(self, at: datetime, *, case_id: int, **_) -> None:
        transitions.approve(case_id=case_id, user=self.users["manager"], now=at)

    def _ask_vendor(self, at: datetime, *, reviewer: str, **_) -> None:
        """Claim an invoice that disagrees with its PO; ask the vendor a few minutes later."""
        open_cases = list(Case.objects.filter(
            state=CaseState.OPEN, escalation_level=0, requires_four_eyes=False,
            decision__reasons__0__rule="po-mismatch").order_by("created_at")[:1])
        if not open_cases:
            return
        case = claiming.claim(case_id=open_cases[0].pk, user=self.users[reviewer], now=at)
        self.add(at + timedelta(minutes=6), "request_info", case_id=case.pk, reviewer=reviewer)

    def _request_info(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        transitions.request_info(
            case_id=case_id, user=self.users[reviewer], now=at,
            reason="Asked the vendor for the delivery note: the invoice and the purchase "
                   "order disagree on the quantities.")

    def _four_eyes(self, at: datetime, *, reviewer: str, **_) -> None:
        """Claim a large invoice; the reviewer's resolution then waits for a second person."""
        large = list(Case.objects.filter(state=CaseState.OPEN, escalation_level=0,
                                         requires_four_eyes=True)
                     .order_by("created_at")[:1])
        if not large:
            return
        claiming.claim(case_id=large[0].pk, user=self.users[reviewer], now=at)
        self.add(at + timedelta(minutes=7), "submit_for_approval", case_id=large[0].pk,
                 reviewer=reviewer)

    def _submit_for_approval(self, at: datetime, *, case_id: int, reviewer: str, **_) -> None:
        decision = Decision.objects.get(case=case_id)
        transitions.resolve(case_id=case_id, user=self.users[reviewer],
                            verdict=Verdict.ACCEPTED, output=None, reason_code="", now=at,
                            notes=f"Checked the {len(decision.input['line_items'])} line "
                                  f"item(s) against {decision.input['po_number']}.")

    def _escalate_by_hand(self, at: datetime, *, reviewer: str, **_) -> None:
        """A reviewer takes a case the chain handed to the reviewers and sends it up to
        the owner: the next level re-queues it on the escalations desk and asks the
        Consulted."""
        user = self.users[reviewer]
        handed = list(Case.objects.filter(
            state__in=(CaseState.OPEN, CaseState.ESCALATED, CaseState.ASSIGNED),
            escalation_level=1, queue__slug="invoice-review").order_by("created_at")[:1])
        if not handed:
            return
        case = handed[0]
        if case.assignee_id != user.pk:
            if case.state == CaseState.ASSIGNED:
                return  # someone else holds it: theirs to decide
            case = claiming.claim(case_id=case.pk, user=user, now=at)
        transitions.escalate(
            case_id=case.pk, user=user, now=at + timedelta(minutes=3),
            reason="The vendor's bank account on this invoice differs from the one in our "
                   "vendor master data: the owner should decide before anything is paid.")

    def _claim_next(self, at: datetime, *, reviewer: str, **_) -> None:
        claiming.claim_next(user=self.users[reviewer], now=at)


def attach_invoice(*, ai_system: AiSystem, decision_id: int, invoice: dict,
                   now: datetime) -> None:
    """The invoice the AI read, as its PDF, uploaded as the AI system would: the true
    lines and total, so a reviewer can catch a misread amount against it."""
    lines = [(f"{line['quantity']} x {line['description']}",
              line["quantity"] * line["unit_price"]) for line in invoice["line_items"]]
    pdf = invoice_pdf(number=invoice["invoice_number"], vendor=invoice["vendor"],
                      amount=sum(amount for _, amount in lines), currency=invoice["currency"],
                      lines=lines)
    upload_document(ai_system=ai_system, decision_id=decision_id, now=now,
                    file=ContentFile(pdf, name=f"{invoice['invoice_number']}.pdf"))


def _resolve_as_a_reviewer_would(*, case_id: int, user, synthetic: SyntheticDecision,
                                 now: datetime) -> Case:
    """The careful answer: accept a right output, correct a wrong one with the truth."""
    if synthetic.wrong:
        return transitions.resolve(
            case_id=case_id, user=user, verdict=Verdict.CORRECTED, output=synthetic.truth,
            reason_code=f"wrong-{synthetic.error}", now=now,
            notes="The invoice says otherwise; corrected from the document.")
    reason_code = {"reject": "duplicate", "hold": "po-mismatch"}.get(
        synthetic.body["output"]["action"], "")
    return transitions.resolve(case_id=case_id, user=user, verdict=Verdict.ACCEPTED,
                               output=None, reason_code=reason_code, now=now)


def run_periodic_jobs(*, until: datetime, max_rounds: int = 10_000) -> None:
    """What beat would have run up to ``until``: every SLA check and lease expiry, each at
    the instant it came due, in time order (``sweeper.sweep``, ``claiming.expire_leases``)."""
    for _ in range(max_rounds):
        next_check = (sweeper.due_cases(now=until)
                      .aggregate(at=Min("sla_next_check_at"))["at"])
        next_expiry = (Case.objects.filter(state=CaseState.ASSIGNED,
                                           lease_expires_at__lte=until)
                       .aggregate(at=Min("lease_expires_at"))["at"])
        if next_check is None and next_expiry is None:
            return
        if next_expiry is not None and (next_check is None or next_expiry <= next_check):
            claiming.expire_leases(now=next_expiry)
        else:
            sweeper.sweep(now=next_check)
    raise RuntimeError(f"The periodic jobs did not catch up with {until} in {max_rounds} "
                       "rounds; a case's clock does not move forward.")
