"""Comments on a case while it is worked: Markdown shown sanitised in the timeline,
@mentions that notify the people who may see the case, and refuse anyone else.

The people of every access test: a ``member`` of the queue, a ``second_member``, a
``manager`` and an ``outsider`` who works another queue.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import client_for, make_case
from workflows.models import (
    AuditEvent,
    Case,
    CaseComment,
    CaseState,
    Notification,
    OutboxMessage,
)
from workflows.services import comments, outbox
from workflows.services.errors import CaseConflict

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(outbox, "_nudge", lambda message_ids, webhooks=False: None)


@pytest.fixture
def case(queue, member):
    return make_case(queue, state=CaseState.ASSIGNED, assignee=member, title="Invoice 4711")


def notifications_of(user) -> list[str]:
    outbox.relay_due()
    return [n.text for n in Notification.objects.filter(user=user)]


# --- The service ---------------------------------------------------------------------------

def test_a_mention_notifies_the_person_and_the_audit_keeps_the_comment(
        case, member, second_member):
    comment = comments.add_comment(case_id=case.pk, user=member,
                                   body="@second can you check the **VAT**?")

    assert list(comment.mentioned.all()) == [second_member]
    event = AuditEvent.objects.get(case=case, verb="case.commented")
    assert (event.actor, event.data["markdown"], event.data["mentioned"]) == (
        member, "@second can you check the **VAT**?", [second_member.pk])
    [told] = notifications_of(second_member)
    assert told.startswith("member mentioned you on Invoice 4711.")
    assert notifications_of(member) == []  # the author is not told about their own words


def test_mentioning_someone_who_cannot_see_the_case_is_refused_and_saves_nothing(
        case, member, outsider):
    with pytest.raises(ValidationError) as refused:
        comments.add_comment(case_id=case.pk, user=member,
                             body="@outsider and @nobody, have a look")

    assert refused.value.message_dict["body"] == [
        "@outsider, @nobody cannot see this case, so a mention would not reach them: "
        "check the username, or remove the @. Nothing was saved."]
    assert not CaseComment.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_manager_may_be_mentioned_and_an_email_address_is_no_mention(
        case, member, manager):
    comment = comments.add_comment(
        case_id=case.pk, user=member,
        body="Asked billing@example.com; @manager, please decide.")

    assert list(comment.mentioned.all()) == [manager]


def test_a_closed_case_takes_no_comments(queue, member):
    closed = make_case(queue, state=CaseState.RESOLVED, assignee=member)

    with pytest.raises(CaseConflict, match="comments are for cases still being"):
        comments.add_comment(case_id=closed.pk, user=member, body="Late thought")


def test_an_outsider_cannot_comment_on_a_case_they_cannot_see(case, outsider):
    with pytest.raises(Case.DoesNotExist):
        comments.add_comment(case_id=case.pk, user=outsider, body="Hello")


# --- The API -------------------------------------------------------------------------------

def test_the_api_adds_and_lists_comments_with_sanitised_html(case, member, second_member):
    api = client_for(member)
    url = f"/api/v1/cases/{case.pk}/comments/"

    made = api.post(url, {"body": "See @second. <script>alert(1)</script>[x](javascript:1)"},
                    format="json")

    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["author"], body["mentioned"]) == ("member", ["second"])
    assert "<script" not in body["body_html"] and "javascript:" not in body["body_html"]
    listed = client_for(second_member).get(url)
    assert listed.status_code == 200
    assert [comment["id"] for comment in listed.json()] == [body["id"]]


def test_the_api_answers_field_errors_404_and_409_in_words(queue, case, member, outsider):
    api = client_for(member)

    unknown = api.post(f"/api/v1/cases/{case.pk}/comments/", {"body": "@ghost?"},
                       format="json")
    assert unknown.status_code == 400
    assert "@ghost cannot see this case" in unknown.json()["body"][0]
    hidden = client_for(outsider).post(f"/api/v1/cases/{case.pk}/comments/", {"body": "hi"},
                                       format="json")
    assert hidden.status_code == 404
    closed = make_case(queue, state=CaseState.CANCELLED)
    assert api.post(f"/api/v1/cases/{closed.pk}/comments/", {"body": "hi"},
                    format="json").status_code == 409


# --- The case page -------------------------------------------------------------------------

def test_the_timeline_shows_the_comment_rendered_and_sanitised(client, case, member,
                                                                 second_member):
    client.force_login(member)
    response = client.post(reverse("case-comment", args=[case.pk]), {
        "comment-body": "Check with @second:\n\n- *amount*\n- <img src=x onerror=alert(1)>"})

    comment = CaseComment.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/cases/{case.pk}/#comment-{comment.pk}")
    page = client.get(reverse("case", args=[case.pk])).content.decode()
    assert f'id="comment-{comment.pk}"' in page
    assert "<li><em>amount</em></li>" in page
    assert "onerror" not in page
    assert "mentions second" in page


def test_a_refused_mention_comes_back_on_the_page_with_the_text_kept(client, case, member):
    client.force_login(member)

    response = client.post(reverse("case-comment", args=[case.pk]),
                           {"comment-body": "Ask @ghost"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "@ghost cannot see this case" in page
    assert "Ask @ghost</textarea>" in page
