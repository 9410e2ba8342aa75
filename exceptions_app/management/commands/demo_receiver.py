"""The demo's webhook receiver for demo-ai (``exceptions_app.demo.receiver``).

    manage.py demo_receiver --port 8001

bin/demo runs it beside the web server and stops it with the demo; it verifies each
resolution webhook with demo-ai's current signing secret and answers 204 (verified)
or 401 (not), so the delivery log shows signed, delivered webhooks.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from exceptions_app.demo.data import AI_SYSTEM_SLUG, CALLBACK_PATH
from exceptions_app.demo.receiver import WebhookReceiver
from exceptions_app.models import AiSystem


def demo_ai_secret() -> str | None:
    """demo-ai's signing secret now (each request runs in its own thread: its own
    connection, closed when stale)."""
    close_old_connections()
    return (AiSystem.objects.filter(slug=AI_SYSTEM_SLUG)
            .values_list("signing_secret", flat=True).first())


class Command(BaseCommand):
    help = ("Receive demo-ai's resolution webhooks on this machine and verify their "
            "Standard Webhooks signatures (the demo's stand-in for the AI system).")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, *args, **options):
        try:
            server = WebhookReceiver((options["host"], options["port"]), path=CALLBACK_PATH,
                                     secret_for=demo_ai_secret)
        except OSError as exc:
            raise CommandError(f"The webhook receiver cannot listen on "
                               f"{options['host']}:{options['port']}: {exc}") from None
        self.stdout.write(f"Webhook receiver for {AI_SYSTEM_SLUG} at {server.url}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
