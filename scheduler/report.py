"""Cost reports from the ledger: roll-ups by tag or pseudo-key, CSV/JSON renderings, a
FinOps FOCUS export, and a spend-per-day chart.

Everything here is pure (lines in, figures or text out; no clock, no store) except
``plot``, which writes the PNG it is asked for. The store query that joins ledger lines
with their jobs and attempts lives with the store; ``CostLine.from_records`` is the seam.

FOCUS export: version 1.1 of the FinOps Open Cost and Usage Specification (column set and
feature levels read from the v1.1 tag of FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec,
``specification/columns/*.md``). Every column whose feature level is *Mandatory* is
present; a chosen set of Conditional/Recommended columns sched can fill honestly follows,
then ``x_`` custom columns (the spec's prefix for non-FOCUS columns). See ``focus_rows``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jobs.lifecycle import AttemptState
from scheduler.ledger import move_cost
from scheduler.placement import Placement
from scheduler.records import AttemptRecord, JobRecord, LedgerRecord

UNTAGGED = "(untagged)"
OTHER = "(other)"
TAG_PREFIX = "tag:"
PSEUDO_KEYS = ("cloud", "region", "zone", "market", "instance_type", "outcome", "job")
"""Group keys read from the line itself; any other key is a tag key. A tag that shares a
pseudo-key's name is reachable as ``tag:<name>``."""

CURRENCY = "USD"


# -- lines ------------------------------------------------------------------------------------


class CostLine(BaseModel):
    """One ledger line joined with its job and attempt: the unit every report sums."""

    model_config = ConfigDict(frozen=True)

    job_id: int
    job_name: str
    attempt: int = Field(description="The attempt's number within its job, from 1.")
    cloud: str
    region: str
    zone: str
    instance_type: str
    market: str
    num_nodes: int
    price_per_hour: float = Field(description="Per node, as the attempt was priced.")
    started: datetime | None
    ended: datetime
    hours: float = Field(description="Wall hours billed (from launch when machines booted).")
    compute_usd: float
    egress_usd: float
    total_usd: float
    outcome: str
    tags: dict[str, str] = Field(default_factory=dict)
    egress_gb: float | None = Field(
        default=None,
        description="GB moved over billed routes, when the placement tells; FOCUS needs "
        "a quantity for the egress row and the ledger keeps only dollars.",
    )

    @field_validator("started", "ended")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Naive times would silently compare wrong against ``since``; the store gives
        aware ones, so a naive one is a caller's bug."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: CostLine times must be timezone-aware")
        return value.astimezone(UTC)

    @property
    def billed_from(self) -> datetime:
        """Start of the billed window: the ledger bills ``hours`` back from the end, which
        may precede ``started`` when the attempt paid for its cluster's boot."""
        return self.ended - timedelta(hours=self.hours)

    @classmethod
    def from_records(cls, ledger: LedgerRecord, job: JobRecord, attempt: AttemptRecord) -> CostLine:
        """Join one ledger line with its job and attempt; refuses mismatched records
        because a wrong join would misattribute money without any visible error."""
        if job.id is None or ledger.job_id != job.id or attempt.job_id != job.id:
            raise ValueError(
                f"ledger line {ledger.id} is for job {ledger.job_id}, "
                f"given job {job.id} and an attempt of job {attempt.job_id}"
            )
        if attempt.id is None or ledger.attempt_id != attempt.id:
            raise ValueError(
                f"ledger line {ledger.id} is for attempt {ledger.attempt_id}, given {attempt.id}"
            )
        raw = json.loads(job.tags_json or "{}")
        return cls(
            job_id=job.id,
            job_name=job.name,
            attempt=attempt.number,
            cloud=ledger.cloud,
            region=ledger.region,
            zone=attempt.zone,
            instance_type=attempt.instance_type,
            market=str(ledger.market),
            num_nodes=attempt.num_nodes,
            price_per_hour=attempt.price_per_hour,
            started=attempt.started_at,
            ended=ledger.settled_at,
            hours=ledger.hours,
            compute_usd=ledger.compute_usd,
            egress_usd=ledger.egress_usd,
            total_usd=ledger.total_usd,
            outcome=str(ledger.outcome),
            tags={str(k): str(v) for k, v in raw.items()},
            egress_gb=_egress_gb(ledger, attempt),
        )


