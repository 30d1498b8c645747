"""Fakes for the two AWS price answers moto cannot give, spoken over HTTP like AWS does.

- ``FakePriceList``: the Price List API (AWS JSON 1.1: ``POST /`` with
  ``X-Amz-Target: AWSPriceListService.GetProducts``); point boto3 at it with
  ``AWS_ENDPOINT_URL_PRICING``.
- ``SpotPriceEc2``: an EC2 endpoint that answers ``DescribeSpotPriceHistory`` from the
  points a test adds and forwards every other EC2 action, byte for byte, to a moto server.
  moto's own answer is a constant (0.00001 at 2006-01-02) built in its response layer, with
  nothing in its backend to set; point boto3 at this with ``AWS_ENDPOINT_URL_EC2``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.fakes.http import FakeHttpServer, Request

# ---- Price List API -----------------------------------------------------------------------


def ec2_product(
    instance_type: str,
    region: str,
    usd_per_hour: float,
    *,
    operating_system: str = "Linux",
    tenancy: str = "Shared",
    pre_installed_sw: str = "NA",
    capacity_status: str = "Used",
    sku: str | None = None,
) -> dict[str, Any]:
    """One AmazonEC2 product in the shape GetProducts returns (before JSON-encoding)."""
    if sku is None:
        who = "/".join((instance_type, region, operating_system, tenancy, capacity_status))
        sku = f"SKU{zlib.crc32(who.encode()):08X}"
    term = f"{sku}.JRTCKXETXF"
    return {
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {
                "servicecode": "AmazonEC2",
                "instanceType": instance_type,
                "regionCode": region,
                "operatingSystem": operating_system,
                "tenancy": tenancy,
                "preInstalledSw": pre_installed_sw,
                "capacitystatus": capacity_status,
                "licenseModel": "No License required",
            },
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                term: {
                    "priceDimensions": {
                        f"{term}.6YS6EN2CT7": {
                            "unit": "Hrs",
                            "endRange": "Inf",
                            "description": f"${usd_per_hour} per On Demand {instance_type}",
                            "appliesTo": [],
                            "rateCode": f"{term}.6YS6EN2CT7",
                            "beginRange": "0",
                            "pricePerUnit": {"USD": f"{usd_per_hour:.10f}"},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2025-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            }
        },
        "version": "20251130000000",
        "publicationDate": "2025-11-30T00:00:00Z",
    }


def _matches(product: dict[str, Any], f: dict[str, str]) -> bool:
    attrs = product["product"]["attributes"]
    field, value, kind = f["Field"], f["Value"], f["Type"]
    actual = product["serviceCode"] if field == "ServiceCode" else attrs.get(field)
    if actual is None:
        return kind == "NONE_OF"
    if kind == "TERM_MATCH":
        return actual.lower() == value.lower()
    if kind == "EQUALS":
        return actual == value
    if kind == "CONTAINS":
        return value.lower() in actual.lower()
    values = [v.strip().lower() for v in value.split(",")]
    return (actual.lower() in values) == (kind == "ANY_OF")


class FakePriceList:
    def __init__(self, page_size: int = 100) -> None:
        self.products: list[dict[str, Any]] = []
        self.page_size = page_size
        self.server = FakeHttpServer()
        self.server.route("POST", "/", self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Bodies of the GetProducts requests received."""
        return [
            r.body
            for r in self.server.requests
            if r.headers.get("x-amz-target") == "AWSPriceListService.GetProducts"
        ]

    def add(self, product: dict[str, Any]) -> None:
        self.products.append(product)

    def _handle(self, req: Request) -> tuple[int, Any]:
        target = req.headers.get("x-amz-target", "")
        if target != "AWSPriceListService.GetProducts":
            return 400, {"__type": "UnknownOperationException", "message": target}
        body = req.body or {}
        filters = body.get("Filters", [])
        bad = [f for f in filters if f.get("Type") not in _FILTER_TYPES]
        if bad:
            return 400, {"__type": "ValidationException", "message": f"bad filter {bad[0]}"}
        found = [
            p
            for p in self.products
            if p["serviceCode"] == body.get("ServiceCode") and all(_matches(p, f) for f in filters)
        ]
        start = int(body.get("NextToken") or 0)
        size = int(body.get("MaxResults") or self.page_size)
        page = found[start : start + size]
        reply: dict[str, Any] = {
            "FormatVersion": "aws_v1",
            "PriceList": [json.dumps(p) for p in page],
        }
        if start + size < len(found):
            reply["NextToken"] = str(start + size)
        return 200, reply

    def __enter__(self) -> FakePriceList:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


_FILTER_TYPES = {"TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF"}


# ---- EC2 spot price history in front of moto ----------------------------------------------


