"""A webhook receiver on 127.0.0.1 and the relay's nudges, for the outbox tests.

The receiver verifies each signature the way an AI system would, with the
``standardwebhooks`` package; it can be told to fail its first requests.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from workflows.services import outbox

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A webhook receiver in a thread: answers ``fail_first`` requests with ``fail_status``."""

    def __init__(self, *, fail_first: int = 0, fail_status: int = 500, secret: str = SECRET):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.webhook = Webhook(secret)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    receiver.webhook.verify(body, headers)
                    verified = True
                except Exception:
                    verified = False
                with receiver.lock:
                    receiver.requests.append({"headers": headers, "body": json.loads(body),
                                              "verified": verified})
                    failing = len(receiver.requests) <= receiver.fail_first
                self.send_response(receiver.fail_status if failing else 200)
                self.end_headers()
                self.wfile.write(b"down for maintenance" if failing else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/backstop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def nudges(monkeypatch):
    """The message ids the relay task was nudged for (no broker in these tests)."""
    sent = []
    monkeypatch.setattr(outbox, "_nudge", lambda ids, webhooks=False: sent.extend(ids))
    return sent
