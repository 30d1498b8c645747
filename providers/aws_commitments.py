"""AWS Savings Plans read live into ``Commitment``s.

``DescribeSavingsPlans`` gives each plan's type, scope (region and instance family for an
EC2 Instance plan), hourly commitment and term, but no discount: a plan has one rate per
usage type (``DescribeSavingsPlanRates``), and its discount off on-demand differs by
instance type and region. Our model holds one discount per commitment, so it is chosen,
per plan, in this order:

1. ``discounts[plan id or ARN]`` from the caller (a config file): the owner knows best.
2. Derived: the plan's own rates for the caller's ``instance_types`` (Linux, shared
   tenancy, the caller's ``regions``; for an EC2 Instance plan only its region and
   family) against their on-demand prices from ``on_demand(region, instance_type)``
   (e.g. ``AwsPriceFeed.on_demand_price``); the median of ``1 - rate / on-demand`` over
   those types. The median, not the mean or the best, so one odd instance type cannot
   swing it; the types are the ones the scheduler runs, so it is the discount the
   scheduler's usage actually gets.
3. ``default_discounts[term in years]``: the low end of typical published figures
   (AWS advertises "up to 66%" for Compute and "up to 72%" for EC2 Instance plans, but
   those are 3-year All Upfront maxima; typical 1-year plans save ~30%, 3-year ~50%).
   A default that is too low understates what a plan covers rather than promising
   coverage that is not there.

SageMaker and Database plans do not cover EC2 and are skipped (logged), as are plans not
in USD, since every price in sched is USD. Malformed plans raise ``AwsCommitmentError``
naming the plan.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from providers.aws_compute import AwsClients
from providers.commitment import Commitment, CommitmentKind

log = logging.getLogger(__name__)

SOURCE = "savingsplans.amazonaws.com DescribeSavingsPlans"
# Savings Plans has one global endpoint; boto3 still wants a region to sign for.
API_REGION = "us-east-1"
SECONDS_PER_YEAR = 365 * 24 * 3600  # termDurationInSeconds is 31536000 or 94608000
DEFAULT_DISCOUNTS: Mapping[int, float] = {1: 0.30, 3: 0.50}  # term years -> discount
PLAN_KINDS: Mapping[str, CommitmentKind] = {
    "Compute": CommitmentKind.AWS_COMPUTE_SP,
    "EC2Instance": CommitmentKind.AWS_EC2_INSTANCE_SP,
}
# What the derived discount compares: the plain Linux on-demand price of an instance type.
RATE_FILTERS: tuple[tuple[str, str], ...] = (
    ("productType", "EC2"),
    ("productDescription", "Linux/UNIX"),
    ("tenancy", "shared"),
)

OnDemandPrice = Callable[[str, str], float | None]  # (region, instance type) -> $/h


class AwsCommitmentError(ValueError):
    """A plan the API returned that cannot be read as a commitment; names the plan."""


def _paged(call: Callable[..., dict[str, Any]], key: str, **args: Any) -> Iterator[Any]:
    """Every item of a Savings Plans list: botocore ships no paginators for this API."""
    token: str | None = None
    while True:
        page = call(**args, **({"nextToken": token} if token else {}))
        yield from page.get(key) or []
        token = page.get("nextToken")
        if not token:
            return


def _time(plan_id: str, field: str, value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise AwsCommitmentError(f"savings plan {plan_id}: no {field} time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise AwsCommitmentError(f"savings plan {plan_id}: bad {field} {value!r}") from exc
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def _hourly(plan_id: str, value: Any) -> float:
    try:
        hourly = float(value)
    except (TypeError, ValueError) as exc:
        raise AwsCommitmentError(
            f"savings plan {plan_id}: commitment {value!r} is not a $/h amount"
        ) from exc
    if not hourly > 0:
        raise AwsCommitmentError(f"savings plan {plan_id}: commitment {value!r} is not > 0")
    return hourly


def term_years(plan: Mapping[str, Any], start: datetime, end: datetime) -> int:
    """1 or 3: from ``termDurationInSeconds``, else from the dates."""
    seconds = plan.get("termDurationInSeconds")
    span = float(seconds) if seconds else (end - start) / timedelta(seconds=1)
    return 3 if span > 2 * SECONDS_PER_YEAR else 1


def skip_reason(plan: Mapping[str, Any]) -> str | None:
    """Why a well-formed plan is not one of ours, or None."""
    kind = plan.get("savingsPlanType")
    if kind not in PLAN_KINDS:
        return f"a {kind} Savings Plan does not cover EC2 instances"
    currency = plan.get("currency") or "USD"
    if currency != "USD":
        return f"its commitment is in {currency}; sched prices in USD"
    return None


def plan_discount_from_rates(
    plan_id: str,
    rates: Sequence[Mapping[str, Any]],
    on_demand: OnDemandPrice,
) -> float | None:
    """Median of ``1 - rate / on-demand`` over the plan's hourly rates that have an
    on-demand price; None when none do."""
    found: dict[tuple[str, str], float] = {}
    for rate in rates:
        props = {p.get("name"): p.get("value") for p in rate.get("properties") or []}
        region, itype = props.get("region"), props.get("instanceType")
        if rate.get("unit") != "Hrs" or not region or not itype:
            continue
        price = on_demand(region, itype)
        if price is None or price <= 0:
            continue
        try:
            discount = 1 - float(rate["rate"]) / price
        except (KeyError, TypeError, ValueError) as exc:
            raise AwsCommitmentError(
                f"savings plan {plan_id}: rate for {itype} in {region} is {rate.get('rate')!r}"
            ) from exc
        if 0 < discount < 1:
            found[(region, itype)] = discount
        else:
            log.warning(
                "savings plan %s: %s in %s is %.0f%% off; ignored",
                plan_id,
                itype,
                region,
                discount * 100,
            )
    return statistics.median(found.values()) if found else None


def plan_id_of(plan: Mapping[str, Any]) -> str:
    plan_id = plan.get("savingsPlanId")
    if not plan_id:
        raise AwsCommitmentError(f"a savings plan without savingsPlanId: {dict(plan)!r}")
    return str(plan_id)


def commitment_from_plan(plan: Mapping[str, Any], discount: float) -> Commitment:
    """One Compute or EC2 Instance plan of DescribeSavingsPlans as ours."""
    plan_id = plan_id_of(plan)
    kind = PLAN_KINDS.get(str(plan.get("savingsPlanType")))
    if kind is None:
        raise AwsCommitmentError(
            f"savings plan {plan_id}: type {plan.get('savingsPlanType')!r} is not "
            f"one of {sorted(PLAN_KINDS)}"
        )
    regions: list[str] = []
    family = None
    if kind is CommitmentKind.AWS_EC2_INSTANCE_SP:
        region, family = plan.get("region"), plan.get("ec2InstanceFamily")
        if not region or not family:
            raise AwsCommitmentError(
                f"savings plan {plan_id}: an EC2 Instance plan without region/ec2InstanceFamily"
                f" ({region!r}, {family!r})"
            )
        regions = [str(region)]
    try:
        return Commitment(
            id=plan_id,
            kind=kind,
            hourly_commitment=_hourly(plan_id, plan.get("commitment")),
            discount=discount,
            regions=regions,
            family=family,
            start=_time(plan_id, "start", plan.get("start")),
            end=_time(plan_id, "end", plan.get("end")),
            source=SOURCE,
        )
    except ValidationError as exc:
        raise AwsCommitmentError(f"savings plan {plan_id}: {exc}") from exc


class SavingsPlansReader:
    """Active Compute and EC2 Instance Savings Plans of the account, as commitments."""

    def __init__(
        self,
        clients: AwsClients | None = None,
        *,
        discounts: Mapping[str, float] | None = None,
        on_demand: OnDemandPrice | None = None,
        instance_types: Sequence[str] = (),
        regions: Sequence[str] = (),
        default_discounts: Mapping[int, float] = DEFAULT_DISCOUNTS,
    ) -> None:
        self.clients = clients or AwsClients()
        self.discounts = dict(discounts or {})
        self.instance_types = tuple(instance_types)
        self.regions = tuple(regions)
        self.default_discounts = dict(default_discounts)
        self._on_demand = on_demand
        self._prices: dict[tuple[str, str], float | None] = {}

    @property
    def client(self) -> Any:
        return self.clients.client("savingsplans", API_REGION)

    def plans(self) -> list[dict[str, Any]]:
        """Every active plan (the state filter is sent, and checked again here)."""
        found = _paged(self.client.describe_savings_plans, "savingsPlans", states=["active"])
        return [p for p in found if p.get("state", "active") == "active"]

    def fetch(self) -> list[Commitment]:
        out: list[Commitment] = []
        for plan in self.plans():
            plan_id = plan_id_of(plan)
            reason = skip_reason(plan)
            if reason:
                log.warning("savings plan %s skipped: %s", plan_id, reason)
                continue
            out.append(commitment_from_plan(plan, self.discount(plan)))
        return out

    def discount(self, plan: Mapping[str, Any]) -> float:
        """Caller's figure, else derived from the plan's rates, else the term default."""
        plan_id = plan_id_of(plan)
        for key in (plan_id, plan.get("savingsPlanArn")):
            if key and key in self.discounts:
                return self.discounts[key]
        derived = self.derived_discount(plan)
        if derived is not None:
            return derived
        years = term_years(
            plan, _time(plan_id, "start", plan.get("start")), _time(plan_id, "end", plan.get("end"))
        )
        if years not in self.default_discounts:
            raise AwsCommitmentError(f"savings plan {plan_id}: no default discount for {years}y")
        return self.default_discounts[years]

    def derived_discount(self, plan: Mapping[str, Any]) -> float | None:
        if self._on_demand is None or not self.instance_types:
            return None
        plan_id = plan_id_of(plan)
        types, regions = list(self.instance_types), list(self.regions)
        if plan.get("savingsPlanType") == "EC2Instance":
            family = plan.get("ec2InstanceFamily")
            types = [t for t in types if t.split(".", 1)[0] == family]
            regions = [str(plan.get("region"))]
        if not types:
            return None
        filters = [{"name": k, "values": [v]} for k, v in RATE_FILTERS]
        filters.append({"name": "instanceType", "values": types})
        if regions:
            filters.append({"name": "region", "values": regions})
        rates = list(
            _paged(
                self.client.describe_savings_plan_rates,
                "searchResults",
                savingsPlanId=plan_id,
                filters=filters,
            )
        )
        return plan_discount_from_rates(plan_id, rates, self._price)

    def _price(self, region: str, instance_type: str) -> float | None:
        """On-demand prices are asked once per fetch: plans share instance types."""
        key = (region, instance_type)
        if key not in self._prices:
            assert self._on_demand is not None
            self._prices[key] = self._on_demand(region, instance_type)
        return self._prices[key]


def fetch_savings_plans(
    clients: AwsClients | None = None,
    *,
    discounts: Mapping[str, float] | None = None,
    on_demand: OnDemandPrice | None = None,
    instance_types: Sequence[str] = (),
    regions: Sequence[str] = (),
    default_discounts: Mapping[int, float] = DEFAULT_DISCOUNTS,
) -> list[Commitment]:
    """The account's active Compute and EC2 Instance Savings Plans (see the module doc for
    how each discount is chosen). API failures raise botocore's errors."""
    return SavingsPlansReader(
        clients,
        discounts=discounts,
        on_demand=on_demand,
        instance_types=instance_types,
        regions=regions,
        default_discounts=default_discounts,
    ).fetch()
