"""Seed the demo: ``exceptions_app.demo`` sets it up; this prints what is there.

Safe to run again: a second run changes nothing (it only issues another API key,
unless ``--no-key``). ``-v 0`` prints only the key, for scripts (``bin/demo``).
"""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from exceptions_app.demo.data import DEMO_USERS
from exceptions_app.demo.setup import seed_demo
from exceptions_app.services.api_keys import issue_api_key
from workflows.actors import SystemActor
from workflows.models import Case, CaseState, EscalationLevel, SlaPolicy


class Command(BaseCommand):
    help = ("Create the demo users, queues, invoice-approval use case with its policy, RACI "
            "matrix, SLA policies and escalation chain, the demo-ai system and work in "
            "flight; print a new API key for demo-ai. Safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--no-key", action="store_true",
                            help="do not issue a new API key for demo-ai")

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
        seeded = seed_demo()
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
        use_case, policy = seeded.use_case, seeded.policy
        write(f"  use case {use_case.slug} (stage {use_case.stage}), "
              f"policy v{policy.number} ({policy.status}) with {policy.rules.count()} rules")
        queues = seeded.process.queues.order_by("slug")
        write(f"  process {seeded.process.slug}: RACI matrix, "
              f"{EscalationLevel.objects.filter(process=seeded.process).count()} escalation "
              f"levels, SLA policies for "
              f"{SlaPolicy.objects.filter(queue__in=queues, is_current=True).count()} queues")
        write(f"  demo decisions posted: {seeded.decisions_posted} "
              f"(only into a database without decisions)")
        states = dict(Case.objects.filter(queue__in=queues).values_list("state")
                      .annotate(n=Count("pk")).order_by())
        write("  cases: " + ", ".join(f"{states[state]} {CaseState(state).label.lower()}"
                                      for state in CaseState.values if state in states))
        if key:
            write(f"\nNew API key for the AI system '{seeded.ai_system.slug}' "
                  f"(shown once; only its hash is stored):")
            write(self.style.SUCCESS(f"  BACKSTOP_API_KEY={key}"))
