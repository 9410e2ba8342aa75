"""The evidence export page, for auditors: choose a period (and a use case), download it."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET

from exceptions_app.api.evidence import download
from exceptions_app.models import UseCase
from exceptions_app.services import evidence
from workflows.models import exports_evidence


@require_GET
@login_required
def evidence_export(request):
    """The form; with ``format``, the download itself (errors shown on the form)."""
    if not exports_evidence(request.user):
        raise PermissionDenied("Exporting audit evidence is for auditors (permission "
                               "workflows.export_evidence).")
    errors, file_format = {}, request.GET.get("format", "")
    if file_format:
        try:
            period = evidence.parse_period(request.GET)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            if file_format in evidence.FORMATS:
                return download(period=period, file_format=file_format, actor=request.user)
            errors = {"format": [f"Choose one of {', '.join(evidence.FORMATS)}."]}
    return render(request, "exceptions_app/auditlog/evidence.html", {
        "nav": "audit", "errors": errors, "values": request.GET,
        "use_cases": UseCase.objects.order_by("name"), "columns": evidence.COLUMNS,
    }, status=400 if errors else 200)
