"""Seal committed audit events into the hash chain (normally run by Celery beat)."""

from django.core.management.base import BaseCommand, CommandError

from workflows.services import audit


class Command(BaseCommand):
    help = "Link committed, unsealed audit events into the hash chain and sign the new head."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000,
                            help="events per transaction (default 5000)")
        parser.add_argument("--window", type=int, default=None,
                            help="how many ids below the newest sealed event to look for "
                                 "unsealed ones; widen it to seal events verify reports as "
                                 "never sealed")

    def handle(self, *args, batch_size, window, **options):
        try:
            sealed = audit.seal(batch_size=batch_size, window=window)
        except audit.AuditChainBroken as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Sealed {sealed} audit event{'' if sealed == 1 else 's'}.")
