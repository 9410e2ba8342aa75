"""A one-page invoice as a PDF, written by hand: the demo's source documents.

PDF is text objects plus a table of their byte offsets; one page with a Helvetica text
stream needs nothing more, so the demo adds no dependency for it.
"""

from decimal import Decimal


def _escaped(text: str) -> str:
    # Helvetica's standard encoding covers Latin-1; PDF strings escape these three.
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def invoice_pdf(*, number: str, vendor: str, amount: Decimal | float, currency: str,
                lines: list[tuple[str, Decimal | float]] = ()) -> bytes:
    """An A4 invoice from ``vendor`` numbered ``number``, its lines and its total."""
    rows = [(40, 780, 20, vendor), (40, 750, 12, f"Invoice {number}"),
            (40, 700, 11, "Description"), (420, 700, 11, f"Amount ({currency})")]
    y = 680
    for description, line_amount in lines or [("Goods and services", amount)]:
        rows += [(40, y, 11, description), (420, y, 11, f"{float(line_amount):,.2f}")]
        y -= 18
    rows += [(40, y - 12, 13, "Total due"), (420, y - 12, 13, f"{float(amount):,.2f} {currency}")]
    text = "\n".join(f"BT /F1 {size} Tf {x} {top} Td ({_escaped(words)}) Tj ET"
                     for x, top, size, words in rows).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number_, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number_, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
