"""The audit log page and a case's audit trail, for managers and auditors (and whoever
holds ``workflows.view_audit_trail``): the trail read in words, filtered, newest first,
one keyset page at a time (``workflows.audit_log``)."""

from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import dateformat, timezone
from django.views.decorators.http import require_GET, require_http_methods

from workflows import audit_log, hooks, selectors, verbs
from workflows.models import AuditVerification, exports_evidence, reads_audit_trail
from workflows.services import audit_verifications

NOT_ALLOWED = ("The audit log is for managers and auditors (permission "
               "workflows.view_audit_trail).")


def require_audit_reader(user) -> None:
    if not reads_audit_trail(user):
        raise PermissionDenied(NOT_ALLOWED)


def _before(request) -> int | None:
    try:
        return int(request.GET.get("before", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class Row:
    """One event as the page shows it, formatted here once: a page is 50 of them, and
    each template lookup and filter costs more than the formatting itself."""

    id: int
    when_iso: str
    when: str
    actor: str
    wording: str
    verb: str
    what: str
    case_id: int | None
    trail: str
    seal: str


def _rows(lines: list[audit_log.LogLine]) -> list[Row]:
    # The trail's address with a placeholder id, reversed once for the page.
    trail = reverse("audit-case-trail", args=[0]).removesuffix("0/")
    rows = []
    for line in lines:
        event = line.event
        moment = timezone.localtime(event.occurred_at)
        rows.append(Row(
            id=event.id, when_iso=event.occurred_at.isoformat(),
            when=dateformat.format(moment, "M j, H:i:s T"), actor=event.actor_label,
            wording=line.wording, verb=event.verb,
            what=f"{event.object_type} {event.object_id}", case_id=event.case_id,
            trail=f"{trail}{event.case_id}/" if event.case_id else "",
            seal=f"sealed #{event.seal.seq}" if line.sealed else ""))
    return rows


def _render_log(request, *, params, case=None):
    errors, log = {}, None
    try:
        log_filter = audit_log.parse_filter(params)
    except ValidationError as exc:
        errors, log_filter = exc.message_dict, audit_log.LogFilter()
    else:
        log = audit_log.page(log_filter, before=_before(request))
    chosen = params.get("verb", "")
    return render(request, "workflows/audit/log.html", {
        "nav": "audit", "case": case, "log": log, "rows": _rows(log.lines) if log else [],
        "errors": errors, "values": params, "query": log_filter.query,
        "verbs": [(value, label, value == chosen) for value, label
                  in sorted(verbs.known().items(), key=lambda item: item[1])],
        "domain_filters": [(f, f.choices()) for f in hooks.audit_filters()] if case is None else [],
        "pages": [{"label": link.label, "url": reverse(link.url_name)}
                  for link in hooks.audit_pages()] if exports_evidence(request.user) else [],
    }, status=400 if errors else 200)


@require_GET
@login_required
def audit_log_page(request):
    require_audit_reader(request.user)
    return _render_log(request, params=request.GET)


@require_GET
@login_required
def case_trail(request, pk: int):
    """Every event of one case, each with whether the chain vouches for it yet."""
    require_audit_reader(request.user)
    case = get_object_or_404(selectors.visible_cases(user=request.user), pk=pk)
    return _render_log(request, params={"case": str(case.pk)}, case=case)


class VerificationForm(forms.Form):
    expect_head = forms.RegexField(
        regex=r"^\d+:[0-9a-f]{64}$", required=False, label="Expected head (optional)",
        help_text="SEQ:HASH of a checkpoint kept outside the database, as the sealer logs "
                  "it: the check then also catches a tail cut off together with its "
                  "checkpoints.",
        error_messages={"invalid": "Give the head as SEQ:HASH: a checkpoint's seq, a colon "
                                   "and its 64-character chain_hash."})
    accept_backfilled = forms.BooleanField(
        required=False, label="Accept backfilled history",
        help_text="Events the demo seed dated in the past; never in production.")

    def expected_head(self) -> tuple[int, str] | None:
        value = self.cleaned_data["expect_head"]
        if not value:
            return None
        seq, _, chain = value.partition(":")
        return int(seq), chain


@require_http_methods(["GET", "POST"])
@login_required
def verifications_page(request):
    """Check the whole trail (a job: minutes at a million events) and see the last checks."""
    if not audit_verifications.may_verify(request.user):
        raise PermissionDenied(NOT_ALLOWED)
    form = VerificationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        verification = audit_verifications.request_verification(
            actor=request.user, expected_head=form.expected_head(),
            accept_backfilled=form.cleaned_data["accept_backfilled"])
        return redirect("audit-verification", pk=verification.pk)
    return render(request, "workflows/audit/verifications.html", {
        "nav": "audit", "form": form, "verifications": audit_verifications.recent(),
    }, status=400 if form.errors else 200)


@require_GET
@login_required
def verification_page(request, pk: int):
    """One check: its progress while it runs (the body reloads itself), then its report."""
    if not audit_verifications.may_verify(request.user):
        raise PermissionDenied(NOT_ALLOWED)
    verification = get_object_or_404(AuditVerification.objects.select_related("requested_by"),
                                     pk=pk)
    template = ("workflows/audit/_verification_body.html" if request.htmx
                else "workflows/audit/verification.html")
    return render(request, template, {"nav": "audit", "verification": verification})
