"""Per-process caches of rarely changed rows (``workflows/process_cache.py``): what one
process writes, another stops using on its next lookup; ``one_look`` reads every cache's
token in one round trip and still sees a write made before it."""

import pytest
from django.core.cache import cache

from workflows import process_cache
from workflows.process_cache import ProcessCache


class CountingCache:
    """The shared cache, counting the round trips a block makes."""

    def __init__(self, monkeypatch):
        self.calls = []
        for operation in ("get", "get_many"):
            real = getattr(cache, operation)
            monkeypatch.setattr(cache, operation, self._counted(operation, real))

    def _counted(self, operation, real):
        def counted(*args, **kwargs):
            self.calls.append(operation)
            return real(*args, **kwargs)
        return counted


def test_another_processs_write_is_seen_on_the_next_lookup():
    here, there = ProcessCache("test-terms"), ProcessCache("test-terms")
    there.lookup([1])
    there.store(1, "old terms")
    assert there.lookup([1]) == {1: "old terms"}

    here.clear()  # what a write in another process does

    assert there.lookup([1]) == {}


def test_one_look_reads_every_caches_token_in_one_round_trip(monkeypatch):
    terms, catalogue = ProcessCache("test-terms"), ProcessCache("test-catalogue")
    for each in (terms, catalogue):
        each.lookup([1])
        each.store(1, each.name)
    shared = CountingCache(monkeypatch)

    with process_cache.one_look():
        for _ in range(3):
            assert terms.lookup([1]) == {1: "test-terms"}
            assert catalogue.lookup([1]) == {1: "test-catalogue"}

    assert shared.calls == ["get_many"]


def test_a_write_made_before_the_look_is_seen_inside_it():
    here, there = ProcessCache("test-terms"), ProcessCache("test-terms")
    there.lookup([1])
    there.store(1, "old terms")

    here.clear()
    with process_cache.one_look():
        assert there.lookup([1]) == {}
        there.store(1, "new terms")
        assert there.lookup([1]) == {1: "new terms"}


def test_a_nested_look_keeps_the_outer_reading(monkeypatch):
    terms = ProcessCache("test-terms")
    shared = CountingCache(monkeypatch)

    with process_cache.one_look():
        with process_cache.one_look():
            terms.lookup([1])
        terms.lookup([1])

    assert shared.calls == ["get_many"]
    terms.lookup([1])
    assert shared.calls == ["get_many", "get"]  # outside a look: its own round trip


@pytest.mark.parametrize("shared", [True, False])
def test_a_longer_ttl_holds_only_where_every_process_shares_the_token(monkeypatch, shared):
    now = [0.0]
    terms = ProcessCache("test-terms", shared_ttl=60.0, clock=lambda: now[0])
    monkeypatch.setattr(process_cache, "reaches_every_process", lambda: shared)
    terms.lookup([1])
    terms.store(1, "terms")

    now[0] = 30.0  # past the short TTL, within the shared one
    assert terms.lookup([1]) == ({1: "terms"} if shared else {})
    now[0] = 61.0
    assert terms.lookup([1]) == {}


def test_only_a_per_process_cache_is_not_shared_by_every_process(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert not process_cache.reaches_every_process()
