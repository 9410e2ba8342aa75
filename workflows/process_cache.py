"""Rows that change a few times a year, kept briefly in each process.

Intake reads a use case's policy and queues, and each queue's SLA terms, for every
decision; a query for them would cost more than judging the decision. Correctness:

- a write through the ORM to a model the cache watches clears this process's entries
  at once and again when its transaction commits, and bumps a token in Django's
  cache: with Redis, every process drops its entries on its next use;
- anything else (``QuerySet.update``, SQL, a process without a shared cache) is seen
  after at most ``TTL`` seconds. A cache whose every product write goes through the ORM
  (or tells it, ``forget``) may keep entries ``shared_ttl`` seconds where the shared
  cache reaches every process (Redis): there the token already drops them everywhere.

A request that looks into several caches reads their tokens in one round trip inside
``one_look()``: each cache then holds what it held at the block's start.
"""

import logging
import time
import uuid
import weakref
from collections.abc import Hashable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

logger = logging.getLogger(__name__)

# Every cache's token as ``one_look`` read it, while its block runs.
_tokens: ContextVar[dict | None] = ContextVar("process_cache_tokens", default=None)
_every: "weakref.WeakSet[ProcessCache]" = weakref.WeakSet()


@contextmanager
def one_look():
    """Inside, every process cache's lookups take their token from one ``get_many`` made
    on entering, instead of a round trip to the shared cache each."""
    if _tokens.get() is not None:  # nested: the outer block's reading stands
        yield
        return
    keys = sorted({each.generation_key for each in _every})
    tokens = _shared_cache("get_many", keys) or {}
    reset = _tokens.set({key: tokens.get(key) for key in keys})
    try:
        yield
    finally:
        _tokens.reset(reset)


class ProcessCache:
    TTL = 2.0

    def __init__(self, name: str, *, shared_ttl: float | None = None, clock=time.monotonic):
        self.name = name
        self.generation_key = f"backstop:{name}"
        self.shared_ttl = shared_ttl
        self.clock = clock
        self.entries: dict[Hashable, tuple[float, object]] = {}
        self.generation = None
        _every.add(self)

    def lookup(self, keys: Iterable[Hashable]) -> dict:
        """The entries of ``keys`` still fresh here and not dropped by another process."""
        tokens = _tokens.get()
        generation = (tokens[self.generation_key]
                      if tokens is not None and self.generation_key in tokens
                      else _shared_cache("get", self.generation_key))
        if generation != self.generation:
            self.entries = {}
            self.generation = generation
        now = self.clock()
        found = {}
        for key in keys:
            entry = self.entries.get(key)
            if entry is not None and entry[0] > now:
                found[key] = entry[1]
        return found

    def store(self, key: Hashable, value) -> None:
        self.entries[key] = (self.clock() + self.ttl(), value)

    def ttl(self) -> float:
        """How long an entry is kept: ``shared_ttl`` where a write in any process drops
        it in every other (a shared cache carries the token), ``TTL`` otherwise."""
        if self.shared_ttl is None or not reaches_every_process():
            return self.TTL
        return self.shared_ttl

    def clear(self) -> None:
        self.entries = {}
        _shared_cache("set", self.generation_key, uuid.uuid4().hex, None)

    def forget(self, **kwargs) -> None:
        """Drop every entry now and once the writing transaction commits."""
        self.clear()
        transaction.on_commit(self.clear)

    def watch(self, *models, through: Iterable = ()) -> None:
        """Forget on every ORM write to ``models`` and to the m2m tables ``through``."""
        for model in models:
            post_save.connect(self.forget, sender=model, weak=False,
                              dispatch_uid=f"{self.name}-save-{model.__name__}")
            post_delete.connect(self.forget, sender=model, weak=False,
                                dispatch_uid=f"{self.name}-delete-{model.__name__}")
        for table in through:
            m2m_changed.connect(self.forget, sender=table, weak=False,
                                dispatch_uid=f"{self.name}-m2m-{table.__name__}")


def reaches_every_process() -> bool:
    """Whether Django's cache is one every process shares (not a per-process memory)."""
    return not isinstance(caches["default"], LocMemCache | DummyCache)


def _shared_cache(operation: str, *args):
    # An unreachable cache must not fail a write: the TTL still bounds how long other
    # processes keep what they have.
    try:
        return getattr(cache, operation)(*args)
    except Exception:
        logger.warning("The cache is unreachable; process caches rely on their TTL.",
                       exc_info=True)
        return None
