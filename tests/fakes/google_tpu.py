"""A fake of the Cloud TPU REST API v2 and the Cloud Billing Catalog, over HTTP.

Answers the paths ``google.cloud.tpu_v2`` sends with ``transport="rest"``: locations,
accelerator types (paged), nodes (create with ``?nodeId=``, get, delete) and operations.
Create and delete are long-running: an operation is done after ``polls_to_done`` reads of
it (or of the node it works on), which is when the node turns READY or goes away. A node
id that exists answers 409 ALREADY_EXISTS, as Google does. ``stockout`` makes creates in a
zone fail the way a zone without capacity does; ``preempt`` plays Google taking a spot
slice back; ``fail_next`` queues answers (a 429 quota or throttling error, a 503, a delay)
in front of any route. ``/v1/services/{id}/skus`` serves billing SKUs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tests.fakes.faults import Answer, Injected, inject
from tests.fakes.http import Request, ServedFake, google_error

COMPUTE_SERVICE = "6F81-5844-456A"
TPU_SERVICE = "E000-3F24-B8AA"
_L = r"/v2/projects/(?P<project>[^/]+)/locations"
_Z = _L + r"/(?P<zone>[^/:]+)"
NODES = _Z + r"/nodes"
NODE = _Z + r"/nodes/(?P<node>[^/:]+)"
_NODE_ID = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
RESOURCE_EXHAUSTED = 8

# (sku id, service, description, usage type, regions, usd per unit). The v5e/v5p/v6e
# descriptions have the shapes the live Compute Engine catalog uses (resource group TPU,
# per chip-hour; spot as "attached to Spot Preemptible VMs"; reservations, commitments and
# TPU7x next to them). The v2/v3/v4 rows follow the wording public catalog fetchers match
# in the Cloud TPU service ("Tpu-v3", "Pod", "Preemptible" in the text while the usage type
# says OnDemand), priced per 8-core board. Rates are us-central1 (v4: us-central2) list
# prices: v5p $4.20, v5e $1.20, v6e $2.70 per chip-hour; v2-8 $4.50, v3-8 $8.00, v4 $12.88
# per board.
TPU_SKUS: tuple[tuple[str, str, str, str, tuple[str, ...], float], ...] = (
    ("V5P", COMPUTE_SERVICE, "TpuV5p running in Iowa", "OnDemand", ("us-central1",), 4.2),
    (
        "V5P-S",
        COMPUTE_SERVICE,
        "TpuV5p attached to Spot Preemptible VMs running in Iowa",
        "Preemptible",
        ("us-central1",),
        0.827568,
    ),
    ("V5E", COMPUTE_SERVICE, "TpuV5e running in Iowa", "OnDemand", ("us-central1",), 1.2),
    (
        "V5E-S",
        COMPUTE_SERVICE,
        "TpuV5e attached to Spot Preemptible VMs running in Iowa",
        "Preemptible",
        ("us-central1",),
        0.25717,
    ),
    ("V6E", COMPUTE_SERVICE, "TpuV6e running in Iowa", "OnDemand", ("us-central1",), 2.7),
    (
        "V5P-RES",
        COMPUTE_SERVICE,
        "Reserved TpuV5p in Iowa in Calendar Mode",
        "OnDemand",
        ("us-central1",),
        2.94,
    ),
    (
        "V5P-3Y",
        COMPUTE_SERVICE,
        "Commitment v1: TpuV5p running in Iowa for 3 Years",
        "Commit3Yr",
        ("us-central1",),
        1.89,
    ),
    (
        "TPU7X",
        COMPUTE_SERVICE,
        "TPU7x running in Americas",
        "OnDemand",
        ("us-central1", "us-east1"),
        12.0,
    ),
    ("V2", TPU_SERVICE, "Tpu-v2 running in Americas", "OnDemand", ("us-central1",), 4.5),
    ("V2-POD", TPU_SERVICE, "Tpu-v2 Pod running in Americas", "OnDemand", ("us-central1",), 6.0),
    (
        "V2-PRE",
        TPU_SERVICE,
        "Preemptible Tpu-v2 running in Americas",
        "OnDemand",
        ("us-central1",),
        1.35,
    ),
    ("V3", TPU_SERVICE, "Tpu-v3 running in Americas", "OnDemand", ("us-central1",), 8.0),
    ("V4-POD", TPU_SERVICE, "Tpu-v4 Pod running in Americas", "OnDemand", ("us-central2",), 12.88),
    (
        "V4-POD-PRE",
        TPU_SERVICE,
        "Preemptible Tpu-v4 Pod running in Americas",
        "OnDemand",
        ("us-central2",),
        3.686,
    ),
)


def sku(
    sku_id: str,
    description: str,
    usage_type: str,
    regions: Iterable[str],
    usd: float,
    *,
    service: str = COMPUTE_SERVICE,
    resource_group: str = "TPU",
    unit: str = "h",
    effective: str = "2026-11-01T08:00:00Z",
) -> dict[str, Any]:
    """One Catalog API SKU in its REST shape, the price as units + nanos."""
    units = int(usd)
    nanos = round((usd - units) * 1e9)
    return {
        "name": f"services/{service}/skus/{sku_id}",
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": "Compute Engine" if service == COMPUTE_SERVICE else "Cloud TPU",
            "resourceFamily": "Compute",
            "resourceGroup": resource_group,
            "usageType": usage_type,
        },
        "serviceRegions": list(regions),
        "pricingInfo": [
            {
                "effectiveTime": effective,
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
    }


def tpu_skus() -> list[dict[str, Any]]:
    return [sku(i, d, u, r, usd, service=service) for i, service, d, u, r, usd in TPU_SKUS]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeTpu(ServedFake):
    """State is plain dicts: ``nodes[(zone, node_id)]`` and ``operations[name]`` hold the
    REST bodies the fake serves."""

    def __init__(
        self,
        project: str = "test-project",
        *,
        polls_to_done: int = 1,
        page_size: int = 50,
        skus: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.project = project
        self.polls_to_done = polls_to_done
        self.page_size = page_size
        super().__init__()
        self.zones: dict[str, dict[str, str]] = {}  # zone -> accelerator type -> topology
        self.nodes: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.skus: dict[str, list[dict[str, Any]]] = {}
        self.stockouts: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)
        for item in skus:
            self.add_sku(item)
        self._routes()

    # ---- test hooks ---------------------------------------------------------------------

    def add_zone(self, zone: str, accelerator_types: Mapping[str, str]) -> None:
        """A TPU location and the slice types it offers (``{"v5p-8": "2x2x1"}``)."""
        self.zones[zone] = dict(accelerator_types)

    def add_sku(self, item: Mapping[str, Any]) -> None:
        service = str(item["name"]).split("/")[1]
        self.skus.setdefault(service, []).append(dict(item))

    def stockout(self, zone: str, accelerator_type: str) -> None:
        """Creates of this type in this zone fail: RESOURCE_EXHAUSTED in the operation."""
        self.stockouts.add((zone, accelerator_type))

    def fail_next(self, method: str, pattern: str, *answers: Answer) -> Injected:
        """The next requests to ``method pattern`` (e.g. ``"POST", NODES``) get these
        answers, then the fake's own."""
        return inject(self.server, method, pattern, list(answers))

    def preempt(self, zone: str, node_id: str) -> dict[str, Any]:
        with self.server.lock:
            node = self.nodes[(zone, node_id)]
            node["state"] = "PREEMPTED"
            node["healthDescription"] = "The TPU was preempted."
            return node

    # ---- routing ------------------------------------------------------------------------

    def _routes(self) -> None:
        r = self.server.route
        r("GET", _L, self._list_locations)
        r("GET", _Z + r"/acceleratorTypes", self._list_accelerator_types)
        r("POST", _Z + r"/nodes", self._create)
        r("GET", _Z + r"/nodes/(?P<node>[^/:]+)", self._get_node)
        r("DELETE", _Z + r"/nodes/(?P<node>[^/:]+)", self._delete)
        r("GET", _Z + r"/operations/(?P<op>[^/:]+)", self._get_operation)
        r("GET", r"/v1/services/(?P<service>[^/]+)/skus", self._list_skus)

    def _page(self, req: Request, items: list[Any], key: str) -> dict[str, Any]:
        size = int(req.arg("pageSize") or self.page_size)
        start = int(req.arg("pageToken") or 0)
        body: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body

    def _parent(self, zone: str) -> str:
        return f"projects/{self.project}/locations/{zone}"

    def _unknown_zone(self, req: Request) -> tuple[int, dict[str, Any]] | None:
        if req.params["project"] != self.project:
            return google_error(403, f"project {req.params['project']}", "PERMISSION_DENIED")
        if req.params["zone"] not in self.zones:
            return google_error(404, f"location {req.params['zone']} not found", "NOT_FOUND")
        return None

    def _list_locations(self, req: Request) -> Any:
        locations = [
            {"name": self._parent(z), "locationId": z, "displayName": z} for z in sorted(self.zones)
        ]
        return self._page(req, locations, "locations")

    def _list_accelerator_types(self, req: Request) -> Any:
        if err := self._unknown_zone(req):
            return err
        zone = req.params["zone"]
        types = [
            {
                "name": f"{self._parent(zone)}/acceleratorTypes/{name}",
                "type": name,
                "acceleratorConfigs": [
                    {
                        "type": name.split("-")[0].upper().replace("LITEPOD", "LITE_POD"),
                        "topology": topology,
                    }
                ],
            }
            for name, topology in sorted(self.zones[zone].items())
        ]
        return self._page(req, types, "acceleratorTypes")

    def _invalid(self, node_id: str | None, zone: str, body: Any) -> str | None:
        if not node_id or not _NODE_ID.fullmatch(node_id):
            return f"node id {node_id!r} must match {_NODE_ID.pattern}"
        if not isinstance(body, dict):
            return "request body must be a Node"
        if body.get("acceleratorType") not in self.zones[zone]:
            return f"accelerator type {body.get('acceleratorType')!r} not offered in {zone}"
        if not body.get("runtimeVersion"):
            return "runtimeVersion is required"
        for key, value in (body.get("labels") or {}).items():
            if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(str(value)):
                return f"invalid label {key!r}={value!r}"
        return None

    def _create(self, req: Request) -> Any:
        if err := self._unknown_zone(req):
            return err
        zone, node_id = req.params["zone"], req.arg("nodeId")
        if problem := self._invalid(node_id, zone, req.body):
            return google_error(400, problem, "INVALID_ARGUMENT")
        assert node_id is not None
        if (zone, node_id) in self.nodes:
            return google_error(409, f"node {node_id} already exists", "ALREADY_EXISTS")
        node = {
            **req.body,
            "name": f"{self._parent(zone)}/nodes/{node_id}",
            "state": "CREATING",
            "createTime": _now(),
            "apiVersion": "V2",
            "id": str(next(self._ids)),
        }
        self.nodes[(zone, node_id)] = node
        return self._operation(zone, node_id, "create")

    def _get_node(self, req: Request) -> Any:
        if err := self._unknown_zone(req):
            return err
        key = (req.params["zone"], req.params["node"])
        for op in self.operations.values():
            if op["_node"] == key and not op["done"]:
                self._tick(op)
        node = self.nodes.get(key)
        if node is None:
            return google_error(404, f"node {key[1]} not found", "NOT_FOUND")
        return node

    def _delete(self, req: Request) -> Any:
        if err := self._unknown_zone(req):
            return err
        key = (req.params["zone"], req.params["node"])
        node = self.nodes.get(key)
        if node is None:
            return google_error(404, f"node {key[1]} not found", "NOT_FOUND")
        node["state"] = "DELETING"
        return self._operation(*key, "delete")

    def _get_operation(self, req: Request) -> Any:
        if err := self._unknown_zone(req):
            return err
        name = f"{self._parent(req.params['zone'])}/operations/{req.params['op']}"
        op = self.operations.get(name)
        if op is None:
            return google_error(404, f"operation {name} not found", "NOT_FOUND")
        self._tick(op)
        return self._public(op)

    def _list_skus(self, req: Request) -> Any:
        return self._page(req, self.skus.get(req.params["service"], []), "skus")

    # ---- long-running operations --------------------------------------------------------

    def _operation(self, zone: str, node_id: str, verb: str) -> dict[str, Any]:
        name = f"{self._parent(zone)}/operations/operation-{next(self._ids)}"
        op = {
            "name": name,
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.tpu.v2.OperationMetadata",
                "createTime": _now(),
                "target": f"{self._parent(zone)}/nodes/{node_id}",
                "verb": verb,
                "apiVersion": "v2",
            },
            "done": False,
            "_node": (zone, node_id),
            "_polls": 0,
        }
        self.operations[name] = op
        if self.polls_to_done <= 0:
            self._finish(op)
        return self._public(op)

    def _tick(self, op: dict[str, Any]) -> None:
        if op["done"]:
            return
        op["_polls"] += 1
        if op["_polls"] >= self.polls_to_done:
            self._finish(op)

    def _finish(self, op: dict[str, Any]) -> None:
        op["done"] = True
        zone, node_id = op["_node"]
        node = self.nodes.get((zone, node_id))
        if op["metadata"]["verb"] == "delete":
            self.nodes.pop((zone, node_id), None)
            op["response"] = {"@type": "type.googleapis.com/google.protobuf.Empty"}
            return
        if node is None:
            op["error"] = {"code": 5, "message": f"node {node_id} was deleted"}
            return
        if (zone, node["acceleratorType"]) in self.stockouts:
            self.nodes.pop((zone, node_id), None)
            op["error"] = {
                "code": RESOURCE_EXHAUSTED,
                "message": f"There is no more capacity in the zone {zone!r}",
            }
            return
        ip = next(self._ips)
        node["state"] = "READY"
        node["health"] = "HEALTHY"
        node["networkEndpoints"] = [
            {
                "ipAddress": f"10.128.0.{ip}",
                "port": 8470,
                "accessConfig": {"externalIp": f"34.1.2.{ip}"},
            }
        ]
        op["response"] = {"@type": "type.googleapis.com/google.cloud.tpu.v2.Node", **node}

    @staticmethod
    def _public(op: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in op.items() if not k.startswith("_")}
