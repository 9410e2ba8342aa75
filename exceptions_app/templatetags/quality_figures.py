"""Figures of the monitoring page: rates held as fractions (0 to 1), shown as percentages."""

from django import template

register = template.Library()


@register.filter
def share(fraction) -> str:
    """``0.934`` as ``93%`` (one decimal under 10% or over 99%); a dash for none."""
    if fraction is None:
        return "\u2013"
    value = fraction * 100
    if 99 < value < 100 or 0 < value < 10:
        return f"{value:.1f}%"
    return f"{value:.0f}%"
