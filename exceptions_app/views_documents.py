"""A decision's source document, streamed to the people who may see its case."""

from django.contrib.auth.decorators import login_required
from django.core.files.storage import storages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from exceptions_app.models import DecisionDocument, FetchStatus
from workflows.selectors import visible_cases

# The document is shown in a frame of the case page and nowhere else; it may load nothing,
# run nothing and submit nothing (a PDF's own links and forms included).
DOCUMENT_POLICY = ("default-src 'none'; img-src 'self'; object-src 'self'; "
                   "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")


@require_GET
@login_required
@xframe_options_sameorigin  # the case page frames it; no other site may
def document_file(request, pk):
    """The document's bytes, inline, with the type sniffed when it was stored; 404 for
    anyone who may not see the decision's case (as if it did not exist)."""
    document = get_object_or_404(
        DecisionDocument.objects.filter(
            fetch_status=FetchStatus.STORED,
            decision__case__in=visible_cases(user=request.user).values("pk")),
        pk=pk)
    try:
        stream = storages["documents"].open(document.storage_name, "rb")
    except FileNotFoundError:
        raise Http404("The document's file is missing from storage.") from None
    response = FileResponse(stream, content_type=document.content_type, as_attachment=False,
                            filename=document.original_filename or f"document-{pk}")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOCUMENT_POLICY
    response["Cache-Control"] = "private, max-age=3600"
    return response
