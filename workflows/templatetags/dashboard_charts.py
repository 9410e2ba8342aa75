"""Server-rendered SVG charts for the managers' SLA dashboard: no JavaScript, no library.

Each tag turns ``workflows.dashboard`` figures into geometry and renders a template under
``templates/workflows/dashboard/charts/``. Horizontal positions are percentages of the
chart's width and vertical ones pixels, so a chart fills its card at any width while its
text keeps its size. Every chart has a title and a description naming its numbers
(``role="img"``); the page's tables carry the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django import template
from django.template.defaultfilters import date
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from workflows.dashboard import Figures
from workflows.dashboard.figures import UrgentCase
from workflows.models import EscalationCause

register = template.Library()

ROW = 46  # px per labelled bar: label line, bar, gap
BAR = 14
TOP = 6

STATUS_SEGMENTS = (("on_track", "On track"), ("at_risk", "At risk"), ("breached", "Breached"))
CAUSE_LABELS = dict(EscalationCause.choices)

# Steps for a duration axis, in seconds: ticks fall on times a person reads at a glance.
_DURATION_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600,
                   12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)


def _pct(value: float, scale: float) -> float:
    return round(100.0 * value / scale, 3) if scale else 0.0


@register.filter
def duration(seconds) -> str:
    """``42 s``, ``17 min``, ``3.5 h``, ``2.1 days``; a dash for none."""
    if seconds is None:
        return "\u2013"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        hours = seconds / 3600
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    days = seconds / 86400
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


@register.filter
def span(start, end) -> str:
    """The time from ``start`` to ``end`` in at most two units: ``2 days 4 h``, ``16 h 8 min``."""
    if start is None or end is None:
        return "\u2013"
    minutes = max(0, int((end - start).total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


@register.filter
def percent(value) -> str:
    """``93%`` (one decimal under 10% or over 99%); a dash when nothing was resolved."""
    if value is None:
        return "\u2013"
    if 99 < value < 100 or 0 < value < 10:
        return f"{value:.1f}%"
    return f"{value:.0f}%"


def nice_step(top: float, *, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    if top <= 0:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return max(1, factor * power)
    return 10 * power


def duration_step(top: float, *, ticks: int = 4) -> int:
    for step in _DURATION_STEPS:
        if top / step <= ticks:
            return step
    return _DURATION_STEPS[-1] * math.ceil(top / (_DURATION_STEPS[-1] * ticks))


def _axis(top: float, step: float, *, label) -> tuple[float, list[dict]]:
    """The scale's end (a whole number of steps at or above ``top``) and its ticks."""
    count = max(1, math.ceil(top / step)) if top else 1
    end = count * step
    return end, [{"x": _pct(n * step, end), "label": label(n * step)} for n in range(count + 1)]


def _row_label(row: Figures, *, with_process: bool) -> tuple[str, str]:
    process = row.process.name if (with_process and row.process) else ""
    return row.label, process


@register.inclusion_tag("workflows/dashboard/charts/status.html")
def status_chart(rows: Sequence[Figures], *, chart_id: str = "status"):
    """Open cases per queue, stacked: on track, at risk, breached."""
    scale = max((row.live.open for row in rows), default=0)
    bars = []
    for index, row in enumerate(rows):
        x, segments = 0.0, []
        for key, label in STATUS_SEGMENTS:
            count = getattr(row.live, key)
            if count:
                segments.append({"key": key, "label": label, "count": count, "x": x,
                                 "width": _pct(count, scale)})
                x += _pct(count, scale)
        name, process = _row_label(row, with_process=True)
        bars.append({"name": name, "process": process, "y": TOP + index * ROW,
                     "bar_y": TOP + index * ROW + 20, "segments": segments,
                     "total": row.live.open, "at_risk": row.live.at_risk,
                     "breached": row.live.breached})
    return {"id": chart_id, "bars": bars, "height": TOP + len(rows) * ROW,
            "bar_height": BAR, "legend": STATUS_SEGMENTS}


