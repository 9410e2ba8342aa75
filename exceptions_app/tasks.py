"""Thin Celery wrappers for the domain: they call services and do nothing clever."""

from celery import shared_task

from exceptions_app.services import documents


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
