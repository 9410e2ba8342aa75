"""The demo's webhook receiver: the AI system's side of a resolution webhook.

bin/demo starts it (``manage.py demo_receiver``) beside the web server and points
demo-ai's callback URL at it, so that the delivery log shows real deliveries: each POST
is verified as Standard Webhooks says (``webhook-id``, ``webhook-timestamp`` within five
minutes, ``webhook-signature`` over the exact body) and answered 204 when it verifies,
401 when it does not; one line per webhook says which. A retry of a webhook it has
seen (the same ``webhook-id``) is acknowledged again and noted, as a receiver that
deduplicates does.

The signing secret comes from ``secret_for()`` at each request: the demo reads demo-ai's
current secret, so a secret rotated in the admin applies at once.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

logger = logging.getLogger("backstop.demo.receiver")

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class Received:
    """What the receiver has verified (``webhook-id`` -> payload) and refused, in order."""

    verified: dict[str, dict] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, path: str,
                 secret_for: Callable[[], str | None]):
        super().__init__(address, _Handler)
        self.callback_path = path
        self.secret_for = secret_for
        self.received = Received()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{self.callback_path}"


def verifier(secret: str) -> Webhook:
    """A ``whsec_`` secret is base64 (Standard Webhooks); any other is its UTF-8 bytes,
    as Backstop signs with it (docs/WEBHOOKS.md)."""
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self):
        if self.path != self.server.callback_path:
            return self._answer(404, "No webhooks are received here.")
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            return self._answer(413, "The body is larger than this receiver takes.")
        body = self.rfile.read(length)
        secret = self.server.secret_for()
        if not secret:
            return self._answer(503, "This receiver has no signing secret to verify with.")
        webhook_id = self.headers.get("webhook-id", "")
        try:
            payload = verifier(secret).verify(body, dict(self.headers.items()))
        except (WebhookVerificationError, ValueError) as exc:
            with self.server.received.lock:
                self.server.received.refused.append(webhook_id)
            logger.warning("demo receiver: webhook %s refused: %s", webhook_id or "(no id)",
                           exc)
            return self._answer(401, f"Not verified: {exc}")
        with self.server.received.lock:
            retry = webhook_id in self.server.received.verified
            self.server.received.verified[webhook_id] = payload
        data = payload.get("data", {}) if isinstance(payload, dict) else {}
        logger.info("demo receiver: webhook %s verified%s: %s %s, %s by %s", webhook_id,
                    " again (a retry: acknowledged, not processed twice)" if retry else "",
                    payload.get("type"), data.get("external_id"), data.get("verdict"),
                    data.get("reviewer"))
        return self._answer(204)

    def _answer(self, status: int, text: str = ""):
        body = json.dumps({"detail": text}).encode() if text else b""
        self.send_response(status)
        if body:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        """Quiet: each webhook is logged once, with what it was, by ``do_POST``."""
