"""The cost model worked by hand: compute, spot preemption, commitments, data gravity.

Every expected figure below is derived in the test from the published formula, with the
arithmetic written out, so a change to the model has to change a comment a person can check.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.loading import parse_spec
from jobs.spec import Checkpoint, Data, DataLocation, JobSpec
from providers.network import Location, NetworkPrices, UnknownRegionError, load_network_prices
from providers.offering import MarketKind, Offering
from scheduler.cost_model import (
    CostParams,
    Estimate,
    JobFigures,
    NoCommitments,
    credit_for,
    run_estimate,
)
from scheduler.data_gravity import DataPricer
from scheduler.explain import why_first
from scheduler.placement import plan
from tests.offerings import offering as make_offering

PARAMS = CostParams(boot_hours={"aws": 0.12, "gcp": 0.1}, restore_gb_per_hour=1800.0)
"""Boot 0.12 h on AWS, 0.1 h on GCP; checkpoints read back at 1800 GB/h (0.5 GB/s)."""


@pytest.fixture(scope="module")
def network() -> NetworkPrices:
    return load_network_prices()


def offering(
    *,
    region: str = "us-east-1",
    price: float = 3.0,
    market: MarketKind = MarketKind.ON_DEMAND,
    rate: float = 0.0,
    **fields: Any,
) -> Offering:
    """A g4dn.xlarge (one T4) unless told otherwise."""
    fields.setdefault("instance_type", "g4dn.xlarge")
    fields.setdefault("gpu", ("T4", 1, 16))
    return make_offering(region=region, price=price, market=market, rate=rate, **fields)


def spec(**fields: Any) -> JobSpec:
    base: dict[str, Any] = {"run": "python train.py", "resources": {"accelerators": "T4:1"}}
    return parse_spec({**base, **fields}, source="t", now=datetime.now(UTC))


# ---- compute ----------------------------------------------------------------------------------


def test_on_demand_compute_is_price_times_nodes_times_work_plus_boot(
    network: NetworkPrices,
) -> None:
    # $3.00/h x 2 nodes x (10 h work + 0.12 h boot) = 6 x 10.12 = $60.72
    est = run_estimate(offering(), JobFigures(work_hours=10, num_nodes=2), PARAMS)
    assert est.compute == pytest.approx(60.72)
    assert est.wall_hours == pytest.approx(10.12)
    assert est.preemption == 0
    assert est.spot is None

    # The same through plan(), from a spec.
    job = spec(estimated_hours=10, resources={"accelerators": "T4:1", "num_nodes": 2})
    placed = plan(job, [offering()], network, params=PARAMS).placements[0]
    assert placed.cost.compute == pytest.approx(60.72)
    assert placed.cost.total == pytest.approx(60.72)
    assert placed.expected_hours == pytest.approx(10.12)


def test_gcp_boot_time_is_its_own() -> None:
    # $2.00/h x 1 node x (5 h + 0.1 h) = $10.20
    o = offering(cloud="gcp", region="us-central1", instance_type="n1-standard-4", price=2.0)
    assert run_estimate(o, JobFigures(work_hours=5), PARAMS).compute == pytest.approx(10.2)


# ---- spot ---------------------------------------------------------------------------------------

# The spot example: 10 h of work, 5-minute checkpoints (delta = 300 s = 1/12 h) of 90 GB,
# on a pool preempted 0.05 times an hour (MTBF M = 20 h), $2.00/h.
# A restart is boot + reading the checkpoint back: 0.12 + 90 / 1800 = 0.12 + 0.05 = 0.17 h.
W, DELTA, CKPT_GB, RATE, SPOT_PRICE = 10.0, 300 / 3600, 90.0, 0.05, 2.0
RESTART = 0.12 + CKPT_GB / 1800


def daly(delta: float, mtbf: float) -> float:
    """Daly's interval written out again, so the test does not trust the code under test."""
    x = delta / (2 * mtbf)
    return math.sqrt(2 * delta * mtbf) * (1 + math.sqrt(x) / 3 + x / 9) - delta


