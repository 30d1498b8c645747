"""EC2 for the audit: every billing machine in the account (not only sched's), the peaks of
its CloudWatch metrics, and stopping the ones the audit names.

CPU comes from ``AWS/EC2 CPUUtilization``, which EC2 publishes for every instance. GPU
utilization exists only where the CloudWatch agent publishes ``nvidia_smi_utilization_gpu``;
the agent adds its own dimensions (GPU index, name, ...) next to ``InstanceId``, and
GetMetricStatistics wants a metric's exact dimension set, so the sets are found first with
ListMetrics rather than guessed.

boto3 is imported on first use (through ``AwsClients``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.aws_compute import AwsClients, instance_from_ec2
from scheduler.audit import AuditedInstance, PriceLookup, StopAction, StopResult

CPU_NAMESPACE, CPU_METRIC = "AWS/EC2", "CPUUtilization"
GPU_NAMESPACE, GPU_METRIC = "CWAgent", "nvidia_smi_utilization_gpu"
PERIOD_S = 3600  # hourly maxima: metric_hours counts these buckets
BILLING = ["pending", "running"]

Dimensions = list[dict[str, str]]


def _no_price(cloud: str, zone: str, instance_type: str, spot: bool) -> float | None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)


class AwsAudit:
    """Reads and stops machines in the regions it is given, with the account's own rights."""

    def __init__(
        self,
        clients: AwsClients | None = None,
        price: PriceLookup = _no_price,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.clients = clients or AwsClients()
        self.price = price
        self.now = now

    def instances(self, regions: Sequence[str], window_hours: float) -> list[AuditedInstance]:
        """Pending and running machines with their metric peaks over the last
        ``window_hours`` (``scheduler.audit.metric_window_hours`` of the setting)."""
        end = self.now()
        start = end - timedelta(hours=window_hours)
        return [i for region in regions for i in self._region(region, start, end)]

    def _region(self, region: str, start: datetime, end: datetime) -> list[AuditedInstance]:
        ec2 = self.clients.client("ec2", region)
        filters = [{"Name": "instance-state-name", "Values": BILLING}]
        pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
        raw = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        if not raw:
            return []
        cw = self.clients.client("cloudwatch", region)
        gpu_sets = _gpu_dimension_sets(cw)
        out = []
        for data in raw:
            inst = instance_from_ec2(data)
            cpu = _maxima(cw, CPU_NAMESPACE, CPU_METRIC, _by_id(inst.instance_id), start, end)
            gpu = [
                m
                for dims in gpu_sets.get(inst.instance_id, [])
                for m in _maxima(cw, GPU_NAMESPACE, GPU_METRIC, dims, start, end)
            ]
            out.append(
                AuditedInstance.of(
                    inst,
                    region=region,
                    price=self.price,
                    cpu_peak=max(cpu) if cpu else None,
                    gpu_peak=max(gpu) if gpu else None,
                    metric_hours=float(len(cpu)),
                )
            )
        return out

    def stop(
        self, instances: Iterable[AuditedInstance], keep_tag: str | None = None
    ) -> list[StopResult]:
        """Stop on-demand machines and spot ones of a persistent request; terminate other
        spot machines, which EC2 refuses to stop ("You can only stop Spot Instances
        associated with persistent Spot Instance requests"). A machine carrying
        ``keep_tag`` is skipped even if the caller passed it: stopping a kept machine is
        the one mistake this must not make."""
        by_region: dict[str, list[AuditedInstance]] = defaultdict(list)
        results: list[StopResult] = []
        for inst in instances:
            if keep_tag is not None and keep_tag in inst.tags:
                results.append(_result(inst, "skip", f"tagged {keep_tag}"))
            else:
                by_region[inst.region].append(inst)
        for region, group in by_region.items():
            results.extend(self._stop_region(region, group))
        return results

    def _stop_region(self, region: str, group: list[AuditedInstance]) -> list[StopResult]:
        from botocore.exceptions import ClientError

        ec2 = self.clients.client("ec2", region)
        persistent = _persistent_spot(ec2, [i.instance_id for i in group if i.spot])
        results = []
        for inst in group:
            action: StopAction = (
                "terminate" if inst.spot and inst.instance_id not in persistent else "stop"
            )
            try:
                if action == "stop":
                    ec2.stop_instances(InstanceIds=[inst.instance_id])
                else:
                    ec2.terminate_instances(InstanceIds=[inst.instance_id])
            except ClientError as exc:
                err = exc.response.get("Error", {})
                results.append(_result(inst, action, f"{err.get('Code')}: {err.get('Message')}"))
                continue
            results.append(_result(inst, action))
        return results


def _result(inst: AuditedInstance, action: StopAction, error: str | None = None) -> StopResult:
    return StopResult(
        cloud=inst.cloud, zone=inst.zone, instance_id=inst.instance_id, action=action, error=error
    )


def _by_id(instance_id: str) -> Dimensions:
    return [{"Name": "InstanceId", "Value": instance_id}]


def _maxima(
    cw: Any, namespace: str, metric: str, dims: Dimensions, start: datetime, end: datetime
) -> list[float]:
    """The hourly maxima CloudWatch has for one metric; one value per hour with data."""
    reply = cw.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dims,
        StartTime=start,
        EndTime=end,
        Period=PERIOD_S,
        Statistics=["Maximum"],
    )
    return [float(p["Maximum"]) for p in reply.get("Datapoints", [])]


def _gpu_dimension_sets(cw: Any) -> dict[str, list[Dimensions]]:
    """InstanceId -> the dimension sets the agent publishes GPU utilization under (one per
    GPU, usually); one ListMetrics walk per region instead of one call per machine."""
    pages = cw.get_paginator("list_metrics").paginate(
        Namespace=GPU_NAMESPACE, MetricName=GPU_METRIC
    )
    out: dict[str, list[Dimensions]] = defaultdict(list)
    for page in pages:
        for metric in page.get("Metrics", []):
            dims = [{"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions", [])]
            ids = [d["Value"] for d in dims if d["Name"] == "InstanceId"]
            if ids:
                out[ids[0]].append(dims)
    return out


def _persistent_spot(ec2: Any, instance_ids: Sequence[str]) -> set[str]:
    """Spot machines whose request is persistent (the only spot machines EC2 will stop).
    Asked by instance id because RunInstances-made spot requests are not always reported
    on the instance; a machine with no request found is treated as one-time."""
    if not instance_ids:
        return set()
    pages = ec2.get_paginator("describe_spot_instance_requests").paginate(
        Filters=[{"Name": "instance-id", "Values": list(instance_ids)}]
    )
    return {
        r["InstanceId"]
        for page in pages
        for r in page.get("SpotInstanceRequests", [])
        if r.get("Type") == "persistent" and r.get("InstanceId")
    }
