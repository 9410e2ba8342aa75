"""Export the audit evidence of a period to a file (or standard output), with a progress bar.

    manage.py export_evidence --since 2026-11-01 --until 2026-11-30 -o november.csv
    manage.py export_evidence --since 2026-11-01 --until 2026-11-30 --format jsonl > nov.jsonl
"""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exceptions_app.services import evidence
from workflows.actors import SystemActor


class Command(BaseCommand):
    help = ("Export a period's decisions and audit events (the evidence an auditor asks "
            "for) as CSV or JSON Lines.")

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="the period's first day")
        parser.add_argument("--until", required=True, help="the period's last day (included)")
        parser.add_argument("--use-case", default="", help="a use case's slug")
        parser.add_argument("--format", choices=list(evidence.FORMATS), default="csv")
        parser.add_argument("-o", "--output", default="-",
                            help="the file to write (default: standard output)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        try:
            period = evidence.parse_period({name: options[name]
                                            for name in ("since", "until", "use_case")})
        except ValidationError as exc:
            raise CommandError(" ".join(f"--{name.replace('_', '-')}: {' '.join(messages)}"
                                        for name, messages in exc.message_dict.items())) from None
        total = evidence.count(period)
        pieces = evidence.export(period=period, file_format=options["format"],
                                 actor=SystemActor(label="cli:export_evidence"))
        if not options["no_progress"]:
            pieces = _progress(pieces, total=total, header=options["format"] == "csv")
        output = options["output"]
        if output == "-":
            for piece in pieces:
                sys.stdout.buffer.write(piece)
            sys.stdout.buffer.flush()
        else:
            with open(output, "wb") as file:
                for piece in pieces:
                    file.write(piece)
            self.stderr.write(f"Wrote {total} records to {output}.")


def _progress(pieces, *, total: int, header: bool):
    """Pass the pieces through, counting their lines on a progress bar on standard error
    (a CSV's header line is no record)."""
    with tqdm(total=total, unit=" records", file=sys.stderr) as bar:
        for number, piece in enumerate(pieces):
            bar.update(piece.count(b"\n") - (1 if header and number == 0 else 0))
            yield piece
