"""Seed the demo: ``exceptions_app.demo`` sets it up; this prints what is there.

Safe to run again: a second run changes nothing (it only issues another API key,
unless ``--no-key``). ``-v 0`` prints only the key, for scripts (``bin/demo``).
``--callback-url`` points demo-ai's webhooks at a receiver (bin/demo's, on this machine).
"""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from exceptions_app.demo.data import DEMO_ADMIN, DEMO_USERS
from exceptions_app.demo.setup import seed_demo
from exceptions_app.services.api_keys import issue_api_key
from workflows.actors import SystemActor
from workflows.models import Case, CaseState, EscalationLevel, Queue, SlaPolicy


class Command(BaseCommand):
    help = ("Create the demo users, queues, the invoice-approval and intercompany-invoices use "
            "cases with their policies, RACI matrices, SLA policies and escalation chains, "
            "the demo-ai system and work in flight; print a new API key for demo-ai. Safe to "
            "run again.")

    def add_arguments(self, parser):
        parser.add_argument("--no-key", action="store_true",
                            help="do not issue a new API key for demo-ai")
        parser.add_argument("--callback-url",
                            help="where demo-ai's resolution webhooks go (bin/demo's receiver); "
                                 "without it the callback URL stays as it is")

    def handle(self, *args, **options):
        if not settings.DEMO:
            raise CommandError(
                "seed_demo creates people with the README's published passwords: it runs only "
                "in the laptop demo (BACKSTOP_DEMO=1, as make demo sets), never in production.")
        if options["verbosity"] < 2:
            # The seed runs the SLA sweep over its history: one log line per sweep would
            # bury what the demo prints; so would kombu's note on the embedded broker.
            logging.getLogger("backstop").setLevel(logging.WARNING)
            logging.getLogger("kombu.connection").setLevel(logging.ERROR)
        try:
            seeded = seed_demo(callback_url=options["callback_url"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        key = None if options["no_key"] else issue_api_key(
            ai_system=seeded.ai_system, name="demo key", actor=SystemActor(label="cli:seed_demo"))

        if options["verbosity"] == 0:
            if key:
                self.stdout.write(key)
            return
        write = self.stdout.write
        write(self.style.SUCCESS("Demo data is in place."))
        for username, password, *_ in DEMO_USERS:
            write(f"  login {username:<10} password {password}")
        admin, password, *_ = DEMO_ADMIN
        write(f"  login {admin:<10} password {password}  (the Django admin, /admin/)")
        use_case, policy = seeded.use_case, seeded.policy
        write(f"  use case {use_case.slug} (stage {use_case.stage}), "
              f"policy v{policy.number} ({policy.status}) with {policy.rules.count()} rules")
        second = seeded.second_use_case
        write(f"  use case {second.slug} (stage {second.stage}, "
              f"{second.automate_qa_rate:.0%} of its approvals sampled into blind QA)")
        write(f"  AI system {seeded.ai_system.slug}: webhooks to "
              f"{seeded.ai_system.callback_url or '(no callback URL)'}")
        queues = seeded.process.queues.order_by("slug")
        all_queues = Queue.objects.filter(process__use_case__in=[use_case, second])
        write(f"  process {seeded.process.slug}: RACI matrix, "
              f"{EscalationLevel.objects.filter(process=seeded.process).count()} escalation "
              f"levels, SLA policies for "
              f"{SlaPolicy.objects.filter(queue__in=queues, is_current=True).count()} queues")
        write(f"  demo decisions posted: {seeded.decisions_posted} "
              f"(only into use cases without decisions)")
        states = dict(Case.objects.filter(queue__in=all_queues).values_list("state")
                      .annotate(n=Count("pk")).order_by())
        write("  cases: " + ", ".join(f"{states[state]} {CaseState(state).label.lower()}"
                                      for state in CaseState.values if state in states))
        if key:
            write(f"\nNew API key for the AI system '{seeded.ai_system.slug}' "
                  f"(shown once; only its hash is stored):")
            write(self.style.SUCCESS(f"  BACKSTOP_API_KEY={key}"))
