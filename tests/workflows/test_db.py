"""workflows/db.py: INSERT ... ON CONFLICT DO NOTHING RETURNING, on the running database."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.factories import CaseFactory
from workflows import db
from workflows.models import SlaWarning

pytestmark = pytest.mark.django_db

COLUMNS = ("case_id", "clock", "level", "created_at")
KEY = ("case_id", "clock", "level")


def warning_rows(*keys):
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    return [(case_id, clock, level, created_at) for case_id, clock, level in keys]


def test_insert_new_answers_only_the_rows_it_inserted():
    case = CaseFactory()
    SlaWarning.objects.create(case=case, clock="response", level=0, created_at=timezone.now())

    inserted = db.insert_new(
        SlaWarning, columns=COLUMNS, conflict=KEY, returning=("case_id", "clock", "level"),
        rows=warning_rows((case.pk, "response", 0), (case.pk, "resolution", 0),
                          (case.pk, "response", 1)))

    assert sorted(inserted) == [(case.pk, "resolution", 0), (case.pk, "response", 1)]
    assert SlaWarning.objects.filter(case=case).count() == 3


def test_a_conflict_leaves_the_callers_transaction_usable():
    case = CaseFactory()
    with transaction.atomic():
        first = db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                              rows=warning_rows((case.pk, "response", 0)))
        again = db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                              rows=warning_rows((case.pk, "response", 0)))
        assert again == []
        assert SlaWarning.objects.get(case=case).pk == first[0][0]


def test_nothing_to_insert_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert db.insert_new(SlaWarning, columns=COLUMNS, conflict=KEY, returning=("id",),
                             rows=[]) == []
