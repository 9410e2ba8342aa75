"""Probes for load balancers and orchestrators (docs/DEPLOY.md, Health and readiness).

``/healthz`` (liveness): the process answers; it touches nothing else, so a slow
database never gets a healthy web process restarted. ``/readyz`` (readiness): the
database answers a trivial query and, where Redis is configured, Redis answers PING;
503 with Retry-After while either does not, so the balancer sends traffic elsewhere.
Both answer anyone (no sign-in; they reveal no data) over plain HTTP
(``SECURE_REDIRECT_EXEMPT``); they only read, so CSRF does not apply.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from workflows import db

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


def _redis() -> None:
    # Django's Redis cache gives the client it already pools for this process.
    client = cache._cache.get_client(write=True)
    if not client.ping():
        raise ConnectionError("Redis did not answer PING")


def _checks() -> dict:
    checks = {"database": db.ping}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    return checks


@never_cache
@require_GET
def readiness(request):
    results, ready = {}, True
    for name, check in _checks().items():
        started = time.perf_counter()
        try:
            check()
        except Exception as failure:  # whatever the failure, not ready
            ready = False
            if name == "database":
                # The next request gets a new connection instead of this broken one.
                connection.close_if_unusable_or_obsolete()
            # The probe answers anyone: the reason (addresses, names) goes to the log only.
            logger.warning("Not ready: the %s check failed: %s", name, failure)
            results[name] = {"ok": False, "error": type(failure).__name__}
        else:
            results[name] = {"ok": True,
                             "ms": round((time.perf_counter() - started) * 1000, 1)}
    response = JsonResponse({"status": "ok" if ready else "unavailable", "checks": results},
                            status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    return response
