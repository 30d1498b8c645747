"""Compute Engine for the audit: every billing VM in the project's regions (not only
sched's), the peaks of its Cloud Monitoring metrics, and stopping the ones the audit names.

CPU is ``compute.googleapis.com/instance/cpu/utilization``, which Google records for every
VM as a 0..1 fraction (turned into percent here so both clouds read alike). GPU utilization
exists only where the Ops Agent publishes ``agent.googleapis.com/gpu/utilization``
(already percent, one series per GPU).

Cloud Monitoring is read over its REST API (``projects/{p}/timeSeries``) with google-auth's
session, not ``monitoring_v3.MetricServiceClient``: that client ships only gRPC transports,
so it could not follow ``SCHED_GCP_API_ENDPOINT`` (a REST base URL) like every other
Google client here does. Credentials and endpoint come from the same ``GoogleEndpoint``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.gcp_clients import ComputeClients, GoogleEndpoint
from providers.gcp_compute import instance_from_gce, sanitize_label_key
from scheduler.audit import AuditedInstance, PriceLookup, StopAction, StopResult

CPU_METRIC = "compute.googleapis.com/instance/cpu/utilization"
GPU_METRIC = "agent.googleapis.com/gpu/utilization"
MONITORING_URL = "https://monitoring.googleapis.com"
READ_SCOPE = "https://www.googleapis.com/auth/monitoring.read"
ALIGNMENT = "3600s"  # hourly maxima: metric_hours counts these buckets
# Statuses in which a VM bills (or is about to); STOPPING/TERMINATED/SUSPENDED do not.
BILLING = frozenset({"PROVISIONING", "STAGING", "RUNNING"})


@dataclass
class Peaks:
    """One metric for one VM: the highest hourly maximum and the hours with data."""

    peak: float
    hours: set[str] = field(default_factory=set)


def _no_price(cloud: str, zone: str, instance_type: str, spot: bool) -> float | None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(point: Mapping[str, Any]) -> float | None:
    value = point.get("value") or {}
    for key in ("doubleValue", "int64Value"):  # int64 comes as a JSON string
        if key in value:
            return float(value[key])
    return None


def _as_dict(message: Any) -> dict[str, Any]:
    return type(message).to_dict(
        message, preserving_proto_field_name=False, use_integers_for_enums=False
    )


def with_tag_keys(labels: Mapping[str, str], tag_keys: Iterable[str]) -> dict[str, str]:
    """Labels, plus each tag key whose label form is present under the key itself, so a
    rule written as ``sched:keep`` or ``cost-center`` finds the ``sched_keep`` /
    ``cost-center`` label GCP made of it (labels allow only ``[a-z0-9_-]``)."""
    tags = dict(labels)
    for key in tag_keys:
        label = sanitize_label_key(key)
        if key not in tags and label in labels:
            tags[key] = labels[label]
    return tags


def series_peaks(series: Iterable[Mapping[str, Any]], scale: float = 1.0) -> dict[str, Peaks]:
    """Numeric instance id -> peaks over every series of that VM (several GPUs make
    several series); each aligned point is one hour, counted once however many series
    share it."""
    out: dict[str, Peaks] = {}
    for ts in series:
        instance_id = str(((ts.get("resource") or {}).get("labels") or {}).get("instance_id", ""))
        for point in ts.get("points") or []:
            value = _value(point)
            if not instance_id or value is None:
                continue
            end = str((point.get("interval") or {}).get("endTime", ""))
            found = out.setdefault(instance_id, Peaks(peak=value * scale))
            found.peak = max(found.peak, value * scale)
            found.hours.add(end)
    return out


class GcpAudit:
    """Reads and stops VMs of one project with the caller's credentials (or none, for fakes)."""

    def __init__(
        self,
        project: str,
        endpoint: GoogleEndpoint | None = None,
        price: PriceLookup = _no_price,
        now: Callable[[], datetime] = _now,
        page_size: int = 500,
    ) -> None:
        self.project = project
        self.endpoint = endpoint or GoogleEndpoint()
        self.price = price
        self.now = now
        self.page_size = page_size
        self._clients = ComputeClients(self.endpoint)
        self._session: Any = None

    # ---- instances -------------------------------------------------------------------------

    def instances(
        self, regions: Sequence[str], window_hours: float, tag_keys: Collection[str] = ()
    ) -> list[AuditedInstance]:
        """Billing VMs in the regions' zones with their metric peaks over the last
        ``window_hours``. ``tag_keys`` (the required tags and the keep tag) are reported
        under their own names when only their label form exists; see ``with_tag_keys``."""
        vms = list(self._vms(regions))
        if not vms:
            return []
        end = self.now()
        start = end - timedelta(hours=window_hours)
        cpu = series_peaks(self.time_series(CPU_METRIC, start, end), scale=100.0)
        gpu = series_peaks(self.time_series(GPU_METRIC, start, end))
        out = []
        for data in vms:
            inst = instance_from_gce(data)
            numeric_id = str(data.get("id", ""))
            cpu_peaks, gpu_peaks = cpu.get(numeric_id), gpu.get(numeric_id)
            out.append(
                AuditedInstance.of(
                    inst,
                    region=inst.zone.rsplit("-", 1)[0],
                    price=self.price,
                    cpu_peak=cpu_peaks.peak if cpu_peaks else None,
                    gpu_peak=gpu_peaks.peak if gpu_peaks else None,
                    metric_hours=float(len(cpu_peaks.hours)) if cpu_peaks else 0.0,
                    tags=with_tag_keys(inst.tags, tag_keys),
                )
            )
        return out

    def _vms(self, regions: Sequence[str]) -> Iterator[dict[str, Any]]:
        zones = [z.name for z in self._clients.get("ZonesClient").list(project=self.project)]
        for zone in sorted(z for z in zones if z.rsplit("-", 1)[0] in regions):
            for vm in self._clients.get("InstancesClient").list(project=self.project, zone=zone):
                data = _as_dict(vm)
                if data.get("status") in BILLING:
                    yield data

    # ---- Cloud Monitoring ------------------------------------------------------------------

    def time_series(self, metric: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every GCE series of ``metric`` in the project, aligned to hourly maxima; one
        project-wide query per metric rather than one per VM."""
        from google.api_core.exceptions import from_http_response

        url = f"{self._base_url()}/v3/projects/{self.project}/timeSeries"
        params: dict[str, str] = {
            "filter": f'metric.type = "{metric}" AND resource.type = "gce_instance"',
            "interval.startTime": _rfc3339(start),
            "interval.endTime": _rfc3339(end),
            "aggregation.alignmentPeriod": ALIGNMENT,
            "aggregation.perSeriesAligner": "ALIGN_MAX",
            "pageSize": str(self.page_size),
        }
        out: list[dict[str, Any]] = []
        while True:
            reply = self._http().get(url, params=params, timeout=60)
            if reply.status_code >= 400:
                raise from_http_response(reply)
            body = reply.json()
            out.extend(body.get("timeSeries") or [])
            token = body.get("nextPageToken")
            if not token:
                return out
            params["pageToken"] = token

    def _base_url(self) -> str:
        base = self.endpoint.api_endpoint or MONITORING_URL
        return (base if "://" in base else f"https://{base}").rstrip("/")

    def _http(self) -> Any:
        if self._session is None:
            from google.auth.transport.requests import AuthorizedSession

            if self.endpoint.anonymous:
                from google.auth.credentials import AnonymousCredentials

                credentials: Any = AnonymousCredentials()
            else:
                import google.auth

                credentials, _ = google.auth.default(scopes=[READ_SCOPE])
            self._session = AuthorizedSession(credentials)
        return self._session

    # ---- stop ------------------------------------------------------------------------------

    def stop(
        self, instances: Iterable[AuditedInstance], keep_tag: str | None = None
    ) -> list[StopResult]:
        """Stop (not delete: disks and the VM stay, so a wrong call costs a restart, not
        data). Does not wait for the operations. A VM carrying ``keep_tag`` (or its label
        form) is skipped even if the caller passed it."""
        from google.api_core.exceptions import GoogleAPICallError

        results = []
        for inst in instances:
            if keep_tag is not None and keep_tag in with_tag_keys(inst.tags, [keep_tag]):
                results.append(_result(inst, "skip", f"tagged {keep_tag}"))
                continue
            try:
                self._clients.get("InstancesClient").stop_unary(
                    project=self.project, zone=inst.zone, instance=inst.instance_id
                )
            except GoogleAPICallError as exc:
                results.append(_result(inst, "stop", f"{exc.code}: {exc.message}"))
                continue
            results.append(_result(inst, "stop"))
        return results


def _result(inst: AuditedInstance, action: StopAction, error: str | None = None) -> StopResult:
    return StopResult(
        cloud=inst.cloud, zone=inst.zone, instance_id=inst.instance_id, action=action, error=error
    )