@register.inclusion_tag("workflows/dashboard/charts/age.html")
def age_chart(rows: Sequence[Figures], *, chart_id: str = "age"):
    """Open cases per queue by how long they have waited, youngest first."""
    scale = max((row.live.open for row in rows), default=0)
    bars = []
    for index, row in enumerate(rows):
        x, segments = 0.0, []
        for step, bucket in enumerate(row.live.age_buckets):
            if bucket["count"]:
                width = _pct(bucket["count"], scale)
                segments.append({**bucket, "step": step, "x": x, "width": width})
                x += width
        name, process = _row_label(row, with_process=True)
        bars.append({"name": name, "process": process, "y": TOP + index * ROW,
                     "bar_y": TOP + index * ROW + 20, "segments": segments,
                     "total": row.live.open,
                     "summary": ", ".join(f"{b['label']}: {b['count']}"
                                          for b in row.live.age_buckets)})
    legend = rows[0].live.age_buckets if rows else []
    return {"id": chart_id, "bars": bars, "height": TOP + len(rows) * ROW, "bar_height": BAR,
            "legend": [{"step": step, "label": bucket["label"]}
                       for step, bucket in enumerate(legend)]}


@register.inclusion_tag("workflows/dashboard/charts/latency.html")
def latency_chart(rows: Sequence[Figures], which: str, *, chart_id: str = ""):
    """Median (dot) and p90 (end of the whisker) per queue on a shared duration axis.

    ``which``: ``response`` (time to first response) or ``resolution``.
    """
    values = [(row, getattr(row.latency, f"{which}_p50"), getattr(row.latency, f"{which}_p90"),
               getattr(row.latency, f"{which}_count")) for row in rows]
    top = max((p90 for _, _, p90, _ in values if p90 is not None), default=0)
    end, ticks = _axis(top, duration_step(top),
                       label=lambda seconds: duration(seconds) if seconds else "0")
    bars = []
    for index, (row, p50, p90, count) in enumerate(values):
        name, process = _row_label(row, with_process=True)
        bars.append({"name": name, "process": process, "y": TOP + index * ROW,
                     "bar_y": TOP + index * ROW + 20, "count": count,
                     "p50": p50, "p90": p90,
                     "p50_x": _pct(p50, end) if p50 is not None else None,
                     "p90_x": _pct(p90, end) if p90 is not None else None})
    height = TOP + len(rows) * ROW
    return {"id": chart_id or f"latency-{which}", "which": which, "bars": bars,
            "ticks": ticks, "height": height + 22, "plot_height": height,
            "axis_y": height + 16, "bar_height": BAR}


@register.inclusion_tag("workflows/dashboard/charts/compliance.html")
def compliance_chart(rows: Sequence[Figures], period: str, *, chart_id: str = "compliance"):
    """SLA met per queue over ``period``, on a 0-100% scale."""
    bars = []
    for index, row in enumerate(rows):
        figures = row.compliance[period]
        name, process = _row_label(row, with_process=True)
        bars.append({"name": name, "process": process, "y": TOP + index * ROW,
                     "bar_y": TOP + index * ROW + 20, "percent": figures.percent,
                     "width": round(figures.percent, 3) if figures.percent is not None else 0,
                     "met": figures.met, "resolved": figures.resolved})
    height = TOP + len(rows) * ROW
    return {"id": chart_id, "bars": bars, "height": height + 22, "plot_height": height,
            "axis_y": height + 16, "bar_height": BAR,
            "ticks": [{"x": x, "label": f"{x}%"} for x in (0, 25, 50, 75, 100)]}


@register.inclusion_tag("workflows/dashboard/charts/escalations.html")
def escalation_chart(levels, *, chart_id: str = "escalations"):
    """Escalations per level as columns, stacked by cause."""
    plot, top_pad = 150, 18
    top = max((level.total for level in levels), default=0)
    step = nice_step(top)
    end, _ = _axis(top, step, label=str)
    causes = [(key, CAUSE_LABELS[key]) for key in EscalationCause.values]
    band = 100.0 / max(1, len(levels))
    columns = []
    for index, level in enumerate(levels):
        y = top_pad + plot
        segments = []
        for key, label in causes:
            count = level.by_cause.get(key, 0)
            if count:
                height = plot * count / end
                y -= height
                segments.append({"key": key, "label": label, "count": count,
                                 "y": round(y, 2), "height": round(height, 2)})
        columns.append({"level": level.level, "total": level.total,
                        "x": round(index * band + band * 0.2, 3), "width": round(band * 0.6, 3),
                        "center": round(index * band + band / 2, 3), "segments": segments,
                        "top": round(y, 2)})
    return {"id": chart_id, "columns": columns, "height": top_pad + plot + 28,
            "base": top_pad + plot, "label_y": top_pad + plot + 18, "legend": causes,
            "grid": [{"y": round(top_pad + plot - plot * n * step / end, 2),
                      "label": f"{n * step:g}"} for n in range(round(end / step) + 1)]}


