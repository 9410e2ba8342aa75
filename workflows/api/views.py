"""Cases for people: list, detail, claim-next and one action per transition.

Each action parses, calls its service and answers the case as it is now (with its
new ``state`` and ``version``). Refusals come out of ``workflows.api.errors``: 409
with the current state, 403, 404 (out of scope, I8) or 400 with field errors.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Exists, OuterRef
from django.http import Http404
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import Cursor
from rest_framework.response import Response

from workflows import db, selectors
from workflows.api.authentication import ThrottledTokenAuthentication
from workflows.api.pagination import NewestFirstPagination
from workflows.api.serializers import (
    BulkActionSerializer,
    BulkResultSerializer,
    CaseCommentSerializer,
    CaseDetailSerializer,
    CaseSerializer,
    ClaimNextSerializer,
    CommentSerializer,
    NewCommentSerializer,
    PrioritySerializer,
    ProblemSerializer,
    ReasonSerializer,
    ReassignSerializer,
    ResolveSerializer,
    VersionSerializer,
    case_rows,
)
from workflows.case_filters import CaseFilter
from workflows.models import Case, ConsultRequest, Resolution, remember_membership
from workflows.services import bulk, claiming, comments, transitions
from workflows.services.errors import ReviewerAway

# The case's own columns a list row shows (``CaseSerializer``), its queue and assignee by id.
CASE_ROW_COLUMNS = [*(name for name in CaseSerializer.Meta.fields
                      if name not in ("queue", "assignee")), "queue_id", "assignee_id"]


# ... and the values a list's row reads: those, its queue's slug and assignee's username.
CASE_ROW_VALUES = [*CASE_ROW_COLUMNS, "queue__slug", "assignee__username"]


# An id past the column's range names no case (the database would refuse to compare it).
LARGEST_ID = connection.ops.integer_field_range(Case._meta.pk.get_internal_type())[1]
NOT_FOUND = "No Case matches the given query."  # as the scoped queryset's 404 says it


class VisibleCaseRows:
    """The cases a person may see as the list's rows (dicts of ``CASE_ROW_VALUES``), read
    by one plain statement (``db.case_list_rows``): for a list without filters, which
    would let every case through. It answers the three moves ``CursorPagination`` makes
    on a queryset: order by id, filter past the cursor's id, slice a page."""

    model = Case

    def __init__(self, user):
        self.user = user
        self.older, self.after = True, None

    def order_by(self, *ordering):
        assert ordering in (("-id",), ("id",)), ordering
        self.older = ordering == ("-id",)
        return self

    def filter(self, *, id__lt=None, id__gt=None):
        self.after = int(id__lt if id__lt is not None else id__gt)
        return self

    def __getitem__(self, page: slice) -> list[dict]:
        user = self.user
        rows = db.case_list_rows(
            fields=CASE_ROW_COLUMNS, user_id=user.pk,
            reads_everything=selectors.reads_everything(user), after=self.after,
            older=self.older, offset=page.start, limit=page.stop - page.start)
        return [dict(zip(CASE_ROW_VALUES, row, strict=True)) for row in rows]


def _known_people(case: Case, user) -> None:
    """The people a transition's answer names (holder, first reviewer, who resolved and
    approved) that the service did not load: the caller, and anyone the service read
    (the first reviewer, read with the case), stand for themselves wherever else they
    are named (a four-eyes case's first reviewer resolved it); the others are read in
    one query rather than one each."""
    people = [(case, Case._meta.get_field(name)) for name in ("assignee", "first_reviewer")]
    resolution = _cached_resolution(case)
    if resolution is not None:
        people += [(resolution, Resolution._meta.get_field(name))
                   for name in ("resolved_by", "approved_by")]
    known = {user.pk: user}
    for instance, field in people:
        if field.is_cached(instance) and (person := field.get_cached_value(instance)):
            known.setdefault(person.pk, person)
    missing = {}
    for instance, field in people:
        person_id = getattr(instance, field.attname)
        if person_id is None or field.is_cached(instance):
            continue
        if person_id in known:
            field.set_cached_value(instance, known[person_id])
        else:
            missing.setdefault(person_id, []).append((instance, field))
    if missing:
        for person in db.people(list(missing)):
            for instance, field in missing.pop(person.pk):
                field.set_cached_value(instance, person)


def _cached_resolution(case: Case) -> Resolution | None:
    """The resolution the service read or wrote with the case; None when it has none or
    it was not read (the serializer reads it then)."""
    if not Case.resolution.is_cached(case):
        return None
    try:
        return case.resolution
    except Resolution.DoesNotExist:
        return None