def _egress_gb(ledger: LedgerRecord, attempt: AttemptRecord) -> float | None:
    """The GB behind ``egress_usd``: each priced move's GB scaled by the share of it the
    ledger charged. Reuses the ledger's own rule (``move_cost`` on a one-dollar move gives
    that share) so the two cannot drift apart. None when the placement is unreadable."""
    if attempt.started_at is None:
        return 0.0
    try:
        placement = Placement.model_validate_json(attempt.placement_json)
    except ValidationError:
        return None
    succeeded = ledger.outcome == AttemptState.SUCCEEDED
    gb = 0.0
    for move in placement.data_moves:
        if move.usd <= 0:
            continue  # free routes (same region) are not egress
        share = move_cost(
            replace(move, usd=1.0),
            hours=ledger.hours,
            planned_hours=placement.expected_hours,
            succeeded=succeeded,
        )
        gb += move.gb * share
    return gb


# -- grouping and roll-ups --------------------------------------------------------------------


class Row(BaseModel):
    """One group's spend. ``jobs`` counts distinct jobs, so rows' jobs need not add up to
    the grand total's (a job retried on another market lands in two rows)."""

    group: dict[str, str] = Field(description="Group key -> value, in the order asked.")
    total_usd: float
    compute_usd: float
    egress_usd: float
    hours: float = Field(description="Wall hours billed.")
    node_hours: float
    attempts: int
    jobs: int


def group_value(line: CostLine, key: str) -> str:
    """A line's value for one group key; tags missing or empty read as ``(untagged)`` so
    unallocated spend stays visible instead of vanishing from the report."""
    if key.startswith(TAG_PREFIX):
        return line.tags.get(key[len(TAG_PREFIX) :]) or UNTAGGED
    if key == "job":
        return f"{line.job_name}#{line.job_id}"
    if key in PSEUDO_KEYS:
        return str(getattr(line, key))
    return line.tags.get(key) or UNTAGGED