@dataclass(frozen=True)
class SpotPoint:
    zone: str
    instance_type: str
    price: float
    at: datetime
    product: str = "Linux/UNIX"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


_HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding", "expect"})


def _signed_region(req: Request) -> str:
    """EC2 is one endpoint per region; here one endpoint serves all, so read the region the
    request was signed for (``Credential=KEY/DATE/REGION/ec2/aws4_request``)."""
    m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", req.headers.get("authorization", ""))
    return m.group(1) if m else "us-east-1"


def _in_region(zone: str, region: str) -> bool:
    return zone.startswith(region) and zone[len(region) :][:1].isalpha()


def _parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _listed(form: dict[str, list[str]], name: str) -> list[str]:
    """EC2 query lists: ``Name.1``, ``Name.2``, ..."""
    prefix = f"{name}."
    return [v[0] for k, v in form.items() if k.startswith(prefix) and k[len(prefix) :].isdigit()]


class SpotPriceEc2:
    """Spot prices as EC2 keeps them: a history per (zone, type, product) of price changes.

    Within [StartTime, EndTime] every change is returned, plus the last change before
    StartTime (the price in force at the start), as EC2 documents.
    """

    def __init__(self, upstream: str, page_size: int = 1000) -> None:
        self.upstream = upstream.rstrip("/")
        self.page_size = page_size
        self.points: list[SpotPoint] = []
        self.server = FakeHttpServer()
        self.server.route("POST", "/", self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def add(
        self, zone: str, instance_type: str, price: float, at: datetime, product: str = "Linux/UNIX"
    ) -> None:
        self.points.append(SpotPoint(zone, instance_type, price, at, product))

    def _handle(self, req: Request) -> tuple[int, bytes]:
        raw = req.body if isinstance(req.body, str) else ""
        form = parse_qs(raw, keep_blank_values=True)
        if form.get("Action") == ["DescribeSpotPriceHistory"]:
            return 200, self._history(form, _signed_region(req))
        return self._forward(req, raw.encode())

    def _forward(self, req: Request, data: bytes) -> tuple[int, bytes]:
        headers = {k: v for k, v in req.headers.items() if k not in _HOP_HEADERS}
        fwd = urllib.request.Request(self.upstream + req.path, data=data, method=req.method)
        for k, v in headers.items():
            fwd.add_header(k, v)
        try:
            with urllib.request.urlopen(fwd, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _selected(self, form: dict[str, list[str]], region: str) -> list[SpotPoint]:
        types = set(_listed(form, "InstanceType"))
        products = set(_listed(form, "ProductDescription"))
        zones = set(form.get("AvailabilityZone", []))
        by_filter = {"availability-zone": zones, "instance-type": types}
        by_filter["product-description"] = products
        i = 1
        while name := form.get(f"Filter.{i}.Name"):
            by_filter[name[0]].update(_listed(form, f"Filter.{i}.Value"))
            i += 1
        start = _parse_time(form["StartTime"][0]) if "StartTime" in form else None
        end = _parse_time(form["EndTime"][0]) if "EndTime" in form else None
        pts = [
            p
            for p in self.points
            if _in_region(p.zone, region)
            and (not types or p.instance_type in types)
            and (not products or p.product in products)
            and (not zones or p.zone in zones)
            and (end is None or p.at <= end)
        ]
        if start is None:
            return pts
        in_force: dict[tuple[str, str, str], SpotPoint] = {}
        for p in pts:
            key = (p.zone, p.instance_type, p.product)
            if p.at < start and (key not in in_force or p.at > in_force[key].at):
                in_force[key] = p
        return [*in_force.values(), *(p for p in pts if p.at >= start)]

    def _history(self, form: dict[str, list[str]], region: str) -> bytes:
        found = sorted(self._selected(form, region), key=lambda p: p.at, reverse=True)
        start = int(form.get("NextToken", ["0"])[0] or 0)
        size = int(form.get("MaxResults", [str(self.page_size)])[0])
        page = found[start : start + size]
        items = "".join(
            "<item>"
            f"<instanceType>{escape(p.instance_type)}</instanceType>"
            f"<productDescription>{escape(p.product)}</productDescription>"
            f"<spotPrice>{p.price:.6f}</spotPrice>"
            f"<timestamp>{_iso(p.at)}</timestamp>"
            f"<availabilityZone>{escape(p.zone)}</availabilityZone>"
            "</item>"
            for p in page
        )
        token = f"<nextToken>{start + size}</nextToken>" if start + size < len(found) else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<DescribeSpotPriceHistoryResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>fake-spot-price-history</requestId>"
            f"<spotPriceHistorySet>{items}</spotPriceHistorySet>{token}"
            "</DescribeSpotPriceHistoryResponse>"
        ).encode()

    def __enter__(self) -> SpotPriceEc2:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