class CasePagination(NewestFirstPagination):
    ordering = ("-id",)  # newest first; unique, so the cursor never skips or repeats

    def start(self, request) -> tuple[int | None, bool]:
        """Where the request's page starts (below this id; None: the newest) and whether
        it reads down, older (the ``next`` way) rather than back up."""
        self.model = Case
        cursor = self.decode_cursor(request)
        if cursor is None or cursor.position is None:
            return None, True
        return int(cursor.position), not cursor.reverse

    def paginate_queryset(self, queryset, request, view=None):
        page = super().paginate_queryset(queryset, request, view)
        self.floor = None
        floor = getattr(view, "search_floor", None)
        if floor is not None and not self.has_next and not (self.cursor and self.cursor.reverse):
            # A search that stopped at its window (``case_search.bounded``) with a short
            # or empty page: ``next`` searches on below the window.
            self.has_next, self.floor = True, floor
        return page

    def get_next_link(self):
        if self.floor is None:
            return super().get_next_link()
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=str(self.floor)))


class CaseFilterBackend(DjangoFilterBackend):
    """The case list's filters, told where the page starts so that a search's window
    follows the pages; where a search stopped is left on the view for the pager."""

    def get_filterset_kwargs(self, request, queryset, view):
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        if getattr(view, "action", None) == "list":
            kwargs["before"], kwargs["window"] = view.paginator.start(request)
        return kwargs

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid() and self.raise_exception:
            raise translate_validation(filterset.errors)
        cases = filterset.qs  # filtering sets ``search_floor``
        view.search_floor = filterset.search_floor
        return cases


REFUSALS = {
    400: OpenApiResponse(description="Field errors: nothing changed."),
    403: OpenApiResponse(ProblemSerializer, "You may not do this to this case."),
    404: OpenApiResponse(description="No such case, or not one you may see."),
    409: OpenApiResponse(ProblemSerializer,
                         "Not possible in the case's current state, or the case changed "
                         "since the version you sent; the body carries the current state "
                         "and version."),
}


AWAY = OpenApiResponse(ProblemSerializer,
                      "You are marked away: mark yourself available to take cases.")



# A refused resolution names every problem at once, each under the path of its field.
RESOLUTION_REFUSED = OpenApiResponse(
    description=(
        "Every problem at once, nothing changed: `verdict`, `reason_code`, and each field "
        "of a corrected output under its path, `output.<field>` (deeper: "
        "`output.<field>.<index>.<field>`); `output` for the output as a whole. The "
        "messages name fields by the output schema's titles and choices by their labels "
        "(a use case's, where it has one)."),
    examples=[OpenApiExample("A correction with three bad fields", value={
        "output.action": ["Action: choose one of Approve, Hold, Reject."],
        "output.amount": ["Amount must be 0 or more."],
        "reason_code": ["Say why with a reason code: choose one of The amount is wrong "
                        "(wrong-amount), Against policy (policy)."],
    }, response_only=True, status_codes=["400"])])


def _transition_schema(request, summary: str, *, refused: OpenApiResponse = REFUSALS[400]):
    return extend_schema(request=request, summary=summary,
                         responses={200: CaseDetailSerializer, **REFUSALS, 400: refused})


