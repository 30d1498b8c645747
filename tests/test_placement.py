"""plan(): filtering offerings by a spec's hard limits and ranking the rest by cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.accelerators import parse_accelerator
from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.offering import MarketKind, OfferedAccelerator, Offering, PriceSource
from scheduler.placement import CostBreakdown, Plan, Rejection, hours_until, plan

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def make_spec(**fields: Any) -> JobSpec:
    return parse_spec({"run": "python train.py", **fields}, source="t", now=datetime.now(UTC))


def offering(
    *,
    cloud: str = "aws",
    region: str = "us-east-1",
    zone: str = "us-east-1a",
    instance_type: str = "m5.xlarge",
    price: float = 1.0,
    market: MarketKind = MarketKind.ON_DEMAND,
    gpu: tuple[str, int, float] | None = None,
    vcpus: float = 4,
    memory_gb: float = 16,
) -> Offering:
    return Offering(
        cloud=cloud,
        region=region,
        zone=zone,
        instance_type=instance_type,
        accelerators=None
        if gpu is None
        else OfferedAccelerator(name=gpu[0], count=gpu[1], memory_gb=gpu[2]),
        vcpus=vcpus,
        memory_gb=memory_gb,
        market=market,
        price_per_hour=price,
        as_of=AS_OF,
        price_source=PriceSource.CONFIGURED,
    )


AWS_A100 = offering(instance_type="p4d.24xlarge", price=32.0, gpu=("A100", 8, 40), vcpus=96)
AWS_A100_SPOT = offering(
    instance_type="p4d.24xlarge", price=12.0, gpu=("A100", 8, 40), market=MarketKind.SPOT
)
GCP_H100 = offering(
    cloud="gcp",
    region="us-central1",
    zone="us-central1-a",
    instance_type="a3-highgpu-8g",
    price=88.0,
    gpu=("H100", 8, 80),
    vcpus=208,
    memory_gb=1872,
)
GCP_TPU = offering(
    cloud="gcp",
    region="us-east5",
    zone="us-east5-a",
    instance_type="tpu-v5p-8",
    price=16.8,
    gpu=("tpu-v5p-8", 1, 95),
)
LOCAL = offering(cloud="local", region="local", zone="local", instance_type="local", price=0)


def only_reason(result: Plan) -> str:
    assert result.placements == []
    assert len(result.rejected) == 1
    return result.rejected[0].reason


# -- ranking and cost ----------------------------------------------------------------------


def test_ranked_cheapest_first() -> None:
    offers = [
        offering(instance_type="big", price=3.0),
        offering(instance_type="cheap", price=0.5),
        offering(instance_type="mid", price=1.5),
    ]
    result = plan(make_spec(), offers, deadline_hours=None)
    assert [p.offering.instance_type for p in result.placements] == ["cheap", "mid", "big"]
    totals = [p.cost.total for p in result.placements]
    assert totals == sorted(totals)
    assert result.rejected == []


def test_equal_cost_ties_broken_by_pool() -> None:
    offers = [offering(zone="us-east-1b"), offering(zone="us-east-1a")]
    result = plan(make_spec(), offers, deadline_hours=None)
    assert [p.offering.zone for p in result.placements] == ["us-east-1a", "us-east-1b"]


def test_compute_cost_is_price_times_nodes_times_hours() -> None:
    spec = make_spec(resources={"num_nodes": 3}, estimated_hours=2.5)
    (placement,) = plan(spec, [offering(price=1.5)], deadline_hours=None).placements
    assert placement.cost.compute == pytest.approx(1.5 * 3 * 2.5)
    assert placement.cost.total == pytest.approx(11.25)
    assert placement.price_per_hour == pytest.approx(4.5)
    assert placement.num_nodes == 3
    assert placement.expected_hours == 2.5


def test_cost_breakdown_total() -> None:
    cost = CostBreakdown(compute=10, preemption=2, egress=1.5, credit=4)
    assert cost.total == pytest.approx(9.5)
    assert CostBreakdown(compute=3).total == 3


def test_free_local_offering_wins() -> None:
    result = plan(make_spec(), [AWS_A100_SPOT, LOCAL, offering()], deadline_hours=None)
    assert result.placements[0].offering.cloud == "local"
    assert result.placements[0].cost.total == 0


def test_placement_describe() -> None:
    (placement,) = plan(make_spec(), [AWS_A100_SPOT], deadline_hours=None).placements
    assert placement.describe() == "aws us-east-1a p4d.24xlarge spot"


def test_no_offerings() -> None:
    result = plan(make_spec(), [], deadline_hours=None)
    assert result.placements == []
    assert result.rejected == []
    assert result.why_none() == "no provider offers anything"


# -- location filters ----------------------------------------------------------------------


def test_clouds_filter() -> None:
    spec = make_spec(constraints={"clouds": ["gcp"]})
    result = plan(spec, [offering(), GCP_H100], deadline_hours=None)
    assert [p.offering.cloud for p in result.placements] == ["gcp"]
    assert [r.reason for r in result.rejected] == ["cloud aws not in allowed clouds"]


def test_regions_filter() -> None:
    spec = make_spec(constraints={"regions": ["us-west-2"]})
    keep = offering(region="us-west-2", zone="us-west-2a")
    result = plan(spec, [offering(), keep], deadline_hours=None)
    assert [p.offering.region for p in result.placements] == ["us-west-2"]
    assert [r.reason for r in result.rejected] == ["region us-east-1 not allowed"]


def test_zones_filter() -> None:
    spec = make_spec(constraints={"zones": ["us-east-1b"]})
    result = plan(spec, [offering(), offering(zone="us-east-1b")], deadline_hours=None)
    assert [p.offering.zone for p in result.placements] == ["us-east-1b"]
    assert [r.reason for r in result.rejected] == ["zone us-east-1a not allowed"]


# -- market --------------------------------------------------------------------------------


def test_spot_job_rejects_on_demand() -> None:
    result = plan(make_spec(market="spot"), [AWS_A100, AWS_A100_SPOT], deadline_hours=None)
    assert [p.offering.market for p in result.placements] == [MarketKind.SPOT]
    assert [r.reason for r in result.rejected] == ["job asks for spot"]


def test_on_demand_job_rejects_spot() -> None:
    spec = make_spec(market="on_demand")
    result = plan(spec, [AWS_A100, AWS_A100_SPOT], deadline_hours=None)
    assert [p.offering.market for p in result.placements] == [MarketKind.ON_DEMAND]
    assert [r.reason for r in result.rejected] == ["job asks for on-demand"]


def test_auto_market_takes_both() -> None:
    result = plan(make_spec(market="auto"), [AWS_A100, AWS_A100_SPOT], deadline_hours=None)
    assert [p.offering.market for p in result.placements] == [
        MarketKind.SPOT,
        MarketKind.ON_DEMAND,
    ]


# -- accelerators --------------------------------------------------------------------------


def test_gpu_job_rejects_cpu_only_offering() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"})
    assert only_reason(plan(spec, [offering()], deadline_hours=None)) == (
        "no accelerators here (job needs A100:8)"
    )


def test_gpu_job_rejects_too_few_gpus() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"})
    small = offering(gpu=("A100", 4, 40))
    assert only_reason(plan(spec, [small], deadline_hours=None)) == (
        "offers A100:4, job needs A100:8"
    )


def test_gpu_job_accepts_more_gpus_than_asked() -> None:
    spec = make_spec(resources={"accelerators": "A100:4"})
    (placement,) = plan(spec, [AWS_A100], deadline_hours=None).placements
    assert placement.accelerator == parse_accelerator("A100:4")


def test_gpu_job_rejects_other_model() -> None:
    spec = make_spec(resources={"accelerators": "H100:8"})
    assert only_reason(plan(spec, [AWS_A100], deadline_hours=None)) == (
        "offers A100:8, job needs H100:8"
    )


def test_any_of_takes_every_matching_alternative() -> None:
    spec = make_spec(resources={"accelerators": {"any_of": ["A100:8", "H100:8", "tpu-v5p-8"]}})
    cpu = offering(instance_type="m5.xlarge")
    l4 = offering(instance_type="g6.xlarge", gpu=("L4", 1, 24))
    result = plan(spec, [GCP_H100, cpu, GCP_TPU, AWS_A100, l4], deadline_hours=None)
    chosen = {p.offering.instance_type: str(p.accelerator) for p in result.placements}
    assert chosen == {
        "a3-highgpu-8g": "H100:8",
        "tpu-v5p-8": "tpu-v5p-8",
        "p4d.24xlarge": "A100:8",
    }
    assert [p.offering.price_per_hour for p in result.placements] == [16.8, 32.0, 88.0]
    reasons = sorted(r.reason for r in result.rejected)
    assert reasons == [
        "no accelerators here (job needs A100:8 or H100:8 or tpu-v5p-8)",
        "offers L4:1, job needs A100:8 or H100:8 or tpu-v5p-8",
    ]


def test_tpu_slice_must_match_name() -> None:
    spec = make_spec(resources={"accelerators": "tpu-v5p-16"})
    assert only_reason(plan(spec, [GCP_TPU], deadline_hours=None)) == (
        "offers tpu-v5p-8:1, job needs tpu-v5p-16"
    )


def test_gpu_memory_filter() -> None:
    spec = make_spec(resources={"accelerators": ["A100:8", "H100:8"], "gpu_memory_gb": 80})
    result = plan(spec, [AWS_A100, GCP_H100], deadline_hours=None)
    assert [p.offering.instance_type for p in result.placements] == ["a3-highgpu-8g"]
    assert [r.reason for r in result.rejected] == ["A100 has 40 GB per device < 80 GB"]


def test_cpu_only_job_has_no_accelerator_in_placement() -> None:
    (placement,) = plan(make_spec(), [offering()], deadline_hours=None).placements
    assert placement.accelerator is None


# -- cpus / memory -------------------------------------------------------------------------


def test_cpus_filter() -> None:
    spec = make_spec(resources={"cpus": 8})
    result = plan(
        spec, [offering(vcpus=4), offering(instance_type="x8", vcpus=8)], deadline_hours=None
    )
    assert [p.offering.vcpus for p in result.placements] == [8]
    assert [r.reason for r in result.rejected] == ["4 vCPUs < 8 needed"]


def test_memory_filter() -> None:
    spec = make_spec(resources={"memory_gb": 32})
    offers = [offering(memory_gb=16), offering(instance_type="m32", memory_gb=32)]
    result = plan(spec, offers, deadline_hours=None)
    assert [p.offering.memory_gb for p in result.placements] == [32]
    assert [r.reason for r in result.rejected] == ["16 GB RAM < 32 GB needed"]


# -- price, total cost, deadline -------------------------------------------------------------


def test_max_price_per_hour() -> None:
    spec = make_spec(constraints={"max_price_per_hour": 2})
    offers = [offering(price=2.0), offering(instance_type="dear", price=2.5)]
    result = plan(spec, offers, deadline_hours=None)
    assert [p.offering.price_per_hour for p in result.placements] == [2.0]  # limit inclusive
    assert [r.reason for r in result.rejected] == ["$2.50/h > max_price_per_hour $2.00"]


def test_max_price_per_hour_counts_every_node() -> None:
    one_node = make_spec(constraints={"max_price_per_hour": 5})
    two_nodes = make_spec(resources={"num_nodes": 2}, constraints={"max_price_per_hour": 5})
    assert len(plan(one_node, [offering(price=3.0)], deadline_hours=None).placements) == 1
    assert only_reason(plan(two_nodes, [offering(price=3.0)], deadline_hours=None)) == (
        "$6.00/h > max_price_per_hour $5.00"
    )


def test_max_total_cost() -> None:
    spec = make_spec(estimated_hours=10, constraints={"max_total_cost": 15})
    offers = [offering(price=1.5), offering(instance_type="dear", price=2.0)]
    result = plan(spec, offers, deadline_hours=None)
    assert [p.cost.total for p in result.placements] == [pytest.approx(15.0)]
    assert [r.reason for r in result.rejected] == ["expected $20.00 > max_total_cost $15.00"]


def test_max_total_cost_counts_every_node() -> None:
    spec = make_spec(
        resources={"num_nodes": 4}, estimated_hours=2, constraints={"max_total_cost": 10}
    )
    assert only_reason(plan(spec, [offering(price=1.5)], deadline_hours=None)) == (
        "expected $12.00 > max_total_cost $10.00"
    )


def test_deadline_shorter_than_estimate() -> None:
    spec = make_spec(estimated_hours=10)
    assert only_reason(plan(spec, [offering()], deadline_hours=5)) == (
        "expected 10.00 h > 5.00 h to the deadline"
    )


@pytest.mark.parametrize("deadline_hours", [None, 10, 48.5])
def test_deadline_long_enough(deadline_hours: float | None) -> None:
    spec = make_spec(estimated_hours=10)
    assert len(plan(spec, [offering()], deadline_hours=deadline_hours).placements) == 1


def test_hours_until() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert hours_until(None, now) is None
    assert hours_until(now + timedelta(minutes=90), now) == pytest.approx(1.5)
    assert hours_until(now - timedelta(hours=2), now) == pytest.approx(-2)


# -- why_none ------------------------------------------------------------------------------


def test_why_none_counts_reasons() -> None:
    spec = make_spec(market="spot", resources={"accelerators": "A100:8"})
    result = plan(spec, [offering(), AWS_A100, GCP_H100, AWS_A100_SPOT], deadline_hours=None)
    assert len(result.placements) == 1
    # Checked against only the rejections, as when nothing fits.
    nothing = Plan(placements=[], rejected=result.rejected)
    assert nothing.why_none() == "job asks for spot (3 offerings)"


def test_why_none_lists_each_reason_sorted() -> None:
    spec = make_spec(
        resources={"accelerators": "A100:8"},
        constraints={"clouds": ["aws"], "max_price_per_hour": 20},
    )
    cpu_a = offering(instance_type="c1")
    cpu_b = offering(instance_type="c2")
    result = plan(spec, [GCP_H100, cpu_a, AWS_A100, cpu_b], deadline_hours=None)
    assert result.placements == []
    assert result.why_none() == (
        "$32.00/h > max_price_per_hour $20.00 (1 offering); "
        "cloud gcp not in allowed clouds (1 offering); "
        "no accelerators here (job needs A100:8) (2 offerings)"
    )


def test_rejections_keep_the_offering() -> None:
    spec = make_spec(constraints={"clouds": ["gcp"]})
    (rejection,) = plan(spec, [AWS_A100], deadline_hours=None).rejected
    assert isinstance(rejection, Rejection)
    assert rejection.offering == AWS_A100


def test_offering_pool() -> None:
    assert AWS_A100_SPOT.pool == "aws/us-east-1a/p4d.24xlarge/spot"


def test_multi_node_job_rejected_where_too_few_nodes() -> None:
    single = LOCAL.model_copy(update={"max_nodes": 1})
    spec = make_spec(resources={"num_nodes": 2})
    assert only_reason(plan(spec, [single], deadline_hours=None)) == "2 nodes needed, 1 available"
    (placement,) = plan(make_spec(), [single], deadline_hours=None).placements
    assert placement.num_nodes == 1


def test_gcp_n1_pools_tell_attached_gpus_apart() -> None:
    t4 = offering(
        cloud="gcp", zone="us-central1-a", instance_type="n1-standard-8", gpu=("T4", 1, 16)
    )
    v100 = t4.model_copy(
        update={"accelerators": OfferedAccelerator(name="V100", count=1, memory_gb=16)}
    )
    assert t4.pool == "gcp/us-central1-a/n1-standard-8+T4:1/on_demand"
    assert t4.pool != v100.pool
    assert GCP_H100.pool == "gcp/us-central1-a/a3-highgpu-8g/on_demand"
