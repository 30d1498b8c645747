"""Compute Engine committed use discounts read live into ``Commitment``s.

What the Compute API can tell: ``regionCommitments`` lists *resource-based* commitments
(category MACHINE: so many vCPUs, MB of memory, GPUs of a type, GB of local SSD, for one
machine series in one region) and license commitments (category LICENSE, OS licenses:
skipped, they cover no machine time). Spend-based commitments, including Compute Engine
flexible CUDs, are bought on the Cloud Billing account, not in a project, and this API
does not return them: they have to come from the config file.

What it cannot tell: neither the $/h a commitment costs nor its discount is on the
resource. So, per commitment:

- discount: ``overrides[name].discount``, else ``plan_discounts[plan]``. The defaults
  (1 year 37%, 3 years 55%) are Google's published resource-based CUD rates for most
  machine series' vCPUs and memory (cloud.google.com/compute/docs/instances/
  signing-up-committed-use-discounts: "up to 57% for most resources like machine types
  or GPUs", memory-optimized up to 70%; per-series figures on the VM pricing page).
  GPU and memory-optimized rates differ: give those per commitment.
- $/h: ``overrides[name].hourly_commitment``, else ``(1 - discount)`` times the
  on-demand value of the committed resources, priced by the caller's ``price``
  function (``rate_book_prices`` adapts the billing catalog rate book the price feed
  already builds). With neither, the commitment is an error naming it: a made-up
  figure would steer the scheduler with money that does not exist.

An exact discount exists in the billing catalog as Commit1Yr/Commit3Yr SKUs; the rate
book deliberately drops those (``gcp_prices.sku_role``), so it is not used here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from providers.commitment import Commitment, CommitmentKind
from providers.gcp_clients import ComputeClients, GoogleEndpoint
from providers.gcp_prices import (
    HOURS_PER_MONTH,
    RateKey,
    SkuComponent,
    canonical_accelerator,
)
from providers.gcp_skus import SkuPrice
from providers.offering import MarketKind

log = logging.getLogger(__name__)

SOURCE = "compute.googleapis.com regionCommitments"
ACTIVE_FILTER = 'status = "ACTIVE"'
PLAN_DISCOUNTS: Mapping[str, float] = {"TWELVE_MONTH": 0.37, "THIRTY_SIX_MONTH": 0.55}
_CATEGORIES = (
    "GENERAL_PURPOSE",
    "COMPUTE_OPTIMIZED",
    "MEMORY_OPTIMIZED",
    "ACCELERATOR_OPTIMIZED",
    "GRAPHICS_OPTIMIZED",
    "STORAGE_OPTIMIZED",
    "NETWORK_OPTIMIZED",
)
# A type without a series suffix names its category's first series (the API reference:
# "GENERAL_PURPOSE ... applies only to ... N1"). MEMORY_OPTIMIZED covers M1 and M2,
# which is no single family, so it has none here and such commitments are skipped.
_BARE_SERIES = {
    "GENERAL_PURPOSE": "n1",
    "COMPUTE_OPTIMIZED": "c2",
    "ACCELERATOR_OPTIMIZED": "a2",
    "GRAPHICS_OPTIMIZED": "g2",
}
# Series billed by their own core/RAM SKUs (gcp_prices.billing_family's keys).
_BILLING_KEY = {
    "ACCELERATOR_OPTIMIZED_A3_MEGA": "a3plus",
    "ACCELERATOR_OPTIMIZED_A3_ULTRA": "a3ultra",
}

# (region, component, key) -> on-demand USD per SKU unit: core-hour, GiB-hour of RAM,
# GPU-hour, GiB-month of local SSD. key: billing family (core/RAM), canonical GPU, "".
ResourcePrice = Callable[[str, SkuComponent, str], float | None]


class GcpCommitmentError(ValueError):
    """A commitment that cannot be read or priced; the message names it."""


class CudOverride(BaseModel):
    """What the owner knows of one commitment that the Compute API does not say."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hourly_commitment: float | None = Field(default=None, gt=0)
    discount: float | None = Field(default=None, gt=0, lt=1)


@dataclass(frozen=True)
class CommittedResource:
    """One ``resources[]`` entry in SKU units (cores, GiB, GPUs, GiB of local SSD)."""

    component: SkuComponent
    key: str
    amount: float
    label: str


