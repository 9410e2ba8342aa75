"""workflows.db.add_to_counters against its ORM reference, on the quality rollups."""

from datetime import date

import pytest
from django.db import connection
from django.db.models import F

from exceptions_app.models import DailyQuality
from tests.exceptions_app.factories import UseCaseFactory
from workflows import db

KEY = ("day", "use_case_id", "model_version", "route")


def orm_add(use_case, day, version, route, decisions, sampled):
    row, _ = DailyQuality.objects.get_or_create(day=day, use_case=use_case,
                                                model_version=version, route=route)
    DailyQuality.objects.filter(pk=row.pk).update(decisions=F("decisions") + decisions,
                                                  qa_sampled=F("qa_sampled") + sampled)


def counted(use_case):
    return sorted(DailyQuality.objects.filter(use_case=use_case).values_list(
        "day", "model_version", "route", "decisions", "qa_sampled", "resolved"))


@pytest.mark.django_db
def test_adding_to_counters_answers_like_get_or_create_and_an_f_update():
    by_sql, by_orm = UseCaseFactory(), UseCaseFactory()
    day = date(2026, 12, 4)
    batches = [[(day, "v1", "auto", 3, 1), (day, "v1", "review", 2, 0)],
               [(day, "v1", "auto", 4, 2), (day, "v2", "auto", 1, 0)]]

    for batch in batches:
        db.add_to_counters(DailyQuality, key=KEY, counters=("decisions", "qa_sampled"), rows=[
            (connection.ops.adapt_datefield_value(d), by_sql.pk, v, r, n, s)
            for d, v, r, n, s in batch])
        for d, v, r, n, s in batch:
            orm_add(by_orm, d, v, r, n, s)

    assert counted(by_sql) == counted(by_orm) == [
        (day, "v1", "auto", 7, 3, 0), (day, "v1", "review", 2, 0, 0), (day, "v2", "auto", 1, 0, 0)]


@pytest.mark.django_db
def test_nothing_to_add_runs_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        db.add_to_counters(DailyQuality, key=KEY, counters=("decisions",), rows=[])


@pytest.mark.django_db
def test_the_counters_answered_are_those_after_the_add():
    use_case = UseCaseFactory()
    day = date(2026, 12, 4)
    orm_add(use_case, day, "v1", "auto", 5, 1)

    answered = db.add_to_counters(
        DailyQuality, key=KEY, counters=("decisions", "qa_sampled"),
        returning=("model_version", "decisions", "qa_sampled"),
        rows=[(connection.ops.adapt_datefield_value(day), use_case.pk, v, "auto", n, 0)
              for v, n in (("v1", 2), ("v2", 3))])

    assert sorted(answered) == [("v1", 7, 1), ("v2", 3, 0)]
    assert [row[1:3] for row in counted(use_case)] == [("v1", "auto"), ("v2", "auto")]
    assert [row[3] for row in counted(use_case)] == [7, 3]


@pytest.mark.postgres
@pytest.mark.django_db
def test_counters_written_at_once_add_as_add_to_counters_does():
    at_once, reference = UseCaseFactory(), UseCaseFactory()
    day = date(2026, 12, 4)
    for use_case in (at_once, reference):
        orm_add(use_case, day, "v1", "auto", 5, 1)

    def rows(use_case):
        return [(connection.ops.adapt_datefield_value(day), use_case.pk, v, r, n, s)
                for v, r, n, s in (("v1", "auto", 2, 1), ("v2", "review", 3, 0))]

    db.write_at_once(objects=[], counters={
        "model": DailyQuality, "key": KEY, "counters": ("decisions", "qa_sampled"),
        "rows": rows(at_once)})
    db.add_to_counters(DailyQuality, key=KEY, counters=("decisions", "qa_sampled"),
                       rows=rows(reference))

    assert counted(at_once) == counted(reference) == [
        (day, "v1", "auto", 7, 2, 0), (day, "v2", "review", 3, 0, 0)]
