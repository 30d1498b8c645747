"""The audit of cloud accounts: the pure rules with hand-worked cases, then AWS against
moto's server (EC2 + CloudWatch) and GCP against the Compute and Monitoring fakes, each
with planted machines of every kind, checking that exactly the untagged and idle ones are
found and that stopping spares the kept ones."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.aws_audit import CPU_METRIC as AWS_CPU
from providers.aws_audit import GPU_METRIC as AWS_GPU
from providers.aws_audit import AwsAudit
from providers.gcp_audit import CPU_METRIC as GCP_CPU
from providers.gcp_audit import GPU_METRIC as GCP_GPU
from providers.gcp_audit import GcpAudit, with_tag_keys
from providers.gcp_clients import GoogleEndpoint
from providers.instances import InstanceState
from scheduler.audit import (
    AuditedInstance,
    Finding,
    audit,
    idle_hours,
    metric_window_hours,
    to_stop,
)
from scheduler.tags import missing_tags
from tests.fakes.aws_env import REGION, aws_environment, raw_ec2
from tests.fakes.google_compute import BASE, FakeCompute
from tests.fakes.google_monitoring import FakeMonitoring
from tests.fakes.http import FakeHttpServer, Request, google_error

REQUIRED = ["team", "project", "owner"]
KEEP = "sched:keep"
IDLE_H = 24.0
WINDOW = metric_window_hours(IDLE_H)  # 25
FULL = {"team": "ml", "project": "llama", "owner": "alice"}
NOW = datetime.now(UTC).replace(microsecond=0)


# ---- the rules (pure) --------------------------------------------------------------------


def inst(
    instance_id: str = "i-1",
    tags: dict[str, str] | None = None,
    cpu: float | None = None,
    gpu: float | None = None,
    hours: float = 0.0,
    usd: float | None = 1.0,
    state: InstanceState = InstanceState.RUNNING,
) -> AuditedInstance:
    return AuditedInstance(
        cloud="aws",
        region="us-east-1",
        zone="us-east-1a",
        instance_id=instance_id,
        instance_type="m5.large",
        state=state,
        tags=FULL if tags is None else tags,
        hourly_usd=usd,
        peak_cpu_percent=cpu,
        peak_gpu_percent=gpu,
        metric_hours=hours,
    )


def check(*instances: AuditedInstance) -> list[Finding]:
    return audit(instances, REQUIRED, IDLE_H, KEEP)


def test_window_reads_one_hour_beyond_the_setting() -> None:
    assert metric_window_hours(24) == 25
    assert metric_window_hours(0.5) == 2  # ceil(0.5) + 1
    with pytest.raises(ValueError, match="positive"):
        metric_window_hours(0)


def test_missing_tags_are_absent_or_blank_in_required_order() -> None:
    assert missing_tags({"owner": "a", "team": "  "}, REQUIRED) == ["team", "project"]
    assert missing_tags(FULL, REQUIRED) == []
    assert missing_tags({}, []) == []


def test_untagged_finding_names_the_missing_tags() -> None:
    [f] = check(inst(tags={"owner": "alice"}, cpu=70.0, hours=25))
    assert f.missing_tags == ["team", "project"] and not f.idle and not f.kept
    assert f.reasons == ["no team, project tags"]
    [one] = check(inst(tags={"team": "ml", "project": "x"}, cpu=70.0, hours=25))
    assert one.reasons == ["no owner tag"]


def test_idle_by_peaks_with_numbers_in_the_reason() -> None:
    [f] = check(inst(cpu=1.2, hours=25))
    assert f.idle_hours == 25.0 and f.missing_tags == []
    assert f.reasons == ["idle 25.0 h: CPU peak 1.2% (< 5%), GPU not measured"]
    [g] = check(inst(cpu=0.5, gpu=2.25, hours=24))
    assert g.reasons == ["idle 24.0 h: CPU peak 0.5% (< 5%), GPU peak 2.2% (< 5%)"]


@pytest.mark.parametrize(
    ("cpu", "gpu", "hours", "why"),
    [
        (None, None, 0.0, "no metrics at all: cannot tell, so not idle"),
        (None, 0.0, 25.0, "no CPU data: cannot tell"),
        (1.0, None, 23.0, "23 h of metrics is short of the 24 h setting"),
        (5.0, None, 25.0, "at the threshold is work (idle is strictly below)"),
        (1.0, 40.0, 25.0, "a quiet CPU but a busy GPU"),
        (1.0, 5.0, 25.0, "GPU at its threshold"),
    ],
)
def test_not_idle(cpu: float | None, gpu: float | None, hours: float, why: str) -> None:
    assert idle_hours(inst(cpu=cpu, gpu=gpu, hours=hours), IDLE_H) is None, why
    assert check(inst(cpu=cpu, gpu=gpu, hours=hours)) == [], why


def test_thresholds_are_settings() -> None:
    i = inst(cpu=7.0, gpu=9.0, hours=30)
    assert check(i) == []
    [f] = audit([i], REQUIRED, IDLE_H, KEEP, cpu_idle_percent=10, gpu_idle_percent=10)
    assert f.reasons == ["idle 30.0 h: CPU peak 7.0% (< 10%), GPU peak 9.0% (< 10%)"]
    with pytest.raises(ValueError, match="cpu_idle_percent"):
        audit([i], REQUIRED, IDLE_H, KEEP, cpu_idle_percent=0)


def test_kept_is_reported_but_never_stopped() -> None:
    kept = inst("i-keep", tags={KEEP: "false"}, cpu=0.1, hours=25)  # presence is what counts
    [f] = check(kept)
    assert f.kept and f.idle and f.missing_tags == REQUIRED
    assert f.reasons == [
        "no team, project, owner tags",
        "idle 25.0 h: CPU peak 0.1% (< 5%), GPU not measured",
        "tagged sched:keep: reported, never stopped",
    ]
    assert to_stop([f]) == []


def test_sorted_by_hourly_cost_unknown_last_and_only_findings() -> None:
    found = check(
        inst("i-cheap", tags={}, cpu=90, hours=25, usd=0.1),
        inst("i-clean", cpu=90, hours=25, usd=50.0),
        inst("i-unpriced", tags={}, usd=None),
        inst("i-dear", cpu=0.3, hours=25, usd=32.77),
        inst("i-mid", tags={}, usd=3.06),
        inst("i-off", tags={}, usd=9.0, state=InstanceState.TERMINATED),
    )
    assert [f.instance.instance_id for f in found] == ["i-dear", "i-mid", "i-cheap", "i-unpriced"]


def test_to_stop_keeps_kept_and_can_spare_busy_untagged() -> None:
    found = check(
        inst("i-untagged", tags={}, cpu=80, hours=25),
        inst("i-idle", cpu=0.2, hours=25),
        inst("i-kept", tags={**FULL, KEEP: "yes"}, cpu=0.2, hours=25),
    )
    assert {f.instance.instance_id for f in to_stop(found)} == {"i-untagged", "i-idle"}
    assert [f.instance.instance_id for f in to_stop(found, idle_only=True)] == ["i-idle"]


def test_gcp_labels_answer_for_tag_keys() -> None:
    labels = {"sched_keep": "true", "team": "ml", "cost-center": "42"}
    tags = with_tag_keys(labels, [KEEP, "team", "cost-center", "owner"])
    assert tags == {**labels, KEEP: "true"}


# ---- AWS against moto --------------------------------------------------------------------

AWS_PRICES = {
    ("g5.xlarge", False): 1.006,
    ("g5.xlarge", True): 0.4,
    ("m5.xlarge", False): 0.192,
    ("m5.large", False): 0.096,
    ("t3.medium", False): 0.0416,
    ("t3.large", True): 0.03,
    ("t3.small", False): 0.0208,
}


def aws_price(cloud: str, zone: str, instance_type: str, spot: bool) -> float | None:
    assert cloud == "aws" and zone.startswith(("us-east-1", "us-west-2")), (cloud, zone)
    return AWS_PRICES.get((instance_type, spot))


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from aws_environment(tmp_path_factory)


def _run(
    aws: dict[str, Any],
    itype: str,
    tags: dict[str, str],
    region: str = REGION,
    spot: bool = False,
) -> str:
    args: dict[str, Any] = {
        "ImageId": "ami-12c6146b",
        "InstanceType": itype,
        "MinCount": 1,
        "MaxCount": 1,
        "Placement": {"AvailabilityZone": f"{region}a"},
    }
    if tags:
        kv = [{"Key": k, "Value": v} for k, v in tags.items()]
        args["TagSpecifications"] = [{"ResourceType": "instance", "Tags": kv}]
    if spot:
        opts = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
        args["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": opts}
    return str(raw_ec2(aws, region).run_instances(**args)["Instances"][0]["InstanceId"])


def _cw(region: str = REGION) -> Any:
    import boto3

    return boto3.client("cloudwatch", region_name=region)


def _hourly(
    namespace: str, metric: str, dims: list[dict[str, str]], values: Sequence[float], region: str
) -> None:
    """values[k] as one sample k hours and 20 minutes ago, as EC2 would have published."""
    data = [
        {
            "MetricName": metric,
            "Dimensions": dims,
            "Timestamp": NOW - timedelta(hours=k, minutes=20),
            "Value": v,
            "Unit": "Percent",
        }
        for k, v in enumerate(values)
    ]
    _cw(region).put_metric_data(Namespace=namespace, MetricData=data)


def cpu(iid: str, values: Sequence[float], region: str = REGION) -> None:
    _hourly("AWS/EC2", AWS_CPU, [{"Name": "InstanceId", "Value": iid}], values, region)


def gpu(iid: str, index: int, values: Sequence[float]) -> None:
    dims = [
        {"Name": "InstanceId", "Value": iid},
        {"Name": "index", "Value": str(index)},
        {"Name": "name", "Value": "NVIDIA A10G"},
    ]
    _hourly("CWAgent", AWS_GPU, dims, values, REGION)


QUIET = [1.2, 0.4] + [0.3] * (WINDOW - 2)  # 25 hours, peak 1.2%
BUSY = [3.0, 60.0] + [2.0] * (WINDOW - 2)  # one busy hour among quiet ones


@pytest.fixture(scope="module")
def aws_planted(aws: dict[str, Any]) -> dict[str, str]:
    ids = {
        "busy": _run(aws, "m5.large", FULL),
        "untagged": _run(aws, "m5.large", {}),
        "partly": _run(aws, "t3.medium", {"team": "ml", "project": "llama"}),
        "blank": _run(aws, "t3.small", {**FULL, "team": ""}),
        "idle": _run(aws, "m5.xlarge", FULL),
        "gpu-busy": _run(aws, "g5.xlarge", FULL),
        "gpu-idle": _run(aws, "g5.xlarge", FULL),
        "kept": _run(aws, "c5.large", {KEEP: "true"}),
        "young": _run(aws, "m5.large", FULL),
        "silent": _run(aws, "m5.large", FULL),
        "spot-once": _run(aws, "g5.xlarge", FULL, spot=True),
        "stopped": _run(aws, "m5.large", {}),
        "west": _run(aws, "m5.large", {}, region="us-west-2"),
    }
    ec2 = raw_ec2(aws)
    persistent = ec2.request_spot_instances(
        InstanceCount=1,
        Type="persistent",
        LaunchSpecification={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t3.large",
            "Placement": {"AvailabilityZone": "us-east-1a"},
        },
    )["SpotInstanceRequests"][0]
    ids["spot-persistent"] = persistent["InstanceId"]
    ec2.create_tags(
        Resources=[ids["spot-persistent"]], Tags=[{"Key": k, "Value": v} for k, v in FULL.items()]
    )
    ec2.stop_instances(InstanceIds=[ids["stopped"]])
    for name in ("busy", "untagged", "partly", "blank"):
        cpu(ids[name], BUSY)
    for name in ("idle", "kept", "spot-once", "spot-persistent", "gpu-busy", "gpu-idle"):
        cpu(ids[name], QUIET)
    cpu(ids["west"], BUSY, region="us-west-2")
    cpu(ids["young"], [0.1, 0.1, 0.1])  # three hours old: cannot tell yet
    gpu(ids["gpu-busy"], 0, [0.0] * 10 + [80.0] + [0.0] * (WINDOW - 11))
    gpu(ids["gpu-busy"], 1, [0.0] * WINDOW)
    gpu(ids["gpu-idle"], 0, [0.0] * WINDOW)
    gpu(ids["gpu-idle"], 1, [1.5] + [0.0] * (WINDOW - 1))
    return ids


@pytest.fixture(scope="module")
def aws_audit(aws: dict[str, Any], aws_planted: dict[str, str]) -> AwsAudit:
    return AwsAudit(aws["clients"], price=aws_price, now=lambda: NOW)


@pytest.fixture(scope="module")
def aws_seen(aws_audit: AwsAudit) -> list[AuditedInstance]:
    return aws_audit.instances([REGION, "us-west-2"], WINDOW)


def test_aws_lists_billing_machines_with_peaks(
    aws_planted: dict[str, str], aws_seen: list[AuditedInstance]
) -> None:
    by_id = {i.instance_id: i for i in aws_seen}
    names = {v: k for k, v in aws_planted.items()}
    assert {names[i] for i in by_id} == set(aws_planted) - {"stopped"}
    idle = by_id[aws_planted["idle"]]
    assert (idle.peak_cpu_percent, idle.peak_gpu_percent, idle.metric_hours) == (1.2, None, 25)
    assert (idle.hourly_usd, idle.tags, idle.region) == (0.192, FULL, "us-east-1")
    busy_gpu = by_id[aws_planted["gpu-busy"]]
    assert (busy_gpu.peak_cpu_percent, busy_gpu.peak_gpu_percent) == (1.2, 80.0)
    assert by_id[aws_planted["gpu-idle"]].peak_gpu_percent == 1.5
    assert by_id[aws_planted["young"]].metric_hours == 3
    silent = by_id[aws_planted["silent"]]
    assert (silent.peak_cpu_percent, silent.metric_hours) == (None, 0)
    assert (
        by_id[aws_planted["spot-once"]].spot and by_id[aws_planted["spot-once"]].hourly_usd == 0.4
    )
    assert by_id[aws_planted["kept"]].hourly_usd is None  # no price for c5.large here
    assert by_id[aws_planted["west"]].region == "us-west-2"


def test_aws_audit_finds_exactly_the_untagged_and_idle(
    aws_planted: dict[str, str], aws_seen: list[AuditedInstance]
) -> None:
    found = audit(aws_seen, REQUIRED, IDLE_H, KEEP)
    names = {v: k for k, v in aws_planted.items()}
    # Dearest first: 1.006, 0.4, 0.192, 0.096 (us-east-1a before us-west-2a), 0.0416,
    # 0.03, 0.0208, then the unpriced one.
    assert [names[f.instance.instance_id] for f in found] == [
        "gpu-idle",
        "spot-once",
        "idle",
        "untagged",
        "west",
        "partly",
        "spot-persistent",
        "blank",
        "kept",
    ]
    by = {names[f.instance.instance_id]: f for f in found}
    assert by["gpu-idle"].reasons == ["idle 25.0 h: CPU peak 1.2% (< 5%), GPU peak 1.5% (< 5%)"]
    assert by["untagged"].reasons == ["no team, project, owner tags"]
    assert by["partly"].missing_tags == ["owner"] and not by["partly"].idle
    assert by["blank"].missing_tags == ["team"]
    assert by["kept"].kept and by["kept"].idle and by["kept"].missing_tags == REQUIRED
    assert [f.kept for f in found].count(True) == 1


def _state(aws: dict[str, Any], iid: str, region: str = REGION) -> str:
    reply = raw_ec2(aws, region).describe_instances(InstanceIds=[iid])
    return str(reply["Reservations"][0]["Instances"][0]["State"]["Name"])


def test_aws_stop_spares_kept_and_terminates_one_time_spot(
    aws: dict[str, Any],
    aws_planted: dict[str, str],
    aws_audit: AwsAudit,
    aws_seen: list[AuditedInstance],
) -> None:
    found = audit(aws_seen, REQUIRED, IDLE_H, KEEP)
    names = {v: k for k, v in aws_planted.items()}
    kept = next(f.instance for f in found if f.kept)
    # Even handed a kept machine directly, stop refuses it.
    results = aws_audit.stop([f.instance for f in to_stop(found)] + [kept], keep_tag=KEEP)
    actions = {names[r.instance_id]: (r.action, r.error) for r in results}
    assert actions == {
        "gpu-idle": ("stop", None),
        "spot-once": ("terminate", None),
        "idle": ("stop", None),
        "untagged": ("stop", None),
        "west": ("stop", None),
        "partly": ("stop", None),
        "spot-persistent": ("stop", None),
        "blank": ("stop", None),
        "kept": ("skip", f"tagged {KEEP}"),
    }
    region = {"west": "us-west-2"}
    states = {n: _state(aws, aws_planted[n], region.get(n, REGION)) for n in aws_planted}
    for name, (action, _) in actions.items():
        want = {"stop": {"stopping", "stopped"}, "terminate": {"shutting-down", "terminated"}}
        assert states[name] in want.get(action, {"running"}), (name, states[name])
    for name in ("busy", "gpu-busy", "young", "silent", "kept"):
        assert states[name] == "running", name


# ---- GCP against the Compute and Monitoring fakes ------------------------------------------

PROJECT = "audit-project"
GCP_PRICES = {
    ("a2-highgpu-1g", False): 3.67,
    ("a2-highgpu-1g", True): 1.47,
    ("n1-standard-8", False): 0.38,
    ("e2-standard-4", False): 0.134,
}


def gcp_price(cloud: str, zone: str, instance_type: str, spot: bool) -> float | None:
    assert cloud == "gcp" and zone.startswith("us-central1-"), (cloud, zone)
    return GCP_PRICES.get((instance_type, spot))


def _stop_route(compute: FakeCompute) -> Any:
    """instances.stop, which the Compute fake does not serve: the VM goes TERMINATED."""

    def handler(req: Request) -> Any:
        key = (req.params["zone"], req.params["name"])
        if key not in compute.instances:
            return google_error(404, f"The resource 'instances/{key[1]}' was not found")
        vm = compute.instances[key]
        vm["status"] = "TERMINATED"
        return compute._operation(key[0], "stop", vm, done=True)

    return handler


@pytest.fixture(scope="module")
def google() -> Iterator[dict[str, Any]]:
    compute, monitoring = FakeCompute(PROJECT), FakeMonitoring(PROJECT)
    for zone in ("us-central1-a", "us-central1-b", "europe-west4-a"):
        compute.add_zone(zone)
    server = FakeHttpServer()
    server.routes.extend(compute.server.routes + monitoring.server.routes)
    zone_path = rf"/compute/v1/projects/{PROJECT}/zones/(?P<zone>[^/]+)"
    server.route("POST", zone_path + r"/instances/(?P<name>[^/]+)/stop", _stop_route(compute))
    with server:
        yield {"compute": compute, "monitoring": monitoring, "server": server}


def _vm(
    compute: FakeCompute,
    zone: str,
    name: str,
    machine_type: str,
    labels: dict[str, str],
    status: str = "RUNNING",
    spot: bool = False,
) -> str:
    numeric_id = str(7000 + len(compute.instances))
    compute.instances[(zone, name)] = {
        "kind": "compute#instance",
        "id": numeric_id,
        "name": name,
        "zone": f"{BASE}/projects/{PROJECT}/zones/{zone}",
        "machineType": f"{BASE}/projects/{PROJECT}/zones/{zone}/machineTypes/{machine_type}",
        "status": status,
        "labels": labels,
        "scheduling": {"provisioningModel": "SPOT" if spot else "STANDARD"},
        "creationTimestamp": (NOW - timedelta(days=3)).isoformat(),
        "selfLink": f"{BASE}/projects/{PROJECT}/zones/{zone}/instances/{name}",
    }
    return numeric_id


GCP_QUIET = [0.012] + [0.003] * (WINDOW - 1)  # fractions: peak 1.2%
GCP_BUSY = [0.02, 0.75] + [0.02] * (WINDOW - 2)


@pytest.fixture(scope="module")
def gcp_planted(google: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """name -> (zone, numeric id)."""
    compute: FakeCompute = google["compute"]
    mon: FakeMonitoring = google["monitoring"]
    a, b = "us-central1-a", "us-central1-b"
    plan = {
        "busy": (a, "n1-standard-8", FULL, "RUNNING", False),
        "untagged": (a, "n1-standard-8", {}, "RUNNING", False),
        "partly": (b, "e2-standard-4", {"team": "ml", "project": "llama"}, "RUNNING", False),
        "idle": (b, "a2-highgpu-1g", FULL, "RUNNING", False),
        "gpu-busy": (a, "a2-highgpu-1g", FULL, "RUNNING", False),
        "kept": (a, "n1-standard-8", {"sched_keep": "true"}, "RUNNING", False),
        "spot-idle": (b, "a2-highgpu-1g", FULL, "RUNNING", True),
        "young": (a, "n1-standard-8", FULL, "RUNNING", False),
        "silent": (a, "n1-standard-8", FULL, "RUNNING", False),
        "stopped": (a, "n1-standard-8", {}, "TERMINATED", False),
        "elsewhere": ("europe-west4-a", "n1-standard-8", {}, "RUNNING", False),
    }
    ids = {
        name: (zone, _vm(compute, zone, name, mt, labels, status, spot))
        for name, (zone, mt, labels, status, spot) in plan.items()
    }
    for name in ("busy", "untagged", "partly", "elsewhere"):
        mon.add_hourly(GCP_CPU, ids[name][1], ids[name][0], NOW, GCP_BUSY, instance_name=name)
    for name in ("idle", "gpu-busy", "kept", "spot-idle"):
        mon.add_hourly(GCP_CPU, ids[name][1], ids[name][0], NOW, GCP_QUIET, instance_name=name)
    mon.add_hourly(GCP_CPU, ids["young"][1], a, NOW, [0.001] * 3, instance_name="young")
    gpu_busy = [0.0] * 5 + [93.0] + [0.0] * (WINDOW - 6)
    mon.add_hourly(GCP_GPU, ids["gpu-busy"][1], a, NOW, gpu_busy, gpu_number="0")
    mon.add_hourly(GCP_GPU, ids["idle"][1], b, NOW, [2.0] + [0.0] * (WINDOW - 1), gpu_number="0")
    return ids


@pytest.fixture(scope="module")
def gcp_audit(google: dict[str, Any], gcp_planted: dict[str, tuple[str, str]]) -> GcpAudit:
    endpoint = GoogleEndpoint(api_endpoint=google["server"].url, anonymous=True)
    return GcpAudit(PROJECT, endpoint, price=gcp_price, now=lambda: NOW)


@pytest.fixture(scope="module")
def gcp_seen(gcp_audit: GcpAudit) -> list[AuditedInstance]:
    return gcp_audit.instances(["us-central1"], WINDOW, tag_keys=[*REQUIRED, KEEP])


def test_gcp_lists_billing_vms_of_the_regions_with_peaks(
    google: dict[str, Any], gcp_seen: list[AuditedInstance]
) -> None:
    by = {i.instance_id: i for i in gcp_seen}
    assert set(by) == {
        "busy",
        "untagged",
        "partly",
        "idle",
        "gpu-busy",
        "kept",
        "spot-idle",
        "young",
        "silent",
    }
    idle = by["idle"]
    assert (idle.peak_cpu_percent, idle.peak_gpu_percent, idle.metric_hours) == (1.2, 2.0, 25)
    assert (idle.hourly_usd, idle.zone, idle.region) == (3.67, "us-central1-b", "us-central1")
    assert by["busy"].peak_cpu_percent == 75.0
    assert by["gpu-busy"].peak_gpu_percent == 93.0
    assert by["kept"].tags == {"sched_keep": "true", KEEP: "true"}
    assert by["spot-idle"].spot and by["spot-idle"].hourly_usd == 1.47
    assert (by["young"].metric_hours, by["silent"].peak_cpu_percent) == (3, None)
    # What went to Cloud Monitoring: hourly maxima over the window, pages followed.
    sent = [r for r in google["server"].requests if r.path.endswith("/timeSeries")]
    assert {r.arg("aggregation.perSeriesAligner") for r in sent} == {"ALIGN_MAX"}
    assert {r.arg("aggregation.alignmentPeriod") for r in sent} == {"3600s"}
    start = datetime.fromisoformat(str(sent[0].arg("interval.startTime")).replace("Z", "+00:00"))
    assert NOW - start == timedelta(hours=WINDOW)
    cpu_pages = [r for r in sent if GCP_CPU in str(r.arg("filter"))]
    assert len(cpu_pages) == 5  # 9 CPU series in pages of 2: paging was followed


def test_gcp_audit_finds_exactly_the_untagged_and_idle(gcp_seen: list[AuditedInstance]) -> None:
    found = audit(gcp_seen, REQUIRED, IDLE_H, KEEP)
    # 3.67, 1.47, 0.38 (us-central1-a: kept before untagged by name), 0.134.
    assert [f.instance.instance_id for f in found] == [
        "idle",
        "spot-idle",
        "kept",
        "untagged",
        "partly",
    ]
    by = {f.instance.instance_id: f for f in found}
    assert by["idle"].reasons == ["idle 25.0 h: CPU peak 1.2% (< 5%), GPU peak 2.0% (< 5%)"]
    assert by["spot-idle"].reasons == ["idle 25.0 h: CPU peak 1.2% (< 5%), GPU not measured"]
    assert by["kept"].kept and by["kept"].missing_tags == REQUIRED
    assert by["partly"].reasons == ["no owner tag"]


def test_gcp_stop_spares_kept(
    google: dict[str, Any], gcp_audit: GcpAudit, gcp_seen: list[AuditedInstance]
) -> None:
    found = audit(gcp_seen, REQUIRED, IDLE_H, KEEP)
    kept = next(f.instance for f in found if f.kept)
    results = gcp_audit.stop([f.instance for f in to_stop(found)] + [kept], keep_tag=KEEP)
    assert {r.instance_id: (r.action, r.error) for r in results} == {
        "idle": ("stop", None),
        "spot-idle": ("stop", None),
        "untagged": ("stop", None),
        "partly": ("stop", None),
        "kept": ("skip", f"tagged {KEEP}"),
    }
    status = {name: vm["status"] for (_, name), vm in google["compute"].instances.items()}
    stopped = {"idle", "spot-idle", "untagged", "partly", "stopped"}
    assert {n for n, s in status.items() if s != "RUNNING"} == stopped
    assert all(status[n] in ("STOPPING", "TERMINATED") for n in stopped)


def test_gcp_stop_reports_a_vanished_vm(gcp_audit: GcpAudit) -> None:
    ghost = AuditedInstance(
        cloud="gcp",
        region="us-central1",
        zone="us-central1-a",
        instance_id="ghost",
        instance_type="n1-standard-8",
        state=InstanceState.RUNNING,
    )
    [r] = gcp_audit.stop([ghost])
    assert r.action == "stop" and r.error is not None and r.error.startswith("404")


def test_monitoring_errors_surface_as_google_exceptions(google: dict[str, Any]) -> None:
    from google.api_core.exceptions import Forbidden

    endpoint = GoogleEndpoint(api_endpoint=google["server"].url, anonymous=True)
    with pytest.raises(Forbidden, match="someone-else"):
        GcpAudit("someone-else", endpoint).time_series(GCP_CPU, NOW - timedelta(hours=1), NOW)
