"""The audit log (page and API), a case's audit trail and checks of the whole chain (jobs,
page and API): who may read them, what the filters select, and pages that neither repeat
nor skip."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import CaseFactory, UserFactory, client_for, make_manager
from tests.workflows.test_audit import tampering
from workflows.actors import SYSTEM
from workflows.models import AuditEvent, AuditVerification
from workflows.services import audit, audit_verifications
from workflows.verbs import AuditVerb


def make_auditor(**kwargs):
    user = UserFactory(**kwargs)
    user.user_permissions.add(Permission.objects.get(codename="read_everything"))
    return user


def signed_in(user) -> Client:
    """A browser's session, for the pages."""
    client = Client()
    client.force_login(user)
    return client


def events_of(response) -> list[int]:
    return [event["id"] for event in response.json()["results"]]


@pytest.mark.django_db
def test_a_reviewer_may_not_read_the_audit_log_a_manager_and_an_auditor_may():
    reviewer, manager, auditor = UserFactory(), make_manager(), make_auditor()
    audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CREATED, object_type="queue", object_id=1)

    assert client_for(reviewer).get(reverse("audit-event-list")).status_code == 403
    assert signed_in(reviewer).get(reverse("audit-log")).status_code == 403
    for reader in (manager, auditor):
        assert client_for(reader).get(reverse("audit-event-list")).status_code == 200
        page = signed_in(reader).get(reverse("audit-log"))
        assert page.status_code == 200
        assert "Queue created" in page.content.decode()  # the verb in words


@pytest.mark.django_db
def test_filters_select_by_actor_verb_object_case_and_period():
    manager, reviewer = make_manager(), UserFactory(username="riley")
    case = CaseFactory()
    now = timezone.now()
    claimed = audit.record(actor=reviewer, verb=AuditVerb.CASE_CLAIMED, object_type="case",
                           object_id=case.pk, case=case)
    changed = audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                           object_id=7)
    with audit.backfilling():
        old = audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                           object_id=8, now=now - timedelta(days=10))
    client = client_for(manager)

    def ids(**params):
        response = client.get(reverse("audit-event-list"), params)
        assert response.status_code == 200, response.json()
        return events_of(response)

    assert ids(actor="riley") == [claimed.pk]
    assert ids(verb="queue.changed") == [old.pk, changed.pk]  # newest recorded first
    assert ids(object_type="queue", object_id="7") == [changed.pk]
    assert ids(case=case.pk) == [claimed.pk]
    assert ids(since=(now - timedelta(days=11)).date().isoformat(),
               until=(now - timedelta(days=9)).date().isoformat()) == [old.pk]
    assert ids(verb="queue.changed", since=now.date().isoformat()) == [changed.pk]


@pytest.mark.django_db
def test_filters_a_person_cannot_use_are_named():
    response = client_for(make_manager()).get(reverse("audit-event-list"), {
        "verb": "case.vanished", "since": "yesterday", "object_id": "3"})

    assert response.status_code == 400
    assert set(response.json()) == {"verb", "since", "object_type"}
    page = signed_in(make_manager()).get(reverse("audit-log"), {"verb": "case.vanished"})
    assert page.status_code == 400
    assert "No audit event is called" in page.content.decode()


@pytest.mark.django_db
def test_a_filter_with_a_nul_character_is_refused_by_name():
    response = client_for(make_manager()).get(reverse("audit-event-list"), {
        "actor": "\x00", "verb": "case.claimed"})

    assert response.status_code == 400
    assert response.json() == {"actor": ["Null characters are not allowed."]}
    page = signed_in(make_manager()).get(reverse("audit-log"), {"object_type": "case\x00"})
    assert page.status_code == 400


@pytest.mark.django_db
def test_keyset_pages_cover_the_log_once_newest_first(monkeypatch):
    from workflows import audit_log

    monkeypatch.setattr(audit_log, "PAGE_SIZE", 3)
    recorded = [audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                             object_id=n).pk for n in range(8)]
    client = client_for(make_manager())

    seen, url = [], reverse("audit-event-list") + "?verb=queue.changed"
    while url:
        body = client.get(url).json()
        seen.extend(event["id"] for event in body["results"])
        url = body["next"]

    assert seen == sorted(recorded, reverse=True)


@pytest.mark.django_db
def test_a_page_of_the_log_takes_the_same_queries_however_long_the_history(
        django_assert_max_num_queries):
    client = client_for(make_manager())
    for n in range(60):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)

    with django_assert_max_num_queries(8):
        assert client.get(reverse("audit-event-list")).status_code == 200


@pytest.mark.django_db
def test_case_trail_shows_the_case_events_with_their_seal_and_is_linked_from_the_case():
    manager = make_manager()
    case = CaseFactory()
    audit.record(actor=manager, verb=AuditVerb.CASE_PRIORITY_CHANGED, object_type="case",
                 object_id=case.pk, case=case)
    audit.seal()
    audit.record(actor=manager, verb=AuditVerb.CASE_COMMENTED, object_type="case",
                 object_id=case.pk, case=case)
    other = CaseFactory()
    audit.record(actor=manager, verb=AuditVerb.CASE_CANCELLED, object_type="case",
                 object_id=other.pk, case=other)
    client = signed_in(manager)

    trail = client.get(reverse("audit-case-trail", args=[case.pk])).content.decode()

    assert "Priority changed" in trail and "sealed #" in trail
    assert "not yet sealed" in trail
    assert "Cancelled" not in trail
    assert reverse("audit-case-trail", args=[case.pk]) in client.get(
        reverse("case", args=[case.pk])).content.decode()