def test_spot_wall_time_follows_daly() -> None:
    # x = (1/12) / (2 x 20) = 1/480 = 0.0020833
    # sqrt(2 x 1/12 x 20) = sqrt(10/3) = 1.8257419
    # tau = 1.8257419 x (1 + sqrt(1/480)/3 + (1/480)/9) - 1/12
    #     = 1.8257419 x 1.0154460 - 0.0833333 = 1.7706089 h
    tau = daly(DELTA, 20)
    assert tau == pytest.approx(1.7706089, abs=1e-6)
    # productive = 10 x (1 + (1/12) / 1.7706089) = 10.470648
    # denominator = 1 - 0.05 x (1.7706089 / 2 + 0.17) = 0.9472348
    # spot wall = 10.470648 / 0.9472348 = 11.053910 h; interruptions 0.05 x 11.05391 = 0.55270
    wall = W * (1 + DELTA / tau) / (1 - RATE * (tau / 2 + RESTART))
    assert wall == pytest.approx(11.053910, abs=1e-6)

    job = JobFigures(work_hours=W, checkpoint_hours=DELTA, checkpoint_gb=CKPT_GB)
    o = offering(market=MarketKind.SPOT, price=SPOT_PRICE, rate=RATE)
    est = run_estimate(o, job, PARAMS)
    assert est.restart_hours == pytest.approx(0.17)
    assert est.spot is not None
    assert est.spot.checkpoint_interval_hours == pytest.approx(tau)
    assert est.spot.wall_hours == pytest.approx(wall)
    assert est.spot.interruptions == pytest.approx(0.552695, abs=1e-6)
    # the placement is paid for the spot wall plus one boot: 11.053910 + 0.12 = 11.173910 h
    assert est.wall_hours == pytest.approx(wall + 0.12)
    # compute $2 x (10 + 0.12) = $20.24; preemption $2 x (11.053910 - 10) = $2.107820
    assert est.compute == pytest.approx(20.24)
    assert est.preemption == pytest.approx(2.107820, abs=1e-6)
    assert est.total == pytest.approx(22.347820, abs=1e-6)


def test_spot_through_a_spec_reads_checkpoint_size_and_write_time(network: NetworkPrices) -> None:
    job = spec(
        estimated_hours=W,
        market="spot",
        checkpoint={"size_gb": CKPT_GB, "write_seconds": 300},
    )
    o = offering(market=MarketKind.SPOT, price=SPOT_PRICE, rate=RATE)
    placed = plan(job, [o], network, params=PARAMS).placements[0]
    # the same figures as the worked example above: $20.24 + $2.107820
    assert placed.restart_hours == pytest.approx(0.17)
    assert placed.cost.compute == pytest.approx(20.24)
    assert placed.cost.preemption == pytest.approx(2.107820, abs=1e-6)
    assert placed.cost.egress == 0  # no checkpoint bucket: checkpoints stay beside the job


def test_a_cluster_is_interrupted_once_per_node_preemption() -> None:
    # 2 nodes at 0.05/h: losing either stops the job, so lam = 0.1/h, M = 10 h.
    # x = (1/12)/20 = 1/240; sqrt(2 x 1/12 x 10) = 1.2909944
    # tau = 1.2909944 x (1 + sqrt(1/240)/3 + (1/240)/9) - 1/12 = 1.2360366 h
    # wall = 10 x (1 + (1/12)/1.2360366) / (1 - 0.1 x (1.2360366/2 + 0.17))
    #      = 10.674198 / 0.9211982 = 11.587298 h; interruptions 0.1 x 11.587298 = 1.158730
    tau = daly(DELTA, 10)
    assert tau == pytest.approx(1.2360366, abs=1e-6)
    wall = W * (1 + DELTA / tau) / (1 - 0.1 * (tau / 2 + RESTART))
    assert wall == pytest.approx(11.587298, abs=1e-6)

    job = JobFigures(work_hours=W, num_nodes=2, checkpoint_hours=DELTA, checkpoint_gb=CKPT_GB)
    est = run_estimate(offering(market=MarketKind.SPOT, price=SPOT_PRICE, rate=RATE), job, PARAMS)
    assert est.spot is not None
    assert est.spot.wall_hours == pytest.approx(wall)
    assert est.spot.interruptions == pytest.approx(1.158730, abs=1e-6)
    # preemption $ = $2/h x 2 nodes x (11.587298 - 10) = $6.349193
    assert est.preemption == pytest.approx(6.349193, abs=1e-6)
    # compute $2 x 2 x 10.12 = $40.48
    assert est.compute == pytest.approx(40.48)


