"""Spend spikes worth a person's attention, from the ledger and the live burn rate.

Two checks, both plain arithmetic a reader can redo:

- **week over week**, per tag value: the last 7 days' spend against the 7 days before;
  a rise of ``threshold`` (+50%) or more on at least ``min_usd`` is a spike. A tag value
  with no spend the week before is new, not a spike (there is no baseline to exceed).
- **hourly burn**: what is running now costs, per hour, against the average hourly spend
  of the last 7 days; ``factor`` (3x) or more, on at least ``min_usd`` per hour, is a spike.

Each finding has a key (what, and which week or hour) so it is raised once, not on every
scheduling tick while it lasts. Pure: spend and time are passed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Spend:
    at: datetime
    usd: float
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Anomaly:
    key: str
    message: str


def week_over_week(
    spend: Sequence[Spend],
    keys: Sequence[str],
    now: datetime,
    *,
    threshold: float = 0.5,
    min_usd: float = 10.0,
) -> list[Anomaly]:
    this_week: dict[tuple[str, str], float] = defaultdict(float)
    last_week: dict[tuple[str, str], float] = defaultdict(float)
    for s in spend:
        bucket = this_week if now - WEEK <= s.at < now else None
        if bucket is None and now - 2 * WEEK <= s.at < now - WEEK:
            bucket = last_week
        if bucket is None:
            continue
        for k in keys:
            if str(s.tags.get(k, "")).strip():
                bucket[(k, str(s.tags[k]))] += s.usd
    out = []
    week = now.strftime("%G-W%V")
    for (k, v), usd in sorted(this_week.items()):
        before = last_week.get((k, v), 0.0)
        if before <= 0 or usd < min_usd:
            continue
        rise = usd / before - 1
        if usd >= before * (1 + threshold) * (1 - 1e-12):  # "or more", float-safe
            out.append(
                Anomaly(
                    f"anomaly:wow:{k}={v}:{week}",
                    f"{k}={v} spent ${usd:,.2f} in the last 7 days, {rise:+.0%} on the"
                    f" ${before:,.2f} of the 7 days before (threshold {threshold:+.0%})",
                )
            )
    return out


def hourly_burn(
    spend: Sequence[Spend],
    burn_per_hour: float,
    now: datetime,
    *,
    factor: float = 3.0,
    min_usd: float = 5.0,
) -> list[Anomaly]:
    """``burn_per_hour``: what everything running now costs per hour."""
    baseline = sum(s.usd for s in spend if now - WEEK <= s.at < now) / (WEEK.total_seconds() / 3600)
    if burn_per_hour < min_usd or burn_per_hour < factor * baseline:
        return []
    hour = now.strftime("%Y-%m-%dT%H")
    if baseline <= 0:
        return []  # nothing to compare with yet: the first week is not a spike
    return [
        Anomaly(
            f"anomaly:burn:{hour}",
            f"burning ${burn_per_hour:,.2f}/h now, {burn_per_hour / baseline:.1f}x the"
            f" ${baseline:,.2f}/h average of the last 7 days (threshold {factor:g}x)",
        )
    ]
