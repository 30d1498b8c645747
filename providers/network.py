"""What moving data costs: same zone, across zones, across regions, across clouds.

Reading a dataset where it does not live is the "data gravity" term of the cost model, and it
can outweigh a cheaper GPU. Rates are published per cloud as marginal monthly tiers billed by
the source (AWS bills inter-region and internet egress by source region; GCP by source region
and destination area), so a transfer's price depends on what already crossed that meter this
month. Everything here is pure except ``load_network_prices``, which reads the YAML table
(configs/network_rates.yaml); volumes are decimal GB (10^9 bytes), money is USD.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from jobs.spec import Cloud
from providers.config_files import load_model

DEFAULT_NETWORK_RATES = Path(__file__).resolve().parent.parent / "configs" / "network_rates.yaml"

Continent = Literal["na", "sa", "eu", "me", "af", "asia", "oc"]
CONTINENTS: tuple[str, ...] = get_args(Continent)
PricedCloud = Literal["aws", "gcp"]

# Bytes per published unit, in decimal GB.
_UNIT_GB = {"GB": 1.0, "GiB": 2**30 / 1e9}


class UnknownRegionError(ValueError):
    """A region the rate table does not list: pricing it by guess could hide a real cost."""


class NetworkRatesError(ValueError):
    """The rate table cannot be used; ``str()`` names the file and the entry, on one line
    (region names and keys are quoted as written, line breaks and all)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


# ---- tiers ---------------------------------------------------------------------------------


class TierSlice(BaseModel):
    """The part of a transfer that fell in one tier: [start_gb, end_gb) of the month's volume."""

    model_config = ConfigDict(frozen=True)

    start_gb: float
    end_gb: float
    usd_per_gb: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def gb(self) -> float:
        return self.end_gb - self.start_gb

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usd(self) -> float:
        return self.gb * self.usd_per_gb


class TieredRate(BaseModel):
    """Marginal tiers: ((upto_gb, usd_per_gb), ...), upto cumulative over the month, last None.

    The total is a sum of non-negative rates over volume, so it is continuous and never falls
    when volume grows, even where a later tier is dearer than an earlier one.
    """

    model_config = ConfigDict(frozen=True)

    tiers: tuple[tuple[float | None, float], ...]

    @field_validator("tiers")
    @classmethod
    def _well_formed(
        cls, tiers: tuple[tuple[float | None, float], ...]
    ) -> tuple[tuple[float | None, float], ...]:
        if not tiers:
            raise ValueError("at least one tier is needed")
        previous = 0.0
        for i, (upto, rate) in enumerate(tiers):
            if not math.isfinite(rate) or rate < 0:
                raise ValueError(f"tier {i}: rate {rate} is not a non-negative number")
            last = i == len(tiers) - 1
            if last and upto is not None:
                raise ValueError(f"tier {i}: the last tier's upper bound must be null")
            if not last:
                if upto is None:
                    raise ValueError(f"tier {i}: only the last tier may be unbounded")
                if not math.isfinite(upto) or upto <= previous:
                    raise ValueError(f"tier {i}: bound {upto} does not exceed {previous}")
                previous = upto
        return tiers

    @classmethod
    def flat(cls, usd_per_gb: float) -> TieredRate:
        return cls(tiers=((None, usd_per_gb),))

    @property
    def is_free(self) -> bool:
        return all(rate == 0 for _, rate in self.tiers)

    def slices(self, gb: float, already_used_gb: float = 0.0) -> tuple[TierSlice, ...]:
        """The tiers ``gb`` more falls in, after ``already_used_gb`` this month."""
        _check_volume("gb", gb)
        _check_volume("already_used_gb", already_used_gb)
        start, end = already_used_gb, already_used_gb + gb
        out: list[TierSlice] = []
        lower = 0.0
        for upto, rate in self.tiers:
            upper = math.inf if upto is None else upto
            lo, hi = max(lower, start), min(upper, end)
            if hi > lo:
                out.append(TierSlice(start_gb=lo, end_gb=hi, usd_per_gb=rate))
            lower = upper
            if lower >= end:
                break
        return tuple(out)

    def cost(self, gb: float, already_used_gb: float = 0.0) -> float:
        """USD for ``gb`` more this month, on top of ``already_used_gb``."""
        return sum((s.usd for s in self.slices(gb, already_used_gb)), 0.0)

    def with_free_allowance(self, free_gb: float) -> TieredRate:
        """The same tiers with the month's first ``free_gb`` at $0 (boundaries unchanged)."""
        _check_volume("free_gb", free_gb)
        if free_gb == 0:
            return self
        kept = tuple((u, r) for u, r in self.tiers if u is None or u > free_gb)
        return TieredRate(tiers=((free_gb, 0.0), *kept))

    def in_gb(self, unit_gb: float) -> TieredRate:
        """These tiers, published per ``unit_gb`` GB, as per-GB bounds and rates."""
        if unit_gb == 1.0:
            return self
        return TieredRate(
            tiers=tuple((None if u is None else u * unit_gb, r / unit_gb) for u, r in self.tiers)
        )


