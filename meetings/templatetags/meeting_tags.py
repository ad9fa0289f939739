from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def clock(seconds: float | None) -> str:
    """1234.5 → "20:34"; over an hour → "1:02:03"."""
    if seconds is None:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def ms_clock(ms: int | None) -> str:
    return "" if ms is None else clock(ms / 1000)


@register.filter
def spoken(ms: int | None) -> str:
    """Talk time in words: 95_000 → "1 min 35 s", 4_000 → "4 s"."""
    if not ms:
        return "0 s"
    minutes, secs = divmod(round(ms / 1000), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
