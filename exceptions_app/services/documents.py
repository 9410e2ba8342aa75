"""A decision's source documents: uploaded by its AI system or fetched from a URL on the
system's document hosts, kept in the ``documents`` storage, shown beside the case.

Only PDF, PNG, JPEG and WebP are kept, told from the bytes (never from the name or the
sender's Content-Type): an SVG or HTML file could carry script into the reviewer's
browser. Every document stored or refused at fetch is audited on the decision's case.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.shortcuts import get_object_or_404

from exceptions_app.models import AiSystem, Decision, DecisionDocument, DocumentKind, FetchStatus
from exceptions_app.verbs import DomainVerb
from workflows.actors import SYSTEM
from workflows.services import audit
from workflows.webhook_addresses import AddressRefused, CheckedTransport

# The accepted types, told by their first bytes; the words say them to a sender.
ACCEPTED_TYPES = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG",
                  "image/webp": "WebP"}
ACCEPTED_WORDS = "PDF, PNG, JPEG or WebP"
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg",
              "image/webp": "webp"}


@dataclass
class DocumentRefused(Exception):
    """A document not kept: ``status`` is the HTTP answer, ``field`` the request field."""

    status: int
    field: str
    message: str


def sniff(head: bytes) -> str | None:
    """The content type the bytes are, among the accepted ones, or None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _own_decision(ai_system: AiSystem, decision_id: int) -> Decision:
    # Another system's decision is as absent as one that does not exist.
    return get_object_or_404(Decision.objects.select_related("ai_system"),
                             pk=decision_id, ai_system=ai_system)


def _checked(content: bytes, *, field: str) -> str:
    limit = settings.DOCUMENT_MAX_BYTES
    if len(content) > limit:
        raise DocumentRefused(413, field, f"The document is {len(content)} bytes; the limit "
                                          f"is {limit} bytes.")
    content_type = sniff(content[:16])
    if content_type is None:
        raise DocumentRefused(415, field, f"The document is not a {ACCEPTED_WORDS} file "
                                          "(told from its bytes); only those are accepted.")
    return content_type


def _keep(document: DecisionDocument, content: bytes, content_type: str) -> None:
    """Write the bytes to storage and fill in what is known of them."""
    digest = hashlib.sha256(content).hexdigest()
    name = (f"decisions/{document.decision_id}/{digest}."
            f"{EXTENSIONS[content_type]}")
    document.storage_name = storages["documents"].save(name, ContentFile(content))
    document.content_type = content_type
    document.size = len(content)
    document.sha256 = digest
    document.fetch_status = FetchStatus.STORED
    document.fetch_error = ""


def _audit_stored(document: DecisionDocument, *, actor_label: str = "", actor=None,
                  now: datetime | None) -> None:
    audit.record(verb=DomainVerb.DOCUMENT_STORED, object_type="decision_document",
                 object_id=document.pk, case_id=document.decision.case_id,
                 actor=actor, actor_label=actor_label, now=now,
                 data={"decision": document.decision_id, "kind": document.kind,
                       "filename": document.original_filename, "url": document.source_url,
                       "content_type": document.content_type, "size": document.size,
                       "sha256": document.sha256})


def upload_document(*, ai_system: AiSystem, decision_id: int, file,
                    now: datetime | None = None) -> DecisionDocument:
    """Keep a file the AI system sends for one of its decisions; DocumentRefused (413 or
    415) if it is too large or not an accepted type."""
    decision = _own_decision(ai_system, decision_id)
    if file.size > settings.DOCUMENT_MAX_BYTES:  # refused before reading it
        raise DocumentRefused(413, "file", f"The document is {file.size} bytes; the limit "
                                           f"is {settings.DOCUMENT_MAX_BYTES} bytes.")
    content = file.read()
    content_type = _checked(content, field="file")
    with transaction.atomic():
        document = DecisionDocument(decision=decision, kind=DocumentKind.UPLOAD,
                                    original_filename=(file.name or "")[:255])
        _keep(document, content, content_type)
        document.save()
        _audit_stored(document, actor_label=ai_system.actor_label, now=now)
    return document


