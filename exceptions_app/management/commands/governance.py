"""Governance as code from the shell: the team's set-up as one YAML file.

    manage.py governance export [FILE]             # what is configured (to standard output)
    manage.py governance plan FILE                 # what applying it would change, by field
    manage.py governance apply FILE --as USERNAME  # apply it, audited; policies only proposed

docs/GOVERNANCE.md describes the file.
"""

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exceptions_app.services import governance
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = "Export, plan or apply the governance YAML file (use cases, queues, RACI, policies...)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["export", "plan", "apply"])
        parser.add_argument("file", nargs="?", help="the YAML file ('-': standard input)")
        parser.add_argument("--as", dest="username",
                            help="the person applying (audited as them; authors the proposed "
                                 "policy versions). Without it the command acts as the "
                                 "system, which can propose no policy.")

    def handle(self, *args, action, file, username, **options):
        if action == "export":
            text = governance.export_yaml()
            if file and file != "-":
                Path(file).write_text(text, encoding="utf-8")
                self.stderr.write(f"Written to {file}.")
            else:
                self.stdout.write(text, ending="")
            return
        if not file:
            raise CommandError(f"Name the file to {action}.")
        text = sys.stdin.read() if file == "-" else self._read(file)
        try:
            if action == "plan":
                result = governance.plan(text)
            else:
                result = governance.apply(text, actor=self._actor(username))
        except governance.GovernanceError as exc:
            raise CommandError("The file cannot be applied:\n" + "\n".join(
                f"  {problem}" for problem in exc.problems)) from exc
        self.stdout.write(result.text(), ending="")
        if action == "apply" and result.count(governance.Action.PROPOSE):
            self.stdout.write("Proposed policy versions wait for the Accountable's approval "
                              "on their use case's page.")

    def _read(self, file: str) -> str:
        try:
            return Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc

    def _actor(self, username):
        if not username:
            return SystemActor(label="cli:governance")
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active user {username!r}.")
        return user