@pytest.mark.django_db
def test_case_trail_is_refused_to_a_reviewer():
    case = CaseFactory()
    reviewer = UserFactory()
    case.queue.members.add(reviewer)

    assert signed_in(reviewer).get(reverse("audit-case-trail", args=[case.pk])).status_code == 403
    assert reverse("audit-case-trail", args=[case.pk]) not in signed_in(reviewer).get(
        reverse("case", args=[case.pk])).content.decode()


def checked(client, **body) -> dict:
    """Ask for a check through the API, let a worker do it (``run``, as the Celery task
    does), then read its url: the finished check."""
    response = client.post(reverse("audit-verification-list"), body, format="json")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert queued["status"] == "queued" and queued["report"] is None
    assert response["Location"] == queued["url"]
    audit_verifications.run(queued["id"])
    return client.get(queued["url"]).json()


@pytest.mark.django_db
def test_a_check_of_the_trail_says_the_chain_holds_and_is_audited():
    for n in range(4):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)
    audit.seal()
    auditor = make_auditor(username="ada")

    check = checked(client_for(auditor))

    assert check["status"] == "passed" and check["requested_by"] == "ada"
    # The four sealed events, and the request's own event, not sealed yet.
    assert check["checked"] == 5 and check["total"] == 5
    report = check["report"]
    assert report["ok"] is True
    assert (report["sealed"], report["unsealed"]) == (4, 1)
    assert report["first_broken_link"] is None
    assert report["head"]["seq"] == 4
    asked, done = AuditEvent.objects.filter(
        object_type="audit_verification", object_id=str(check["id"])).order_by("id")
    assert (asked.verb, asked.actor_label) == (AuditVerb.AUDIT_VERIFICATION_REQUESTED, "ada")
    assert done.verb == AuditVerb.AUDIT_VERIFIED and done.data["ok"] is True


@pytest.mark.django_db
def test_a_check_of_the_trail_names_the_first_broken_link():
    events = [audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue",
                           object_id=n) for n in range(5)]
    audit.seal()
    edited = AuditEvent.objects.get(pk=events[2].pk)
    edited.object_id = "99"
    with tampering() as cursor:
        cursor.execute("UPDATE workflows_auditevent SET object_id = %s WHERE id = %s",
                       ["99", edited.pk])

    check = checked(client_for(make_auditor()))

    assert check["status"] == "failed"
    report = check["report"]
    assert report["ok"] is False
    assert report["first_broken_link"] == {
        "seq": 3, "event_id": edited.pk, "field": "row_hash",
        "expected": audit.event_hash(edited), "found": events[2].row_hash}
    assert any(f"event {edited.pk}" in problem for problem in report["problems"])


@pytest.mark.django_db
def test_a_check_expecting_a_head_the_chain_does_not_have_finds_the_truncation():
    for n in range(3):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)
    audit.seal()

    check = checked(client_for(make_manager()), expect_head=f"7:{'a' * 64}")

    assert check["expected_head"] == f"7:{'a' * 64}"
    assert any("expected head #7 is not in the chain" in problem
               for problem in check["report"]["problems"])


@pytest.mark.django_db
def test_a_check_is_refused_to_a_reviewer_and_a_bad_head_is_named():
    reviewer_api = client_for(UserFactory())
    assert reviewer_api.post(reverse("audit-verification-list")).status_code == 403
    assert reviewer_api.get(reverse("audit-verification-list")).status_code == 403
    response = client_for(make_manager()).post(reverse("audit-verification-list"),
                                               {"expect_head": "12"}, format="json")
    assert response.status_code == 400
    assert "SEQ:HASH" in response.json()["expect_head"][0]
    assert not AuditVerification.objects.exists()


@pytest.mark.django_db
def test_a_check_runs_once_a_lost_one_is_handed_over_again(monkeypatch):
    handed = []
    monkeypatch.setattr(audit_verifications, "_enqueue", handed.append)
    check = audit_verifications.request_verification(actor=make_auditor())
    now = timezone.now()

    assert audit_verifications.enqueue_waiting(now=now) == 0
    assert audit_verifications.enqueue_waiting(now=now + timedelta(minutes=2)) == 1
    assert handed == [check.pk]

    first = audit_verifications.run(check.pk)
    finished_at = first.finished_at
    again = audit_verifications.run(check.pk)
    assert again.finished_at == finished_at
    assert AuditEvent.objects.filter(verb=AuditVerb.AUDIT_VERIFIED).count() == 1


@pytest.mark.django_db
def test_the_checks_page_starts_a_check_and_shows_its_report():
    for n in range(2):
        audit.record(actor=SYSTEM, verb=AuditVerb.QUEUE_CHANGED, object_type="queue", object_id=n)
    audit.seal()
    browser = signed_in(make_auditor())

    assert "Check the whole trail" in browser.get(reverse("audit-log")).content.decode()
    refused = browser.post(reverse("audit-verifications"), {"expect_head": "12:abc"})
    assert refused.status_code == 400
    assert "Give the head as SEQ:HASH" in refused.content.decode()

    started = browser.post(reverse("audit-verifications"), {"accept_backfilled": "on"})
    check = AuditVerification.objects.get()
    assert started.url == reverse("audit-verification", args=[check.pk])
    assert check.accept_backfilled
    assert "events checked. This page updates itself." in browser.get(started.url).content.decode()

    audit_verifications.run(check.pk)
    page = browser.get(started.url).content.decode()
    assert "The trail is intact." in page
    assert "2 sealed events checked link by link up to seal #2" in page
    assert signed_in(UserFactory()).get(started.url).status_code == 403
