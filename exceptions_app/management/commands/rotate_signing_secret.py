"""Give an AI system a new webhook signing secret and print it once.

    manage.py rotate_signing_secret demo-ai --overlap-hours 24

For the overlap, every webhook carries two signatures, by the new secret and the old, so
the receiver can switch to the new one at any moment within it.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from exceptions_app.models import AiSystem
from exceptions_app.services.use_cases import ai_system_rotate_secret
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = "Rotate an AI system's webhook signing secret and print the new one (once)."

    def add_arguments(self, parser):
        parser.add_argument("ai_system", help="the AI system's slug, e.g. demo-ai")
        parser.add_argument("--overlap-hours", type=float,
                            default=settings.WEBHOOK_SECRET_OVERLAP_HOURS,
                            help="how long the old secret still signs beside the new one "
                                 "(default: WEBHOOK_SECRET_OVERLAP_HOURS, %(default)s)")

    def handle(self, *args, ai_system, overlap_hours, verbosity, **options):
        system = AiSystem.objects.filter(slug=ai_system).first()
        if system is None:
            known = ", ".join(AiSystem.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"There is no AI system '{ai_system}' (known: {known}).")
        if overlap_hours < 0:
            raise CommandError("--overlap-hours cannot be negative.")
        secret = ai_system_rotate_secret(
            ai_system=system, actor=SystemActor(label="cli:rotate_signing_secret"),
            overlap=timedelta(hours=overlap_hours))
        if verbosity == 0:
            self.stdout.write(secret)
            return
        self.stdout.write(f"New signing secret for {system.name} ({system.slug}); install it "
                          f"in the receiver. Shown only this once:\n")
        self.stdout.write(f"    {secret}\n")
        if overlap_hours:
            self.stdout.write(f"The old secret signs beside it for {overlap_hours:g} hours.")
