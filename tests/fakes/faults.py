"""Cloud faults for tests, injected where the clouds would produce them: in HTTP answers.

- ``FaultyEc2``: an EC2 endpoint in front of another (moto, or the spot-price front) that
  answers chosen actions with EC2's own error response (``<Response><Errors><Error>``, with
  the HTTP status EC2 uses), or holds a request past the client's read timeout before
  forwarding it (the work is done, the answer is lost), and forwards everything else. It
  also keeps EC2's ClientToken promise, which moto does not: a RunInstances repeated with
  a token it has answered gets the same answer, and creates nothing.
- ``inject``: queued answers (a Google error body, or a delay) for one route of a Google
  fake; when they are used up the fake answers as usual. FakeCompute and FakeTpu expose it
  as ``fail_next``.

Nothing here patches sched's code: the clients parse these answers as they would the
clouds', and sched has to make sense of them.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.fakes.aws_pricing import _HOP_HEADERS, _signed_region
from tests.fakes.http import FakeHttpServer, Handler, Request

# HTTP statuses EC2 answers with ("Error codes for the Amazon EC2 API": server errors are
# 5xx, client errors 4xx; RequestLimitExceeded is a 503).
EC2_STATUS = {
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "InternalError": 500,
    "InsufficientInstanceCapacity": 500,
    "InsufficientHostCapacity": 500,
    "InsufficientCapacity": 500,
    "AuthFailure": 401,
    "UnauthorizedOperation": 403,
}
EC2_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "InsufficientInstanceCapacity": (
        "We currently do not have sufficient {type} capacity in the Availability Zone you"
        " requested ({zone}). Our system will be working on provisioning additional capacity."
    ),
    "VcpuLimitExceeded": (
        "You have requested more vCPU capacity than your current vCPU limit of 32 allows for"
        " the instance bucket that the specified instance type belongs to."
    ),
}


def ec2_error(code: str, message: str) -> bytes:
    """EC2's error document, as the Query API returns it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        "<RequestID>fault-0000-0000</RequestID></Response>"
    ).encode()


def ec2_tags(form: dict[str, list[str]]) -> dict[str, str]:
    """The tags a RunInstances asks for (``TagSpecification.1.Tag.N.Key``/``.Value``)."""
    found = re.compile(r"TagSpecification\.\d+\.Tag\.(\d+)\.Key")
    tags = {}
    for name, values in form.items():
        m = found.fullmatch(name)
        if m:
            value = form.get(name[: -len("Key")] + "Value", [""])[0]
            tags[values[0]] = value
    return tags


Where = Callable[[dict[str, list[str]]], bool]


@dataclass
class Ec2Fault:
    """Answer ``action`` with ``code`` (or hold it ``delay`` seconds, then forward it), for
    ``times`` requests (None: every one), only where the request places machines in
    ``zone``, is signed for ``region``, and satisfies ``where`` (given the request's form),
    when those are given."""

    action: str
    code: str = ""
    message: str = ""
    status: int = 400
    times: int | None = 1
    zone: str | None = None
    region: str | None = None
    delay: float = 0.0
    where: Where | None = None
    used: int = 0

    def matches(self, action: str, form: dict[str, list[str]], region: str) -> bool:
        if action != self.action or (self.times is not None and self.used >= self.times):
            return False
        if self.zone is not None and form.get("Placement.AvailabilityZone") != [self.zone]:
            return False
        if self.region is not None and self.region != region:
            return False
        return self.where is None or self.where(form)


