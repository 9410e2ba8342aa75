"""Finding a case by what a person remembers of it: a part of its title (which names
its external id, where the domain gives one) or of the values it is about.

Each case carries ``search_text``: its title and the domain's values
(``hooks.search_values``), lower-cased, written when the case is opened. A search is
one or more terms, each of which must occur in it. On PostgreSQL each term is a
``LIKE '%term%'`` the trigram GIN index ``case_search_trgm_idx`` answers without
reading history (a term needs three characters to have a trigram); SQLite scans.

What a search reads is bounded, whatever the history and whoever asks (``bounded``):

- a *rare* term (the planner expects ``RARE`` cases or fewer to hold it, an external id
  say) is answered through the trigram index: the list is the newest of its matches
  the person may see, however old;
- a *common* term (a vendor) is looked for newest first among the ``SEARCH_WINDOW`` ids
  below the page's start: a page may come back short, or empty when the person's cases
  hold the term rarely, with a link to search on below the window (the case list's
  "Older", the API's ``next``). Without the window, a term common in the history but
  absent from the person's queues walked the whole history for nothing (half a second
  at 1,000,000 cases, docs/PERFORMANCE.md).
"""

import json
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Max, Min, QuerySet

MIN_TERM_LENGTH = 3
MAX_TERMS = 5
# A long input (a document's text) is findable by its beginning; the row stays small.
MAX_SEARCH_TEXT = 4000

SHORT_SEARCH = (f"Type at least {MIN_TERM_LENGTH} characters of an external id, a title or "
                "a value to search for.")
MANY_TERMS = f"Search for at most {MAX_TERMS} words at once."

# A term the planner expects in at most this many cases is rare: the trigram index
# finds them all, and the page is the newest of them the person may see.
RARE = 2000
# A common term is looked for among this many ids per page (about 300 table pages).
SEARCH_WINDOW = 10_000


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


def bounded(cases: QuerySet, terms: list[str], *, before: int | None,
            window: bool = True) -> tuple[QuerySet, int | None]:
    """``matching`` with a bounded cost (see the module's docstring): the matching cases
    and the floor the search stopped at (None: nothing older is left to search; below
    it, search on with ``before=floor``). ``before``: the page starts below this id.
    ``window=False``: no window (a page read upwards, back towards the newest, reads
    no further than the pages that led to it)."""
    matched = matching(cases, terms)
    if before is not None:
        matched = matched.filter(pk__lt=before)
    if connection.vendor != "postgresql":
        return matched, None  # SQLite's small embedded databases afford a scan
    if not window or _rare(cases.model, terms):
        return matched, None
    # Both ends of the primary key in one query (each one index page).
    ends = cases.model.objects.aggregate(oldest=Min("pk"), newest=Max("pk"))
    if ends["oldest"] is None:
        return matched, None
    floor = (before if before is not None else ends["newest"] + 1) - SEARCH_WINDOW
    if floor <= ends["oldest"]:
        return matched, None  # the window reaches the first case: nothing below it
    return matched.filter(pk__gte=floor), floor


def _rare(model, terms: list[str]) -> bool:
    """Whether the planner expects few cases to hold the terms (``RARE`` or fewer): its
    own estimate, read by EXPLAIN (planning only, well under a millisecond), from the
    1,000 values of the column's histogram (migration 0005). The estimate is not a
    count: a term it overrates is searched by window, one it underrates costs the
    index's reading of its matches."""
    plan = json.loads(matching(model.objects.all(), terms).explain(format="json"))
    return plan[0]["Plan"]["Plan Rows"] <= RARE
