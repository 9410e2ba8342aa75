"""A synthetic upstream AI: posts realistic invoice decisions to Backstop over HTTP.

    manage.py simulate --count 200 --rate 5 --error-rate 0.1 --api-key <key>

The decisions and the posting come from ``exceptions_app.demo.simulation``; this
command reads the options, shows a progress bar and prints the summary.
"""

import logging
import os
import sys
import threading

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exceptions_app.demo.reviewers import ReviewerStyle, ReviewTally, work_queues
from exceptions_app.demo.simulation import (
    DEFAULT_USE_CASE,
    Scenario,
    SimulationError,
    Tally,
    post_decisions,
    synthetic_decisions,
)

DEFAULT_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = ("Act as an upstream AI: post synthetic invoice decisions to Backstop's API at a "
            "steady rate, then print what happened to them.")

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=100, help="decisions to post")
        parser.add_argument("--rate", type=float, default=5.0,
                            help="decisions per second (0: as fast as the server answers)")
        parser.add_argument("--error-rate", type=float, default=0.1,
                            help="share of deliberately wrong AI outputs, 0 to 1")
        parser.add_argument("--url", default=os.environ.get("BACKSTOP_URL", DEFAULT_URL),
                            help=f"Backstop's base URL (default {DEFAULT_URL})")
        parser.add_argument("--api-key", default=os.environ.get("BACKSTOP_API_KEY", ""),
                            help="the AI system's key (default: $BACKSTOP_API_KEY)")
        parser.add_argument("--batch-size", type=int, default=1,
                            help="1 posts one by one; more uses /decisions/batch/")
        parser.add_argument("--seed", type=int, default=None,
                            help="same seed, same decisions (and external_ids)")
        parser.add_argument("--use-case", default=DEFAULT_USE_CASE)
        parser.add_argument("--max-retries", type=int, default=5,
                            help="retries of a 429/5xx or lost connection, with backoff")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        world = parser.add_argument_group("a changing world (watch the metrics and drift)")
        world.add_argument("--drift-after", type=int, default=None, metavar="N",
                           help="after N decisions: larger amounts, suppliers from a new "
                                "country, a less sure AI")
        world.add_argument("--new-model-after", type=int, default=None, metavar="N",
                           help="after N decisions the AI posts as --new-model")
        world.add_argument("--new-model", default=Scenario.new_model)
        world.add_argument("--subtle-errors", action="store_true",
                           help="the wrong outputs are off by cents and as sure as right ones: "
                                "only QA review finds them (auto-passed ones are wrong at "
                                "--error-rate)")
        people = parser.add_argument_group("simulated reviewers, working through the API")
        people.add_argument("--reviewer-token", action="append", default=[], metavar="TOKEN",
                            help="a person's API token (manage.py issue_user_token <name>); "
                                 "repeat for several reviewers (default: "
                                 "$BACKSTOP_REVIEWER_TOKENS, comma-separated)")
        people.add_argument("--reviewer-accuracy", type=float, default=0.95,
                            help="share of cases the reviewers judge right")
        people.add_argument("--reviewer-seconds", type=float, default=2.0,
                            help="mean thinking time per case")

    def handle(self, *args, **options):
        count, rate, batch_size = options["count"], options["rate"], options["batch_size"]
        error_rate = options["error_rate"]
        if count < 1 or rate < 0 or not 0 <= error_rate <= 1 or not 1 <= batch_size <= 1000:
            raise CommandError("Need --count >= 1, --rate >= 0, --error-rate between 0 and 1 "
                               "and --batch-size between 1 and 1000.")
        if not options["api_key"]:
            raise CommandError("No API key: pass --api-key or set BACKSTOP_API_KEY "
                               "(get one with `manage.py issue_api_key demo-ai`).")
        tokens = options["reviewer_token"] or [
            token for token in os.environ.get("BACKSTOP_REVIEWER_TOKENS", "").split(",") if token]
        style = ReviewerStyle(accuracy=options["reviewer_accuracy"],
                              seconds=options["reviewer_seconds"])
        if not 0 <= style.accuracy <= 1 or style.seconds < 0:
            raise CommandError("Need --reviewer-accuracy between 0 and 1 and "
                               "--reviewer-seconds >= 0.")
        # One log line per request would drown the progress bar and the summary.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        scenario = Scenario(error_rate=error_rate, drift_after=options["drift_after"],
                            new_model_after=options["new_model_after"],
                            new_model=options["new_model"],
                            subtle_errors=options["subtle_errors"])
        decisions = synthetic_decisions(count=count, error_rate=error_rate, seed=options["seed"],
                                        use_case=options["use_case"], scenario=scenario)
        posted = threading.Event()
        reviewing = _Reviewing(url=options["url"], tokens=tokens, style=style,
                               truths={d.body["external_id"]: d for d in decisions},
                               until=posted.is_set, seed=options["seed"])
        with tqdm(total=count, unit="decision", file=sys.stderr, mininterval=0.5,
                  disable=options["no_progress"]) as bar:
            try:
                tally = post_decisions(decisions=decisions, url=options["url"],
                                       api_key=options["api_key"], rate=rate,
                                       batch_size=batch_size,
                                       max_retries=options["max_retries"],
                                       on_progress=bar.update)
            except SimulationError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                posted.set()
        review = reviewing.finish()
        self._summary(tally, count=count, url=options["url"])
        if review is not None:
            self._review_summary(review)

    def _review_summary(self, review: ReviewTally) -> None:
        resolved = sum(review.verdicts.values())
        write = self.stdout.write
        write(f"Reviewers resolved {resolved} case(s) "
              f"({', '.join(f'{v} {n}' for v, n in sorted(review.verdicts.items())) or 'none'})"
              f" and approved {review.approvals}; judged right: "
              f"{review.judged_right / resolved if resolved else 0:.0%}.")
        for reason, number in sorted(review.refused.items(), key=str):
            self.stderr.write(f"  refused {number} time(s): HTTP {reason}")

    def _summary(self, tally: Tally, *, count: int, url: str) -> None:
        write = self.stdout.write
        elapsed = tally.elapsed
        write(f"Posted {count} decision(s) to {url} in {elapsed:.1f} s "
              f"({count / elapsed if elapsed else 0:.1f}/s), {tally.retries} retries.")
        write("By HTTP status:")
        for status, number in sorted(tally.statuses.items()):
            write(f"  {status}: {number}")
        write("By route:")
        for route in ("auto", "review", "reject"):
            write(f"  {route}: {tally.routes[route]}")
        wrong = sum(tally.wrong_routes.values())
        if wrong:
            caught = wrong - tally.wrong_routes["auto"]
            write(f"Wrong AI outputs stored: {wrong}; sent to people or rejected: {caught}; "
                  f"passed automatically: {tally.wrong_routes['auto']}.")
        for external_id, status, answer in tally.sample_errors:
            self.stderr.write(f"  {external_id}: HTTP {status} {answer}")


class _Reviewing:
    """The simulated reviewers, working in the background while decisions are posted."""

    def __init__(self, *, url, tokens, style, truths, until, seed):
        self.outcome: ReviewTally | Exception | None = None
        self.thread = None
        if tokens:
            def work():
                try:
                    self.outcome = work_queues(url=url, tokens=tokens, truths=truths,
                                               style=style, until=until, seed=seed)
                except Exception as exc:  # raised in the command's thread by finish()
                    self.outcome = exc
            self.thread = threading.Thread(target=work, daemon=True)
            self.thread.start()

    def finish(self) -> ReviewTally | None:
        if self.thread is None:
            return None
        self.thread.join()
        if isinstance(self.outcome, Exception):
            raise CommandError(f"The simulated reviewers stopped: {self.outcome}")
        return self.outcome
