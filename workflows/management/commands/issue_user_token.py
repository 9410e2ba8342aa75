"""Print an API token for a person: ``Authorization: Token <token>``."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workflows.actors import SystemActor
from workflows.services.tokens import issue_user_token

# What the audit trail names as the actor: whoever runs the command runs it as the system.
ACTOR = SystemActor(label="cli:issue_user_token")


class Command(BaseCommand):
    help = "Print the API token of a user (creating it if needed); --rotate replaces it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true",
                            help="Revoke the current token and issue a new one.")

    def handle(self, *args, username, rotate, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist as exc:
            raise CommandError(f"There is no user '{username}'.") from exc
        try:
            token = issue_user_token(user=user, actor=ACTOR, rotate=rotate)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(token.key)
