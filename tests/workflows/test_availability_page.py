"""The availability page: a reviewer sets their own; a manager picks anyone
(``?user=<username>``) and marks them away with a delegate, or back, through the same
service and audit trail as ``PUT /api/v1/reviewers/{username}/availability/``."""

import pytest
from django.urls import reverse

from tests.factories import make_case
from workflows.models import AuditEvent, Case, CaseState
from workflows.services import assignment

S = CaseState

pytestmark = pytest.mark.django_db


def page_for(user) -> str:
    return f"{reverse('availability')}?user={user.username}"


def test_a_manager_marks_a_reviewer_away_with_a_delegate_and_back(client, queue, member,
                                                                  second_member, manager):
    assigned = make_case(queue, state=S.ASSIGNED, assignee=member)
    waiting = make_case(queue, state=S.WAITING, assignee=member)
    client.force_login(manager)

    shown = client.get(page_for(member))
    assert shown.status_code == 200
    assert b"Mark away" in shown.content
    away = client.post(page_for(member), {"action": "away", "delegate": second_member.pk},
                       follow=True)

    assert away.redirect_chain == [(page_for(member), 302)]
    assert b"member is away. 2 open cases moved to second." in away.content
    assert b"Mark available" in away.content
    assert not assignment.is_available(member)
    assert assignment.is_available(manager)
    assert {c.assignee for c in Case.objects.filter(pk__in=[assigned.pk, waiting.pk])} == {
        second_member}
    event = AuditEvent.objects.get(verb="reviewer.away")
    assert (event.actor, event.data["delegate"]) == (manager, second_member.pk)
    assert AuditEvent.objects.filter(verb="case.delegated", actor=manager).count() == 2

    back = client.post(page_for(member), {"action": "available"}, follow=True)

    assert b"member is available again" in back.content
    assert assignment.is_available(member)
    assert AuditEvent.objects.get(verb="reviewer.available").actor == manager


def test_a_manager_sends_a_reviewers_claimed_cases_back_to_the_queue(client, queue, member,
                                                                     manager):
    case = make_case(queue, state=S.ASSIGNED, assignee=member)
    client.force_login(manager)

    away = client.post(page_for(member), {"action": "away", "delegate": ""}, follow=True)

    assert b"member is away. 1 open case moved back to their queues." in away.content
    case.refresh_from_db()
    assert (case.state, case.assignee) == (S.OPEN, None)


def test_managers_pick_the_person_and_see_who_is_away(client, member, second_member,
                                                      manager):
    assignment.set_away(user=second_member, actor=second_member)
    client.force_login(manager)

    page = client.get(reverse("availability")).content.decode()

    assert '<select name="user"' in page
    assert f'<option value="{member.username}">' in page
    assert f'href="{page_for(second_member)}"' in page  # listed under "Away now"
    assert "I am away" in page  # without ?user=, a manager's own
    assert client.get(f"{reverse('availability')}?user=nobody").status_code == 404


def test_a_delegate_who_is_away_too_is_a_field_error(client, member, second_member, manager):
    assignment.set_away(user=second_member, actor=second_member)
    client.force_login(manager)

    refused = client.post(page_for(member), {"action": "away", "delegate": second_member.pk})

    assert refused.status_code == 400
    assert b"second is away too" in refused.content
    assert assignment.is_available(member)


def test_a_reviewer_cannot_set_someone_elses_availability(client, queue, member,
                                                         second_member):
    case = make_case(queue, state=S.ASSIGNED, assignee=second_member)
    client.force_login(member)

    own = client.get(reverse("availability")).content.decode()
    assert '<select name="user"' not in own and "Away now" not in own
    assert client.get(page_for(member)).status_code == 200  # their own, by name
    assert client.get(page_for(second_member)).status_code == 403
    refused = client.post(page_for(second_member), {"action": "away", "delegate": member.pk})

    assert refused.status_code == 403
    assert assignment.is_available(second_member)
    assert Case.objects.get(pk=case.pk).assignee == second_member
    assert not AuditEvent.objects.filter(verb__startswith="reviewer.").exists()


def test_the_delegate_picker_offers_only_people_who_work_the_reviewers_queues(
        client, member, second_member, outsider, manager):
    client.force_login(member)

    page = client.get(reverse("availability")).content.decode()
    offered = page.split('name="delegate"')[1].split("</select>")[0]

    assert f'value="{second_member.pk}"' in offered
    assert f'value="{manager.pk}"' in offered  # managers work every queue
    assert f'value="{outsider.pk}"' not in offered
    assert f'value="{member.pk}"' not in offered
    refused = client.post(reverse("availability"), {"action": "away",
                                                    "delegate": outsider.pk})
    assert refused.status_code == 400
    assert assignment.is_available(member)


def test_an_away_reviewer_sees_it_on_home_cannot_take_a_case_and_comes_back(client, queue,
                                                                            member):
    case = make_case(queue)
    assignment.set_away(user=member, actor=member)
    client.force_login(member)

    home = client.get(reverse("home"))
    assert b"You are marked away since" in home.content
    assert b"I am available" in home.content

    refused = client.post(reverse("next-case"))
    assert refused.status_code == 409
    assert b"mark yourself available to take cases." in refused.content
    picked = client.post(reverse("case-claim", args=[case.pk]), {"claim-version": 1})
    assert picked.status_code == 409
    assert b"mark yourself available to take cases." in picked.content
    assert Case.objects.get(pk=case.pk).state == S.OPEN

    back = client.post(reverse("availability"), {"action": "available", "next": "/"},
                       follow=True)
    assert back.redirect_chain == [("/", 302)]
    assert b"You are marked away" not in back.content
    assert client.post(reverse("next-case")).url == reverse("case", args=[case.pk])


def test_coming_back_never_redirects_off_site(client, member):
    assignment.set_away(user=member, actor=member)
    client.force_login(member)

    back = client.post(reverse("availability"),
                       {"action": "available", "next": "https://evil.example/"})

    assert back.url == reverse("availability")
