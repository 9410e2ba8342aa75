"""People's API tokens go through ``tokens.issue_user_token`` (and the
``issue_user_token`` command through it): audited, never with the token itself."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory
from workflows.actors import SYSTEM
from workflows.models import AuditEvent
from workflows.services.tokens import issue_user_token


def token_events():
    return list(AuditEvent.objects.filter(verb__startswith="user_token.").order_by("id"))


@pytest.mark.django_db
def test_issuing_showing_and_rotating_a_token_are_each_audited_without_the_token():
    ann = UserFactory(username="ann")

    first = issue_user_token(user=ann, actor=SYSTEM)
    again = issue_user_token(user=ann, actor=SYSTEM)
    rotated = issue_user_token(user=ann, actor=SYSTEM, rotate=True)

    assert (first.outcome, again.outcome, rotated.outcome) == ("issued", "shown", "rotated")
    assert first.key == again.key != rotated.key
    assert Token.objects.get(user=ann).key == rotated.key
    events = token_events()
    assert [e.verb for e in events] == ["user_token.issued", "user_token.shown",
                                        "user_token.rotated"]
    assert all(e.object_id == str(ann.pk) and e.data == {"user": "ann"} for e in events)
    assert not any(key in str(e.data) + e.actor_label for e in events
                   for key in (first.key, rotated.key))


@pytest.mark.django_db
def test_a_deactivated_person_gets_no_token():
    ann = UserFactory(username="ann", is_active=False)

    with pytest.raises(ValidationError, match="deactivated"):
        issue_user_token(user=ann, actor=SYSTEM)

    assert not Token.objects.exists() and token_events() == []


@pytest.mark.django_db
def test_the_command_issues_through_the_service_and_is_audited_as_the_command(capsys):
    ann = UserFactory(username="ann")

    call_command("issue_user_token", "ann", "--rotate")

    assert capsys.readouterr().out.strip() == Token.objects.get(user=ann).key
    event, = token_events()
    assert (event.verb, event.actor, event.actor_label) == ("user_token.issued", None,
                                                            "cli:issue_user_token")
    with pytest.raises(CommandError, match="no user 'bob'"):
        call_command("issue_user_token", "bob")
