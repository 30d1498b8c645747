"""Spend drawn as a PNG: by day and tag value, with commitment utilization beneath.

matplotlib is imported inside ``plot``: nothing else in sched needs it, and it is slow to
import. The figures come from the ledger through scheduler/report.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

from scheduler.report import (
    CURRENCY,
    OTHER,
    CostLine,
    _check_keys,
    _next_day,
    _segments,
    group_value,
)


def daily_spend(lines: Iterable[CostLine], by: str) -> dict[date, dict[str, float]]:
    """Spend per UTC day per ``by`` value. Compute is spread over the days the attempt
    was billed for, so a three-day run does not show as one spike on the day it ended;
    egress lands on the day it ended (the ledger settles it then)."""
    (key,) = _check_keys([by])
    days: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in lines:
        value = group_value(line, key)
        for start, end, share in _segments(line.billed_from, line.ended, _next_day):
            day = (start if end > start else end).date()
            days[day][value] += line.compute_usd * share
        days[line.ended.date()][value] += line.egress_usd
    return {d: dict(v) for d, v in sorted(days.items())}


def _top_groups(daily: Mapping[date, Mapping[str, float]], top: int) -> list[str]:
    totals: dict[str, float] = defaultdict(float)
    for spend in daily.values():
        for group, usd in spend.items():
            totals[group] += usd
    return sorted(totals, key=lambda g: (-totals[g], g))[:top]


def plot(
    lines: Iterable[CostLine],
    by: str,
    path: Path,
    commitment_utilization: list[tuple[datetime, float]] | None = None,
    *,
    top: int = 8,
) -> None:
    """Write a PNG: spend per day stacked by ``by`` value (the ``top`` biggest, the rest
    as ``(other)``), and below it commitment utilization when given, as fractions 0..1
    (what ``HourAllocation.utilization`` gives), drawn as percent.

    Uses a bare Agg canvas rather than pyplot so no global backend state changes and it
    works headless; matplotlib is imported here because nothing else needs it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    if commitment_utilization is not None:
        bad = [u for _, u in commitment_utilization if not 0.0 <= u <= 1.0]
        if bad:
            raise ValueError(f"commitment utilization must be fractions in 0..1; got {bad[:3]}")
    daily = daily_spend(lines, by)
    shown = _top_groups(daily, top)
    rest = {g for spend in daily.values() for g in spend} - set(shown)
    series = [*shown, *([OTHER] if rest else [])]
    days: list[date] = []
    if daily:
        first, last = min(daily), max(daily)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]

    panels = 2 if commitment_utilization else 1
    fig = Figure(figsize=(11, 4 + 2.5 * (panels - 1)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, squeeze=False, sharex=True)[:, 0]
    spend_ax = axes[0]
    bottom = [0.0] * len(days)
    for group in series:
        heights = [
            sum(u for g, u in daily.get(d, {}).items() if g in rest)
            if group == OTHER
            else daily.get(d, {}).get(group, 0.0)
            for d in days
        ]
        spend_ax.bar(days, heights, bottom=bottom, width=0.9, align="edge", label=group)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    spend_ax.set_ylabel(f"Spend per day ({CURRENCY})")
    spend_ax.set_title(f"Spend per day by {by}")
    if series:
        spend_ax.legend(loc="upper left", fontsize="small", ncols=min(4, len(series)))
    else:
        spend_ax.text(
            0.5, 0.5, "no spend in range", ha="center", va="center", transform=spend_ax.transAxes
        )
    if commitment_utilization:
        util_ax = axes[1]
        points = sorted(commitment_utilization)
        util_ax.plot([t for t, _ in points], [u * 100 for _, u in points], marker=".")
        util_ax.axhline(100, linestyle="--", linewidth=0.8, color="grey")
        util_ax.set_ylim(0, 105)
        util_ax.set_ylabel("Commitment utilization (%)")
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.savefig(path, format="png", dpi=100)
