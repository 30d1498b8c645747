"""A fake of Cloud Monitoring v3 ``projects/{p}/timeSeries`` list, over HTTP.

Answers what a REST client sends: a ``filter`` of ``field = "value"`` clauses joined by
AND (one ``metric.type`` required, as Google requires), ``interval.startTime`` /
``interval.endTime``, ``aggregation.alignmentPeriod`` with ``perSeriesAligner``
ALIGN_MAX / ALIGN_MIN / ALIGN_MEAN / ALIGN_NONE, and paging. Anything else is a 400 naming
what the fake cannot do, so a client that asks for more fails loudly instead of being
answered wrongly. Only GCE VMs (``gce_instance``) are modelled.

Aligned points follow Google: buckets end at ``endTime``, ``endTime - period``, ... and
each covers the period before its end; a series' points come newest first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.http import Request, ServedFake, google_error

_CLAUSE = re.compile(r'^\s*(?P<field>[a-z_.]+)\s*=\s*"(?P<value>[^"]*)"\s*$')
_LABEL = re.compile(r"^(?P<kind>metric|resource)\.labels?\.(?P<key>[a-z0-9_]+)$")
_PERIOD = re.compile(r"^(?P<s>\d+)s$")
_ALIGNERS: dict[str, Callable[[Sequence[float]], float]] = {
    "ALIGN_MAX": max,
    "ALIGN_MIN": min,
    "ALIGN_MEAN": lambda v: sum(v) / len(v),
}


@dataclass(frozen=True)
class Point:
    metric: str
    resource: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    at: datetime
    value: float


@dataclass
class _Series:
    metric: str
    resource: dict[str, str]
    labels: dict[str, str]
    points: list[tuple[datetime, float]] = field(default_factory=list)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _parse_filter(expression: str) -> list[tuple[str, str]] | str:
    """Clauses, or the error text for a filter the fake (or Google) would not accept."""
    clauses = []
    for part in re.split(r"\s+AND\s+", expression.strip()):
        m = _CLAUSE.match(part)
        if not m:
            return f"fake cannot parse filter clause {part!r}"
        name = m["field"]
        if name not in ("metric.type", "resource.type") and not _LABEL.match(name):
            return f"fake does not filter on {name!r}"
        clauses.append((name, m["value"]))
    if sum(1 for name, _ in clauses if name == "metric.type") != 1:
        return "the filter must specify exactly one metric type"
    return clauses


class FakeMonitoring(ServedFake):
    """One project's GCE metrics as plain points a test plants with ``add``."""

    def __init__(self, project: str = "test-project") -> None:
        self.project = project
        self.points: list[Point] = []
        self.page_size = 2  # small pages so clients must follow nextPageToken
        super().__init__()
        self.server.route("GET", r"/v3/projects/(?P<project>[^/]+)/timeSeries", self._list)

    # ---- test set-up ---------------------------------------------------------------------

    def add(
        self,
        metric: str,
        instance_id: str,
        zone: str,
        at: datetime,
        value: float,
        **labels: str,
    ) -> None:
        """One raw sample of a GCE VM's metric; ``labels`` are the metric's own labels."""
        resource = {"project_id": self.project, "instance_id": instance_id, "zone": zone}
        self.points.append(
            Point(metric, tuple(sorted(resource.items())), tuple(sorted(labels.items())), at, value)
        )

    def add_hourly(
        self,
        metric: str,
        instance_id: str,
        zone: str,
        end: datetime,
        values: Iterable[float],
        **labels: str,
    ) -> None:
        """``values[k]`` as a sample ``k`` hours and 20 minutes before ``end``: one per
        hour, newest first, none on a bucket edge."""
        for k, value in enumerate(values):
            at = end - timedelta(hours=k, minutes=20)
            self.add(metric, instance_id, zone, at, value, **labels)

    # ---- REST ----------------------------------------------------------------------------

    def _list(self, req: Request) -> Any:
        if req.params["project"] != self.project:
            msg = f"Permission monitoring.timeSeries.list denied on project {req.params['project']}"
            return google_error(403, msg, "PERMISSION_DENIED")
        clauses = _parse_filter(req.arg("filter") or "")
        if isinstance(clauses, str):
            return google_error(400, clauses, "INVALID_ARGUMENT")
        if not req.arg("interval.endTime"):
            return google_error(400, "interval.endTime is required", "INVALID_ARGUMENT")
        end = _parse_time(req.arg("interval.endTime") or "")
        start = _parse_time(req.arg("interval.startTime") or req.arg("interval.endTime") or "")
        aligner = req.arg("aggregation.perSeriesAligner") or "ALIGN_NONE"
        period = _PERIOD.match(req.arg("aggregation.alignmentPeriod") or "")
        if aligner != "ALIGN_NONE" and (aligner not in _ALIGNERS or not period):
            msg = f"fake supports {sorted(_ALIGNERS)} with an alignmentPeriod in seconds"
            return google_error(400, f"{msg}, got {aligner}", "INVALID_ARGUMENT")
        series = self._select(clauses, start, end)
        if aligner != "ALIGN_NONE" and period:
            step = timedelta(seconds=int(period["s"]))
            body = [self._aligned(s, end, step, _ALIGNERS[aligner]) for s in series]
        else:
            body = [self._raw(s) for s in series]
        return self._page(req, body)

    def _select(
        self, clauses: Sequence[tuple[str, str]], start: datetime, end: datetime
    ) -> list[_Series]:
        found: dict[tuple[Any, ...], _Series] = {}
        for p in self.points:
            if not start <= p.at <= end or not _matches(p, clauses):
                continue
            key = (p.metric, p.resource, p.labels)
            if key not in found:
                found[key] = _Series(p.metric, dict(p.resource), dict(p.labels))
            found[key].points.append((p.at, p.value))
        return list(found.values())

    def _shape(self, s: _Series, points: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "metric": {"type": s.metric, "labels": s.labels},
            "resource": {"type": "gce_instance", "labels": s.resource},
            "metricKind": "GAUGE",
            "valueType": "DOUBLE",
            "points": points,
        }

    def _raw(self, s: _Series) -> dict[str, Any]:
        ordered = sorted(s.points, key=lambda p: p[0], reverse=True)
        return self._shape(s, [_point(at, v) for at, v in ordered])

    def _aligned(
        self,
        s: _Series,
        end: datetime,
        step: timedelta,
        reduce: Callable[[Sequence[float]], float],
    ) -> dict[str, Any]:
        buckets: dict[int, list[float]] = {}
        for at, value in s.points:
            # The bucket ending at end - k*step covers (end - (k+1)*step, end - k*step].
            k = (end - at) // step
            buckets.setdefault(k, []).append(value)
        points = [_point(end - k * step, reduce(buckets[k])) for k in sorted(buckets)]
        return self._shape(s, points)

    def _page(self, req: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        size = min(int(req.arg("pageSize") or self.page_size), self.page_size)
        start = int(req.arg("pageToken") or 0)
        body: dict[str, Any] = {"timeSeries": items[start : start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body


def _point(at: datetime, value: float) -> dict[str, Any]:
    stamp = rfc3339(at)
    return {"interval": {"startTime": stamp, "endTime": stamp}, "value": {"doubleValue": value}}


def _matches(p: Point, clauses: Sequence[tuple[str, str]]) -> bool:
    resource, labels = dict(p.resource), dict(p.labels)
    for name, value in clauses:
        if name == "metric.type":
            actual: str | None = p.metric
        elif name == "resource.type":
            actual = "gce_instance"
        else:
            m = _LABEL.match(name)
            assert m is not None  # checked when the filter was parsed
            actual = (resource if m["kind"] == "resource" else labels).get(m["key"])
        if actual != value:
            return False
    return True
