"""Prometheus metrics for operators, read from the database on each scrape (``/metrics``).

A custom collector runs cheap, bounded queries when Prometheus scrapes, so every web
process answers the same figures; nothing but the escalation totals' cached base
(below) outlives a scrape:

``backstop_queue_open_cases{queue, process}`` (gauge)
    Open cases per queue (queue depth).
``backstop_queue_at_risk_cases{queue, process}`` (gauge)
    Open cases past a warning but not their deadline.
``backstop_queue_breached_cases{queue, process}`` (gauge)
    Open cases past their deadline.
``backstop_escalations_total{level}`` (counter)
    Every escalation ever written, by level: ``rate(backstop_escalations_total[1h])``.
``backstop_sla_breaches_total{clock}`` (counter)
    Escalations the SLA sweeper wrote for a missed deadline, by clock (``response``,
    ``resolution``); escalations by hand are not breaches.
``<name>_total`` and ``<name>_last_5m{<label>}`` of each intake source
    What the domain registers as arriving work (``hooks.register_intake_source``), under
    its own names: the rows stored since the start (the highest id), and those received
    in the last ``INTAKE_WINDOW`` (5 minutes) per group. This module never imports it.
Each gauge source (``hooks.register_gauge_source``)
    Figures the domain keeps (e.g. its drift measurements), under its own names.
``backstop_metrics_scrape_seconds`` (gauge)
    How long the collector's queries took.

Neither counter reads the history on each scrape: see ``escalation_totals`` and
``hooks.IntakeSource``. Access is checked by the view (``views_dashboard.prometheus_metrics``).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Max, Q
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workflows import dashboard, hooks
from workflows.models import Escalation, EscalationCause, Queue

INTAKE_WINDOW = timedelta(minutes=5)
# Escalation rows created longer ago than this are final: the transaction that wrote one
# has committed (a sweep commits each chunk of 100 cases seconds after dating its rows;
# the margin is for a transaction that stalls).
FINAL_AFTER = timedelta(minutes=15)
# The cached base is counted afresh this often, so that one kept from another database,
# or rows imported with a past creation time, come right within a day.
RECOUNT_EVERY = timedelta(days=1)
_TOTALS_KEY = "backstop:metrics:escalation-totals"
BREACH_CLOCKS = {EscalationCause.RESPONSE_BREACH: "response",
                 EscalationCause.RESOLUTION_BREACH: "resolution"}


def _intake_counts(source: hooks.IntakeSource, *, since) -> dict[str, int]:
    """Every group's label with its count since ``since`` (zero included): two queries."""
    related = source.model._meta.get_field(source.group_field).related_model
    labels = dict(related._default_manager.values_list("pk", source.label_field))
    if not labels:
        return {}
    rows = (source.model._default_manager
            .filter(**{f"{source.group_field}__in": list(labels),
                       f"{source.time_field}__gt": since})
            .values(source.group_field).annotate(n=Count("pk")).order_by())
    counts = dict.fromkeys(labels.values(), 0)
    for row in rows:
        counts[labels[row[source.group_field]]] = row["n"]
    return counts


def escalation_totals(*, now) -> dict[tuple[int, str], int]:
    """Every escalation row ever written, counted by (level, cause): one query that reads
    only the rows of the last ``FINAL_AFTER`` and those since the previous scrape.

    Escalation rows are never changed or deleted (I2), so the count of the final ones
    (created before ``now - FINAL_AFTER``) only grows. It is kept in Django's cache with
    the instant it runs to; each scrape adds the rows that became final since then and
    counts the newer ones live, over ``escalation_created_idx``. A process whose cache
    has no base yet (after a start with the per-process cache, a flush, or once a day:
    ``RECOUNT_EVERY``) counts the whole table once. Two scrapes at once write bases that
    are each exact, so either may stay.
    """
    frontier = now - FINAL_AFTER
    counted_at, since, final = cache.get(_TOTALS_KEY) or (now, None, {})
    if since is not None and now - counted_at > RECOUNT_EVERY:
        counted_at, since, final = now, None, {}
    rows = Escalation.objects.all()
    if since is not None:
        rows = rows.filter(created_at__gte=since)
        frontier = max(frontier, since)
    final, live = dict(final), {}
    for row in (rows.values("level", "cause").order_by()
                .annotate(final=Count("id", filter=Q(created_at__lt=frontier)),
                          live=Count("id", filter=Q(created_at__gte=frontier)))):
        key = (row["level"], row["cause"])
        final[key] = final.get(key, 0) + row["final"]
        live[key] = row["live"]
    if frontier != since:
        cache.set(_TOTALS_KEY, (counted_at, frontier, final), timeout=None)
    return {key: final.get(key, 0) + live.get(key, 0) for key in final.keys() | live.keys()}