def host_problem(ai_system: AiSystem, url: str) -> str | None:
    """Why a document may not be fetched from ``url`` for this system, or None."""
    scheme = urlsplit(url).scheme.lower()
    if scheme != "https" and not (scheme == "http" and settings.ALLOW_HTTP_CALLBACKS):
        return f"Document URLs must use https, not {scheme or 'no scheme'}."
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if not host:
        return "The document URL names no host."
    if host not in ai_system.document_hosts:
        allowed = ", ".join(ai_system.document_hosts) or "none yet"
        return (f"The document URL's host {host} is not on this AI system's document hosts "
                f"({allowed}); a manager adds hosts to the AI system.")
    return None


def request_fetch(*, ai_system: AiSystem, decision_id: int, url: str) -> DecisionDocument:
    """Record a document to fetch from ``url`` (a host on the system's allow-list) and
    queue the fetch after commit; a URL already recorded for the decision is not
    fetched again. DocumentRefused (400, field ``url``) for a host not allowed."""
    decision = _own_decision(ai_system, decision_id)
    if problem := host_problem(ai_system, url):
        raise DocumentRefused(400, "url", problem)
    with transaction.atomic():
        document, created = DecisionDocument.objects.get_or_create(
            decision=decision, kind=DocumentKind.URL, source_url=url,
            defaults={"fetch_status": FetchStatus.PENDING,
                      "original_filename": urlsplit(url).path.rsplit("/", 1)[-1][:255]})
        if created:
            from exceptions_app.tasks import fetch_document  # the task calls this module

            transaction.on_commit(lambda: fetch_document.delay(document.pk))
    return document


class FetchFailed(Exception):
    """The document could not be fetched now (a retry may succeed)."""


def fetch(document_id: int, *, now: datetime | None = None) -> DecisionDocument:
    """Fetch a pending URL document and keep it. Idempotent: a stored one is left as is.
    A refused address, type or size marks it failed for good (audited); a network
    error raises FetchFailed for the task to retry."""
    document = DecisionDocument.objects.select_related("decision__ai_system").get(
        pk=document_id)
    if document.fetch_status != FetchStatus.PENDING:
        return document
    ai_system = document.decision.ai_system
    try:
        if problem := host_problem(ai_system, document.source_url):
            raise DocumentRefused(400, "url", problem)
        content = _download(document.source_url)
        content_type = _checked(content, field="url")
    except (DocumentRefused, AddressRefused) as exc:
        return _fail(document, str(getattr(exc, "message", exc)), now=now)
    with transaction.atomic():
        locked = DecisionDocument.objects.select_for_update().get(pk=document.pk)
        if locked.fetch_status != FetchStatus.PENDING:  # another worker kept it meanwhile
            return locked
        locked.decision = document.decision  # loaded already: the audit event reads it
        _keep(locked, content, content_type)
        locked.save()
        _audit_stored(locked, actor=SYSTEM, now=now)
    return locked


def _download(url: str) -> bytes:
    """The body at ``url``, through the checked transport (public addresses only, each
    connection checked: no SSRF by DNS rebinding), read to one byte past the limit."""
    limit = settings.DOCUMENT_MAX_BYTES
    try:
        with httpx.Client(transport=CheckedTransport(), follow_redirects=False,
                          timeout=settings.DOCUMENT_FETCH_TIMEOUT_SECONDS) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise DocumentRefused(400, "url", f"The document URL answered "
                                                  f"{response.status_code}, not 200.")
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > limit:
                    raise DocumentRefused(413, "url", f"The document is over the limit of "
                                                      f"{limit} bytes.")
            return bytes(content)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url}: {exc}") from exc


def _fail(document: DecisionDocument, reason: str, *, now: datetime | None):
    with transaction.atomic():
        document.fetch_status = FetchStatus.FAILED
        document.fetch_error = reason
        document.save(update_fields=["fetch_status", "fetch_error"])
        audit.record(verb=DomainVerb.DOCUMENT_REFUSED, object_type="decision_document",
                     object_id=document.pk, case_id=document.decision.case_id, actor=SYSTEM,
                     now=now, data={"decision": document.decision_id,
                                    "url": document.source_url, "reason": reason})
    return document


def mark_unreachable(document_id: int, reason: str) -> None:
    """After the last retry: the document could not be fetched."""
    document = DecisionDocument.objects.select_related("decision").get(pk=document_id)
    if document.fetch_status == FetchStatus.PENDING:
        _fail(document, reason, now=None)
