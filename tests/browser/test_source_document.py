"""A reviewer checks the AI's reading against the invoice itself: the PDF beside the
fields on a wide screen, behind a tab on a phone; an outsider cannot open it.

With ``BACKSTOP_SCREENSHOTS=1`` it also writes ``docs/screenshots/case-document.png``.
"""

import os
import re
import struct
import zlib

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from exceptions_app.demo.invoice_pdf import invoice_pdf
from exceptions_app.services.documents import upload_document
from tests.browser.workbench import NARROW, SCREENSHOTS

# Side by side from 1400 px (static/css/documents.css); narrower screens get tabs.
DESKTOP = {"width": 1600, "height": 1000}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ORDINARY = "inv-2026-000123"


@pytest.fixture
def case_with_invoice(bench):
    case = bench.case(ORDINARY)
    pdf = invoice_pdf(number=ORDINARY, vendor="ACME GmbH", amount=4180.0, currency="EUR",
                      lines=[("40 x Pallet wrap", 1480.0), ("12 x Label printer ribbon", 2700.0)])
    document = upload_document(ai_system=bench.ai_system, decision_id=case.decision.pk,
                               file=ContentFile(pdf, name=f"{ORDINARY}.pdf"))
    return case, document


def test_the_invoice_is_beside_the_fields_on_a_wide_screen_and_a_tab_on_a_phone(
        live_server, bench, sign_in, case_with_invoice, new_page):
    case, document = case_with_invoice
    page = new_page(viewport=DESKTOP)
    sign_in(page, bench.reviewer)
    page.goto(f"{live_server.url}/cases/{case.pk}/")

    viewer = page.get_by_role("region", name="Source document")
    frame = viewer.locator("iframe")
    expect(frame).to_have_attribute("src", re.compile(rf"^/documents/{document.pk}/#"))
    expect(frame).to_be_visible()
    ai_output = page.get_by_role("region", name="AI output")
    expect(ai_output).to_be_visible()
    # Side by side: the document left of the fields, at the same height.
    document_box, output_box = frame.bounding_box(), ai_output.bounding_box()
    assert document_box["x"] + document_box["width"] <= output_box["x"]
    assert document_box["y"] < output_box["y"] + output_box["height"]
    served = page.request.get(f"{live_server.url}/documents/{document.pk}/")
    assert served.status == 200 and served.body().startswith(b"%PDF-")
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        page.wait_for_timeout(1500)  # the browser's PDF viewer draws the page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "case-document.png"), full_page=False,
                        animations="disabled", caret="hide")

    phone = new_page(viewport=NARROW)
    sign_in(phone, bench.reviewer)
    phone.goto(f"{live_server.url}/cases/{case.pk}/")
    expect(phone.get_by_role("region", name="AI output")).to_be_visible()
    expect(phone.get_by_role("region", name="Source document")).to_be_hidden()
    phone.get_by_text("Document", exact=True).click()
    expect(phone.get_by_role("region", name="Source document").locator("iframe")).to_be_visible()
    expect(phone.get_by_role("region", name="AI output")).to_be_hidden()
    if os.environ.get("BACKSTOP_SCREENSHOTS"):
        phone.wait_for_timeout(1500)
        phone.screenshot(path=str(SCREENSHOTS / "case-document-narrow.png"), full_page=False,
                         animations="disabled", caret="hide")

    outsider = new_page()
    sign_in(outsider, bench.outsider)
    assert outsider.request.get(f"{live_server.url}/documents/{document.pk}/").status == 404


def grey_png(width: int, height: int) -> bytes:
    """A plain grey PNG of the given size (8-bit greyscale, one zlib stream)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + bytes([200]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_a_scanned_image_fits_the_column_and_a_click_zooms_it_to_full_size(
        live_server, bench, sign_in, new_page):
    case = bench.case(ORDINARY)
    upload_document(ai_system=bench.ai_system, decision_id=case.decision.pk,
                    file=ContentFile(grey_png(2400, 300), name="scan.png"))
    page = new_page(viewport=DESKTOP)
    sign_in(page, bench.reviewer)
    page.goto(f"{live_server.url}/cases/{case.pk}/")

    image = page.get_by_role("img", name="Source document scan.png")
    expect(image).to_be_visible()
    assert image.bounding_box()["width"] < 1000  # fitted to its column
    image.click()
    expect(image).to_have_js_property("clientWidth", 2400)  # its own size, scrolled