@register.inclusion_tag("workflows/dashboard/charts/gauge.html")
def gauge(compliance, label: str):
    """A ring filled to the share of resolved cases that met their SLA."""
    radius = 26
    circumference = 2 * math.pi * radius
    value = compliance.percent
    filled = circumference * (value or 0) / 100
    detail = (f"{compliance.met} of {compliance.resolved}" if compliance.resolved
              else "none resolved")
    return {"value": value, "label": label, "detail": detail, "radius": radius,
            "circumference": round(circumference, 3), "filled": round(filled, 3),
            "gap": round(circumference - filled, 3)}


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def max_of(rows, attribute: str):
    """The largest ``attribute`` of the rows (0 for none): a bar column's scale."""
    return max((getattr(row, attribute) or 0 for row in rows), default=0)


@register.simple_tag
def bar_width(value, scale) -> float:
    """A value's share of ``scale`` in percent, for the reviewer table's bars."""
    return _pct(value or 0, scale or 0)




def _shown(value) -> str:
    """``{{ value }}``: localized and escaped."""
    return conditional_escape(localize(value))


def _when(moment, format_string: str) -> str:
    """``{{ moment|date:format_string }}``, in the time zone the page is shown in."""
    return date(template_localtime(moment), format_string)


@register.simple_tag(takes_context=True)
def urgent_row(context, row: UrgentCase, now) -> SafeString:
    """One row of the at-risk table, written here rather than by the template language:
    up to 25 rows a view, each with a reassign form and its people (the table was the
    largest part of the dashboard's template time)."""
    case = row.case
    if case.state == "waiting":
        deadline = mark_safe('<span class="muted">paused: waiting for information</span>')
    elif row.deadline:
        wait = (f"overdue by {span(row.deadline, now)}" if row.overdue
                else f"due in {span(now, row.deadline)}")
        deadline = format_html(
            '<time class="due {}" datetime="{}" title="{}">{}{}</time>',
            "due--overdue" if row.overdue else "due--soon", _when(row.deadline, "c"),
            _when(row.deadline, "Y-m-d H:i T"),
            "first response " if row.deadline_is_response else "", wait)
    else:
        deadline = mark_safe('<span class="muted">none</span>')
    if case.assignee:
        holder = _shown(case.assignee.display_name)
    else:
        holder = format_html('<span class="muted">{}</span>', {
            "pending_approval": "awaiting approval",
            "escalated": "escalated, unclaimed"}.get(case.state, "unclaimed"))
    if row.candidates:
        csrf = context.get("csrf_token")
        reassign = format_html(
            '\n            <form method="post" action="{}" class="reassign">\n'
            "              {}\n"
            '              <input type="hidden" name="version" value="{}">\n'
            '              <input type="hidden" name="next" value="{}">\n'
            '              <label class="visually-hidden" for="reassign-{}">Reassign {} to'
            "</label>\n"
            '              <select id="reassign-{}" name="to_user" required>\n'
            '                <option value="">Choose a person</option>\n'
            "                {}\n"
            "              </select>\n"
            '              <button type="submit" class="button--small">Reassign</button>\n'
            "            </form>\n            ",
            reverse("sla-dashboard-reassign", args=[case.pk]),
            format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', csrf)
            if csrf and csrf != "NOTPROVIDED" else "",
            _shown(case.version), context["request"].get_full_path(), _shown(case.pk),
            case.title or _shown(case.pk), _shown(case.pk),
            format_html_join("", '<option value="{}">{}</option>',
                             ((_shown(person.pk), person.display_name)
                              for person in row.candidates)))
    else:
        reassign = mark_safe('<span class="muted">nobody else works this queue</span>')
    escalated = (format_html(' <span class="badge badge--outline" title="Escalation level">'
                             "L{}</span>", _shown(case.escalation_level))
                 if case.escalation_level else "")
    return format_html(
        "<tr>\n"
        '          <td data-label="Case"><a href="{}">{}</a> <span class="muted">#{}</span></td>\n'
        '          <td data-label="Queue">{}</td>\n'
        '          <td data-label="SLA"><span class="badge {}">{}</span>{}</td>\n'
        '          <td data-label="Deadline">{}</td>\n'
        '          <td data-label="With">{}</td>\n'
        '          <td data-label="Reassign">\n            {}\n          </td>\n'
        "        </tr>",
        reverse("case", args=[case.pk]), case.title or "Case", _shown(case.pk),
        case.queue.name, "badge--breached" if row.is_breached else "badge--at-risk",
        row.status_label, escalated, deadline, holder, reassign)
