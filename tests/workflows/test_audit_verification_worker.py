"""A check of the audit trail asked for through the API is done by a real Celery worker
through Redis, and the API then answers its report."""

import pytest
from django.urls import reverse

from tests.factories import client_for, make_manager
from tests.workflows.celery_support import celery_stack, publishing_to, wait_until
from workflows.actors import SYSTEM
from workflows.models import AuditVerification
from workflows.services import audit
from workflows.verbs import AuditVerb


@pytest.fixture
def stack(transactional_db, tmp_path):
    yield from celery_stack(tmp_path, sweep_interval=60.0)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_requested_check_is_done_by_a_worker(stack):
    process = stack.start("worker", "verifier")
    for n in range(30):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)
    audit.seal()
    api = client_for(make_manager())

    with publishing_to(stack.redis.url):
        asked = api.post(reverse("audit-verification-list"), {}, format="json").json()

    try:
        wait_until(lambda: AuditVerification.objects.get(pk=asked["id"]).is_finished,
                   timeout=60, what="the worker finished the check")
    except AssertionError:
        pytest.fail(process.logs())
    check = api.get(asked["url"]).json()
    assert check["status"] == "passed", check["error"]
    assert check["report"]["sealed"] == 30 and check["report"]["ok"] is True
