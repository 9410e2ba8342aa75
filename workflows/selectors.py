"""Read queries the web pages and the API share.

Scope (I8): a person sees the cases of the queues they are a member of (directly or
through a group), the cases assigned to them, those they resolved first and the
open cases they were consulted on (to read them and answer there); a
manager (``workflows.manage_cases``) and an auditor (``workflows.read_everything``) see
every case. Everything else is absent,
which the API and the pages answer with 404.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, ExpressionWrapper, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from workflows import db
from workflows.models import (
    CLAIMABLE_STATES,
    HELD_STATES,
    OPEN_STATES,
    AuditEvent,
    Calendar,
    Case,
    CaseComment,
    CaseState,
    ConsultRequest,
    Notification,
    OutboxMessage,
    Process,
    Queue,
    RaciAssignment,
    SavedCaseView,
    SlaPolicy,
    is_manager,
    reads_everything,
)

# The order work is taken in; ``case_claimable_idx`` serves it per queue.
URGENCY_ORDER = ("-priority", "due_at", "id")


# -- who works a queue: a member, or Responsible in the RACI matrix of its process -------
# (each directly or through a group). Written once, as SQL over the membership and RACI
# tables (``workflows.db``); every question
# about it (the queues a person works, the people who work a queue, does this person work
# that queue) is one of the functions below.


def member_queue_ids(user) -> RawSQL:
    """Ids of the queues the user works, directly or through a group."""
    return db.queues_worked_by(user.pk)


def works_queue(*, user, queue_id: int) -> bool:
    """Does the user work this queue, directly or through a group? One query."""
    if not (user and user.is_authenticated and user.pk):
        return False
    return Queue.objects.filter(pk=queue_id, pk__in=member_queue_ids(user)).exists()


def queue_workers(*, queue_id: int) -> QuerySet:
    """The active people who work the queue, directly or through a group."""
    return get_user_model().objects.filter(is_active=True, pk__in=db.workers_of_queue(queue_id))


def queue_worker_ids(queue_ids: Iterable[int]) -> dict[int, set[int]]:
    """Who works each queue, directly or through a group, active or not: one query."""
    workers: dict[int, set[int]] = {}
    for queue_id, user_id in db.queue_worker_pairs(list(queue_ids)):
        workers.setdefault(queue_id, set()).add(user_id)
    return workers


def with_membership(cases: QuerySet[Case], *, user) -> QuerySet[Case]:
    """Each case with ``user_works_queue``: ``works_queue``'s answer for its queue, read
    with the case rather than in a query of its own (give it to the case's transitions
    with ``models.remember_membership``)."""
    return cases.annotate(user_works_queue=ExpressionWrapper(
        Q(queue__in=member_queue_ids(user)), output_field=BooleanField()))


def member_queues(*, user) -> QuerySet[Queue]:
    """Queues the user works, directly or through a group (managers: all)."""
    if not (user and user.is_authenticated):
        return Queue.objects.none()
    if is_manager(user):
        return Queue.objects.all()
    return Queue.objects.filter(pk__in=member_queue_ids(user))


def visible_cases(*, user) -> QuerySet[Case]:
    """Every case the user may see (I8)."""
    if not (user and user.is_authenticated):
        return Case.objects.none()
    if reads_everything(user):
        return Case.objects.all()
    consulted_on = ConsultRequest.objects.filter(consultee=user.pk).values("case")
    return Case.objects.filter(
        Q(queue__in=member_queue_ids(user)) | Q(assignee=user.pk)
        | Q(first_reviewer=user.pk) | Q(pk__in=consulted_on, state__in=OPEN_STATES))


def may_see(*, case: Case, user) -> bool:
    """Is ``case`` (read without the scope) one of ``visible_cases(user=user)``? The same
    rule, asked of one loaded case: the holder, the first reviewer, a manager or an
    auditor without a query; a member of its queue with one (remembered on the case,
    where the transitions' permissions ask it again); consulted on it, with one more.
    tests/workflows/test_scope.py holds the two equal."""
    if not (user and user.is_authenticated):
        return False
    if user.pk in (case.assignee_id, case.first_reviewer_id) or reads_everything(user):
        return True
    asked = case.__dict__.setdefault("_members_asked", {})  # shared with the permissions
    key = (user.pk, case.queue_id)
    if key not in asked:
        asked[key] = works_queue(user=user, queue_id=case.queue_id)
    if asked[key]:
        return True
    return case.state in OPEN_STATES and ConsultRequest.objects.filter(
        case=case.pk, consultee=user.pk).exists()


def workable_cases(*, user, queue: Queue | None = None,
                   queue_slug: str | None = None) -> QuerySet[Case]:
    """Cases waiting in a queue the user works, ready to claim, most urgent first.

    ``queue_slug`` names the queue without reading it first: the queue's id is a scalar
    subquery, computed once, so the cases are still one ordered range of the index.
    """
    cases = Case.objects.filter(state__in=CLAIMABLE_STATES)
    if queue is not None:
        cases = cases.filter(queue=queue)
    if queue_slug is not None:
        cases = cases.filter(queue_id=Subquery(
            Queue.objects.filter(slug=queue_slug).order_by().values("pk")[:1]))
    if not (user and user.is_authenticated):
        return Case.objects.none()
    if not is_manager(user):
        cases = cases.filter(queue__in=member_queue_ids(user))
    return cases.order_by(*URGENCY_ORDER)


def hides_suggestion(*, case: Case, user) -> bool:
    """Blind review: whoever may answer an open case does not see the machine's proposal.

    The point of a blind queue is that the answer is not anchored on the AI's. So,
    while the case is open, the suggestion is hidden from:

    - every non-manager (a reviewer may claim it, or approve the answer, at any time);
    - a manager who holds the case (they are the one answering);
    - anyone while an answer waits for four-eyes approval (the approval is an answer
      too: whether the answer matched would give the suggestion away).

    A manager who is not answering may see it; everyone may once the case is closed.
    The case page, the approvals page, the API and the resolve service all ask this one
    question, for the suggestion itself and for anything that repeats it (the timeline's
    ``decision.received`` event carries the confidence and the reasons).
    """
    if not (case.queue.blind and case.is_open):
        return False
    return (not reads_everything(user) or case.assignee_id == user.pk
            or case.state == CaseState.PENDING_APPROVAL)


def queue_page(*, user, queue: Queue, limit: int = 50) -> list[Case]:
    """The first ``limit`` cases waiting in a queue, as the queue page lists them.

    One index range scan of ``case_claimable_idx`` (queue, -priority, due_at, id),
    however long the queue or its history.
    """
    return list(workable_cases(user=user, queue=queue)
                .select_related("queue", "assignee")[:limit])


# What home shows of a case in hand and of its queue (``home_panels.in_hand_panel``):
# these, not the case's two dozen columns and its queue's dozen, each converted.
IN_HAND_FIELDS = ("id", "title", "state", "priority", "due_at", "queue")
IN_HAND_QUEUE_FIELDS = ("id", "name")


def my_cases(*, user) -> list[Case]:
    """The user's own work in hand: assigned to them or waiting for information, most
    urgent first, each with its queue; what home shows of them (``IN_HAND_FIELDS``), in
    one plain statement (``db.cases_in_hand``)."""
    if not (user and user.is_authenticated):
        return []
    return db.cases_in_hand(user_id=user.pk, states=HELD_STATES, fields=IN_HAND_FIELDS,
                            queue_fields=IN_HAND_QUEUE_FIELDS)


# Past this many waiting cases a queue's count says "1,000+": counting further on every
# home page view (and its poll every 30 s) read up to ten thousand index entries a queue,
# for a figure nobody acts on differently (the case list pages through them all).
OPEN_COUNT_CAP = 1_000


@dataclass(frozen=True)
class QueueSummary:
    queue: Queue
    open_count: int  # cases waiting to be claimed (open or escalated), at most the cap
    oldest_open_at: datetime | None
    open_count_capped: bool = False  # there are more than ``open_count``

    @property
    def open_count_label(self) -> str:
        return f"{self.open_count:,}+" if self.open_count_capped else f"{self.open_count:,}"

    def oldest_open_age(self, now: datetime | None = None):
        """How long the oldest waiting case has waited (a timedelta), or None."""
        if self.oldest_open_at is None:
            return None
        return (now or timezone.now()) - self.oldest_open_at


def queue_summaries(*, user, queue_ids: Iterable[int] | None = None) -> list[QueueSummary]:
    """Each queue the user works (of ``queue_ids``, if given), with its waiting count and
    oldest wait: one plain statement (``db.queue_summary_rows``: the ORM's version cost
    more to build and compile than to run, on every home page).

    Per queue, the count reads at most ``OPEN_COUNT_CAP + 1`` entries of
    ``case_claimable_idx`` and the oldest wait is one probe of ``case_waiting_age_idx``,
    so neither the backlog nor closed history slows the home page down.
    """
    if not (user and user.is_authenticated):
        return []
    rows = db.queue_summary_rows(
        worked_by=None if is_manager(user) else user.pk,
        queue_ids=None if queue_ids is None else list(queue_ids),
        states=CLAIMABLE_STATES, cap=OPEN_COUNT_CAP + 1)
    return [QueueSummary(queue=queue, open_count=min(count, OPEN_COUNT_CAP),
                         oldest_open_at=oldest, open_count_capped=count > OPEN_COUNT_CAP)
            for queue, count, oldest in rows]


# What a row of the case list shows: reading only these keeps a page of 50 cheap.
CASE_LIST_FIELDS = ("id", "title", "state", "priority", "due_at", "queue__name",
                    "assignee__username", "assignee__first_name", "assignee__last_name")


def case_list_page(*, cases: QuerySet[Case], before: int | None = None,
                   size: int = 50, floor: int | None = None) -> tuple[list[Case], int | None]:
    """One page of a case list, newest first, and the id the next page starts before
    (None on the last page). Keyset paging by id: no count, no offset, so the hundredth
    page costs what the first does however long the history. ``floor``: ``cases`` stop
    at this id (a search's window, ``case_search.bounded``); a short page goes on below
    it."""
    if before is not None:
        cases = cases.filter(pk__lt=before)
    rows = list(cases.select_related("queue", "assignee").only(*CASE_LIST_FIELDS)
                .order_by("-id")[:size + 1])
    if len(rows) > size:
        return rows[:size], rows[size - 1].pk
    return rows, floor


def saved_case_views(*, user) -> QuerySet[SavedCaseView]:
    """The person's own saved views of the case list, by name."""
    return SavedCaseView.objects.filter(user=user.pk).order_by("name")


def pending_approvals(*, user) -> QuerySet[Case]:
    """Four-eyes cases the user may approve: visible, and not resolved first by them."""
    if not (user and user.is_authenticated):
        return Case.objects.none()
    return (visible_cases(user=user)
            .filter(state=CaseState.PENDING_APPROVAL)
            .exclude(first_reviewer=user.pk)
            .select_related("queue", "first_reviewer", "resolution")
            .order_by(*URGENCY_ORDER))


def case_timeline(*, case) -> list[AuditEvent]:
    """Every audit event of the case, oldest first, with its actor (``audit_case_idx``;
    one plain statement, ``db.case_events``)."""
    return db.case_events(case.pk)


def case_comments(*, case) -> QuerySet[CaseComment]:
    """The case's comments, oldest first, with their authors and the people mentioned."""
    return (CaseComment.objects.filter(case=case.pk).select_related("author")
            .prefetch_related("mentioned").order_by("created_at", "id"))


def changes_since(*, case_id: int, version: int) -> QuerySet[AuditEvent]:
    """What happened to the case after the version a page showed, oldest first: its
    audit events that moved it past that version (each names the version it brought
    the case to). The case's events only (``audit_case_idx``), so a short filter."""
    return (AuditEvent.objects.filter(case=case_id, data__version__gt=version)
            .select_related("actor").order_by("id"))


# --- Notifications and the delivery log -------------------------------------------------

def user_notifications(*, user) -> QuerySet[Notification]:
    """The person's own notifications, newest first (``notification_user_idx``).

    Only their own, whoever asks (I8): another person's notification is absent (404).
    """
    if not (user and user.is_authenticated):
        return Notification.objects.none()
    return (Notification.objects.filter(user=user.pk).select_related("case")
            .order_by("-created_at", "-id"))


def unread_notification_count(*, user) -> int:
    """For the top bar's badge: one COUNT over ``notification_unread_idx``."""
    if not (user and user.is_authenticated):
        return 0
    return Notification.objects.filter(user=user.pk, read_at__isnull=True).count()


@dataclass(frozen=True)
class TopBar:
    """What every page's top bar shows of the signed-in person."""

    works_queues: bool  # then "Next case" is worth offering (a manager works every queue)
    approvals: int  # four-eyes cases waiting for them (``pending_approvals``)
    unread_notifications: int


def top_bar(*, user) -> TopBar:
    """The top bar's three answers in one statement (``db.top_bar_counts``): it is paid
    on every page."""
    if not (user and user.is_authenticated):
        return TopBar(works_queues=False, approvals=0, unread_notifications=0)
    works, approvals, unread = db.top_bar_counts(
        user_id=user.pk, manager=is_manager(user), reads_everything=reads_everything(user))
    return TopBar(works_queues=works, approvals=approvals, unread_notifications=unread)


def delivery_log(*, status: str = "", channel: str = "") -> QuerySet[OutboxMessage]:
    """Outbox messages for managers, newest first, with their attempts in one more query."""
    messages = OutboxMessage.objects.all()
    if status:
        messages = messages.filter(status=status)
    if channel:
        messages = messages.filter(channel=channel)
    return (messages.select_related("case").prefetch_related("delivery_attempts")
            .order_by("-created_at", "-id"))


def display_names(*, user_ids) -> dict[int, str]:
    """How pages name these people (``User.display_name``), by id. One query."""
    user_ids = set(user_ids)
    if not user_ids:
        return {}
    return {user.pk: user.display_name for user in get_user_model().objects.filter(
        pk__in=user_ids).only("pk", "username", "first_name", "last_name")}


def visible_queues(*, user) -> QuerySet[Queue]:
    """The queues the user works (managers and auditors: all), each with its current SLA
    version."""
    current = SlaPolicy.objects.filter(queue=OuterRef("pk"), is_current=True)
    queues = Queue.objects.all() if reads_everything(user) else member_queues(user=user)
    return (queues
            .annotate(current_sla_version=Subquery(current.values("version")[:1]))
            .order_by("name"))


def visible_processes(*, user) -> QuerySet[Process]:
    """Processes the user may read the matrix of: managers all; others those whose
    queues they work or whose matrix names them (directly or through a group)."""
    if not (user and user.is_authenticated):
        return Process.objects.none()
    if reads_everything(user):
        return Process.objects.all()
    named = RaciAssignment.objects.filter(Q(user=user.pk) | Q(group__user=user.pk))
    return Process.objects.filter(
        Q(pk__in=Queue.objects.filter(pk__in=member_queues(user=user)).values("process_id"))
        | Q(pk__in=named.values("process_id")))


def visible_calendars(*, user) -> QuerySet[Calendar]:
    """Calendars of the policies (any version) of the queues the user works; managers and
    auditors all."""
    if reads_everything(user):
        return Calendar.objects.all()
    used = SlaPolicy.objects.filter(queue__in=member_queues(user=user),
                                    calendar__isnull=False).values("calendar_id")
    return Calendar.objects.filter(pk__in=used)