@extend_schema_view(
    list=extend_schema(summary="Cases you may see, newest first (cursor pagination), "
                               "filtered and searched as the case list page is: "
                               "`search` finds words of an external id, a title or an "
                               "input value."),
    retrieve=extend_schema(summary="One case, with what a reviewer decides from.",
                           responses={200: CaseDetailSerializer, 404: REFUSALS[404]}),
)
class CaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    # Token first: an unauthenticated call answers 401 with the Token challenge.
    authentication_classes = [ThrottledTokenAuthentication, SessionAuthentication]
    filter_backends = [CaseFilterBackend]
    filterset_class = CaseFilter
    pagination_class = CasePagination
    lookup_value_regex = r"\d+"
    queryset = Case.objects.none()  # the real one is scoped per user in get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Case.objects.none()
        cases = selectors.visible_cases(user=self.request.user).select_related(
            "queue", "assignee")
        if self.action == "list":
            # ``list`` reads a row's columns only, as values, after filtering: a filter
            # on open cases answers a plain ``pk IN (...)`` (``case_filters.narrow``).
            return cases
        # Whether anyone was consulted in the same statement: the consults (rare) are
        # read only when there are some (``CaseDetailSerializer``).
        return cases.select_related(
            "first_reviewer", "resolution__resolved_by", "resolution__approved_by",
        ).annotate(has_consults=Exists(ConsultRequest.objects.filter(case=OuterRef("pk"))))

    def filter_queryset(self, queryset):
        # No filter asked for (a case by its id, the next page by its cursor): every
        # filter would let the cases through unchanged, after the filter set built its
        # form and a copy of each filter for this request.
        if not self._filtered():
            return queryset
        return super().filter_queryset(queryset)

    def _filtered(self) -> bool:
        return any(name in self.request.query_params for name in CaseFilter.base_filters)

    def list(self, request, *args, **kwargs):
        # What a row shows, and no more, as plain values: no model instances (a case, its
        # queue, its assignee) built per row only to be read once. Filtered first, as
        # model instances (a filter may annotate); without filters, one plain statement.
        if self._filtered():
            rows = self.filter_queryset(self.get_queryset()).values(*CASE_ROW_VALUES)
        else:
            rows = VisibleCaseRows(request.user)
        return self.get_paginated_response(case_rows(self.paginate_queryset(rows)))

    def retrieve(self, request, *args, **kwargs):
        # One plain statement, as the case page reads it (``db.case_for_page``): the case
        # if it is in the person's scope (I8: else 404), with its queue, people and
        # resolution, whether it has consults and whether they work its queue (which
        # transitions it offers). The scoped queryset's joins cost more to build and
        # compile than to run.
        case_id = int(kwargs[self.lookup_field])
        case = None if case_id > LARGEST_ID else db.case_for_page(
            case_id=case_id, user_id=request.user.pk,
            reads_everything=selectors.reads_everything(request.user))
        if case is None:
            raise Http404(NOT_FOUND)
        remember_membership(case, request.user, works_queue=case.user_works_queue)
        return Response(CaseDetailSerializer(case, context=self.get_serializer_context()).data)

    def get_serializer_class(self):
        return CaseSerializer if self.action == "list" else CaseDetailSerializer

    # -- helpers --------------------------------------------------------------------------

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _answer(self, case: Case, status_code=status.HTTP_200_OK) -> Response:
        # The case as the service left it, committed: no second read of the scope and its
        # joins. What the service did not load (consults) is read here; what it loaded
        # (the queue, the people it set, a new resolution) is not read again.
        _known_people(case, self.request.user)
        return Response(CaseDetailSerializer(case, context=self.get_serializer_context()).data,
                        status=status_code)

    # -- claiming -------------------------------------------------------------------------

    @extend_schema(request=ClaimNextSerializer,
                   summary="Claim the most urgent waiting case you may work.",
                   responses={200: CaseDetailSerializer,
                              204: OpenApiResponse(description="Nothing is waiting for you."),
                              400: REFUSALS[400],
                              404: OpenApiResponse(description="No such queue of yours."),
                              409: AWAY})
    @action(detail=False, methods=["post"], url_path="claim-next")
    def claim_next(self, request):
        data = self._input(ClaimNextSerializer)
        slug = data.get("queue") or None
        try:
            # The queue is named to the candidate's query, not read first: whether it is
            # one of theirs is asked only when there is nothing to answer with.
            case = claiming.claim_next(user=request.user, queue_slug=slug)
        except ReviewerAway:
            self._queue_of_theirs(slug)  # a queue not theirs is a 404 before anything
            raise
        if case is None:
            self._queue_of_theirs(slug)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._answer(case)

    def _queue_of_theirs(self, slug: str | None) -> None:
        if slug is not None:
            get_object_or_404(selectors.member_queues(user=self.request.user), slug=slug)

    @_transition_schema(VersionSerializer, "Claim this case (a lease on it).")
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        data = self._input(VersionSerializer)
        return self._answer(claiming.claim(case_id=int(pk), user=request.user,
                                           expected_version=data.get("version")))

    # -- transitions ----------------------------------------------------------------------

    @_transition_schema(VersionSerializer, "Give your claimed case back to its queue.")
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        data = self._input(VersionSerializer)
        return self._answer(transitions.release(case_id=int(pk), user=request.user,
                                                expected_version=data.get("version")))

    @_transition_schema(ResolveSerializer,
                        "Resolve: accepted, corrected (with the output) or rejected. "
                        "Four-eyes cases go to pending_approval. Blind review: send your "
                        "answer as 'corrected'; it is compared with the suggested output and "
                        "becomes 'accepted' when they agree. 409 while a required consult "
                        "is unanswered.", refused=RESOLUTION_REFUSED)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = self._input(ResolveSerializer)
        return self._answer(transitions.resolve(
            case_id=int(pk), user=request.user, verdict=data["verdict"],
            output=data["output"], reason_code=data["reason_code"], notes=data["notes"],
            expected_version=data.get("version")))

    @_transition_schema(ReasonSerializer, "Ask for information; the case waits.")
    @action(detail=True, methods=["post"], url_path="request-info")
    def request_info(self, request, pk=None):
        data = self._input(ReasonSerializer)
        return self._answer(transitions.request_info(
            case_id=int(pk), user=request.user, reason=data["reason"],
            expected_version=data.get("version")))

    @_transition_schema(VersionSerializer, "Take a waiting case up again.")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        data = self._input(VersionSerializer)
        return self._answer(transitions.resume(case_id=int(pk), user=request.user,
                                               expected_version=data.get("version")))

    @_transition_schema(ReasonSerializer, "Escalate one level, with a reason.")
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        data = self._input(ReasonSerializer)
        return self._answer(transitions.escalate(
            case_id=int(pk), user=request.user, reason=data["reason"],
            expected_version=data.get("version")))

    @_transition_schema(VersionSerializer,
                        "Approve a four-eyes resolution (not your own); 409 while a "
                        "required consult is unanswered.")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        data = self._input(VersionSerializer)
        return self._answer(transitions.approve(case_id=int(pk), user=request.user,
                                                expected_version=data.get("version")))

    @_transition_schema(CommentSerializer,
                        "Send a four-eyes resolution back to its first reviewer.")
    @action(detail=True, methods=["post"], url_path="send-back")
    def send_back(self, request, pk=None):
        data = self._input(CommentSerializer)
        return self._answer(transitions.send_back(
            case_id=int(pk), user=request.user, comment=data["comment"],
            expected_version=data.get("version")))

    @_transition_schema(ReassignSerializer, "Managers: give the case to someone else.")
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        data = self._input(ReassignSerializer)
        try:
            to_user, unknown = transitions.user_by_username(data["to_user"]), None
        except ValidationError as exc:
            # State and permission are judged first (409/403), so nobody probes usernames.
            to_user, unknown = None, exc
        try:
            case = transitions.reassign(case_id=int(pk), user=request.user, to_user=to_user,
                                        expected_version=data.get("version"))
        except ValidationError as exc:
            raise (unknown or exc) from None  # the lookup's error names the username
        return self._answer(case)

    @_transition_schema(PrioritySerializer,
                        "Managers: make an open case more or less urgent; its due times "
                        "follow the new priority's targets (business time used stays used).")
    @action(detail=True, methods=["post"])
    def priority(self, request, pk=None):
        data = self._input(PrioritySerializer)
        return self._answer(transitions.change_priority(
            case_id=int(pk), user=request.user, priority=data["priority"],
            expected_version=data.get("version")))

    @_transition_schema(ReasonSerializer, "Managers: cancel the case, with a reason.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = self._input(ReasonSerializer)
        return self._answer(transitions.cancel(
            case_id=int(pk), user=request.user, reason=data["reason"],
            expected_version=data.get("version")))

    # -- several cases at once -----------------------------------------------------------

    @extend_schema(request=BulkActionSerializer,
                   summary=f"Managers: reassign, release, change the priority of or cancel "
                           f"up to {bulk.MAX_SELECTION} cases at once. Each case goes through "
                           "its own audited transition and is answered for itself (done, "
                           "conflict or refused); one that fails changes no other.",
                   responses={200: BulkResultSerializer,
                              400: OpenApiResponse(description=(
                                  "The request as a whole is refused, nothing changed: an "
                                  "unknown action or username, a missing priority or "
                                  f"reason, more than {bulk.MAX_SELECTION} cases.")),
                              403: REFUSALS[403]})
    @action(detail=False, methods=["post"], pagination_class=None, filterset_class=None)
    def bulk(self, request):
        data = self._input(BulkActionSerializer)
        if not selectors.is_manager(request.user):  # before naming who exists (usernames)
            raise PermissionDenied("Only a manager may act on several cases at once.")
        to_user = (transitions.user_by_username(data["to_user"]) if data.get("to_user")
                   else None)
        results = bulk.apply(user=request.user, action=data["action"], case_ids=data["cases"],
                             to_user=to_user, priority=data.get("priority"),
                             reason=data["reason"])
        return Response(BulkResultSerializer({"results": results}).data)

    # -- comments -------------------------------------------------------------------------

    @extend_schema(methods=["GET"], request=None,
                   summary="The case's comments, oldest first.",
                   responses={200: CaseCommentSerializer(many=True), 404: REFUSALS[404]})
    @extend_schema(methods=["POST"], request=NewCommentSerializer,
                   summary="Comment on an open case (Markdown); @username mentions notify "
                           "people who may see it. 409 once the case is closed.",
                   responses={201: CaseCommentSerializer, 400: REFUSALS[400],
                              404: REFUSALS[404], 409: REFUSALS[409]})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def comments(self, request, pk=None):
        case = self.get_object()
        if request.method == "POST":
            data = self._input(NewCommentSerializer)
            comment = comments.add_comment(case_id=case.pk, user=request.user,
                                           body=data["body"])
            return Response(CaseCommentSerializer(comment).data,
                            status=status.HTTP_201_CREATED)
        return Response(CaseCommentSerializer(selectors.case_comments(case=case),
                                              many=True).data)
