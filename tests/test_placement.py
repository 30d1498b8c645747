"""plan(): the constraint stages, the ranking, diversity, and what a plan says when nothing fits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobs.loading import parse_spec
from jobs.spec import JobSpec
from providers.network import load_network_prices
from providers.offering import MarketKind, OfferedAccelerator, Offering
from scheduler.constraints import OfferingIndex, PlanContext, Stage
from scheduler.cost_model import CostParams
from scheduler.placement import Placement, Plan, hours_until, plan
from tests.offerings import offering

NET = load_network_prices()
BOOT = CostParams().boot_hours


def make_spec(**fields: Any) -> JobSpec:
    return parse_spec({"run": "python train.py", **fields}, source="t", now=datetime.now(UTC))


A100 = ("A100", 8, 40.0)
AWS_A100 = offering(instance_type="p4d.24xlarge", price=32.0, gpu=A100, vcpus=96)
AWS_A100_SPOT = offering(
    instance_type="p4d.24xlarge", price=12.0, gpu=A100, market=MarketKind.SPOT, rate=0.01
)
GCP_H100 = offering(
    cloud="gcp",
    region="us-central1",
    instance_type="a3-highgpu-8g",
    price=88.0,
    gpu=("H100", 8, 80.0),
    vcpus=208,
    memory_gb=1872,
)
GCP_TPU = offering(
    cloud="gcp", region="us-east5", instance_type="tpu-v5p-8", price=16.8, gpu=("tpu-v5p-8", 1, 95)
)
LOCAL = offering(cloud="local", region="local", zone="box", instance_type="local-8cpu", price=0)


def run(spec: JobSpec, offerings: list[Offering], **ctx: Any) -> Plan:
    return plan(spec, offerings, NET, ctx=PlanContext(**ctx))


def stage_of(result: Plan) -> Stage:
    """The stage that removed the last candidate."""
    assert result.placements == [] and result.feasible == 0
    return next(s.stage for s in result.funnel if s.left == 0)


# -- ranking ------------------------------------------------------------------------------


def test_on_demand_cost_is_price_times_nodes_times_work_plus_boot() -> None:
    spec = make_spec(resources={"accelerators": "A100:8", "num_nodes": 2}, estimated_hours=10)
    best = run(spec, [AWS_A100]).placements[0]
    assert best.expected_hours == pytest.approx(10 + BOOT["aws"])
    assert best.cost.compute == pytest.approx(32.0 * 2 * (10 + BOOT["aws"]))
    assert best.cost.preemption == best.cost.egress == best.cost.credit == 0
    assert best.cost.total == pytest.approx(best.cost.compute)
    assert best.price_per_hour == 64.0


def test_spot_wins_when_its_expected_total_is_lower_and_shows_its_preemption_cost() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"}, estimated_hours=10)
    result = run(spec, [AWS_A100, AWS_A100_SPOT])
    first, second = result.placements
    assert first.offering is AWS_A100_SPOT and second.offering is AWS_A100
    assert first.spot is not None and first.cost.preemption > 0
    assert first.cost.preemption == pytest.approx(12.0 * first.spot.overhead_hours)
    assert first.cost.total < second.cost.total


def test_very_unreliable_spot_loses_to_on_demand() -> None:
    flaky = AWS_A100_SPOT.model_copy(update={"price_per_hour": 30.0, "interruption_rate": 0.3})
    spec = make_spec(resources={"accelerators": "A100:8"}, estimated_hours=20)
    first = run(spec, [AWS_A100, flaky]).placements[0]
    assert first.offering is AWS_A100


def test_equal_cost_ties_broken_by_price_then_pool() -> None:
    a = offering(zone="us-east-1b", instance_type="m5.xlarge")
    b = offering(zone="us-east-1a", instance_type="m5.xlarge")
    result = run(make_spec(), [a, b])
    assert [p.offering.zone for p in result.placements] == ["us-east-1a", "us-east-1b"]


def test_free_local_machine_wins_a_cpu_job() -> None:
    result = run(make_spec(resources={"cpus": 2}), [offering(price=0.2), LOCAL])
    assert result.placements[0].offering is LOCAL
    assert result.placements[0].cost.total == 0


def test_a_cpu_job_is_not_put_on_cloud_gpus_but_may_use_the_local_machine() -> None:
    local_gpu = LOCAL.model_copy(
        update={"accelerators": OfferedAccelerator(name="T4", count=1, memory_gb=16)}
    )
    result = run(make_spec(), [AWS_A100, local_gpu])
    assert [p.offering for p in result.placements] == [local_gpu]
    assert result.placements[0].accelerator is None
    assert result.funnel[0].stage is Stage.ACCELERATORS and result.funnel[0].removed == 1


def test_any_of_ranks_every_alternative_by_cost() -> None:
    spec = make_spec(resources={"accelerators": {"any_of": ["H100:8", "A100:8"]}})
    result = run(spec, [GCP_H100, AWS_A100, GCP_TPU])
    assert [p.offering for p in result.placements] == [AWS_A100, GCP_H100]
    assert [p.accelerator.name for p in result.placements if p.accelerator] == ["A100", "H100"]


# -- constraint stages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "offerings", "stage"),
    [
        ({"resources": {"accelerators": "H100:8"}}, [AWS_A100], Stage.ACCELERATORS),
        ({"resources": {"accelerators": "A100:16"}}, [AWS_A100], Stage.ACCELERATORS),
        ({"resources": {"accelerators": "tpu-v5p-16"}}, [GCP_TPU], Stage.ACCELERATORS),
        (
            {"resources": {"accelerators": "A100:8", "gpu_memory_gb": 80}},
            [AWS_A100],
            Stage.GPU_MEMORY,
        ),
        ({"resources": {"num_nodes": 2}}, [LOCAL.model_copy(update={"max_nodes": 1})], Stage.NODES),
        ({"resources": {"cpus": 16}}, [offering()], Stage.CPUS),
        ({"resources": {"memory_gb": 64}}, [offering()], Stage.MEMORY),
        ({"constraints": {"clouds": ["gcp"]}}, [offering()], Stage.CLOUDS),
        ({"constraints": {"regions": ["eu-west-1"]}}, [offering()], Stage.REGIONS),
        ({"constraints": {"zones": ["us-east-1b"]}}, [offering()], Stage.ZONES),
        ({"market": "spot"}, [offering()], Stage.MARKET),
        ({"market": "on_demand"}, [offering(market=MarketKind.SPOT)], Stage.MARKET),
        ({"constraints": {"max_price_per_hour": 0.5}}, [offering()], Stage.MAX_PRICE),
        ({"constraints": {"max_total_cost": 0.5}}, [offering()], Stage.MAX_TOTAL),
    ],
)
def test_each_constraint_names_itself_when_it_removes_the_last_candidate(
    fields: dict[str, Any], offerings: list[Offering], stage: Stage
) -> None:
    assert stage_of(run(make_spec(**fields), offerings)) is stage


def test_a_node_with_more_gpus_than_asked_still_fits() -> None:
    result = run(make_spec(resources={"accelerators": "A100:4"}), [AWS_A100])
    assert result.placements[0].accelerator is not None
    assert result.placements[0].accelerator.count == 4


def test_max_price_per_hour_counts_every_node() -> None:
    spec = make_spec(resources={"num_nodes": 3}, constraints={"max_price_per_hour": 2.5})
    assert stage_of(run(spec, [offering(price=1.0)])) is Stage.MAX_PRICE
    spec = make_spec(resources={"num_nodes": 2}, constraints={"max_price_per_hour": 2.5})
    assert run(spec, [offering(price=1.0)]).feasible == 1


def test_nothing_fits_names_the_constraint_and_the_nearest_miss() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"}, constraints={"max_price_per_hour": 2})
    pricier = AWS_A100.model_copy(update={"zone": "us-east-1b", "price_per_hour": 40.0})
    result = run(spec, [pricier, AWS_A100_SPOT, GCP_H100])
    assert result.why_none() == (
        "nothing satisfies max_price_per_hour=2 for A100:8;"
        " the cheapest is $12.00/h, aws us-east-1a p4d.24xlarge spot"
    )
    assert result.funnel_text() == (
        "3 offerings | accelerators -1 | max_price_per_hour -2 -> 0 feasible"
    )


def test_missing_accelerator_counts_are_listed() -> None:
    result = run(make_spec(resources={"accelerators": "A100:16"}), [AWS_A100])
    assert "(offers A100:8, job needs A100:16)" in result.why_none()
    result = run(make_spec(resources={"accelerators": "B200:8"}), [AWS_A100])
    assert result.why_none() == "nothing satisfies accelerators for B200:8; no offering has B200"


def test_no_offerings_at_all() -> None:
    assert run(make_spec(), []).why_none() == "no provider offers anything"


def test_deadline_too_short_for_any_placement() -> None:
    spec = make_spec(estimated_hours=10)
    result = run(spec, [offering()], hours_left=5.0)
    assert stage_of(result) is Stage.DEADLINE
    assert result.why_none().startswith(
        "nothing satisfies deadline=5.00h from now for no accelerators;"
    )
    assert "the soonest finish is 10.12 h" in result.why_none()


def test_a_deadline_with_room_keeps_spot_one_without_gives_on_demand() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"}, estimated_hours=10)
    roomy = run(spec, [AWS_A100, AWS_A100_SPOT], hours_left=48.0).placements[0]
    assert roomy.offering is AWS_A100_SPOT
    tight = run(spec, [AWS_A100, AWS_A100_SPOT], hours_left=10.2).placements[0]
    assert tight.offering is AWS_A100


def test_expected_interruptions_over_the_limit_rule_spot_out() -> None:
    flaky = AWS_A100_SPOT.model_copy(update={"interruption_rate": 0.2})
    spec = make_spec(
        resources={"accelerators": "A100:8"},
        estimated_hours=10,
        constraints={"max_interruptions": 1},
        checkpoint={"write_seconds": 60},
    )
    result = run(spec, [flaky])
    assert stage_of(result) is Stage.INTERRUPTIONS
    assert "the fewest expected is 2." in result.why_none()


def test_preemptions_already_suffered_count_against_max_interruptions() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"}, constraints={"max_interruptions": 2})
    assert run(spec, [AWS_A100_SPOT], interruptions_so_far=1).feasible == 1
    used_up = run(spec, [AWS_A100_SPOT], interruptions_so_far=2)
    assert stage_of(used_up) is Stage.MARKET
    assert "preempted 2 times (max_interruptions=2)" in used_up.why_none()


def test_blocked_pools_and_launchable_clouds() -> None:
    spec = make_spec(resources={"accelerators": "A100:8"})
    blocked = run(spec, [AWS_A100_SPOT], blocked_pools=frozenset({AWS_A100_SPOT.pool}))
    assert stage_of(blocked) is Stage.BLOCKED
    local_only = run(spec, [AWS_A100_SPOT], launchable_clouds=frozenset({"local"}))
    assert stage_of(local_only) is Stage.LAUNCHABLE
    assert "cannot launch machines on aws" in local_only.why_none()


def test_spot_that_cannot_make_progress_is_removed() -> None:
    # Ten preemptions an hour, each costing a 7-minute restart plus half an interval:
    # 1 - 10 * (tau/2 + R) < 0, so the expected wall time is infinite.
    hopeless = AWS_A100_SPOT.model_copy(update={"interruption_rate": 10.0})
    spec = make_spec(
        resources={"accelerators": "A100:8"}, estimated_hours=100, checkpoint={"write_seconds": 60}
    )
    assert stage_of(run(spec, [hopeless])) is Stage.PROGRESS


def test_data_in_a_region_the_network_table_does_not_know_removes_the_placement() -> None:
    nowhere = offering(region="xx-north-9")
    spec = make_spec(data={"inputs": [{"uri": "s3://b/d", "region": "us-east-1", "size_gb": 10}]})
    result = run(spec, [nowhere])
    assert stage_of(result) is Stage.NETWORK
    assert "xx-north-9" in result.why_none()
    assert run(make_spec(), [nowhere]).feasible == 1  # no data: nothing to price


# -- data gravity ---------------------------------------------------------------------------


def test_data_pulls_the_job_to_its_region_when_egress_outweighs_the_price_gap() -> None:
    near = offering(region="us-east-1", price=1.10)
    far = offering(region="eu-west-1", price=1.00)
    spec = make_spec(
        estimated_hours=10,
        data={"inputs": [{"uri": "s3://b/d", "region": "us-east-1", "size_gb": 500}]},
    )
    result = run(spec, [far, near])
    assert result.placements[0].offering is near
    loser = result.placements[1]
    assert loser.cost.egress == pytest.approx(500 * 0.02)  # AWS inter-region, $0.02/GB
    small = make_spec(
        estimated_hours=10,
        data={"inputs": [{"uri": "s3://b/d", "region": "us-east-1", "size_gb": 1}]},
    )
    assert run(small, [far, near]).placements[0].offering is far


# -- diversity and output -------------------------------------------------------------------


def test_alternatives_prefer_other_regions_shapes_and_markets_over_more_zones() -> None:
    zones = [offering(zone=f"us-east-1{z}", price=1.0 + i / 100) for i, z in enumerate("abcd")]
    other_region = offering(region="us-west-2", price=1.5)
    other_shape = offering(instance_type="m6i.xlarge", price=1.6)
    result = run(make_spec(), [*zones, other_region, other_shape])
    order = [
        (p.offering.region, p.offering.instance_type, p.offering.zone) for p in result.placements
    ]
    assert order[:3] == [
        ("us-east-1", "m5.xlarge", "us-east-1a"),
        ("us-west-2", "m5.xlarge", "us-west-2a"),
        ("us-east-1", "m6i.xlarge", "us-east-1a"),
    ]
    assert [z for _, _, z in order[3:]] == ["us-east-1b", "us-east-1c", "us-east-1d"]
    assert result.placements[0].cost.total == min(p.cost.total for p in result.placements)


def test_the_same_pool_from_two_sources_is_kept_once_and_keep_limits_the_list() -> None:
    cheaper = offering(price=0.9)
    result = run(make_spec(), [offering(price=1.0), cheaper])
    assert [p.offering for p in result.placements] == [cheaper]
    many = [offering(zone=f"us-east-1{c}", price=1 + i) for i, c in enumerate("abcdef")]
    assert len(plan(make_spec(), many, NET, keep=3).placements) == 3


def test_a_plan_survives_a_json_round_trip() -> None:
    spec = make_spec(
        resources={"accelerators": "A100:8"},
        checkpoint={"uri": "s3://ck/run", "region": "us-east-1", "size_gb": 20},
        data={"inputs": [{"uri": "gs://d/x", "region": "us-central1", "size_gb": 100}]},
    )
    result = run(spec, [AWS_A100_SPOT])
    best = result.placements[0]
    again = Placement.model_validate_json(best.model_dump_json())
    assert again == best
    assert {m.what.split()[0] for m in again.data_moves} == {"input", "checkpoint"}
    assert Plan.model_validate_json(result.model_dump_json()) == result


def test_offering_index_is_reusable_across_plans() -> None:
    index = OfferingIndex.build([AWS_A100, GCP_H100, GCP_TPU, LOCAL])
    assert len(index) == 4 and index.counts_of("A100") == [8]
    tpu = plan(make_spec(resources={"accelerators": "tpu-v5p-8"}), index, NET)
    gpu = plan(make_spec(resources={"accelerators": "H100:8"}), index, NET)
    assert tpu.placements[0].offering is GCP_TPU and gpu.placements[0].offering is GCP_H100


def test_hours_until() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert hours_until(None, now) is None
    assert hours_until(now + timedelta(hours=6, minutes=30), now) == 6.5


def test_extending_an_index_plans_like_building_it_whole() -> None:
    base = [AWS_A100, AWS_A100_SPOT, GCP_H100, GCP_TPU, offering(price=0.3)]
    local_gpu = LOCAL.model_copy(
        update={"accelerators": OfferedAccelerator(name="A100", count=8, memory_gb=40)}
    )
    extra = [LOCAL, local_gpu]
    index = OfferingIndex.build(base)
    extended = index.extend(extra)
    whole = OfferingIndex.build(base + extra)
    assert len(extended) == len(whole) == 7 and len(index) == 5
    for fields in (
        {},
        {"resources": {"accelerators": "A100:8"}},
        {"constraints": {"regions": ["local"]}},
    ):
        spec = make_spec(**fields)
        assert plan(spec, extended, NET) == plan(spec, whole, NET)
    assert plan(make_spec(), index, NET).placements[0].offering.cloud == "aws"  # base untouched
