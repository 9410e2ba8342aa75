"""Prometheus metrics for operators, read from the database on each scrape (``/metrics``).

A custom collector runs the dashboard's cheap queries (``workflows.dashboard``) when
Prometheus scrapes, so every web process answers the same figures and nothing is kept
in memory between scrapes:

``backstop_queue_open_cases{queue, process}`` (gauge)
    Open cases per queue (queue depth).
``backstop_queue_at_risk_cases{queue, process}`` (gauge)
    Open cases past a warning but not their deadline.
``backstop_queue_breached_cases{queue, process}`` (gauge)
    Open cases past their deadline.
``backstop_escalations_total{level}`` (counter)
    Every escalation ever written, by level. Escalation rows are never deleted (I2), so
    the count only grows: ``increase(backstop_escalations_total[1h])`` is the last
    hour's escalations. One grouped count over the escalation table per scrape.
``backstop_decisions_received{use_case}`` (gauge)
    Items received in the last ``INTAKE_WINDOW`` (5 minutes) per use case: the intake
    rate is the value divided by 300 per second. The domain registers what to count
    (``register_intake_source``), so this module never imports it.
``backstop_metrics_scrape_seconds`` (gauge)
    How long the collector's queries took.

Access is checked by the view (``views_dashboard.prometheus_metrics``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Model
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from workflows import dashboard
from workflows.models import Escalation, Queue

INTAKE_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class IntakeSource:
    """Rows that arrive (e.g. the domain's decisions), counted per the thing they belong to.

    ``model.<group_field>`` is a foreign key whose target's ``label_field`` names the
    label value; ``time_field`` is when the row arrived. An index on
    (``group_field``, ``time_field``) keeps the count a short range scan per group.
    """

    model: type[Model]
    group_field: str
    label_field: str
    time_field: str
    label: str = "use_case"
    name: str = "backstop_decisions_received"
    documentation: str = "Decisions received in the last 5 minutes, per use case."


_intake_sources: list[IntakeSource] = []


def register_intake_source(*, model: type[Model], group_field: str, label_field: str,
                           time_field: str) -> IntakeSource:
    """Called by the domain in ``AppConfig.ready()``; registering twice keeps one."""
    source = IntakeSource(model=model, group_field=group_field, label_field=label_field,
                          time_field=time_field)
    if source not in _intake_sources:
        _intake_sources.append(source)
    return source


def _intake_counts(source: IntakeSource, *, since) -> dict[str, int]:
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

        escalations = CounterMetricFamily("backstop_escalations",
                                          "Escalations written since the start, by level.",
                                          labels=["level"])
        for row in (Escalation.objects.values("level").annotate(n=Count("id"))
                    .order_by("level")):
            escalations.add_metric([str(row["level"])], row["n"])
        yield escalations

        for source in _intake_sources:
            family = GaugeMetricFamily(source.name, source.documentation,
                                       labels=[source.label])
            for label, count in sorted(_intake_counts(source, since=now - INTAKE_WINDOW)
                                       .items()):
                family.add_metric([label], count)
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
