"""Finding a case by what a person remembers of it: a part of its title (which names
its external id, where the domain gives one) or of the values it is about.

Each case carries ``search_text``: its title and the domain's values
(``hooks.search_values``), lower-cased, written when the case is opened. A search is
one or more terms, each of which must occur in it. On PostgreSQL each term is a
``LIKE '%term%'`` the trigram GIN index ``case_search_trgm_idx`` answers without
reading history (a term needs three characters to have a trigram); SQLite scans.
"""

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet

MIN_TERM_LENGTH = 3
MAX_TERMS = 5
# A long input (a document's text) is findable by its beginning; the row stays small.
MAX_SEARCH_TEXT = 4000

SHORT_SEARCH = (f"Type at least {MIN_TERM_LENGTH} characters of an external id, a title or "
                "a value to search for.")
MANY_TERMS = f"Search for at most {MAX_TERMS} words at once."


def search_text(*, title: str, values: Iterable = ()) -> str:
    """What a case is found by: its title and every scalar of ``values`` (nested objects
    and lists included), lower-cased. On intake's path: a loop, not a recursion."""
    words = [title] if title else []
    pending = list(values)
    pending.reverse()
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if value:
                words.append(value)
        elif isinstance(value, Mapping):
            pending.extend(reversed(list(value.values())))
        elif isinstance(value, list | tuple):
            pending.extend(reversed(value))
        elif value is not None and not isinstance(value, bool):
            words.append(str(value))
    return " ".join(words).lower()[:MAX_SEARCH_TEXT]


def search_terms(text: str) -> list[str]:
    """The terms of a search as typed, or a ``ValidationError`` saying what to type."""
    terms = [term for term in (text or "").lower().split() if term]
    if not any(len(term) >= MIN_TERM_LENGTH for term in terms):
        raise ValidationError(SHORT_SEARCH, code="short")
    if len(terms) > MAX_TERMS:
        raise ValidationError(MANY_TERMS, code="many")
    return terms


def matching(cases: QuerySet, terms: Iterable[str]) -> QuerySet:
    """The ``cases`` whose search text holds every term (the text is stored lower-cased:
    PostgreSQL's case-sensitive ``LIKE`` is the one its trigram index serves; SQLite's
    ``LIKE`` ignores case anyway)."""
    lookup = ("search_text__contains" if connection.vendor == "postgresql"
              else "search_text__icontains")
    for term in terms:
        cases = cases.filter(**{lookup: term})
    return cases
