"""A fake of the Compute Engine REST API v1 and the Cloud Billing Catalog, over HTTP.

Answers the paths ``google.cloud.compute_v1`` sends with ``transport="rest"``: zones,
machine types, accelerator types, instances (insert honours ``requestId``: the same id
returns the same operation and creates nothing), zone operations (get, wait, list with
a simple ``filter``) and region commitments (list per region and aggregated), plus
``/v1/services/{id}/skus`` for billing SKUs. State is plain
dicts a test can read; ``preempt`` plays Google taking a spot machine back.

Faults: an insert in a zone of ``exhausted_zones`` ends in an operation with
ZONE_RESOURCE_POOL_EXHAUSTED, in a region of ``quota_exceeded`` with QUOTA_EXCEEDED; and
``fail_next`` queues answers (429, 503, a delay...) in front of any route.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tests.fakes.faults import Answer, Injected, inject
from tests.fakes.http import Request, ServedFake, google_error

BASE = "https://www.googleapis.com/compute/v1"
_P = r"/compute/v1/projects/(?P<project>[^/]+)"
_Z = _P + r"/zones/(?P<zone>[^/]+)"
_R = _P + r"/regions/(?P<region>[^/]+)"
INSTANCES = _Z + r"/instances"
INSTANCE = _Z + r"/instances/(?P<name>[^/]+)"
_FILTER = re.compile(r'^\(?\s*(?P<field>\w+)\s*(?P<op>=|!=|eq|ne)\s*"?(?P<value>[^"]*?)"?\s*\)?$')

# On-demand rates are Compute Engine's us-central1 list prices (they add up to the
# published a2-highgpu-1g, a2-ultragpu-1g and n1-standard-8 prices); spot and A3 rates are
# illustrative, chosen so spot sums stay in the published range.
_IN = " running in Americas"
_SPOT = "Spot Preemptible "  # spot cores/RAM: a prefix
_ATTACHED = " attached to Spot Preemptible VMs"  # spot GPUs: a middle part
US_CENTRAL1_RATES: tuple[tuple[str, str, str, str, float], ...] = (
    # (sku id, description, usage type, usage unit, usd)
    ("A2-CORE", f"A2 Instance Core{_IN}", "OnDemand", "h", 0.031611),
    ("A2-RAM", f"A2 Instance Ram{_IN}", "OnDemand", "GiBy.h", 0.004237),
    ("A2-CORE-S", f"{_SPOT}A2 Instance Core{_IN}", "Preemptible", "h", 0.0123),
    ("A2-RAM-S", f"{_SPOT}A2 Instance Ram{_IN}", "Preemptible", "GiBy.h", 0.00165),
    ("A3-CORE", f"A3 Instance Core{_IN}", "OnDemand", "h", 0.03222),
    ("A3-RAM", f"A3 Instance Ram{_IN}", "OnDemand", "GiBy.h", 0.002817),
    ("G2-CORE", f"G2 Instance Core{_IN}", "OnDemand", "h", 0.024988),
    ("G2-RAM", f"G2 Instance Ram{_IN}", "OnDemand", "GiBy.h", 0.002927),
    ("N1-CORE", f"N1 Predefined Instance Core{_IN}", "OnDemand", "h", 0.031611),
    ("N1-RAM", f"N1 Predefined Instance Ram{_IN}", "OnDemand", "GiBy.h", 0.004237),
    ("N1-CORE-S", f"{_SPOT}N1 Predefined Instance Core{_IN}", "Preemptible", "h", 0.0107),
    ("N1-RAM-S", f"{_SPOT}N1 Predefined Instance Ram{_IN}", "Preemptible", "GiBy.h", 0.001614),
    ("A100", f"Nvidia Tesla A100 GPU{_IN}", "OnDemand", "h", 2.933908),
    ("A100-S", f"Nvidia Tesla A100 GPU{_ATTACHED}{_IN}", "Preemptible", "h", 1.64017),
    ("A100-80", f"Nvidia Tesla A100 80GB GPU{_IN}", "OnDemand", "h", 3.92808),
    ("H100", f"Nvidia H100 80GB GPU{_IN}", "OnDemand", "h", 9.48216),
    ("L4", f"Nvidia L4 GPU{_IN}", "OnDemand", "h", 0.56004),
    ("T4", f"Nvidia Tesla T4 GPU{_IN}", "OnDemand", "h", 0.35),
    ("T4-S", f"Nvidia Tesla T4 GPU{_ATTACHED}{_IN}", "Preemptible", "h", 0.14),
    ("V100", f"Nvidia Tesla V100 GPU{_IN}", "OnDemand", "h", 2.48),
    ("SSD", "SSD backed Local Storage", "OnDemand", "GiBy.mo", 0.08),
    # Priced SKUs the feed must not mistake for VM components.
    ("T4-VWS", f"Nvidia Tesla T4 Virtual Workstation GPU{_IN}", "OnDemand", "h", 0.55),
    ("A2-1Y", "Commitment v1: A2 Cpu in Americas for 1 Year", "Commit1Yr", "h", 0.019915),
    ("A2-CUSTOM", f"A2 Custom Instance Core{_IN}", "OnDemand", "h", 0.05),
    ("DWS-A3", f"DWS Defined Duration A3 Core{_IN}", "OnDemand", "h", 0.02),
)


def sku(
    sku_id: str,
    description: str,
    usage_type: str,
    unit: str,
    usd: float,
    regions: Sequence[str] = ("us-central1",),
) -> dict[str, Any]:
    """One Compute Engine SKU in the Catalog API's REST shape (units + nanos)."""
    units = int(usd)
    nanos = round((usd - units) * 1e9)
    group = "GPU" if "GPU" in description else "RAM" if "Ram" in description else "CPU"
    return {
        "name": f"services/6F81-5844-456A/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine",
            "resourceFamily": "Storage" if "Storage" in description else "Compute",
            "resourceGroup": "LocalSSD" if "Storage" in description else group,
            "usageType": usage_type,
        },
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": "2026-07-01T08:00:00.000Z",
                "pricingExpression": {
                    "usageUnit": unit,
                    "tieredRates": [
                        {
                            "startUsageAmount": 0,
                            "unitPrice": {
                                "currencyCode": "USD",
                                "units": str(units),
                                "nanos": nanos,
                            },
                        }
                    ],
                },
            }
        ],
        "serviceProviderName": "Google",
    }


