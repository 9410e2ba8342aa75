"""Thin Celery wrappers of the domain: they call services and do nothing clever themselves."""

from celery import shared_task

from exceptions_app.services import backtests, documents, drift, guardrails, shadows


@shared_task(acks_late=True)
def check_drift() -> dict[str, str]:
    """Beat runs this every DRIFT_CHECK_INTERVAL: each use case's recent decisions
    against its reference. Safe to run twice or in two workers at once (``check_drift``
    locks each reference and opens an alert once)."""
    return {slug: result.status for slug, result in drift.check_all().items()}


@shared_task(acks_late=True)
def enforce_guardrails() -> dict[str, str]:
    """Beat runs this every GUARDRAIL_CHECK_INTERVAL: a use case whose QA error rate is over
    its bound, or with an open drift alert, goes down one stage. Safe to run twice or in
    two workers at once (``stages.demote`` moves once per trigger)."""
    return {check.use_case: check.demoted_to for check in guardrails.check_all()
            if check.demoted_to}


@shared_task(bind=True, acks_late=True, max_retries=5)
def fetch_document(self, document_id: int) -> str:
    """Fetch one URL document (idempotent: a stored one is not fetched again). A network
    error is retried with backoff; after the last retry the document is marked failed."""
    try:
        return documents.fetch(document_id).fetch_status
    except documents.FetchFailed as exc:
        if self.request.retries >= self.max_retries:
            documents.mark_unreachable(document_id, str(exc))
            return "failed"
        raise self.retry(exc=exc, countdown=30 * 2 ** self.request.retries) from exc


@shared_task(acks_late=True)
def run_backtest(backtest_id: int) -> str:
    """Judge a backtest's window (idempotent: a finished backtest is left as it is)."""
    return backtests.run(backtest_id).status


@shared_task(acks_late=True)
def enqueue_waiting_backtests() -> int:
    """Beat runs this every minute: backtests whose nudge was lost are handed over again."""
    return backtests.enqueue_waiting()


@shared_task(acks_late=True)
def advance_shadows() -> int:
    """Beat runs this every minute: running shadows route the decisions received since
    (safe twice at once: each shadow's pass holds its row)."""
    return shadows.advance_all()