def machine_series(cud_type: str) -> str | None:
    """``GENERAL_PURPOSE_N2`` -> ``n2``, ``ACCELERATOR_OPTIMIZED`` -> ``a2``,
    ``ACCELERATOR_OPTIMIZED_A3_MEGA`` -> ``a3`` (machine types a3-megagpu-*); None when
    the type names no single series."""
    if cud_type in _BARE_SERIES:
        return _BARE_SERIES[cud_type]
    for category in _CATEGORIES:
        if cud_type.startswith(category + "_"):
            return cud_type.removeprefix(category + "_").split("_", 1)[0].lower() or None
    return None


def billing_key(cud_type: str) -> str | None:
    """Which family's core/RAM SKUs price the committed vCPUs and memory."""
    return _BILLING_KEY.get(cud_type) or machine_series(cud_type)


def rate_book_prices(book: Mapping[RateKey, SkuPrice]) -> ResourcePrice:
    """A ``ResourcePrice`` from ``gcp_prices.rate_book``: on-demand SKU rates only."""

    def price(region: str, component: SkuComponent, key: str) -> float | None:
        sku = book.get((region, MarketKind.ON_DEMAND, component, key))
        return sku.hourly_usd if sku is not None else None

    return price


def _amount(name: str, res: Mapping[str, Any]) -> float:
    try:
        amount = float(int(res.get("amount") or 0))
    except (TypeError, ValueError) as exc:
        raise GcpCommitmentError(f"commitment {name}: bad amount in {dict(res)!r}") from exc
    if amount <= 0:
        raise GcpCommitmentError(f"commitment {name}: no amount in {dict(res)!r}")
    return amount


def committed_resources(name: str, data: Mapping[str, Any]) -> list[CommittedResource]:
    """The commitment's resources; memory MB -> GiB, local SSD GB taken as GiB (the
    catalog's unit; Google's 375 GB partitions are priced as 375 GiB elsewhere too)."""
    family = billing_key(str(data.get("type") or "")) or ""
    out = []
    for res in data.get("resources") or []:
        kind = res.get("type")
        amount = _amount(name, res)
        if kind == "VCPU":
            out.append(CommittedResource(SkuComponent.CORE, family, amount, f"{amount:g} vCPU"))
        elif kind == "MEMORY":
            gib = amount / 1024
            out.append(CommittedResource(SkuComponent.RAM, family, gib, f"{gib:g} GiB memory"))
        elif kind == "ACCELERATOR":
            gpu_type = str(res.get("acceleratorType") or "")
            gpu = canonical_accelerator(gpu_type) if gpu_type else None
            label = f"{amount:g} x {gpu_type or '?'}"
            out.append(CommittedResource(SkuComponent.GPU, gpu or "", amount, label))
        elif kind == "LOCAL_SSD":
            label = f"{amount:g} GB local SSD"
            out.append(CommittedResource(SkuComponent.LOCAL_SSD, "", amount, label))
        else:
            raise GcpCommitmentError(f"commitment {name}: unknown resource type {kind!r}")
    return out


def on_demand_value(
    name: str, region: str, resources: Iterable[CommittedResource], price: ResourcePrice
) -> float:
    """$/h the committed resources would cost on demand; raises naming what has no price."""
    total = 0.0
    for res in resources:
        ssd = res.component is SkuComponent.LOCAL_SSD
        rate = price(region, res.component, res.key) if res.key or ssd else None
        if rate is None:
            raise GcpCommitmentError(
                f"commitment {name}: no on-demand price for {res.label} in {region}; "
                "give its hourly_commitment in the overrides"
            )
        per_hour = rate / HOURS_PER_MONTH if ssd else rate
        total += per_hour * res.amount
    return total


def skip_reason(data: Mapping[str, Any]) -> str | None:
    """Why a commitment the API returned is not one of ours, or None."""
    if data.get("status") != "ACTIVE":
        return f"status {data.get('status')!r}, not ACTIVE"
    if data.get("category") == "LICENSE":
        return "a license commitment covers OS licenses, not machine time"
    if not data.get("resources"):
        return "it commits to no resources"
    if machine_series(str(data.get("type") or "")) is None:
        return f"type {data.get('type')!r} is not one machine series"
    return None


