"""The labelled data page, for managers: choose what to export, download it as a file."""

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.shortcuts import render
from django.views.decorators.http import require_GET

from exceptions_app.api.labels import download
from exceptions_app.models import UseCase
from exceptions_app.services import labels
from workflows.models import MANAGE_CASES, Verdict


@require_GET
@login_required
@permission_required(MANAGE_CASES, raise_exception=True)
def label_export(request):
    """The form; with ``format``, the download itself (errors shown on the form)."""
    errors, file_format = {}, request.GET.get("format", "")
    try:
        label_filter = labels.parse_filter(request.GET)
    except ValidationError as exc:
        errors = exc.message_dict
    else:
        if file_format in labels.FORMATS:
            return download(label_filter=label_filter, file_format=file_format,
                            actor=request.user)
        if file_format:
            errors = {"format": [f"Choose one of {', '.join(labels.FORMATS)}."]}
    return render(request, "exceptions_app/labels.html", {
        "nav": "use-cases", "errors": errors, "values": request.GET,
        "use_cases": UseCase.objects.order_by("name"), "verdicts": Verdict.choices,
        "formats": labels.FORMATS, "columns": labels.COLUMNS,
    }, status=400 if errors else 200)
