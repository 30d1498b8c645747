"""cluster_policy: warm reuse priced against the plan, idle stop, orphans, loss, head address;
and the settings that feed it (address template, launch clouds, idle stop, boot timeout)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.loading import parse_spec
from providers.instances import Instance, InstanceState
from providers.network import load_network_prices
from providers.offering import MarketKind, Offering
from scheduler.cluster_policy import (
    CLUSTER_TAG,
    choose,
    cluster_name,
    head_address,
    idle_expired,
    lost,
    orphans,
    shape_of,
    warm_saving,
)
from scheduler.config import ConfigError, check_address_template, load_settings
from scheduler.placement import CostBreakdown, Placement, plan
from scheduler.records import ClusterRecord, ClusterState
from tests.offerings import offering

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NET = load_network_prices()


def placement(o: Offering, *, total: float, nodes: int = 1, boot: float = 0.12) -> Placement:
    """A placement whose expected total is ``total`` (all of it compute)."""
    return Placement(
        offering=o,
        accelerator=None,
        num_nodes=nodes,
        expected_hours=10.0,
        boot_hours=boot,
        cost=CostBreakdown(compute=total),
    )


def cluster(
    o: Offering,
    *,
    nodes: int = 1,
    state: ClusterState = ClusterState.UP,
    attempt_id: int | None = None,
    idle_for: timedelta = timedelta(0),
    name: str = "c",
) -> ClusterRecord:
    return ClusterRecord(
        name=name,
        cloud=o.cloud,
        region=o.region,
        zone=o.zone,
        instance_type=o.instance_type,
        market=str(o.market),
        num_nodes=nodes,
        price_per_hour=o.price_per_hour,
        state=state,
        attempt_id=attempt_id,
        created_at=NOW - timedelta(hours=5),
        last_used_at=NOW - idle_for,
    )


def instance(
    instance_id: str,
    state: InstanceState = InstanceState.RUNNING,
    *,
    tags: dict[str, str] | None = None,
    interrupted: bool = False,
    detail: str = "",
    public_ip: str | None = None,
    private_ip: str | None = None,
) -> Instance:
    return Instance(
        cloud="aws",
        zone="us-east-1a",
        instance_id=instance_id,
        instance_type="m5.xlarge",
        state=state,
        spot=False,
        tags=tags or {},
        interrupted=interrupted,
        detail=detail,
        public_ip=public_ip,
        private_ip=private_ip,
    )


# -- names and shapes ------------------------------------------------------------------------


def test_cluster_name_is_derived_from_the_attempt() -> None:
    assert cluster_name("ab12cd", 3) == "sched-ab12cd-3"
    assert cluster_name("ab12cd", 3) == cluster_name("ab12cd", 3)
    assert cluster_name("ab12cd", 4) != cluster_name("ab12cd", 3)


def test_shape_of_names_cloud_zone_type_market_and_nodes() -> None:
    o = offering(zone="us-east-1c", instance_type="g5.xlarge", market=MarketKind.SPOT)
    assert shape_of(placement(o, total=1.0, nodes=3)) == {
        "cloud": "aws",
        "zone": "us-east-1c",
        "instance_type": "g5.xlarge",
        "market": "spot",
        "num_nodes": 3,
    }


# -- warm saving and choice ------------------------------------------------------------------


def test_warm_saving_is_price_times_nodes_times_boot_hours() -> None:
    # $2.50/h per node, 3 nodes, 0.2 h boot: 2.5 * 3 * 0.2 = $1.50 not paid.
    p = placement(offering(price=2.5), total=100.0, nodes=3, boot=0.2)
    assert warm_saving(p) == pytest.approx(1.5)
    assert warm_saving(placement(offering(price=2.5), total=1.0, boot=0.0)) == 0.0


def test_choose_without_warm_clusters_takes_the_plan_first() -> None:
    a = placement(offering(zone="us-east-1a"), total=10.0)
    b = placement(offering(zone="us-east-1b"), total=10.5)
    choice = choose([a, b], [])
    assert choice.placement is a
    assert (choice.warm, choice.saving, choice.expected) == (False, 0.0, 10.0)


def test_choose_refuses_an_empty_plan() -> None:
    with pytest.raises(ValueError, match="no placements"):
        choose([], [])


def test_a_warm_dearer_placement_wins_when_its_saving_outweighs_the_difference() -> None:
    a = placement(offering(zone="us-east-1a", price=1.0), total=10.0)
    # b is $0.50 dearer; its warm cluster saves 5.0 $/h * 0.12 h = $0.60: 10.5 - 0.6 = 9.9.
    ob = offering(zone="us-east-1b", price=5.0)
    b = placement(ob, total=10.5)
    choice = choose([a, b], [cluster(ob)])
    assert choice.placement is b
    assert choice.warm
    assert choice.saving == pytest.approx(0.6)
    assert choice.expected == pytest.approx(9.9)


def test_a_warm_placement_whose_saving_is_smaller_than_the_difference_loses() -> None:
    a = placement(offering(zone="us-east-1a", price=1.0), total=10.0)
    # Saves 2.0 * 0.12 = $0.24 on a $0.50 difference: 10.26 > 10.0.
    ob = offering(zone="us-east-1b", price=2.0)
    choice = choose([a, placement(ob, total=10.5)], [cluster(ob)])
    assert choice.placement is a
    assert not choice.warm and choice.saving == 0.0


def test_a_tie_keeps_the_plan_order() -> None:
    a = placement(offering(zone="us-east-1a", price=1.0), total=10.0)
    # Saves exactly the difference: 5.0 * 0.12 = 0.60 = 10.6 - 10.0.
    ob = offering(zone="us-east-1b", price=5.0)
    choice = choose([a, placement(ob, total=10.6)], [cluster(ob)])
    assert choice.placement is a
    assert not choice.warm
    # A warm first placement stays first when a later one costs the same after saving.
    oa = offering(zone="us-east-1a", price=5.0)
    warm_first = placement(oa, total=10.6)
    later = placement(offering(zone="us-east-1b"), total=10.0)
    choice = choose([warm_first, later], [cluster(oa)])
    assert choice.placement is warm_first and choice.warm


def test_choose_over_a_real_plan_counts_nodes_in_the_saving() -> None:
    spec = parse_spec({"run": "x", "estimated_hours": 10, "resources": {"num_nodes": 2}}, now=NOW)
    gcp = offering(cloud="gcp", region="us-central1", instance_type="n2-standard-4", price=1.0)
    aws_a = offering(zone="us-east-1a", price=1.0)
    aws_b = offering(zone="us-east-1b", price=1.01)
    placements = plan(spec, [aws_a, aws_b, gcp], NET).placements
    # On demand, 2 nodes, 10 h of work: gcp 1.0*2*(10+0.1) = 20.2,
    # aws 1a 1.0*2*(10+0.12) = 20.24, aws 1b 1.01*2*(10.12) = 20.4424.
    assert [p.offering.zone for p in placements] == ["us-central1a", "us-east-1a", "us-east-1b"]
    assert [p.cost.total for p in placements] == pytest.approx([20.2, 20.24, 20.4424])
    assert choose(placements, []).placement.offering.zone == "us-central1a"
    # A warm 2-node aws 1a saves 1.0 * 2 * 0.12 = 0.24: 20.24 - 0.24 = 20.0 < 20.2.
    choice = choose(placements, [cluster(aws_a, nodes=2)])
    assert choice.placement.offering.zone == "us-east-1a"
    assert choice.saving == pytest.approx(0.24)
    assert choice.expected == pytest.approx(20.0)
    # A warm 2-node aws 1b saves 1.01 * 2 * 0.12 = 0.2424: 20.4424 - 0.2424 = 20.2, a tie.
    tie = choose(placements, [cluster(aws_b, nodes=2)])
    assert tie.placement.offering.zone == "us-central1a" and not tie.warm
    # A 1-node cluster in 1a is not the 2-node shape the plan needs.
    assert not choose(placements, [cluster(aws_a, nodes=1)]).warm


@pytest.mark.parametrize(
    "change",
    [
        {"zone": "us-east-1c"},
        {"instance_type": "m5.2xlarge"},
        {"market": "spot"},
        {"num_nodes": 2},
        {"cloud": "gcp"},
        {"state": ClusterState.LAUNCHING},
        {"state": ClusterState.TERMINATED},
    ],
)
def test_only_an_up_cluster_of_the_exact_shape_is_warm(change: dict[str, Any]) -> None:
    a = placement(offering(zone="us-east-1a", price=1.0), total=10.0)
    ob = offering(zone="us-east-1b", price=100.0)  # a saving of $12 if warm
    b = placement(ob, total=10.5)
    assert choose([a, b], [cluster(ob)]).placement is b  # the unchanged cluster is warm
    other = cluster(ob).model_copy(update=change)
    choice = choose([a, b], [other])
    assert choice.placement is a and not choice.warm


# -- idle stop ---------------------------------------------------------------------------------


def test_idle_expired_takes_up_unheld_clusters_idle_at_least_the_setting() -> None:
    o = offering()
    over = cluster(o, idle_for=timedelta(seconds=601), name="over")
    exact = cluster(o, idle_for=timedelta(seconds=600), name="exact")
    under = cluster(o, idle_for=timedelta(seconds=599), name="under")
    held = cluster(o, idle_for=timedelta(hours=3), attempt_id=7, name="held")
    launching = cluster(
        o, idle_for=timedelta(hours=3), state=ClusterState.LAUNCHING, name="launching"
    )
    gone = cluster(o, idle_for=timedelta(hours=3), state=ClusterState.TERMINATED, name="gone")
    found = idle_expired([over, exact, under, held, launching, gone], NOW, 600)
    assert [c.name for c in found] == ["over", "exact"]
    assert [c.name for c in idle_expired([under], NOW, 0)] == ["under"]
    assert idle_expired([], NOW, 600) == []


# -- orphans and loss ------------------------------------------------------------------------


def test_orphans_are_billing_tagged_machines_no_live_cluster_claims() -> None:
    live = {"sched-a-1"}
    machines = [
        instance("i-live", tags={CLUSTER_TAG: "sched-a-1"}),
        instance("i-orphan", tags={CLUSTER_TAG: "sched-b-1"}),
        instance("i-orphan-pending", InstanceState.PENDING, tags={CLUSTER_TAG: "sched-c-2"}),
        instance("i-stopping", InstanceState.STOPPING, tags={CLUSTER_TAG: "sched-b-1"}),
        instance("i-dead", InstanceState.TERMINATED, tags={CLUSTER_TAG: "sched-b-1"}),
        instance("i-untagged", tags={"Name": "someone else's"}),
    ]
    assert [i.instance_id for i in orphans(machines, live)] == ["i-orphan", "i-orphan-pending"]
    assert [i.instance_id for i in orphans(machines[:1], [])] == ["i-live"]


def test_lost_names_the_first_expected_machine_that_cannot_run() -> None:
    up = [instance("i-1"), instance("i-2", InstanceState.PENDING)]
    assert lost(up, ["i-1", "i-2"]) is None
    assert lost(up, ["i-1", "i-3"]) == "i-3 is gone"
    preempted = instance("i-2", InstanceState.PREEMPTED, detail="capacity")
    assert lost([up[0], preempted], ["i-1", "i-2"]) == "i-2 preempted: capacity"
    interrupted = instance("i-1", InstanceState.STOPPING, interrupted=True, detail="spot")
    assert lost([interrupted], ["i-1"]) == "i-1 preempted: spot"
    stopping = instance("i-1", InstanceState.STOPPING, detail="user")
    assert lost([stopping], ["i-1"]) == "i-1 stopping: user"
    dead = instance("i-1", InstanceState.TERMINATED, detail="gone")
    assert lost([dead, preempted], ["i-1", "i-2"]) == "i-1 terminated: gone"
    assert lost([], []) is None


# -- head address -------------------------------------------------------------------------------


def test_head_address_prefers_the_public_ip_for_ip() -> None:
    both = instance("i-1", public_ip="3.3.3.3", private_ip="10.0.0.5")
    assert head_address("http://{ip}:{port}", both, 8265) == "http://3.3.3.3:8265"
    assert head_address("http://{private_ip}:{port}/", both, 8265) == "http://10.0.0.5:8265"
    assert head_address("http://{public_ip}:9000", both, 8265) == "http://3.3.3.3:9000"
    private = instance("i-1", private_ip="10.0.0.5")
    assert head_address("http://{ip}:{port}", private, 1) == "http://10.0.0.5:1"


def test_head_address_waits_for_the_address_the_template_needs() -> None:
    assert head_address("http://{ip}:{port}", instance("i-1"), 8265) is None
    private = instance("i-1", private_ip="10.0.0.5")
    assert head_address("http://{public_ip}:{port}", private, 8265) is None
    public = instance("i-1", public_ip="3.3.3.3")
    assert head_address("http://{private_ip}:{port}", public, 8265) is None
    assert head_address("http://head.internal:{port}", instance("i-1"), 8265) == (
        "http://head.internal:8265"
    )


# -- settings --------------------------------------------------------------------------------------


def test_check_address_template_names_an_unknown_field() -> None:
    for good in ("http://{ip}:{port}", "https://{public_ip}", "http://x"):
        assert check_address_template(good) == good
    # The Jobs API client needs the scheme: a bare host:port would only fail at launch.
    with pytest.raises(ValueError, match=r"not an http:// or https:// URL"):
        check_address_template("{private_ip}:{port}")
    with pytest.raises(ValueError, match=r"unknown field \{host\}"):
        check_address_template("http://{host}:{port}")
    with pytest.raises(ValueError, match="unknown field"):
        check_address_template("http://{}:{port}")


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"SCHED_HOME": str(tmp_path), **values}


def test_cluster_settings_defaults(tmp_path: Path) -> None:
    s = load_settings(env(tmp_path))
    assert s.cluster_address == "http://{ip}:{port}"
    assert s.launch_clouds == []
    assert (s.cluster_idle_stop_s, s.cluster_boot_timeout_s) == (600, 900)


def test_cluster_settings_from_the_environment(tmp_path: Path) -> None:
    s = load_settings(
        env(
            tmp_path,
            SCHED_CLUSTER_ADDRESS="https://{private_ip}:{port}",
            SCHED_LAUNCH_CLOUDS=" aws, gcp ,",
            SCHED_AWS_IMAGE="ami-0123",
            SCHED_GCP_PROJECT="p",
            SCHED_GCP_IMAGE="img",
            SCHED_IDLE_STOP="0",
            SCHED_BOOT_TIMEOUT="120.5",
        )
    )
    assert s.cluster_address == "https://{private_ip}:{port}"
    assert s.launch_clouds == ["aws", "gcp"]
    assert (s.cluster_idle_stop_s, s.cluster_boot_timeout_s) == (0.0, 120.5)


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("SCHED_CLUSTER_ADDRESS", "http://{host}:{port}", "unknown field {host}"),
        ("SCHED_LAUNCH_CLOUDS", "aws,azure", "'aws' or 'gcp'"),
        ("SCHED_IDLE_STOP", "-1", "greater than or equal to 0"),
        ("SCHED_IDLE_STOP", "ten", "valid number"),
        ("SCHED_BOOT_TIMEOUT", "0", "greater than 0"),
        ("SCHED_BOOT_TIMEOUT", "soon", "valid number"),
    ],
)
def test_bad_cluster_settings_name_the_variable(
    tmp_path: Path, var: str, value: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env(tmp_path, **{var: value}))
    message = str(err.value)
    assert message.startswith(f"{var}: "), message
    assert words in message