def test_without_a_checkpoint_section_spot_restarts_from_scratch(network: NetworkPrices) -> None:
    # No checkpoint: a restart is a boot only (0.12 h) and all work is lost.
    # E[wall] = (M + R) x (exp(lam x W) - 1) = (20 + 0.12) x (e^0.5 - 1)
    #         = 20.12 x 0.6487213 = 13.052272 h; interruptions e^0.5 - 1 = 0.648721
    wall = (1 / RATE + 0.12) * math.expm1(RATE * W)
    assert wall == pytest.approx(13.052272, abs=1e-6)
    job = spec(estimated_hours=W, market="spot")
    o = offering(market=MarketKind.SPOT, price=SPOT_PRICE, rate=RATE)
    placed = plan(job, [o], network, params=PARAMS).placements[0]
    assert placed.spot is not None
    assert placed.spot.checkpoint_interval_hours is None
    assert placed.spot.wall_hours == pytest.approx(wall)
    assert placed.spot.interruptions == pytest.approx(0.648721, abs=1e-6)
    assert placed.restart_hours == pytest.approx(0.12)
    # preemption $2 x (13.052272 - 10) = $6.104544
    assert placed.cost.preemption == pytest.approx(6.104544, abs=1e-6)
    assert placed.cost.total == pytest.approx(20.24 + 6.104544, abs=1e-6)


# ---- commitments -------------------------------------------------------------------------------


class FixedCredit:
    """A commitment with ``per_hour`` $/h of unused headroom, whatever the offering."""

    def __init__(self, per_hour: float) -> None:
        self.per_hour = per_hour

    def covered_per_hour(self, offering: Offering, num_nodes: int) -> float:
        return self.per_hour


def test_credit_is_covered_rate_times_wall_hours() -> None:
    # $3/h x 2 nodes on-demand, 10.12 h: $1.50/h covered x 10.12 h = $15.18
    est = run_estimate(offering(), JobFigures(work_hours=10, num_nodes=2), PARAMS)
    assert credit_for(est, offering(), 2, FixedCredit(1.5)) == pytest.approx(15.18)
    assert credit_for(est, offering(), 2, FixedCredit(0.0)) == 0
    assert credit_for(est, offering(), 2, FixedCredit(-4.0)) == 0
    assert credit_for(est, offering(), 2, NoCommitments()) == 0


def test_credit_is_capped_at_the_placement_price_per_hour() -> None:
    # $100/h of headroom, but the placement costs $3 x 2 = $6/h: $6 x 10.12 h = $60.72,
    # all of the compute and no more.
    est = run_estimate(offering(), JobFigures(work_hours=10, num_nodes=2), PARAMS)
    assert credit_for(est, offering(), 2, FixedCredit(100.0)) == pytest.approx(60.72)


def test_credit_is_capped_at_compute_plus_preemption() -> None:
    # A hand-made estimate whose wall hours overstate what is paid: $2/h x 10 h = $20 covered,
    # but compute $5 + preemption $1 = $6 is all there is to offset.
    est = Estimate(wall_hours=10, boot_hours=0, restart_hours=0, compute=5.0, preemption=1.0)
    assert credit_for(est, offering(), 1, FixedCredit(2.0)) == pytest.approx(6.0)


def test_plan_subtracts_the_credit_from_the_total(network: NetworkPrices) -> None:
    # $60.72 compute - $1.50/h x 10.12 h = $60.72 - $15.18 = $45.54
    job = spec(estimated_hours=10, resources={"accelerators": "T4:1", "num_nodes": 2})
    placed = plan(
        job, [offering()], network, params=PARAMS, commitments=FixedCredit(1.5)
    ).placements[0]
    assert placed.cost.credit == pytest.approx(15.18)
    assert placed.cost.total == pytest.approx(45.54)


# ---- data gravity ------------------------------------------------------------------------------


def bucket(uri: str, region: str, size_gb: float, reads: int = 1) -> DataLocation:
    return DataLocation(uri=uri, region=region, size_gb=size_gb, reads=reads)