class BackstopCollector(Collector):
    """Reads the figures on each scrape."""

    def collect(self):
        started, now = time.perf_counter(), timezone.now()
        queues = list(Queue.objects.select_related("process").order_by("slug"))
        live, _ = dashboard.live_by_queue(queue_ids=None, now=now)
        labels = ["queue", "process"]
        open_cases = GaugeMetricFamily("backstop_queue_open_cases",
                                       "Open cases per queue (queue depth).", labels=labels)
        at_risk = GaugeMetricFamily("backstop_queue_at_risk_cases",
                                    "Open cases past an SLA warning, not yet their deadline.",
                                    labels=labels)
        breached = GaugeMetricFamily("backstop_queue_breached_cases",
                                     "Open cases past their SLA deadline.", labels=labels)
        for queue in queues:
            figures = live.get(queue.pk, dashboard.Live())
            values = [queue.slug, queue.process.slug if queue.process else ""]
            open_cases.add_metric(values, figures.open)
            at_risk.add_metric(values, figures.at_risk)
            breached.add_metric(values, figures.breached)
        yield from (open_cases, at_risk, breached)

        by_level: dict[int, int] = {}
        by_clock = dict.fromkeys(BREACH_CLOCKS.values(), 0)
        for (level, cause), count in escalation_totals(now=now).items():
            by_level[level] = by_level.get(level, 0) + count
            if cause in BREACH_CLOCKS:
                by_clock[BREACH_CLOCKS[cause]] += count
        escalations = CounterMetricFamily("backstop_escalations",
                                          "Escalations written since the start, by level.",
                                          labels=["level"])
        for level, count in sorted(by_level.items()):
            escalations.add_metric([str(level)], count)
        breaches = CounterMetricFamily(
            "backstop_sla_breaches", "Missed SLA deadlines escalated by the sweeper since "
            "the start, by clock.", labels=["clock"])
        for clock, count in by_clock.items():
            breaches.add_metric([clock], count)
        yield from (escalations, breaches)

        for source in hooks.intake_sources():
            newest = source.model._default_manager.aggregate(newest=Max("pk"))["newest"]
            yield CounterMetricFamily(source.name, source.documentation, value=newest or 0)
            family = GaugeMetricFamily(f"{source.name}_last_5m", source.recent_documentation,
                                       labels=[source.label])
            for label, count in sorted(_intake_counts(source, since=now - INTAKE_WINDOW)
                                       .items()):
                family.add_metric([label], count)
            yield family

        for gauge in hooks.gauge_sources():
            family = GaugeMetricFamily(gauge.name, gauge.documentation,
                                       labels=list(gauge.labels))
            for values, value in gauge.read():
                family.add_metric(list(values), value)
            yield family

        yield GaugeMetricFamily("backstop_metrics_scrape_seconds",
                                "Time the metrics queries took in this scrape.",
                                value=time.perf_counter() - started)


# Its own registry: the web process's own metrics (per worker) would mislead here.
registry = CollectorRegistry(auto_describe=False)
registry.register(BackstopCollector())


def exposition(*, accept: str = "") -> tuple[bytes, str]:
    """The scrape body and its content type (OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
