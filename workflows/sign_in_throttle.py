"""Failed sign-ins, counted per person and per client address, to slow password guessing.

Counted in the cache (Redis in production, shared by every process; per process in the
embedded demo) in one-minute buckets, each an atomic increment, so that guesses sent in
parallel are all counted. A window is the sum of its buckets; the clock is Django's
(``timezone.now``), not the cache's expiry, which only tidies up. When an ident may try
again is worked out at each failure and kept in a key of its own, so that the check every
API call makes is one read.

What is counted, and where: sign-in forms (``/accounts/login/``, the admin's) through
Django's ``user_login_failed`` signal (``workflows.apps``), refused before the form is
checked by ``workflows.middleware.SignInThrottleMiddleware``; bad API tokens and keys in
the API's authentication classes (``workflows.api.authentication``).
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

BUCKET_SECONDS = 60
# Tests give each test its own namespace, so counts never leak from one to the next.
KEY_PREFIX = "sign-in-failures"


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` within ``window`` for one ``scope`` ident (a person, an address)."""

    scope: str
    failures: int
    window: timedelta

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.window.total_seconds() / BUCKET_SECONDS))


def per_person() -> Limit:
    return Limit("person", settings.SIGN_IN_FAILURES_PER_PERSON, _window())


def per_address() -> Limit:
    return Limit("address", settings.SIGN_IN_FAILURES_PER_ADDRESS, _window())


def api_per_address() -> Limit:
    return Limit("api-address", settings.API_AUTH_FAILURES_PER_ADDRESS, _window())


def _window() -> timedelta:
    return timedelta(seconds=settings.SIGN_IN_FAILURE_WINDOW_SECONDS)


def person_ident(username: str) -> str:
    # One person however the name is spelt; hashed, so any text makes a short, safe key.
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


def client_address(request) -> str:
    """The address failures are counted against. Behind a reverse proxy this is the
    proxy's unless it sets REMOTE_ADDR from the client (gunicorn --forwarded-allow-ips)."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def record_failure(limit: Limit, ident: str, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    key = _key(limit, ident, _bucket(now))
    # add() then incr(): incr() alone refuses a missing key; both are atomic in Redis.
    cache.add(key, 0, timeout=int(limit.window.total_seconds()) + BUCKET_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two: start the bucket again
        cache.set(key, 1, timeout=int(limit.window.total_seconds()) + BUCKET_SECONDS)
    # Whether an ident may try is asked on every API call, failures are rare: when it may
    # try again is worked out here, where its count grows (and nowhere else), and kept in
    # one key (reading the window's buckets on every call cost a quarter of a token's
    # authentication). Failures in parallel may keep a moment a little early; the next
    # failure puts it right.
    until = until_by_buckets(limit, ident, now=now)
    if until is not None:
        cache.set(_blocked_key(limit, ident), until.timestamp(),
                  timeout=seconds_until(until, now=now) + BUCKET_SECONDS)


def blocked_until(limit: Limit, ident: str, *, now: datetime | None = None) -> datetime | None:
    """When ``ident`` may try again, or None if it may now: as ``until_by_buckets`` says
    at its last failure, one read."""
    until = cache.get(_blocked_key(limit, ident))
    if until is None:
        return None
    until = datetime.fromtimestamp(until, tz=UTC)
    return until if until > (now or timezone.now()) else None


def until_by_buckets(limit: Limit, ident: str, *, now: datetime | None = None) -> datetime | None:
    """When ``ident`` may try again by the failures counted in the window, or None."""
    current = _bucket(now or timezone.now())
    buckets = range(current - limit.buckets + 1, current + 1)
    found = cache.get_many([_key(limit, ident, bucket) for bucket in buckets])
    counts = [int(found.get(_key(limit, ident, bucket), 0)) for bucket in buckets]
    total = sum(counts)
    if total < limit.failures:
        return None
    # Oldest first: once enough of the oldest failures have left the window, it reopens.
    for bucket, count in zip(buckets, counts, strict=True):
        total -= count
        if total < limit.failures:
            return datetime.fromtimestamp((bucket + limit.buckets) * BUCKET_SECONDS, tz=UTC)
    raise AssertionError("unreachable: every bucket removed leaves no failures")


def forget(limit: Limit, ident: str, *, now: datetime | None = None) -> None:
    current = _bucket(now or timezone.now())
    cache.delete_many([_blocked_key(limit, ident),
                       *(_key(limit, ident, bucket)
                         for bucket in range(current - limit.buckets + 1, current + 1))])


def seconds_until(moment: datetime, *, now: datetime | None = None) -> int:
    return max(1, math.ceil((moment - (now or timezone.now())).total_seconds()))


def _bucket(now: datetime) -> int:
    return int(now.timestamp() // BUCKET_SECONDS)


def _key(limit: Limit, ident: str, bucket: int) -> str:
    return f"{KEY_PREFIX}:{limit.scope}:{ident}:{bucket}"


def _blocked_key(limit: Limit, ident: str) -> str:
    return f"{KEY_PREFIX}:{limit.scope}:{ident}:until"