def test_an_input_read_three_times_is_pulled_once(network: NetworkPrices) -> None:
    # 100 GB from aws us-east-1 to us-west-2: AWS inter-region from North America $0.02/GB,
    # once: 100 x 0.02 = $2.00 (not $6.00 for three reads).
    data = Data(inputs=[bucket("s3://b/train", "us-east-1", 100, reads=3)])
    cost = DataPricer(data, network).price("aws", "us-west-2", checkpoint_writes=0, migrations=0)
    assert cost.usd == pytest.approx(2.00)
    (move,) = cost.moves
    assert move.gb == 100
    assert move.times == 1
    assert move.kind == "inter-region aws na->na"


def test_reading_in_the_data_region_is_free(network: NetworkPrices) -> None:
    data = Data(inputs=[bucket("s3://b/train", "us-east-1", 5000)])
    cost = DataPricer(data, network).price("aws", "us-east-1", checkpoint_writes=0, migrations=0)
    assert cost.usd == 0


def test_outputs_are_priced_from_the_placement_to_their_bucket(network: NetworkPrices) -> None:
    # input  100 GB us-east-1 -> us-west-2: 100 x $0.02 = $2.00
    # output  50 GB us-west-2 -> eu-west-1: 50 x $0.02 = $1.00 (AWS prices by source region)
    data = Data(
        inputs=[bucket("s3://b/train", "us-east-1", 100)],
        outputs=[bucket("s3://b/model", "eu-west-1", 50)],
    )
    cost = DataPricer(data, network).price("aws", "us-west-2", checkpoint_writes=0, migrations=0)
    by_what = {m.what: m for m in cost.moves}
    assert by_what["input s3://b/train"].usd == pytest.approx(2.00)
    assert by_what["output s3://b/model"].usd == pytest.approx(1.00)
    assert by_what["output s3://b/model"].src == "aws/us-west-2"
    assert cost.usd == pytest.approx(3.00)


def test_an_output_leaving_gcp_pays_internet_egress_per_gib(network: NetworkPrices) -> None:
    # 50 GB from gcp us-central1 to an s3 bucket: GCP Premium internet from NA, $0.12/GiB
    # = 0.12 / 1.073741824 $/GB = $0.1117587/GB; 50 x 0.1117587 = $5.587935
    data = Data(outputs=[bucket("s3://b/model", "us-east-1", 50)])
    cost = DataPricer(data, network).price("gcp", "us-central1", checkpoint_writes=0, migrations=0)
    assert cost.usd == pytest.approx(50 * 0.12 / (2**30 / 1e9))
    assert cost.usd == pytest.approx(5.587935, abs=1e-6)


def test_checkpoints_in_a_bucket_pay_for_writes_and_restores(network: NetworkPrices) -> None:
    # 10 GB checkpoints kept in s3 us-east-1, job in us-west-2:
    # 4 writes   x 10 GB = 40 GB us-west-2 -> us-east-1 x $0.02 = $0.80
    # 1.5 reads  x 10 GB = 15 GB us-east-1 -> us-west-2 x $0.02 = $0.30
    checkpoint = Checkpoint(uri="s3://ck/job", region="us-east-1", size_gb=10)
    pricer = DataPricer(Data(), network, checkpoint=checkpoint)
    assert pricer.moves_anything
    cost = pricer.price("aws", "us-west-2", checkpoint_writes=4, migrations=1.5)
    by_what = {m.what: m for m in cost.moves}
    writes, reads = (
        by_what["checkpoint writes s3://ck/job"],
        by_what["checkpoint reads s3://ck/job"],
    )
    assert (writes.gb, writes.times, writes.usd) == pytest.approx((40, 4, 0.80))
    assert (reads.gb, reads.times, reads.usd) == pytest.approx((15, 1.5, 0.30))
    assert cost.usd == pytest.approx(1.10)
    # In the bucket's own region the checkpoints move for free.
    assert pricer.price("aws", "us-east-1", checkpoint_writes=4, migrations=1.5).usd == 0


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint(uri="s3://ck/job", size_gb=10),  # no region: not priced
        Checkpoint(uri="file:///ck/job", region="us-east-1", size_gb=10),  # on the machine
        Checkpoint(size_gb=10),  # the default directory beside the job
    ],
)
def test_checkpoints_without_a_bucket_region_move_nothing(
    network: NetworkPrices, checkpoint: Checkpoint
) -> None:
    pricer = DataPricer(Data(), network, checkpoint=checkpoint)
    assert not pricer.moves_anything
    assert pricer.price("aws", "us-west-2", checkpoint_writes=4, migrations=2).moves == ()