def _check_volume(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative number of GB, not {value}")


# ---- locations -----------------------------------------------------------------------------


class Location(BaseModel):
    """Where data or a machine is. ``zone=None`` means the whole region (an S3/GCS bucket).

    ``cloud="local"`` is the on-premises/local cluster: reaching it from a cloud is internet
    egress, leaving it for a cloud is free ingress. Its region and zone are not priced.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cloud: Cloud
    region: str = "local"
    zone: str | None = None

    @model_validator(mode="after")
    def _zone_in_region(self) -> Location:
        if self.cloud != "local":
            if self.region == "local" or not self.region:
                raise ValueError(f"a {self.cloud} location needs its region")
            if self.zone is not None and not self.zone.startswith(self.region):
                raise ValueError(f"zone {self.zone!r} is not in region {self.region!r}")
        return self

    def __str__(self) -> str:
        return "/".join(p for p in (self.cloud, self.region, self.zone) if p)


# ---- the table (what configs/network_rates.yaml holds) -------------------------------------


class Rule(BaseModel):
    """One line of an inter-region or internet table: who it applies to and the tiers."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, allow_inf_nan=False
    )

    sources: tuple[str, ...] = Field(default=(), alias="from")
    destinations: tuple[str, ...] = Field(default=(), alias="to")
    usd: float | None = Field(default=None, ge=0, description="Flat rate per published unit.")
    tiers: TieredRate | None = Field(default=None, description="Marginal tiers, published unit.")

    @field_validator("tiers", mode="before")
    @classmethod
    def _tier_list(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return {"tiers": value}
        if value is None or isinstance(value, TieredRate | dict):
            return value
        raise ValueError("tiers must be a list of [upto, usd] pairs, the last upto null")

    @model_validator(mode="after")
    def _one_price(self) -> Rule:
        if (self.usd is None) == (self.tiers is None):
            raise ValueError("give exactly one of usd and tiers")
        return self

    @property
    def rate(self) -> TieredRate:
        return self.tiers if self.tiers is not None else TieredRate.flat(self.usd or 0.0)

    def matches(
        self, src: str, src_continent: str, dst: str | None, dst_continent: str | None
    ) -> bool:
        return _matches(self.sources, src, src_continent) and _matches(
            self.destinations, dst, dst_continent
        )


def _first_message(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


def _matches(names: tuple[str, ...], region: str | None, continent: str | None) -> bool:
    return not names or region in names or continent in names


class CloudRates(BaseModel):
    """One cloud's published rates, in that cloud's unit."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    as_of: date
    source: str = Field(min_length=1)
    unit: Literal["GB", "GiB"]
    cross_zone_usd: float = Field(ge=0)
    free_internet_per_month: float = Field(default=0, ge=0)
    regions: dict[Continent, tuple[str, ...]]
    inter_region: tuple[Rule, ...]
    internet: tuple[Rule, ...]

    @model_validator(mode="after")
    def _consistent(self) -> CloudRates:
        seen: dict[str, str] = {}
        for continent, names in self.regions.items():
            for name in names:
                if name in CONTINENTS:
                    raise ValueError(f"regions.{continent}: {name!r} is a continent code")
                if name in seen:
                    raise ValueError(f"regions: {name} is in both {seen[name]} and {continent}")
                seen[name] = continent
        for table in ("inter_region", "internet"):
            for i, rule in enumerate(getattr(self, table)):
                try:  # converted at query time: a bound past float range fails here, not there
                    rule.rate.in_gb(self.unit_gb)
                except ValueError as exc:
                    raise ValueError(f"{table}.{i}: {_first_message(exc)}") from None
                for key, names in (("from", rule.sources), ("to", rule.destinations)):
                    for name in names:
                        if name in CONTINENTS:
                            continue
                        if table == "internet" and key == "to":
                            raise ValueError(
                                f"{table}.{i}.to: {name!r}: internet destinations are"
                                f" continent codes ({', '.join(CONTINENTS)})"
                            )
                        if name not in seen:
                            raise ValueError(f"{table}.{i}.{key}: unknown region {name!r}")
        # Every listed region must be fully priced, so a lookup never falls through.
        for src, sc in seen.items():
            for dst, dc in seen.items():
                if dst != src and self.find("inter_region", src, sc, dst, dc) is None:
                    raise ValueError(f"inter_region: no rule prices {src} -> {dst}")
            for dc in (*CONTINENTS, None):
                if self.find("internet", src, sc, None, dc) is None:
                    raise ValueError(f"internet: no rule prices {src} -> {dc or 'on-premises'}")
        return self

    @property
    def unit_gb(self) -> float:
        return _UNIT_GB[self.unit]

    def continent_of(self, region: str) -> str | None:
        for continent, names in self.regions.items():
            if region in names:
                return continent
        return None

    def find(
        self,
        table: Literal["inter_region", "internet"],
        src: str,
        src_continent: str,
        dst: str | None,
        dst_continent: str | None,
    ) -> Rule | None:
        rules: tuple[Rule, ...] = getattr(self, table)
        return next((r for r in rules if r.matches(src, src_continent, dst, dst_continent)), None)


# ---- answers -------------------------------------------------------------------------------


class Route(BaseModel):
    """Which price applies between two locations, and on which monthly meter it counts."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="For explanations: 'cross-zone', 'inter-region aws na->eu'...")
    meter: str | None = Field(
        description="Transfers with the same meter share monthly tiers (None: free)."
    )
    rate: TieredRate = Field(description="Marginal tiers in $/GB (decimal GB).")
    free_allowance_gb: float = Field(
        default=0, description="The meter's monthly free volume, applied only on request."
    )


class TransferCost(BaseModel):
    """The price of one transfer and how it was arrived at."""

    model_config = ConfigDict(frozen=True)

    usd: float
    gb: float
    already_used_gb: float
    kind: str
    meter: str | None
    slices: tuple[TierSlice, ...] = Field(description="The tiers the transfer fell in.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usd_per_gb(self) -> float:
        """Average rate (0 for an empty transfer)."""
        return self.usd / self.gb if self.gb else 0.0


class NetworkPrices(BaseModel):
    """The parsed rate table, and the questions the cost model asks of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: date
    clouds: dict[PricedCloud, CloudRates]

    def continent(self, cloud: str, region: str) -> str:
        """The pricing area of a region; UnknownRegionError if the table does not list it."""
        rates = self._rates(cloud)
        continent = rates.continent_of(region)
        if continent is None:
            raise UnknownRegionError(
                f"{cloud} region {region!r} is not in the network rate table (as of"
                f" {self.as_of}); add it and its published rates to configs/network_rates.yaml"
            )
        return continent

    def route(self, src: Location, dst: Location) -> Route:
        """The rate that applies to moving data from ``src`` to ``dst``."""
        if src.cloud == "local":
            if dst.cloud != "local":
                self.continent(dst.cloud, dst.region)
                return Route(kind=f"ingress {dst.cloud}", meter=None, rate=TieredRate.flat(0))
            return Route(kind="local", meter=None, rate=TieredRate.flat(0))
        rates = self._rates(src.cloud)
        sc = self.continent(src.cloud, src.region)
        unit = rates.unit_gb
        if dst.cloud == src.cloud:
            dc = self.continent(dst.cloud, dst.region)
            if dst.region == src.region:
                if src.zone is None or dst.zone is None:
                    return Route(kind="same-region", meter=None, rate=TieredRate.flat(0))
                if src.zone == dst.zone:
                    return Route(kind="same-zone", meter=None, rate=TieredRate.flat(0))
                return Route(
                    kind="cross-zone",
                    meter=f"{src.cloud} {src.region} cross-zone",
                    rate=TieredRate.flat(rates.cross_zone_usd).in_gb(unit),
                )
            rule = rates.find("inter_region", src.region, sc, dst.region, dc)
            assert rule is not None  # CloudRates guarantees every listed pair has a rule
            return Route(
                kind=f"inter-region {src.cloud} {sc}->{dc}",
                meter=f"{src.cloud} {src.region} inter-region",
                rate=rule.rate.in_gb(unit),
            )
        # Leaving the cloud: the other cloud (or our own machines) is "the internet".
        dc = None if dst.cloud == "local" else self.continent(dst.cloud, dst.region)
        rule = rates.find("internet", src.region, sc, None, dc)
        assert rule is not None
        kind = f"internet {src.cloud} {src.region}"
        if rule.destinations:
            kind += f" to {dc}"
        return Route(
            kind=kind,
            meter=kind,
            rate=rule.rate.in_gb(unit),
            free_allowance_gb=rates.free_internet_per_month * unit,
        )

    def rate_kind(self, src: Location, dst: Location) -> str:
        """A short label of the price category, for explaining a placement."""
        return self.route(src, dst).kind

    def transfer_cost(
        self,
        src: Location,
        dst: Location,
        gb: float,
        *,
        already_used_gb: float = 0.0,
        include_free_tier: bool = False,
    ) -> TransferCost:
        """What moving ``gb`` from ``src`` to ``dst`` costs this month.

        ``already_used_gb`` is what already crossed the same meter this month (tiers are
        monthly); the answer is the marginal slice on top of it, so pricing a + b at once
        equals pricing a, then b with already_used_gb=a. ``include_free_tier`` takes the
        cloud's monthly free internet allowance (AWS: 100 GB, account-wide) as unused.
        """
        route = self.route(src, dst)
        rate = route.rate
        if include_free_tier and route.free_allowance_gb:
            rate = rate.with_free_allowance(route.free_allowance_gb)
        slices = rate.slices(gb, already_used_gb)
        return TransferCost(
            usd=sum((s.usd for s in slices), 0.0),
            gb=gb,
            already_used_gb=already_used_gb,
            kind=route.kind,
            meter=route.meter,
            slices=slices,
        )

    def _rates(self, cloud: str) -> CloudRates:
        rates = self.clouds.get(cloud)  # type: ignore[call-overload]
        if rates is None:
            raise UnknownRegionError(f"the network rate table has no rates for cloud {cloud!r}")
        return rates


def load_network_prices(path: Path | None = None) -> NetworkPrices:
    """The table at ``path`` (default: configs/network_rates.yaml); NetworkRatesError (a
    ValueError) names the file and the bad field."""
    path = DEFAULT_NETWORK_RATES if path is None else path
    return load_model(path, NetworkPrices, NetworkRatesError)
