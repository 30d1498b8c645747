"""Real spot traces from ../shared/data, loaded into engine.Pool, one convention for all.

- AWS p3.2xlarge (1x V100), 9 zones in us-east-1, us-east-2 and us-west-2, one value every
  195 s from 2023-02-15 for 45.5 days: skypilot-spot-traces/availability/1-node/
  aws-02-15-2023/<zone>_v100_1.json (the Can't Be Late traces; 1 = available), with the
  spot price of each tick from skynomad-spot-traces/data/v100_spot_prices.json and the
  $3.06/h on-demand price.
- GCP a3-highgpu-8g (8x H100), 13 zones in 9 regions, one value every 600 s from
  2025-10-04 for 352 h: skynomad-spot-traces/data/converted_multi_region_aligned_
  h100_16_merged.tar.gz, <zone>_h100_16/full.json. These files use the *preempted*
  convention (1 = unavailable) and are inverted here; prices per zone from price_info.
- Network prices between regions: configs/network_rates.yaml through sched's own
  NetworkPrices (the same table placement uses), and copy time at 5 Gbit/s (Skyplane's
  measured inter-region VM-to-VM throughput is 5-7 Gbit/s).
"""

from __future__ import annotations

import json
import math
import tarfile
from dataclasses import replace
from functools import cache
from pathlib import Path

from benchmarks.sim.engine import Pool, Route
from providers.network import Location, NetworkPrices, load_network_prices

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
AWS_V100 = SHARED / "skypilot-spot-traces" / "availability" / "1-node" / "aws-02-15-2023"
AWS_V100_PRICES = SHARED / "skynomad-spot-traces" / "data" / "v100_spot_prices.json"
GCP_H100 = (
    SHARED
    / "skynomad-spot-traces"
    / "data"
    / ("converted_multi_region_aligned_h100_16_merged.tar.gz")
)
AWS_V100_ON_DEMAND = 3.06  # p3.2xlarge, us-east-1 / us-east-2 / us-west-2
COPY_GBIT_S = 5.0


def available() -> bool:
    return AWS_V100.is_dir() and AWS_V100_PRICES.is_file() and GCP_H100.is_file()


def _region(zone: str) -> str:
    return zone[:-1] if zone[-1].isalpha() and zone[-2].isdigit() else zone.rsplit("-", 1)[0]


@cache
def aws_v100() -> tuple[float, tuple[Pool, ...]]:
    """(gap seconds, one pool per zone) for the 2023 AWS p3.2xlarge trace."""
    prices = json.loads(AWS_V100_PRICES.read_text())
    pools = []
    gap = 0.0
    for path in sorted(AWS_V100.glob("*_v100_1.json")):
        raw = json.loads(path.read_text())
        gap = float(raw["metadata"]["gap_seconds"])
        zone = path.name.removesuffix("_v100_1.json")
        series = prices[f"{zone}_v100_1"]
        n = min(len(raw["data"]), len(series))
        pools.append(
            Pool(
                name=zone,
                region=_region(zone),
                cloud="aws",
                available=tuple(bool(v) for v in raw["data"][:n]),
                spot_price=tuple(float(p) for p in series[:n]),
                on_demand_price=AWS_V100_ON_DEMAND,
            )
        )
    return gap, tuple(pools)


@cache
def gcp_h100() -> tuple[float, tuple[Pool, ...]]:
    """(gap seconds, one pool per zone) for the 13-zone GCP H100 trace (inverted to
    1 = available)."""
    pools = []
    gap = 0.0
    with tarfile.open(GCP_H100) as tar:
        for member in sorted(tar.getnames()):
            if not member.endswith("/full.json"):
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            raw = json.load(handle)
            meta = raw["metadata"]
            gap = float(meta["gap_seconds"])
            info = meta["price_info"]
            pools.append(
                Pool(
                    name=meta["zone"],
                    region=info["region"],
                    cloud="gcp",
                    available=tuple(not bool(v) for v in raw["data"]),
                    spot_price=tuple(float(p) for p in raw["prices"]),
                    on_demand_price=float(info["on_demand_price"]),
                )
            )
    return gap, tuple(pools)


def window(pools: tuple[Pool, ...], start: int, length: int) -> tuple[Pool, ...]:
    return tuple(
        replace(
            p,
            available=p.available[start : start + length],
            spot_price=p.spot_price[start : start + length],
        )
        for p in pools
    )


def network_route(
    pools: tuple[Pool, ...], gap_s: float, data_gb: float, network: NetworkPrices | None = None
) -> Route:
    """(src, dst) -> ($/GB, ticks to copy ``data_gb``) between the pools' regions, priced
    with sched's network table (the one placement uses)."""
    table = network or load_network_prices()
    cloud_of = {p.region: p.cloud for p in pools}

    @cache
    def route(src: str | None, dst: str | None) -> tuple[float, int]:
        if src is None or dst is None or src == dst:
            return 0.0, 0
        here = Location(cloud=cloud_of[src], region=src)  # type: ignore[arg-type]
        there = Location(cloud=cloud_of[dst], region=dst)  # type: ignore[arg-type]
        found = table.route(here, there)
        rate = found.rate.cost(1.0, 0.0) if found.meter else 0.0
        return rate, copy_ticks(data_gb, gap_s)

    return route


def copy_ticks(gb: float, gap_s: float) -> int:
    return math.ceil(gb * 8 / COPY_GBIT_S / gap_s) if gb > 0 else 0
