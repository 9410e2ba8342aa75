"""Readiness of one Celery worker, for a process supervisor or an orchestrator's probe.

Pings the worker through the broker, as ``celery inspect ping`` does, but with one
bounded wait and an exit status only: 0 when it answered, 1 when it did not or the
broker could not be reached. docs/DEPLOY.md names the workers ``celery@%h`` and
``webhooks@%h``; the default asks for ``celery@`` this host.
"""

import socket

from celery import current_app
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Exit 0 if the named Celery worker answers a ping through the broker, else 1."

    def add_arguments(self, parser):
        parser.add_argument("--name", default=f"celery@{socket.gethostname()}",
                            help="the worker's node name, as given with -n "
                                 "(default celery@<this host>)")
        parser.add_argument("--timeout", type=float, default=5.0,
                            help="seconds to wait for the broker and for the answer "
                                 "(default 5)")

    def handle(self, *args, name, timeout, **options):
        try:
            with current_app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=timeout)
                answers = current_app.control.ping(destination=[name], timeout=timeout,
                                                   connection=connection)
        except Exception as failure:  # whatever the failure, not ready
            raise CommandError(f"The broker could not be reached: {failure}") from failure
        if not any(name in answer for answer in answers):
            raise CommandError(f"No answer from the worker {name} within {timeout:g} s.")
        self.stdout.write(f"{name} is ready.")