def test_an_unknown_region_raises(network: NetworkPrices) -> None:
    data = Data(inputs=[bucket("s3://b/train", "us-east-1", 100)])
    with pytest.raises(UnknownRegionError, match="mars-1"):
        DataPricer(data, network).price("aws", "mars-1", checkpoint_writes=0, migrations=0)
    far = Data(inputs=[bucket("s3://b/train", "mars-1", 100)])
    with pytest.raises(UnknownRegionError, match="mars-1"):
        DataPricer(far, network).price("aws", "us-east-1", checkpoint_writes=0, migrations=0)


def test_moves_on_one_meter_share_its_monthly_tiers(network: NetworkPrices) -> None:
    # Two 8,000 GB inputs in aws us-east-1 read from gcp us-central1 both leave through the
    # "internet aws us-east-1" meter: first 10,240 GB at $0.09, the next at $0.085.
    # first:  8,000 x 0.09                       = $720.00
    # second: 2,240 x 0.09 + 5,760 x 0.085 = 201.60 + 489.60 = $691.20
    # total 16,000 GB = 10,240 x 0.09 + 5,760 x 0.085 = $1,411.20 (not 2 x $720 = $1,440)
    data = Data(
        inputs=[bucket("s3://b/a", "us-east-1", 8000), bucket("s3://b/b", "us-east-1", 8000)]
    )
    cost = DataPricer(data, network).price("gcp", "us-central1", checkpoint_writes=0, migrations=0)
    first, second = cost.moves
    assert first.usd == pytest.approx(720.00)
    assert second.usd == pytest.approx(691.20)
    assert cost.usd == pytest.approx(1411.20)
    src = Location(cloud="aws", region="us-east-1")
    dst = Location(cloud="gcp", region="us-central1")
    assert cost.usd == pytest.approx(network.transfer_cost(src, dst, 16000).usd)


def test_moves_on_different_meters_do_not_share_tiers(network: NetworkPrices) -> None:
    # Each input leaves through its own region's meter, so each starts at the first tier:
    # 8,000 x $0.09 from us-east-1 + 8,000 x $0.09 from us-east-2 = $1,440.00
    data = Data(
        inputs=[bucket("s3://b/a", "us-east-1", 8000), bucket("s3://b/b", "us-east-2", 8000)]
    )
    cost = DataPricer(data, network).price("gcp", "us-central1", checkpoint_writes=0, migrations=0)
    assert cost.usd == pytest.approx(1440.00)


# ---- explanations ------------------------------------------------------------------------------


def test_why_first_names_the_cheaper_rate_and_the_egress_that_outweighs_it(
    network: NetworkPrices,
) -> None:
    # 2,000 GB of data in s3 us-east-1; 10 h of work on one T4 node.
    # #1 us-east-1 at $4.00/h: 4.00 x 10.12 = $40.48, no data moves.
    # #2 us-west-2 at $3.50/h: 3.50 x 10.12 = $35.42 + 2,000 GB x $0.02 = $40.00 egress
    #    = $75.42. Gap $75.42 - $40.48 = $34.94; #2 is $4.00 - $3.50 = $0.50/h cheaper.
    job = spec(
        estimated_hours=10,
        data={"inputs": [{"uri": "s3://b/data", "region": "us-east-1", "size_gb": 2000}]},
    )
    near = offering(region="us-east-1", price=4.0)
    far = offering(region="us-west-2", price=3.5)
    first, second = plan(job, [far, near], network, params=PARAMS).placements
    assert first.offering == near
    assert first.cost.total == pytest.approx(40.48)
    assert second.cost.egress == pytest.approx(40.00)
    assert second.cost.total == pytest.approx(75.42)
    text = why_first(first, second)
    assert text.startswith("#1 aws us-east-1a g4dn.xlarge on-demand beats")
    assert "#2 aws us-west-2a g4dn.xlarge on-demand" in text
    assert "by $34.94" in text
    assert "#2 is $0.50/h cheaper" in text
    assert "moving the 2 TB input s3://b/data from aws/us-east-1 costs $40.00" in text
    assert text.index("$0.50/h cheaper") < text.index("but") < text.index("$40.00")