class FaultyEc2:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Ec2Fault] = []
        self.seen: Counter[str] = Counter()  # every request, by action
        self.injected: list[tuple[str, str]] = []  # (action, code or "delay") answered
        self._answered: dict[str, tuple[int, bytes]] = {}  # ClientToken -> first answer
        self.server = FakeHttpServer()
        self.server.route("POST", "/", self._handle)

    @property
    def url(self) -> str:
        return self.server.url

    def fail(
        self,
        action: str,
        code: str,
        *,
        message: str | None = None,
        times: int | None = 1,
        zone: str | None = None,
        region: str | None = None,
        where: Where | None = None,
    ) -> Ec2Fault:
        fault = Ec2Fault(
            action=action,
            code=code,
            message=message if message is not None else EC2_MESSAGES.get(code, code),
            status=EC2_STATUS.get(code, 400),
            times=times,
            zone=zone,
            region=region,
            where=where,
        )
        self.faults.append(fault)
        return fault

    def delay(self, action: str, seconds: float, *, times: int = 1) -> Ec2Fault:
        fault = Ec2Fault(action=action, delay=seconds, times=times)
        self.faults.append(fault)
        return fault

    def _handle(self, req: Request) -> tuple[int, bytes]:
        raw = req.body if isinstance(req.body, str) else ""
        form = parse_qs(raw, keep_blank_values=True)
        action = (form.get("Action") or [""])[0]
        self.seen[action] += 1
        fault = next((f for f in self.faults if f.matches(action, form, _signed_region(req))), None)
        if fault is not None:
            fault.used += 1
            self.injected.append((action, fault.code or "delay"))
            if not fault.delay:
                return fault.status, ec2_error(fault.code, self._message(fault, form))
            time.sleep(fault.delay)  # past the client's read timeout: it has given up
        token = (form.get("ClientToken") or [""])[0] if action == "RunInstances" else ""
        if token and token in self._answered:
            return self._answered[token]
        answer = self._forward(req, raw.encode())
        if token and answer[0] == 200:
            self._answered[token] = answer
        return answer

    @staticmethod
    def _message(fault: Ec2Fault, form: dict[str, list[str]]) -> str:
        zone = (form.get("Placement.AvailabilityZone") or ["?"])[0]
        kind = (form.get("InstanceType") or ["?"])[0]
        return fault.message.replace("{zone}", zone).replace("{type}", kind)

    def _forward(self, req: Request, data: bytes) -> tuple[int, bytes]:
        fwd = urllib.request.Request(self.upstream + req.path, data=data, method=req.method)
        for k, v in req.headers.items():
            if k not in _HOP_HEADERS:
                fwd.add_header(k, v)
        try:
            with urllib.request.urlopen(fwd, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def __enter__(self) -> FaultyEc2:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


# ---- Google ---------------------------------------------------------------------------------


def google_rest_error(
    code: int, message: str, status: str, reason: str = "", domain: str = "global"
) -> tuple[int, dict[str, Any]]:
    """An error in the shape Google's REST APIs send: ``errors[]`` (v1 style) and an
    ErrorInfo detail, which google.api_core reads into ``errors`` and ``reason``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["errors"] = [{"message": message, "domain": domain, "reason": reason}]
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return code, {"error": error}


@dataclass(frozen=True)
class Delay:
    """Hold the request this long, then answer it as the fake would."""

    seconds: float


Answer = tuple[int, Any] | Delay


@dataclass
class Injected:
    """Answers queued on one route; ``used`` counts the ones given."""

    method: str
    pattern: re.Pattern[str]
    answers: deque[Answer]
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def inject(server: FakeHttpServer, method: str, pattern: str, answers: list[Answer]) -> Injected:
    """Put ``answers`` in front of the route ``method pattern`` of ``server``: each
    matching request takes the next one; then the fake's own route answers again."""
    injected = Injected(method.upper(), re.compile(pattern + r"\Z"), deque(answers))

    def handler(req: Request) -> Any:
        with injected.lock:
            answer = injected.answers.popleft() if injected.answers else None
            injected.used += answer is not None
        if isinstance(answer, Delay):
            time.sleep(answer.seconds)
        elif answer is not None:
            return answer
        return _fall_through(server, handler, req)

    server.routes.insert(0, (injected.method, injected.pattern, handler))
    return injected


def _fall_through(server: FakeHttpServer, injected: Handler, req: Request) -> Any:
    """The first other route that matches: the fake's own answer (or the next injection)."""
    routes = server.routes
    start = next(i for i, r in enumerate(routes) if r[2] is injected) + 1
    for method, pattern, handler in routes[start:]:
        m = pattern.match(req.path)
        if method == req.method and m:
            req.params = m.groupdict()
            return handler(req)
    return 404, {"error": {"code": 404, "message": f"no route {req.method} {req.path}"}}