def us_central1_skus() -> list[dict[str, Any]]:
    return [sku(*row) for row in US_CENTRAL1_RATES]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _matches(item: Mapping[str, Any], expression: str | None) -> bool:
    """The one-clause subset of Compute's list ``filter`` (``=``/``!=`` literal, eq/ne RE2)."""
    if not expression:
        return True
    m = _FILTER.match(expression.strip())
    if not m:
        raise ValueError(f"fake cannot parse filter {expression!r}")
    actual = str(item.get(m["field"], ""))
    op, value = m["op"], m["value"]
    if op in ("eq", "ne"):
        hit = re.fullmatch(value, actual) is not None
        return hit if op == "eq" else not hit
    return (actual == value) if op == "=" else (actual != value)


class FakeCompute(ServedFake):
    """State of one project's Compute Engine plus the billing catalog, served over HTTP."""

    def __init__(self, project: str = "test-project", skus: Iterable[dict[str, Any]] = ()):
        self.project = project
        self.skus: list[dict[str, Any]] = list(skus)
        self.zones: dict[str, dict[str, Any]] = {}
        self.machine_types: dict[str, dict[str, dict[str, Any]]] = {}
        self.accelerator_types: dict[str, dict[str, dict[str, Any]]] = {}
        self.instances: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_request_id: dict[str, tuple[str, str]] = {}
        self.commitments: dict[str, list[dict[str, Any]]] = {}  # region -> commitments
        self.page_size = 2  # small pages so clients must follow nextPageToken
        # Zones out of capacity: an insert there ends in a DONE operation with an error.
        self.exhausted_zones: set[str] = set()
        # Reads (get) of a RUNNING insert before it is DONE; ``wait`` finishes it at once.
        self.polls_to_done = 1
        self._polls: dict[tuple[str, str], int] = {}
        self._fails_with: dict[tuple[str, str], dict[str, Any]] = {}  # error once DONE
        # Regions whose quota is used up: region -> the quota's name (e.g. NVIDIA_L4_GPUS).
        self.quota_exceeded: dict[str, str] = {}
        self._ids = itertools.count(1000)
        super().__init__()
        self._routes()

    # ---- test set-up and hooks ---------------------------------------------------------

    def add_zone(self, zone: str, status: str = "UP") -> None:
        region = zone.rsplit("-", 1)[0]
        self.zones[zone] = {
            "kind": "compute#zone",
            "id": str(next(self._ids)),
            "name": zone,
            "region": f"{BASE}/projects/{self.project}/regions/{region}",
            "status": status,
            "selfLink": f"{BASE}/projects/{self.project}/zones/{zone}",
        }
        self.machine_types.setdefault(zone, {})
        self.accelerator_types.setdefault(zone, {})

    def add_machine_type(
        self,
        zone: str,
        name: str,
        cpus: int,
        memory_gib: float,
        accelerators: Mapping[str, int] | None = None,
        local_ssd_partitions: int = 0,
    ) -> None:
        mt: dict[str, Any] = {
            "kind": "compute#machineType",
            "id": str(next(self._ids)),
            "name": name,
            "guestCpus": cpus,
            "memoryMb": round(memory_gib * 1024),
            "zone": zone,
            "isSharedCpu": False,
        }
        if accelerators:
            mt["accelerators"] = [
                {"guestAcceleratorType": k, "guestAcceleratorCount": v}
                for k, v in accelerators.items()
            ]
        if local_ssd_partitions:
            mt["bundledLocalSsds"] = {"partitionCount": local_ssd_partitions}
        self.machine_types[zone][name] = mt

    def add_accelerator_type(self, zone: str, name: str, max_cards: int) -> None:
        self.accelerator_types[zone][name] = {
            "kind": "compute#acceleratorType",
            "id": str(next(self._ids)),
            "name": name,
            "zone": f"{BASE}/projects/{self.project}/zones/{zone}",
            "maximumCardsPerInstance": max_cards,
        }

    def add_commitment(self, region: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A commitment as ``regionCommitments.insert`` would leave it; ``body`` gives
        name, plan, type, resources, status... and wins over the defaults filled in."""
        name = str(body.get("name") or f"commitment-{next(self._ids)}")
        link = f"{BASE}/projects/{self.project}/regions/{region}"
        stored: dict[str, Any] = {
            "kind": "compute#commitment",
            "id": str(next(self._ids)),
            "creationTimestamp": _now(),
            "name": name,
            "region": link,
            "selfLink": f"{link}/commitments/{name}",
            "status": "ACTIVE",
            "category": "MACHINE",
            "plan": "TWELVE_MONTH",
            "startTimestamp": "2026-01-01T00:00:00.000-08:00",
            "endTimestamp": "2027-01-01T00:00:00.000-08:00",
            **body,
        }
        self.commitments.setdefault(region, []).append(stored)
        return stored

    def fail_next(self, method: str, pattern: str, *answers: Answer) -> Injected:
        """The next requests to ``method pattern`` (e.g. ``"POST", INSTANCES``) get these
        answers (``google_rest_error(...)`` or ``Delay(s)``), then the fake's own."""
        return inject(self.server, method, pattern, list(answers))

    def preempt(self, zone: str, name: str) -> dict[str, Any]:
        """Take a spot machine back: STOP-action machines stay TERMINATED, DELETE ones go."""
        inst = self.instances[(zone, name)]
        action = (inst.get("scheduling") or {}).get("instanceTerminationAction", "STOP")
        if action == "DELETE":
            del self.instances[(zone, name)]
        else:
            inst["status"] = "TERMINATED"
            inst["lastStopTimestamp"] = _now()
        return self._operation(zone, "compute.instances.preempted", inst, done=True, user="system")

    # ---- REST --------------------------------------------------------------------------

    def _routes(self) -> None:
        r = self.server.route
        r("GET", _P + r"/zones", self._list_zones)
        r("GET", _Z + r"/machineTypes", self._list_machine_types)
        r("GET", _Z + r"/acceleratorTypes", self._list_accelerator_types)
        r("GET", _Z + r"/instances", self._list_instances)
        r("POST", _Z + r"/instances", self._insert)
        r("GET", _Z + r"/instances/(?P<name>[^/]+)", self._get_instance)
        r("DELETE", _Z + r"/instances/(?P<name>[^/]+)", self._delete)
        r("GET", _Z + r"/operations", self._list_operations)
        r("GET", _Z + r"/operations/(?P<op>[^/]+)", self._get_operation)
        r("POST", _Z + r"/operations/(?P<op>[^/]+)/wait", self._wait_operation)
        r("GET", _R + r"/commitments", self._list_commitments)
        r("GET", _P + r"/aggregated/commitments", self._aggregated_commitments)
        r("GET", r"/v1/services/(?P<service>[^/]+)/skus", self._list_skus)

    def _page(self, req: Request, items: list[Any], key: str = "items") -> Any:
        try:
            items = [i for i in items if _matches(i, req.arg("filter"))]
        except ValueError as exc:
            return google_error(400, str(exc), "INVALID_ARGUMENT")
        size = int(req.arg("maxResults") or req.arg("pageSize") or self.page_size)
        start = int(req.arg("pageToken") or 0)
        body: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body

    def _zone_known(self, req: Request) -> tuple[int, dict[str, Any]] | None:
        if req.params["project"] != self.project:
            return google_error(403, f"project {req.params['project']} not found", "FORBIDDEN")
        if req.params["zone"] not in self.zones:
            return google_error(404, f"The resource 'zones/{req.params['zone']}' was not found")
        return None

    def _regions(self) -> set[str]:
        return {z.rsplit("-", 1)[0] for z in self.zones} | set(self.commitments)

    def _list_commitments(self, req: Request) -> Any:
        if req.params["project"] != self.project:
            return google_error(403, f"project {req.params['project']} not found", "FORBIDDEN")
        region = req.params["region"]
        if region not in self._regions():
            path = f"projects/{self.project}/regions/{region}"
            return google_error(404, f"The resource '{path}' was not found", "NOT_FOUND")
        return self._page(req, self.commitments.get(region, []))

    def _aggregated_commitments(self, req: Request) -> Any:
        """``items`` maps ``regions/{r}`` to a scoped list; pages go by region, and a
        region with nothing to show carries Google's NO_RESULTS_ON_PAGE warning."""
        if req.params["project"] != self.project:
            return google_error(403, f"project {req.params['project']} not found", "FORBIDDEN")
        where = req.arg("filter")
        warning = {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results."}
        scoped: list[tuple[str, dict[str, Any]]] = []
        for region in sorted(self._regions()):
            try:
                found = [c for c in self.commitments.get(region, []) if _matches(c, where)]
            except ValueError as exc:
                return google_error(400, str(exc), "INVALID_ARGUMENT")
            entry = {"commitments": found} if found else {"warning": warning}
            scoped.append((f"regions/{region}", entry))
        size = int(req.arg("maxResults") or self.page_size)
        start = int(req.arg("pageToken") or 0)
        body: dict[str, Any] = {
            "kind": "compute#commitmentAggregatedList",
            "items": dict(scoped[start : start + size]),
        }
        if start + size < len(scoped):
            body["nextPageToken"] = str(start + size)
        return body

    def _list_zones(self, req: Request) -> Any:
        return self._page(req, list(self.zones.values()))

    def _list_machine_types(self, req: Request) -> Any:
        err = self._zone_known(req)
        return err or self._page(req, list(self.machine_types[req.params["zone"]].values()))

    def _list_accelerator_types(self, req: Request) -> Any:
        err = self._zone_known(req)
        return err or self._page(req, list(self.accelerator_types[req.params["zone"]].values()))

    def _list_instances(self, req: Request) -> Any:
        err = self._zone_known(req)
        zone = req.params["zone"]
        return err or self._page(req, [i for (z, _), i in self.instances.items() if z == zone])

    def _insert(self, req: Request) -> Any:
        err = self._zone_known(req)
        if err:
            return err
        zone = req.params["zone"]
        request_id = req.arg("requestId")
        if request_id and request_id in self.by_request_id:
            return self.operations[self.by_request_id[request_id]]
        body = req.body or {}
        name = body.get("name", "")
        if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            return google_error(400, f"Invalid value for field 'resource.name': '{name}'")
        if (zone, name) in self.instances:
            path = f"projects/{self.project}/zones/{zone}/instances/{name}"
            return google_error(409, f"The resource '{path}' already exists", "ALREADY_EXISTS")
        mt = str(body.get("machineType", "")).rsplit("/", 1)[-1]
        if mt not in self.machine_types[zone]:
            return google_error(400, f"Invalid value for field 'resource.machineType': '{mt}'")
        for acc in body.get("guestAccelerators") or []:
            kind = str(acc.get("acceleratorType", "")).rsplit("/", 1)[-1]
            if kind not in self.accelerator_types[zone]:
                field = "resource.guestAccelerators[0].acceleratorType"
                return google_error(400, f"Invalid value for field '{field}': '{kind}'")
        if zone in self.exhausted_zones:
            message = f"The zone '{zone}' does not have enough resources available."
            return self._failed_insert(
                zone, name, "ZONE_RESOURCE_POOL_EXHAUSTED", message, 503, request_id
            )
        region = zone.rsplit("-", 1)[0]
        if region in self.quota_exceeded:
            quota = self.quota_exceeded[region]
            message = f"Quota '{quota}' exceeded. Limit: 1.0 in region {region}."
            return self._failed_insert(zone, name, "QUOTA_EXCEEDED", message, 403, request_id)
        inst = {
            **body,
            "kind": "compute#instance",
            "id": str(next(self._ids)),
            "machineType": f"{BASE}/projects/{self.project}/zones/{zone}/machineTypes/{mt}",
            "zone": f"{BASE}/projects/{self.project}/zones/{zone}",
            "status": "RUNNING",
            "creationTimestamp": _now(),
            "selfLink": f"{BASE}/projects/{self.project}/zones/{zone}/instances/{name}",
            "networkInterfaces": [
                {"networkIP": f"10.128.0.{len(self.instances) + 2}", "accessConfigs": []}
            ],
        }
        self.instances[(zone, name)] = inst
        op = self._operation(zone, "insert", inst, done=False)
        if request_id:
            self.by_request_id[request_id] = (zone, op["name"])
        return op

    def _failed_insert(
        self, zone: str, name: str, code: str, message: str, http: int, request_id: str | None
    ) -> dict[str, Any]:
        """An insert Google accepted and then failed: an operation that ends DONE with the
        error (after ``polls_to_done`` reads, like any insert)."""
        target = f"{BASE}/projects/{self.project}/zones/{zone}/instances/{name}"
        op = self._operation(zone, "insert", {"selfLink": target}, done=False)
        self._fails_with[(zone, op["name"])] = {
            "error": {"errors": [{"code": code, "message": message}]},
            "httpErrorStatusCode": http,
            "httpErrorMessage": "ERROR",
        }
        if request_id:  # Google dedups by requestId whatever became of the operation
            self.by_request_id[request_id] = (zone, op["name"])
        return op

    def _finish(self, key: tuple[str, str]) -> dict[str, Any]:
        op = self.operations[key]
        if op["status"] != "DONE":
            op.update(status="DONE", progress=100, endTime=_now())
            op.update(self._fails_with.pop(key, {}))
        return op

    def _get_instance(self, req: Request) -> Any:
        err = self._zone_known(req)
        key = (req.params["zone"], req.params["name"])
        if err or key not in self.instances:
            return err or google_error(404, f"The resource 'instances/{key[1]}' was not found")
        return self.instances[key]

    def _delete(self, req: Request) -> Any:
        err = self._zone_known(req)
        key = (req.params["zone"], req.params["name"])
        if err or key not in self.instances:
            return err or google_error(404, f"The resource 'instances/{key[1]}' was not found")
        inst = self.instances.pop(key)
        return self._operation(key[0], "delete", inst, done=True)

    def _list_operations(self, req: Request) -> Any:
        err = self._zone_known(req)
        zone = req.params["zone"]
        return err or self._page(req, [o for (z, _), o in self.operations.items() if z == zone])

    def _get_operation(self, req: Request) -> Any:
        key = (req.params["zone"], req.params["op"])
        if key not in self.operations:
            return google_error(404, f"The resource 'operations/{key[1]}' was not found")
        self._polls[key] = self._polls.get(key, 0) + 1
        if self._polls[key] >= self.polls_to_done:
            return self._finish(key)
        return self.operations[key]

    def _wait_operation(self, req: Request) -> Any:
        """Real ``wait`` returns when the operation is DONE (or after ~2 minutes)."""
        key = (req.params["zone"], req.params["op"])
        if key not in self.operations:
            return google_error(404, f"The resource 'operations/{key[1]}' was not found")
        return self._finish(key)

    def _list_skus(self, req: Request) -> Any:
        return self._page(req, self.skus, key="skus")

    def _operation(
        self, zone: str, kind: str, inst: Mapping[str, Any], *, done: bool, user: str = "test"
    ) -> dict[str, Any]:
        name = f"operation-{next(self._ids)}"
        op = {
            "kind": "compute#operation",
            "id": str(next(self._ids)),
            "name": name,
            "zone": f"{BASE}/projects/{self.project}/zones/{zone}",
            "operationType": kind,
            "targetLink": inst.get("selfLink", ""),
            "status": "DONE" if done else "RUNNING",
            "progress": 100 if done else 0,
            "user": user,
            "insertTime": _now(),
            "selfLink": f"{BASE}/projects/{self.project}/zones/{zone}/operations/{name}",
        }
        if inst.get("id"):
            op["targetId"] = inst["id"]
        self.operations[(zone, name)] = op
        return op