def _time(name: str, field: str, value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GcpCommitmentError(f"commitment {name}: bad {field} {value!r}") from exc
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _region(data: Mapping[str, Any]) -> str:
    return str(data.get("region") or "").rstrip("/").rsplit("/", 1)[-1]


def commitment_from_gce(
    data: Mapping[str, Any],
    *,
    price: ResourcePrice | None = None,
    overrides: Mapping[str, CudOverride] | None = None,
    plan_discounts: Mapping[str, float] = PLAN_DISCOUNTS,
) -> Commitment:
    """One active resource-based commitment (REST ``Commitment``) as ours."""
    name = str(data.get("name") or "")
    region = _region(data)
    if not name or not region:
        raise GcpCommitmentError(f"a commitment without name or region: {dict(data)!r}")
    overrides = overrides or {}
    override = overrides.get(f"{region}/{name}") or overrides.get(name) or CudOverride()
    plan = str(data.get("plan") or "")
    discount = override.discount or plan_discounts.get(plan)
    if discount is None:
        raise GcpCommitmentError(f"commitment {name}: no discount for plan {plan!r}")
    resources = committed_resources(name, data)
    hourly = override.hourly_commitment
    if hourly is None:
        if price is None:
            raise GcpCommitmentError(
                f"commitment {name} in {region}: the Compute API gives no $/h; give its "
                "hourly_commitment in the overrides or pass a price function"
            )
        hourly = (1 - discount) * on_demand_value(name, region, resources, price)
    gpus = {r.key for r in resources if r.component is SkuComponent.GPU and r.key}
    family = gpus.pop() if len(gpus) == 1 else machine_series(str(data.get("type") or ""))
    try:
        return Commitment(
            id=name,
            kind=CommitmentKind.GCP_RESOURCE_CUD,
            hourly_commitment=round(hourly, 6),
            discount=discount,
            regions=[region],
            family=family,
            start=_time(name, "startTimestamp", data.get("startTimestamp")),
            end=_time(name, "endTimestamp", data.get("endTimestamp")),
            source=SOURCE,
        )
    except ValidationError as exc:
        raise GcpCommitmentError(f"commitment {name}: {exc}") from exc


def _as_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(
        message, preserving_proto_field_name=False, use_integers_for_enums=False
    )


class GcpCommitmentReader:
    """A project's active resource-based CUDs, per region or across all regions."""

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        *,
        price: ResourcePrice | None = None,
        overrides: Mapping[str, CudOverride] | None = None,
        plan_discounts: Mapping[str, float] = PLAN_DISCOUNTS,
    ) -> None:
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.price = price
        self.overrides = dict(overrides or {})
        self.plan_discounts = dict(plan_discounts)
        self._clients = ComputeClients(self.endpoint)

    def raw(self, regions: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """ACTIVE commitments as REST dicts: listed per region, or aggregated if None."""
        client = self._clients.get("RegionCommitmentsClient")
        if regions is None:
            pages = client.aggregated_list(
                request={"project": self.project, "filter": ACTIVE_FILTER}
            )
            return [_as_dict(c) for _, scoped in pages for c in scoped.commitments]
        return [
            _as_dict(c)
            for region in regions
            for c in client.list(
                request={"project": self.project, "region": region, "filter": ACTIVE_FILTER}
            )
        ]

    def fetch(self, regions: Sequence[str] | None = None) -> list[Commitment]:
        out = []
        for data in self.raw(regions):
            reason = skip_reason(data)
            if reason:
                log.warning("commitment %s skipped: %s", data.get("name"), reason)
                continue
            out.append(
                commitment_from_gce(
                    data,
                    price=self.price,
                    overrides=self.overrides,
                    plan_discounts=self.plan_discounts,
                )
            )
        return out


def fetch_gcp_commitments(
    project: str,
    regions: Sequence[str] | None = None,
    endpoint: GoogleEndpoint | None = None,
    *,
    price: ResourcePrice | None = None,
    overrides: Mapping[str, CudOverride] | None = None,
    plan_discounts: Mapping[str, float] = PLAN_DISCOUNTS,
) -> list[Commitment]:
    """The project's active resource-based CUDs in ``regions`` (all regions if None); see
    the module doc for where the $/h and discount come from. API failures raise."""
    reader = GcpCommitmentReader(
        project, endpoint, price=price, overrides=overrides, plan_discounts=plan_discounts
    )
    return reader.fetch(regions)
