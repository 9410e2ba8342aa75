"""Source documents: what an AI system may attach to its decisions, and who sees them."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from exceptions_app.demo.invoice_pdf import invoice_pdf
from exceptions_app.models import DecisionDocument, FetchStatus
from exceptions_app.services import documents
from exceptions_app.services.use_cases import ai_system_update
from exceptions_app.tasks import fetch_document
from tests.exceptions_app.factories import AiSystemFactory, make_decision_case
from tests.exceptions_app.intake_support import client_for
from tests.factories import UserFactory, make_manager
from workflows import webhook_addresses
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db

INVOICE = invoice_pdf(number="inv-1", vendor="ACME GmbH", amount=4180.0, currency="EUR")


@pytest.fixture
def decision(invoice_policy):
    return make_decision_case(invoice_policy.use_case)


@pytest.fixture
def client(decision):
    return client_for(decision.ai_system)


def client_for_person(user) -> Client:
    person = Client()
    person.force_login(user)
    return person


def upload(client, decision, content: bytes, name="invoice.pdf", content_type="application/pdf"):
    return client.post(reverse("decision-documents", args=[decision.pk]),
                       {"file": SimpleUploadedFile(name, content, content_type=content_type)},
                       format="multipart")


def test_a_pdf_upload_is_stored_with_its_sniffed_type_and_audited(client, decision):
    response = upload(client, decision, INVOICE, content_type="application/octet-stream")

    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == "application/pdf"
    document = DecisionDocument.objects.get(decision=decision)
    assert (document.original_filename, document.size) == ("invoice.pdf", len(INVOICE))
    event = AuditEvent.objects.get(verb="document.stored")
    assert (event.case_id, event.actor_label) == (decision.case_id, "ai:invoice-bot")


@pytest.mark.parametrize(("content", "content_type"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(32), "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32), "image/jpeg"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32), "image/webp"),
])
def test_png_jpeg_and_webp_are_kept_as_what_their_bytes_are(client, decision, content,
                                                             content_type):
    response = upload(client, decision, content, name="scan", content_type="text/plain")

    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == content_type


@pytest.mark.parametrize("content", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b"<!doctype html><script>alert(1)</script>",
    b"GIF89a\x01\x00\x01\x00",
])
def test_anything_but_pdf_png_jpeg_webp_is_refused_415_naming_the_accepted_types(
        client, decision, content):
    # Named and labelled as a PDF: the bytes decide.
    response = upload(client, decision, content)

    assert response.status_code == 415
    assert "PDF, PNG, JPEG or WebP" in response.json()["file"][0]
    assert not DecisionDocument.objects.exists()


def test_a_document_over_the_limit_is_refused_413(client, decision, settings):
    settings.DOCUMENT_MAX_BYTES = len(INVOICE) - 1

    response = upload(client, decision, INVOICE)

    assert response.status_code == 413
    assert f"the limit is {len(INVOICE) - 1} bytes" in response.json()["file"][0]
    assert not DecisionDocument.objects.exists()


def test_a_document_for_another_systems_decision_is_404(decision, invoice_policy):
    other = client_for(AiSystemFactory(slug="other-bot", use_cases=[invoice_policy.use_case]))

    assert upload(other, decision, INVOICE).status_code == 404
    assert not DecisionDocument.objects.exists()


def test_the_document_is_served_inline_only_to_who_may_see_the_case(client, decision):
    document_id = upload(client, decision, INVOICE).json()["id"]
    url = reverse("decision-document", args=[document_id])
    outsider, manager = UserFactory(), make_manager()

    assert client_for_person(outsider).get(url).status_code == 404
    response = client_for_person(manager).get(url)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == INVOICE
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="invoice.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]


def test_a_url_on_a_host_not_allowed_is_refused_400_naming_the_field(client, decision):
    response = client.post(reverse("decision-documents", args=[decision.pk]),
                           {"url": "https://attacker.example.net/invoice.pdf"}, format="json")

    assert response.status_code == 400
    assert "attacker.example.net is not on this AI system's document hosts" in (
        response.json()["url"][0])


def test_a_url_must_be_https(client, decision, settings):
    settings.ALLOW_HTTP_CALLBACKS = False  # the demo's and the tests' default allows http
    decision.ai_system.document_hosts = ["docs.example.com"]
    decision.ai_system.save()

    response = client.post(reverse("decision-documents", args=[decision.pk]),
                           {"url": "http://docs.example.com/invoice.pdf"}, format="json")

    assert response.status_code == 400
    assert response.json()["url"] == ["Document URLs must use https, not http."]


def test_document_hosts_are_host_names_and_changes_are_audited(decision):
    manager = make_manager()

    with pytest.raises(ValidationError, match="document_hosts"):
        ai_system_update(ai_system=decision.ai_system, actor=manager,
                         document_hosts=["https://docs.example.com/path"])
    ai_system_update(ai_system=decision.ai_system, actor=manager,
                     document_hosts=["docs.example.com"])

    event = AuditEvent.objects.get(verb="ai_system.changed")
    assert event.data["after"] == {"document_hosts": ["docs.example.com"]}


class DocumentServer:
    """An HTTP server on 127.0.0.1 answering every GET with ``body``; counts requests."""

    def __init__(self, body: bytes):
        server = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/html")  # a lie: the bytes decide
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def url(self, host: str) -> str:
        return f"http://{host}:{self.http.server_port}/invoices/inv-1.pdf"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def docs_host_is_this_machine(monkeypatch, settings, decision):
    """docs.example.com resolves to 127.0.0.1 (DNS alone is replaced: the fetch connects
    through the checked transport for real), and the system may fetch from it."""
    settings.ALLOW_HTTP_CALLBACKS = True
    monkeypatch.setattr(webhook_addresses, "resolve", lambda host, port: (
        ["127.0.0.1"] if host == "docs.example.com" else []))
    decision.ai_system.document_hosts = ["docs.example.com"]
    decision.ai_system.save()


def test_the_fetch_task_stores_a_url_document_once(
        client, decision, docs_host_is_this_machine, settings,
        django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the test server is on this machine
    with DocumentServer(INVOICE) as server:
        with django_capture_on_commit_callbacks() as queued:
            response = client.post(reverse("decision-documents", args=[decision.pk]),
                                   {"url": server.url("docs.example.com")}, format="json")
        assert response.status_code == 202
        assert response.json()["fetch_status"] == "pending"
        assert len(queued) == 1
        document_id = response.json()["id"]

        fetch_document.apply(args=[document_id])
        fetch_document.apply(args=[document_id])  # a redelivered task fetches nothing

        assert server.requests == 1
    document = DecisionDocument.objects.get(pk=document_id)
    assert (document.fetch_status, document.content_type) == (FetchStatus.STORED,
                                                               "application/pdf")
    assert document.original_filename == "inv-1.pdf"


def test_a_url_document_on_a_private_address_is_not_fetched(
        client, decision, docs_host_is_this_machine):
    with DocumentServer(INVOICE) as server:
        document = documents.request_fetch(ai_system=decision.ai_system,
                                           decision_id=decision.pk,
                                           url=server.url("docs.example.com"))
        documents.fetch(document.pk)

        assert server.requests == 0
    document.refresh_from_db()
    assert document.fetch_status == FetchStatus.FAILED
    assert "127.0.0.1, a loopback address (this machine)" in document.fetch_error
