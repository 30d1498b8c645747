"""A fake of the AWS Savings Plans API, which moto does not have, spoken over HTTP.

Savings Plans is a REST-JSON service (botocore ``savingsplans/2019-06-28``): every action
is ``POST /{Action}`` with a JSON body, and errors are a status code plus
``{"__type": ..., "message": ...}``. This fake answers ``DescribeSavingsPlans`` (states,
ids, and the ``region`` / ``savings-plan-type`` filters; ``nextToken`` pages) and
``DescribeSavingsPlanRates`` (its filters match a rate's fields or properties). Point
boto3 at it with ``AWS_ENDPOINT_URL_SAVINGSPLANS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakes.http import Request, ServedFake

STATES = frozenset(
    {
        "payment-pending",
        "payment-failed",
        "active",
        "retired",
        "queued",
        "queued-deleted",
        "pending-return",
        "returned",
    }
)
_PLAN_FILTERS = {"region": "region", "savings-plan-type": "savingsPlanType"}
_RATE_FIELDS = ("productType", "serviceCode", "usageType", "operation")
_PREFIX = {"us-east-1": "", "us-west-2": "USW2-", "eu-west-1": "EU-"}


def error(status: int, kind: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"__type": kind, "message": message}


def savings_plan(
    plan_type: str = "Compute",
    commitment: str = "10.0",
    *,
    state: str = "active",
    region: str | None = None,
    family: str | None = None,
    start: str = "2026-01-01T00:00:00.000Z",
    end: str = "2027-01-01T00:00:00.000Z",
    term_seconds: int = 31_536_000,
    currency: str = "USD",
    plan_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One plan in DescribeSavingsPlans' shape; ``extra`` overrides or removes (None) keys."""
    plan_id = plan_id or str(uuid.uuid4())
    plan: dict[str, Any] = {
        "offeringId": str(uuid.uuid4()),
        "savingsPlanId": plan_id,
        "savingsPlanArn": f"arn:aws:savingsplans::123456789012:savingsplan/{plan_id}",
        "description": f"1 year No Upfront {plan_type}",
        "start": start,
        "end": end,
        "state": state,
        "savingsPlanType": plan_type,
        "paymentOption": "No Upfront",
        "productTypes": ["SageMaker"] if plan_type == "SageMaker" else ["EC2"],
        "currency": currency,
        "commitment": commitment,
        "upfrontPaymentAmount": "0.0",
        "recurringPaymentAmount": commitment,
        "termDurationInSeconds": term_seconds,
        "tags": {},
    }
    if region:
        plan["region"] = region
    if family:
        plan["ec2InstanceFamily"] = family
    for key, value in extra.items():
        if value is None:
            plan.pop(key, None)
        else:
            plan[key] = value
    return plan


def plan_rate(instance_type: str, region: str, rate: float, **props: str) -> dict[str, Any]:
    """One Linux shared-tenancy EC2 rate of a plan, in DescribeSavingsPlanRates' shape."""
    properties = {
        "region": region,
        "instanceType": instance_type,
        "instanceFamily": instance_type.split(".", 1)[0],
        "productDescription": "Linux/UNIX",
        "tenancy": "shared",
        **props,
    }
    return {
        "rate": f"{rate:.6f}",
        "currency": "USD",
        "unit": "Hrs",
        "productType": "EC2",
        "serviceCode": "AmazonEC2",
        "usageType": f"{_PREFIX.get(region, 'X-')}BoxUsage:{instance_type}",
        "operation": "RunInstances",
        "properties": [{"name": k, "value": v} for k, v in properties.items()],
    }


def _page(req: Request, items: Sequence[Any], key: str, page_size: int) -> Any:
    body = req.body or {}
    size = int(body.get("maxResults") or page_size)
    token = body.get("nextToken")
    if token is not None and not str(token).isdigit():
        return error(400, "ValidationException", f"bad nextToken {token!r}")
    start = int(token or 0)
    out: dict[str, Any] = {key: list(items[start : start + size])}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


class FakeSavingsPlans(ServedFake):
    """Plans and their rates in plain Python, served as the Savings Plans REST API."""

    def __init__(self, page_size: int = 2) -> None:
        self.plans: list[dict[str, Any]] = []
        self.rates: dict[str, list[dict[str, Any]]] = {}
        self.page_size = page_size
        super().__init__()
        r = self.server.route
        r("POST", r"/DescribeSavingsPlans", self._describe_plans)
        r("POST", r"/DescribeSavingsPlanRates", self._describe_rates)

    def add_plan(
        self, plan: Mapping[str, Any], rates: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        stored = dict(plan)
        self.plans.append(stored)
        self.rates[str(stored.get("savingsPlanId"))] = [dict(r) for r in rates]
        return stored

    def calls(self, action: str) -> list[Request]:
        return [r for r in self.requests if r.path == f"/{action}"]

    def _describe_plans(self, req: Request) -> Any:
        body = req.body or {}
        states = body.get("states") or []
        if bad := [s for s in states if s not in STATES]:
            return error(400, "ValidationException", f"unknown states {bad}")
        ids = set(body.get("savingsPlanIds") or [])
        found = [
            p
            for p in self.plans
            if (not states or p.get("state") in states)
            and (not ids or p.get("savingsPlanId") in ids)
        ]
        for f in body.get("filters") or []:
            field = _PLAN_FILTERS.get(f.get("name"))
            if field is None:
                return error(400, "ValidationException", f"fake cannot filter on {f}")
            found = [p for p in found if p.get(field) in f.get("values", [])]
        return _page(req, found, "savingsPlans", self.page_size)

    def _describe_rates(self, req: Request) -> Any:
        body = req.body or {}
        plan_id = body.get("savingsPlanId")
        if not plan_id:
            return error(400, "ValidationException", "savingsPlanId is required")
        if plan_id not in self.rates:
            return error(404, "ResourceNotFoundException", f"no savings plan {plan_id}")
        found = [r for r in self.rates[plan_id] if _rate_matches(r, body.get("filters") or [])]
        page = _page(req, found, "searchResults", self.page_size)
        if isinstance(page, dict):
            page["savingsPlanId"] = plan_id
        return page


def _rate_matches(rate: Mapping[str, Any], filters: Sequence[Mapping[str, Any]]) -> bool:
    props = {p["name"]: p["value"] for p in rate.get("properties") or []}
    for f in filters:
        name, values = f.get("name"), f.get("values") or []
        actual = rate.get(name) if name in _RATE_FIELDS else props.get(name)
        if actual not in values:
            return False
    return True