def _check_keys(by: Sequence[str]) -> list[str]:
    keys = list(by)
    for key in keys:
        if not isinstance(key, str) or not key.strip() or key == TAG_PREFIX:
            raise ValueError(f"group key {key!r}: give a tag key or one of {PSEUDO_KEYS}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"group keys repeat: {keys}")
    return keys


def select(lines: Iterable[CostLine], since: datetime | None) -> list[CostLine]:
    """Lines that ended at or after ``since``: a line is money settled when its attempt
    ended, so an attempt straddling ``since`` counts whole, once."""
    if since is None:
        return list(lines)
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return [line for line in lines if line.ended >= since]


def _row(group: dict[str, str], lines: Sequence[CostLine]) -> Row:
    return Row(
        group=group,
        total_usd=math.fsum(x.total_usd for x in lines),
        compute_usd=math.fsum(x.compute_usd for x in lines),
        egress_usd=math.fsum(x.egress_usd for x in lines),
        hours=math.fsum(x.hours for x in lines),
        node_hours=math.fsum(x.hours * x.num_nodes for x in lines),
        attempts=len(lines),
        jobs=len({x.job_id for x in lines}),
    )


def rollup(
    lines: Iterable[CostLine], by: Sequence[str], since: datetime | None = None
) -> list[Row]:
    """Spend per group of ``by`` values, biggest first (ties by group values, so output
    is stable). ``by=[]`` gives one row holding everything."""
    keys = _check_keys(by)
    groups: dict[tuple[str, ...], list[CostLine]] = defaultdict(list)
    for line in select(lines, since):
        groups[tuple(group_value(line, k) for k in keys)].append(line)
    rows = [_row(dict(zip(keys, values, strict=True)), ls) for values, ls in groups.items()]
    rows.sort(key=lambda r: (-r.total_usd, tuple(r.group.values())))
    return rows


def grand_total(lines: Iterable[CostLine], since: datetime | None = None) -> Row:
    """The whole selection as one row: computed from the lines, not the rows, because
    distinct jobs cannot be added up across groups."""
    return _row({}, select(lines, since))


# -- since ------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
_SINCE_HELP = "expected a duration such as 30d, 12h or 2w, or an ISO date such as 2026-03-01"


def parse_since(text: str) -> timedelta | datetime:
    """``30d``/``12h``/``2w`` -> a timedelta to subtract from now; an ISO date or datetime
    -> that instant in UTC (naive ones are read as UTC, which is what the ledger stores)."""
    m = _DURATION.match(text)
    if m:
        amount = int(m.group(1))
        if amount == 0:
            raise ValueError(f"--since {text!r}: a zero duration selects nothing; {_SINCE_HELP}")
        return timedelta(hours=amount * _UNIT_HOURS[m.group(2).lower()])
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: {_SINCE_HELP}") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def resolve_since(value: str | timedelta | datetime | None, now: datetime) -> datetime | None:
    """The instant a report starts at; ``now`` is passed in so reports stay reproducible."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_since(value)
    if isinstance(value, timedelta):
        return now - value
    return value


# -- CSV and JSON -----------------------------------------------------------------------------

METRIC_COLUMNS = (
    "total_usd",
    "compute_usd",
    "egress_usd",
    "hours",
    "node_hours",
    "attempts",
    "jobs",
)


def _num(value: float) -> float:
    """Six decimals: sub-micro-dollar float noise is not information."""
    return round(value, 6)


def _metrics(row: Row) -> dict[str, float | int]:
    return {
        "total_usd": _num(row.total_usd),
        "compute_usd": _num(row.compute_usd),
        "egress_usd": _num(row.egress_usd),
        "hours": _num(row.hours),
        "node_hours": _num(row.node_hours),
        "attempts": row.attempts,
        "jobs": row.jobs,
    }


def to_csv(rows: Sequence[Row], by: Sequence[str] | None = None) -> str:
    """Group columns then metric columns; no total line, so the columns can be summed.
    ``by`` names the group columns when ``rows`` is empty."""
    keys = list(by) if by is not None else (list(rows[0].group) if rows else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*keys, *METRIC_COLUMNS])
    for row in rows:
        metrics = _metrics(row)
        writer.writerow([*(row.group[k] for k in keys), *(metrics[c] for c in METRIC_COLUMNS)])
    return out.getvalue()


def to_json(
    rows: Sequence[Row],
    total: Row | None = None,
    *,
    by: Sequence[str] = (),
    since: datetime | None = None,
) -> dict[str, Any]:
    """A JSON-ready dict that says what it is a report of (keys, window, currency), so a
    saved file is still readable without the command line that made it."""
    return {
        "by": list(by),
        "since": _iso(since) if since is not None else None,
        "currency": CURRENCY,
        "rows": [{"group": dict(r.group), **_metrics(r)} for r in rows],
        "total": _metrics(total) if total is not None else None,
    }


# -- time splitting ---------------------------------------------------------------------------


def _next_day(at: datetime) -> datetime:
    return datetime(at.year, at.month, at.day, tzinfo=UTC) + timedelta(days=1)


def _month_start(at: datetime) -> datetime:
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def _next_month(at: datetime) -> datetime:
    return datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)


def _segments(
    start: datetime, end: datetime, boundary: Callable[[datetime], datetime]
) -> Iterator[tuple[datetime, datetime, float]]:
    """``[start, end)`` cut at calendar boundaries, with each piece's share of the whole;
    an empty window is one piece holding everything, at its end."""
    if end <= start:
        yield end, end, 1.0
        return
    whole = (end - start).total_seconds()
    at = start
    while at < end:
        cut = min(boundary(at), end)
        yield at, cut, (cut - at).total_seconds() / whole
        at = cut


# -- FOCUS ------------------------------------------------------------------------------------

FOCUS_VERSION = "1.1"

FOCUS_MANDATORY = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)
"""Every FOCUS 1.1 column with feature level Mandatory (21)."""

FOCUS_OPTIONAL = (
    "AvailabilityZone",  # Recommended
    "ChargeFrequency",  # Recommended
    "ConsumedQuantity",  # Conditional: provider measures usage
    "ConsumedUnit",
    "ContractedUnitPrice",  # Conditional: provider publishes unit prices
    "ListUnitPrice",
    "PricingCategory",  # Conditional: more than one pricing category (spot, on-demand)
    "RegionId",  # Conditional: resources deployed in regions
    "RegionName",
    "ResourceId",  # Conditional: billing by provisioned resources
    "ResourceName",
    "ResourceType",
    "ServiceSubcategory",  # Recommended
    "SkuId",  # Conditional: a SKU list exists (instance types)
    "SkuMeter",  # Conditional: MUST be present when SkuId is
    "Tags",  # Conditional: tags supported
)
"""Non-mandatory FOCUS columns sched fills. Left out: commitment-discount and capacity-
reservation columns (the ledger does not record coverage), SkuPriceId/SkuPriceDetails,
SubAccount*, and InvoiceId-era columns that came after 1.1."""

FOCUS_CUSTOM = ("x_JobId", "x_JobName", "x_AttemptNumber", "x_Outcome")

FOCUS_COLUMNS = (*sorted((*FOCUS_MANDATORY, *FOCUS_OPTIONAL)), *FOCUS_CUSTOM)
"""FOCUS columns alphabetically, then custom columns, as the ordering attribute asks."""

_PROVIDERS = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Microsoft Azure", "local": "Local"}
_COMPUTE_SERVICES = {
    "aws": "Amazon Elastic Compute Cloud",
    "gcp": "Compute Engine",
    "azure": "Virtual Machines",
    "local": "Local Ray",
}
_PRICING_CATEGORY = {"spot": "Dynamic", "on_demand": "Standard", "on-demand": "Standard"}


def _iso(at: datetime) -> str:
    """FOCUS Date/Time Format: UTC, 'YYYY-MM-DDTHH:mm:ssZ'."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _provider(cloud: str) -> str:
    return _PROVIDERS.get(cloud, cloud)


def _compute_service(line: CostLine) -> str:
    if line.cloud == "gcp" and line.instance_type.startswith("tpu"):
        return "Cloud TPU"
    return _COMPUTE_SERVICES.get(line.cloud, f"{_provider(line.cloud)} compute")


def _unit_price(cost: float, quantity: float, quoted: float | None) -> float | None:
    """The price that makes quantity x price == cost, as FOCUS requires; the quoted price
    when it already does (it always should: the ledger computes cost from it)."""
    if quoted is not None and math.isclose(quoted * quantity, cost, rel_tol=1e-9, abs_tol=1e-9):
        return quoted
    if quantity > 0:
        return cost / quantity
    return quoted if cost == 0 else None


def _common(line: CostLine, account: str) -> dict[str, Any]:
    provider = _provider(line.cloud)
    return {
        "AvailabilityZone": line.zone or None,
        "BillingAccountId": account,
        "BillingAccountName": None,
        "BillingCurrency": CURRENCY,
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        "InvoiceIssuerName": provider,
        "ProviderName": provider,
        "PublisherName": provider,
        "RegionId": line.region or None,
        "RegionName": line.region or None,
        "ResourceId": f"sched/job/{line.job_id}/attempt/{line.attempt}",
        "ResourceName": f"{line.job_name} attempt {line.attempt}",
        "ResourceType": "Virtual Machine",
        "Tags": json.dumps(line.tags, sort_keys=True),
        "x_JobId": line.job_id,
        "x_JobName": line.job_name,
        "x_AttemptNumber": line.attempt,
        "x_Outcome": line.outcome,
    }


def _periods(start: datetime, end: datetime) -> dict[str, str]:
    month = _month_start(start if end > start else end)
    return {
        "ChargePeriodStart": _iso(start),
        "ChargePeriodEnd": _iso(end),
        "BillingPeriodStart": _iso(month),
        "BillingPeriodEnd": _iso(_next_month(month)),
    }


def _costs(usd: float) -> dict[str, float]:
    """All four cost metrics agree: the ledger pays published (list) prices, spot or
    on-demand, with no negotiated or commitment discount applied to the line."""
    return {"BilledCost": usd, "EffectiveCost": usd, "ListCost": usd, "ContractedCost": usd}


def _compute_rows(line: CostLine, account: str) -> Iterator[dict[str, Any]]:
    node_hours = line.hours * line.num_nodes
    price = _unit_price(line.compute_usd, node_hours, line.price_per_hour)
    market = "spot" if line.market == "spot" else line.market.replace("_", "-")
    description = (
        f"{line.instance_type} x{line.num_nodes} {market} in {line.zone or line.region}, "
        f"${line.price_per_hour:g}/h per node"
    )
    for start, end, share in _segments(line.billed_from, line.ended, _next_month):
        quantity = node_hours * share
        yield {
            **_common(line, account),
            **_periods(start, end),
            **_costs(line.compute_usd * share),
            "ChargeDescription": description,
            "ConsumedQuantity": quantity,
            "ConsumedUnit": "Hours",
            "ContractedUnitPrice": price,
            "ListUnitPrice": price,
            "PricingCategory": _PRICING_CATEGORY.get(line.market, "Other"),
            "PricingQuantity": quantity,
            "PricingUnit": "Hours",
            "ServiceCategory": "Compute",
            "ServiceName": _compute_service(line),
            "ServiceSubcategory": "Virtual Machines",
            "SkuId": f"{line.cloud}/{line.instance_type}/{line.market}",
            "SkuMeter": "Compute Usage",
        }


def _egress_row(line: CostLine, account: str) -> dict[str, Any]:
    """Egress is its own row (see ``focus_rows``), billed in the month the attempt ended."""
    *_, (start, _, _) = _segments(line.billed_from, line.ended, _next_month)
    gb = line.egress_gb if line.egress_gb is not None and line.egress_gb > 0 else None
    price = _unit_price(line.egress_usd, gb, None) if gb is not None else None
    return {
        **_common(line, account),
        **_periods(start, line.ended),
        **_costs(line.egress_usd),
        "ChargeDescription": "Data moved by the attempt: inputs, checkpoints and outputs "
        "over billed routes",
        "ConsumedQuantity": gb,
        "ConsumedUnit": "GB",
        "ContractedUnitPrice": price,
        "ListUnitPrice": price,
        "PricingCategory": "Standard",
        "PricingQuantity": gb,
        "PricingUnit": "GB",
        "ServiceCategory": "Networking",
        "ServiceName": "AWS Data Transfer" if line.cloud == "aws" else "Data Transfer",
        "ServiceSubcategory": "Network Connectivity",
        "SkuId": f"{line.cloud}/data-transfer",
        "SkuMeter": "Data Transfer",
    }


def focus_rows(
    lines: Iterable[CostLine], *, accounts: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The lines as FOCUS 1.1 cost-and-usage rows, keys exactly ``FOCUS_COLUMNS``, None
    for null.

    Egress gets its own row per attempt (ServiceCategory Networking) rather than being
    folded into compute: FOCUS wants one service, one pricing unit and quantity x unit
    price == cost per row, and instance-hours cannot price gigabytes; keeping it apart
    also mirrors the ledger, which splits the two so reports can say which is which.
    Compute rows are cut at month boundaries so every charge period lies inside its
    billing period (calendar month, UTC); egress is billed in the month the attempt ended.

    ``accounts`` maps cloud -> billing account id (mandatory and non-null in FOCUS);
    without it the id is ``sched/<cloud>``.
    """
    out: list[dict[str, Any]] = []
    for line in lines:
        account = (accounts or {}).get(line.cloud, f"sched/{line.cloud}")
        for row in _compute_rows(line, account):
            out.append({c: row[c] for c in FOCUS_COLUMNS})
        if line.egress_usd != 0:
            row = _egress_row(line, account)
            out.append({c: row[c] for c in FOCUS_COLUMNS})
    return out


def to_focus_csv(lines: Iterable[CostLine], *, accounts: Mapping[str, str] | None = None) -> str:
    """FOCUS rows as CSV; nulls are empty cells (CSV has no other null), floats in full
    precision so BilledCost sums to the ledger to the cent and beyond."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    for row in focus_rows(lines, accounts=accounts):
        writer.writerow(["" if row[c] is None else row[c] for c in FOCUS_COLUMNS])
    return out.getvalue()


# -- plot -------------------------------------------------------------------------------------
