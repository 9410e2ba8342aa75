"""Issue an API key for an AI system and print it once: only its hash is stored.

    manage.py issue_api_key demo-ai --name "billing pipeline, prod"
"""

from django.core.management.base import BaseCommand, CommandError

from exceptions_app.models import AiSystem
from exceptions_app.services.api_keys import MAX_NAME_LENGTH, default_key_name, issue_api_key
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = "Issue a new API key for an AI system and print it (once)."

    def add_arguments(self, parser):
        parser.add_argument("ai_system", help="the AI system's slug, e.g. demo-ai")
        parser.add_argument("--name", default="",
                            help="what the key is for (default: the system and today's date)")

    def handle(self, *args, **options):
        slug = options["ai_system"]
        ai_system = AiSystem.objects.filter(slug=slug).first()
        if ai_system is None:
            known = ", ".join(AiSystem.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"There is no AI system '{slug}' (known: {known}). "
                               f"Create it in the admin, or run `manage.py seed_demo`.")
        name = options["name"] or default_key_name(ai_system=ai_system)
        if len(name) > MAX_NAME_LENGTH:
            raise CommandError(f"--name is at most {MAX_NAME_LENGTH} characters.")
        key = issue_api_key(ai_system=ai_system, name=name,
                            actor=SystemActor(label="cli:issue_api_key"))
        if not ai_system.is_active:
            self.stderr.write(self.style.WARNING(
                f"'{slug}' is deactivated: this key will be refused until it is reactivated."))
        if options["verbosity"] == 0:
            self.stdout.write(key)
            return
        self.stdout.write(f"New API key for {ai_system.name} ({slug}), named '{name}'.")
        self.stdout.write("It is shown only this once; Backstop keeps only its hash:\n")
        self.stdout.write(self.style.SUCCESS(f"    {key}\n"))
        self.stdout.write(f"Send it as the header:  Authorization: Api-Key {key}")
