"""The filters of the case list, written once for the page (``/cases/``) and the API
(``GET /api/v1/cases/``): the same words, the same answers, the same errors.

Every filter narrows the cases the person may see (``selectors.visible_cases``, I8);
none counts them, and the list reads newest first, so a page stops at its last row.
A search's cost is bounded (``case_search.bounded``): ``search_floor`` says where it
stopped, for the page's "Older" link and the API's ``next``. Filters that keep to open
cases read them through ``case_open_list_idx`` alone, then fetch the page's rows
(``narrow``).
"""

from datetime import UTC

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Subquery
from django.utils import timezone

from workflows import case_search
from workflows.models import OPEN_STATES, Case, CaseState, Queue
from workflows.services import sla


class SearchField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if value:
            case_search.search_terms(value)  # says what to type when it is too short
        return value


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


class SlaFilter(django_filters.ChoiceFilter):
    """Breached or at risk now: the dashboard's reading (``sla.having_status``)."""

    STATUSES = {"breached": sla.SlaStatus.BREACHED, "at_risk": sla.SlaStatus.AT_RISK}

    def filter(self, queryset, value):
        if not value:
            return queryset
        return sla.having_status(queryset, self.STATUSES[value], now=timezone.now())


UNASSIGNED = "none"


class CaseFilter(django_filters.FilterSet):
    search = SearchFilter(
        method="filter_search", label="Search",
        help_text="Words of an external id, a title or an input value, any case; every "
                  "word must match, and one needs at least "
                  f"{case_search.MIN_TERM_LENGTH} characters (up to "
                  f"{case_search.MAX_TERMS} words). A rare word (an external id) is "
                  "found however old; a common one is searched "
                  f"{case_search.SEARCH_WINDOW:,} cases at a time, newest first, so a "
                  "page may come back short or empty: follow `next` to search on.")
    process = django_filters.CharFilter(field_name="queue__process__slug", label="Use case",
                                        help_text="A use case's (process's) slug.")
    queue = django_filters.CharFilter(method="filter_queue", label="Queue",
                                      help_text="A queue's slug.")
    # distinct=False: a state is a column of the case, no join repeats a row (a DISTINCT
    # would sort every match before the page's first row).
    state = django_filters.MultipleChoiceFilter(choices=CaseState.choices, label="State",
                                                distinct=False,
                                                help_text="Repeat for several states.")
    assignee = django_filters.CharFilter(method="filter_assignee", label="Assignee",
                                         help_text="A username, 'me', or 'none' for "
                                                   "unassigned cases.")
    priority = django_filters.NumberFilter(label="Priority", help_text="Exactly this priority.")
    priority_min = django_filters.NumberFilter(field_name="priority", lookup_expr="gte",
                                               label="Priority at least",
                                               help_text="This priority or more urgent.")
    due_before = django_filters.IsoDateTimeFilter(
        method="filter_due_before", label="Due before",
        help_text="Due before this time (ISO 8601).")
    due_after = django_filters.IsoDateTimeFilter(
        method="filter_due_after", label="Due after",
        help_text="Due at or after this time (ISO 8601).")
    sla = SlaFilter(choices=[("breached", "Breached"), ("at_risk", "At risk")], label="SLA",
                    help_text="Open cases past their deadline (breached) or past a "
                              "warning (at risk), now.")

    class Meta:
        model = Case
        fields = ["search", "process", "queue", "state", "assignee", "priority",
                  "priority_min", "due_before", "due_after", "sla"]

    def __init__(self, *args, before: int | None = None, window: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.before = before  # the page starts below this id (None: the newest)
        self.window = window  # False: a page read back upwards (the API's ``previous``)
        self.search_floor: int | None = None  # where a search stopped, if it did

    def filter_search(self, queryset, name, value):
        try:
            terms = case_search.search_terms(value)
        except ValidationError:  # the form refused it already
            return queryset.none()
        cases, self.search_floor = case_search.bounded(queryset, terms, before=self.before,
                                                       window=self.window)
        return cases

    def filter_queryset(self, queryset):
        return narrow(super().filter_queryset(queryset), self.form.cleaned_data)

    # A queue and a person by a scalar subquery, ``queue_id = (SELECT ...)``, rather than
    # a join: the id is then a constant to the planner, and an index on the case's
    # column answers newest first without sorting every match.
    def filter_queue(self, queryset, name, value):
        return queryset.filter(queue=Subquery(Queue.objects.filter(slug=value).values("pk")))

    # ISO 8601 allows offsets PostgreSQL refuses (-16:00); the instant is what counts.
    def filter_due_before(self, queryset, name, value):
        return queryset.filter(due_at__lt=value.astimezone(UTC))

    def filter_due_after(self, queryset, name, value):
        return queryset.filter(due_at__gte=value.astimezone(UTC))

    def filter_assignee(self, queryset, name, value):
        if value == "me":
            return queryset.filter(assignee=self.request.user.pk)
        if value == UNASSIGNED:
            return queryset.filter(assignee__isnull=True)
        return queryset.filter(assignee=Subquery(
            get_user_model().objects.filter(username=value).values("pk")))


def narrow(cases, chosen: dict):
    """Cases filtered to open ones (by SLA status, or states all open) as ``pk IN (the
    matching ids)``: the ids come from an index-only scan of ``case_open_list_idx``
    (open cases only, newest first, with every column the scope and the filters read),
    and only a page's rows are fetched. Filtered in one query, the planner walks that
    index fetching every open case's row to test it: thousands of table pages for a
    page of breached cases. Whatever ``cases`` selects or defers is the caller's to
    add again (the page and the API choose their columns after filtering)."""
    states = chosen.get("state") or []
    if chosen.get("sla") or (states and set(states) <= set(OPEN_STATES)):
        return Case.objects.filter(pk__in=cases.values("pk"))
    return cases
