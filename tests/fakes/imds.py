"""EC2's instance metadata service (IMDSv2) for tests: the token route; tests add the rest."""

from __future__ import annotations

from tests.fakes.http import FakeHttpServer, Request


def with_token_route(server: FakeHttpServer, token: bytes) -> FakeHttpServer:
    """Reset ``server`` to an IMDSv2 that hands out ``token`` (and refuses a PUT without a
    TTL header, as EC2 does); instance-action is added by each test that wants it."""

    def issue(req: Request) -> tuple[int, bytes]:
        if req.headers.get("x-aws-ec2-metadata-token-ttl-seconds") is None:
            return 400, b"missing ttl"
        return 200, token

    server.routes.clear()
    server.requests.clear()
    server.route("PUT", "/latest/api/token", issue)
    return server
