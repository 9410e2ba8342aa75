"""Comments on a case while it is worked: Markdown, with ``@username`` mentions.

Anyone who may see an open case (I8) may comment on it. A mention reaches a person who
may see the case too: they are notified (in the app, and by e-mail when they have an
address). A mention of anyone else is refused with the comment, so nobody learns about
a case through a mention, and a mistyped name is not silently lost. Audited: the
case's timeline shows the comment from its ``case.commented`` event.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from workflows import selectors
from workflows.models import Case, CaseComment
from workflows.services import audit, outbox
from workflows.services.errors import CaseConflict
from workflows.verbs import AuditVerb

MAX_LENGTH = 5000
# More mentions than this in one comment is a broadcast, not a mention.
MAX_MENTIONS = 10

# ``@name`` not preceded by a word character or another @ (so an e-mail address is no
# mention); Django usernames are letters, digits and @ . + - _, the last character not
# a full stop (a mention ending a sentence).
_MENTION = re.compile(r"(?<![\w@])@([\w.+-]*[\w+-])")


def mentioned_usernames(body: str) -> list[str]:
    """The usernames ``body`` mentions, first mention first, each once."""
    return list(dict.fromkeys(_MENTION.findall(body or "")))


def add_comment(*, case_id: int, user, body: str,
                now: datetime | None = None) -> CaseComment:
    """Comment on an open case the user may see; notify the people it mentions. Audited.

    A case out of the user's sight is ``Case.DoesNotExist`` (404); an empty or overlong
    body, or a mention of someone who cannot see the case, is a ``ValidationError`` on
    ``body``; a closed case is a ``CaseConflict`` (409).
    """
    now = now or timezone.now()
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["Write your comment."]})
    if len(body) > MAX_LENGTH:
        raise ValidationError({"body": [
            f"A comment is at most {MAX_LENGTH:,} characters; this one has {len(body):,}."]})
    with transaction.atomic():
        case = selectors.visible_cases(user=user).select_related("queue").get(pk=case_id)
        if not case.is_open:
            raise CaseConflict(f"Case {case.pk} is {case.get_state_display().lower()}: "
                               "comments are for cases still being worked.", case=case)
        mentioned = _mentioned_people(case=case, body=body, author=user)
        comment = CaseComment.objects.create(case=case, author=user, body=body,
                                             created_at=now)
        comment.mentioned.set(mentioned)
        audit.record(actor=user, verb=AuditVerb.CASE_COMMENTED, object_type="comment",
                     object_id=comment.pk, case=case, now=now,
                     data={"comment_id": comment.pk, "markdown": body,
                           "mentioned": sorted(person.pk for person in mentioned)})
        notified = [person for person in mentioned if person.pk != user.pk]
        if notified:
            outbox.notify_users(
                users=notified,
                text=f"{user.display_name} mentioned you on {_label(case)}.\n\n{body}",
                dedup_prefix=f"comment:{comment.pk}:mention", case=case, now=now)
    return comment


def _mentioned_people(*, case: Case, body: str, author) -> list:
    usernames = mentioned_usernames(body)
    if len(usernames) > MAX_MENTIONS:
        raise ValidationError({"body": [
            f"Mention at most {MAX_MENTIONS} people in one comment; this one mentions "
            f"{len(usernames)}."]})
    people = {person.get_username(): person for person in
              get_user_model().objects.filter(username__in=usernames, is_active=True)}
    # Whether each may see the case is asked the way the pages ask it (I8): one query
    # a person, for at most MAX_MENTIONS people.
    unreachable = [name for name in usernames
                   if name not in people or not selectors.visible_cases(
                       user=people[name]).filter(pk=case.pk).exists()]
    if unreachable:
        names = ", ".join(f"@{name}" for name in unreachable)
        raise ValidationError({"body": [
            f"{names} cannot see this case, so a mention would not reach "
            f"{'them' if len(unreachable) > 1 else 'this person'}: check the username, "
            "or remove the @. Nothing was saved."]})
    return [people[name] for name in usernames]


def _label(case: Case) -> str:
    return case.title or f"case {case.pk}"

