"""Notifications for people, and the managers' delivery log: pages and API.

Three people, as every access test has them: the ``member`` whose notifications
these are, a ``manager`` and an ``outsider``.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory, make_case
from workflows.models import Channel, Notification, OutboxMessage, OutboxStatus
from workflows.services import notifications, outbox


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)


def notify(users, text, *, key, case=None, now=None, email=False):
    """Write and relay, as a service and the relay would."""
    messages = outbox.notify_users(users=users, text=text, dedup_prefix=key, case=case,
                                   email=email, now=now)
    outbox.relay_due(now=now)
    return messages


@pytest.fixture
def member_notifications(member, queue):
    now = timezone.now()
    case = make_case(queue)
    notify([member], "Case escalated to you", key="a", case=case,
           now=now - timedelta(minutes=2))
    notify([member], "SLA warning on your case", key="b", case=case,
           now=now - timedelta(minutes=1))
    return list(Notification.objects.filter(user=member).order_by("-created_at"))


# --- Writing notices -----------------------------------------------------------------------

@pytest.mark.django_db
def test_notify_users_writes_one_in_app_message_each_and_mail_to_those_with_an_address():
    ana = UserFactory(username="ana", email="ana@example.com")
    bo = UserFactory(username="bo", email="")

    messages = outbox.notify_users(users=[ana, bo], text="Case 7 breached its SLA",
                                   dedup_prefix="breach:7:1")

    assert {(m.channel, m.recipient, m.dedup_key) for m in messages} == {
        (Channel.EMAIL, "ana@example.com", f"breach:7:1:email:{ana.pk}"),
        (Channel.IN_APP, str(ana.pk), f"breach:7:1:in_app:{ana.pk}"),
        (Channel.IN_APP, str(bo.pk), f"breach:7:1:in_app:{bo.pk}"),
    }
    assert len(messages) == 3
    assert {m.subject for m in messages} == {"Case 7 breached its SLA"}


@pytest.mark.django_db
def test_notifying_twice_with_the_same_prefix_writes_nothing_new():
    ana = UserFactory(username="ana", email="ana@example.com")
    first = outbox.notify_users(users=[ana], text="one", dedup_prefix="p")
    again = outbox.notify_users(users=[ana], text="one", dedup_prefix="p")

    assert [m.pk for m in again] == [m.pk for m in first]
    assert OutboxMessage.objects.count() == 2


@pytest.mark.django_db
def test_email_false_writes_only_in_app_and_inactive_users_are_skipped():
    ana = UserFactory(username="ana", email="ana@example.com")
    gone = UserFactory(username="gone", is_active=False)

    messages = outbox.notify_users(users=[ana, gone], text="hi", dedup_prefix="p",
                                   email=False)

    assert [(m.channel, m.recipient) for m in messages] == [(Channel.IN_APP, str(ana.pk))]


# --- The notification list -----------------------------------------------------------------

@pytest.mark.django_db
def test_the_list_shows_my_notifications_newest_first_with_the_unread_badge(
        client, member, member_notifications, outsider):
    notify([outsider], "Not for the member", key="o")
    client.force_login(member)

    response = client.get(reverse("notifications"))

    assert response.status_code == 200
    page = list(response.context["page"].object_list)
    assert [n.text for n in page] == ["SLA warning on your case", "Case escalated to you"]
    assert response.context["unread_notifications"] == 2
    assert b"Not for the member" not in response.content
    # Unread: opening the case marks it read on the way.
    assert reverse("notification-read", args=[page[0].pk]).encode() in response.content


@pytest.mark.django_db
def test_the_badge_counts_only_unread_ones(client, member, member_notifications):
    notifications.mark_read(user=member, notification_id=member_notifications[0].pk)
    client.force_login(member)

    response = client.get(reverse("notifications") + "?unread=1")

    assert response.context["unread_notifications"] == 1
    assert [n.text for n in response.context["page"].object_list] == [
        "Case escalated to you"]


@pytest.mark.django_db
def test_mark_one_read_then_all_read(client, member, member_notifications):
    client.force_login(member)
    newest, older = member_notifications

    response = client.post(reverse("notification-read", args=[newest.pk]))
    assert response.status_code == 302
    newest.refresh_from_db()
    older.refresh_from_db()
    assert newest.read_at is not None and older.read_at is None

    client.post(reverse("notifications-read-all"))
    assert not Notification.objects.filter(user=member, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_opening_a_notification_marks_it_read_and_goes_to_the_case(client, member,
                                                                     member_notifications):
    client.force_login(member)
    notification = member_notifications[0]

    response = client.post(reverse("notification-read", args=[notification.pk]),
                           {"open": "1"})

    assert response.status_code == 302
    assert response.url == reverse("case", args=[notification.case_id])
    notification.refresh_from_db()
    assert notification.read_at is not None


@pytest.mark.django_db
def test_marking_read_twice_keeps_the_first_time(member, member_notifications):
    notification = member_notifications[0]
    first = notifications.mark_read(user=member, notification_id=notification.pk,
                                    now=timezone.now() - timedelta(minutes=5))
    again = notifications.mark_read(user=member, notification_id=notification.pk)

    assert again.read_at == first.read_at


@pytest.mark.django_db
def test_an_outsider_cannot_see_or_mark_someone_elses_notification(
        client, api_client, member_notifications, outsider, manager):
    notification = member_notifications[0]
    for person in (outsider, manager):  # not even a manager: notifications are personal
        client.force_login(person)
        assert client.post(reverse("notification-read", args=[notification.pk])
                           ).status_code == 404
        assert b"Case escalated" not in client.get(reverse("notifications")).content
        api_client.force_authenticate(person)
        assert api_client.get(f"/api/v1/notifications/{notification.pk}/").status_code == 404
        assert api_client.post(f"/api/v1/notifications/{notification.pk}/read/"
                               ).status_code == 404
        assert api_client.get("/api/v1/notifications/").json()["results"] == []
        api_client.post("/api/v1/notifications/read-all/")
    notification.refresh_from_db()
    assert notification.read_at is None


@pytest.mark.django_db
def test_the_list_needs_a_signed_in_person(client, api_client):
    response = client.get(reverse("notifications"))
    assert response.status_code == 302 and reverse("login") in response.url
    assert api_client.get("/api/v1/notifications/").status_code == 401


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_list_page_does_a_fixed_number_of_queries(client, member, queue):
    client.force_login(member)
    notify([member], "notice", key="first", case=make_case(queue))
    one = _queries(client, reverse("notifications"))

    for n in range(6):
        notify([member], f"notice {n}", key=f"n{n}", case=make_case(queue))

    assert _queries(client, reverse("notifications")) == one


# --- The notifications API ---------------------------------------------------------------------

@pytest.mark.django_db
def test_the_api_lists_reads_and_counts_my_notifications(api_client, member,
                                                        member_notifications):
    api_client.force_authenticate(member)
    newest, older = member_notifications

    body = api_client.get("/api/v1/notifications/").json()
    assert [(n["id"], n["read"]) for n in body["results"]] == [(newest.pk, False),
                                                               (older.pk, False)]
    assert body["results"][0]["case"] == newest.case_id

    marked = api_client.post(f"/api/v1/notifications/{newest.pk}/read/")
    assert marked.status_code == 200 and marked.json()["read"] is True
    assert api_client.get("/api/v1/notifications/unread-count/").json() == {"unread": 1}
    assert [n["id"] for n in api_client.get("/api/v1/notifications/?unread=true")
            .json()["results"]] == [older.pk]

    assert api_client.post("/api/v1/notifications/read-all/").json() == {"marked": 1}
    assert api_client.get("/api/v1/notifications/unread-count/").json() == {"unread": 0}


# --- The delivery log (managers) -----------------------------------------------------------------

@pytest.fixture
def failed_webhook(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    message = outbox.enqueue(channel=Channel.WEBHOOK, recipient="http://127.0.0.1:9/hook",
                             dedup_key="resolution:1:webhook", payload={"type": "t"})
    now = timezone.now()
    for _ in range(2):
        outbox.relay_due(now=now)
        message.refresh_from_db()
        now = message.next_attempt_at
    assert message.status == OutboxStatus.FAILED
    return message


@pytest.mark.django_db
def test_a_failed_message_is_visible_with_its_attempts_in_the_delivery_log(
        client, manager, failed_webhook, member):
    notify([member], "delivered fine", key="fine")
    client.force_login(manager)

    response = client.get(reverse("delivery-log") + "?status=failed")

    assert response.status_code == 200
    assert [m.pk for m in response.context["page"].object_list] == [failed_webhook.pk]
    content = response.content.decode()
    assert "Failed for good" in content and "No signing secret" in content
    assert len(response.context["page"].object_list[0].delivery_attempts.all()) == 2

    everything = client.get(reverse("delivery-log"))
    assert len(everything.context["page"].object_list) == 2
    in_app = client.get(reverse("delivery-log") + "?channel=in_app")
    assert [m.channel for m in in_app.context["page"].object_list] == [Channel.IN_APP]


@pytest.mark.django_db
def test_only_managers_see_the_delivery_log(client, api_client, member, outsider,
                                           failed_webhook):
    for person in (member, outsider):
        client.force_login(person)
        assert client.get(reverse("delivery-log")).status_code == 403
        api_client.force_authenticate(person)
        assert api_client.get("/api/v1/outbox/").status_code == 403
        assert api_client.get(f"/api/v1/outbox/{failed_webhook.pk}/").status_code == 403
    api_client.force_authenticate(None)
    assert api_client.get("/api/v1/outbox/").status_code == 401


@pytest.mark.django_db
def test_the_outbox_api_lists_messages_with_their_attempts(api_client, manager,
                                                         failed_webhook, member):
    notify([member], "delivered fine", key="fine")
    api_client.force_authenticate(manager)

    body = api_client.get("/api/v1/outbox/?status=failed").json()

    [message] = body["results"]
    assert (message["id"], message["status"], message["attempts"]) == (
        str(failed_webhook.pk), "failed", 2)
    assert "No signing secret" in message["last_error"]
    assert [a["succeeded"] for a in message["delivery_attempts"]] == [False, False]
    assert len(api_client.get("/api/v1/outbox/").json()["results"]) == 2
    detail = api_client.get(f"/api/v1/outbox/{failed_webhook.pk}/").json()
    assert detail["dedup_key"] == "resolution:1:webhook"


@pytest.mark.django_db
def test_the_delivery_log_does_a_fixed_number_of_queries(client, manager, member):
    client.force_login(manager)
    notify([member], "notice", key="first", email=True)
    one = _queries(client, reverse("delivery-log"))

    for n in range(6):
        notify([member], f"notice {n}", key=f"n{n}", email=True)

    assert _queries(client, reverse("delivery-log")) == one


@pytest.mark.django_db
def test_the_delivery_log_names_recipients_and_cases_as_pages_do(client, manager, member,
                                                                 queue):
    member.first_name, member.last_name = "Mia", "Member"
    member.save()
    case = make_case(queue, title="Invoice approval: inv-2026-000123")
    notify([member], "SLA warning", key="named", case=case, email=True)
    client.force_login(manager)

    page = client.get(reverse("delivery-log")).content.decode()

    assert '<td data-label="To">Mia Member</td>' in page
    assert f"<code>{member.email}</code>" in page  # an e-mail shows its address
    assert '>Invoice approval: inv-2026-000123</a>' in page
    assert f">{member.pk}<" not in page and f">Case {case.pk}<" not in page
