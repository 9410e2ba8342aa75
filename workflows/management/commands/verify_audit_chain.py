"""Verify the audit hash chain and its signed checkpoints (I7); non-zero exit if broken."""

import argparse
import re

from django.core.management.base import BaseCommand, CommandError

from workflows.services import audit


def head(value: str) -> tuple[int, str]:
    match = re.fullmatch(r"(\d+):([0-9a-f]{64})", value.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(
            "expected SEQ:HASH, e.g. 1204:<64 hex digits> from a shipped checkpoint")
    return int(match[1]), match[2]


class Command(BaseCommand):
    help = ("Check every audit event's MAC and recorded time, recompute its hash and the "
            "chain, check the signed checkpoints, and report events that were never sealed.")

    def add_arguments(self, parser):
        parser.add_argument("--expect-head", type=head, default=None, metavar="SEQ:HASH",
                            help="a checkpoint kept outside the database; the chain must "
                                 "contain it (catches a tail truncated with its checkpoints)")
        parser.add_argument("--accept-backfilled", action="store_true",
                            help="accept events the demo seed dated in the past on purpose "
                                 "(never on a production database)")

    def handle(self, *args, expect_head, accept_backfilled, **options):
        report = audit.verify(expected_head=expect_head, accept_backfilled=accept_backfilled)
        head_text = (f"head #{report.head[0]} {report.head[1]}" if report.head
                     else "no sealed events")
        self.stdout.write(f"{report.sealed} sealed, {report.unsealed} not yet sealed, "
                          f"{head_text}.")
        if report.backfilled:
            self.stdout.write(f"{report.backfilled} backfilled (dated in the past on purpose, "
                              f"not checked against the time they were recorded)"
                              f"{'' if accept_backfilled else ': not accepted'}.")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("Audit chain OK."))
            return
        for problem in report.problems:
            self.stderr.write(f"PROBLEM: {problem}")
        raise CommandError(f"Audit chain verification failed: {report.problem_count} "
                           f"problem{'' if report.problem_count == 1 else 's'}.")
