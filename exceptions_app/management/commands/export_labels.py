"""Export labelled data to a file (or standard output), with a progress bar.

    manage.py export_labels --format parquet --use-case invoice-approval -o labels.parquet
    manage.py export_labels --since 2026-11-01 --verdict corrected > corrected.jsonl
"""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exceptions_app.services import labels
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = "Export labelled examples with their provenance (JSON Lines, CSV or Parquet)."
    # The system checks import every URL module, view and serializer (about 22 MB and
    # 1.5 s before the first row) for a command that only reads the database; they run
    # with migrate, runserver and ``manage.py check``.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=list(labels.FORMATS), default="jsonl")
        parser.add_argument("--use-case", default="", help="a use case's slug")
        parser.add_argument("--model-version", default="")
        parser.add_argument("--verdict", default="", help="accepted, corrected or rejected")
        parser.add_argument("--since", default="", help="resolved at or after (a date)")
        parser.add_argument("--until", default="", help="resolved before (a date)")
        parser.add_argument("-o", "--output", default="-",
                            help="the file to write (default: standard output)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        try:
            label_filter = labels.parse_filter({
                name: options[name] for name in
                ("use_case", "model_version", "verdict", "since", "until")})
        except ValidationError as exc:
            raise CommandError(" ".join(f"--{name.replace('_', '-')}: {' '.join(messages)}"
                                        for name, messages in exc.message_dict.items())) from None
        total = labels.examples(label_filter).count()
        labels.record_export(actor=SystemActor(label="cli:export_labels"),
                             label_filter=label_filter, how=options["format"])
        bar = None if options["no_progress"] else tqdm(total=total, unit=" rows",
                                                           file=sys.stderr)
        pieces = labels.file_pieces(label_filter, options["format"],
                                    counted=bar.update if bar else None)
        output = options["output"]
        try:
            if output == "-":
                for piece in pieces:
                    sys.stdout.buffer.write(piece)
                sys.stdout.buffer.flush()
            else:
                with open(output, "wb") as file:
                    for piece in pieces:
                        file.write(piece)
        finally:
            if bar:
                bar.close()
        if output != "-":
            self.stderr.write(f"Wrote {total} labelled examples to {output}.")
