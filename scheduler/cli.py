"""The ``sched`` command: a thin layer over ``scheduler.api.Scheduler``.

Exit codes: 0 success, 1 the job failed or was cancelled (or the cluster failed us),
2 bad input or usage. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from scheduler.cli_views import (
    cluster_table,
    console,
    money,
    plan_json,
    plan_table,
    price_json,
    price_table,
)

if TYPE_CHECKING:
    from scheduler.api import JobView, Scheduler
    from scheduler.pricebook import Refresh

app = typer.Typer(
    name="sched",
    help="Multi-cloud, cost-aware job scheduler for ML: plan, run and track jobs on Ray.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2

F = TypeVar("F", bound=Callable[..., Any])

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
RefreshOption = Annotated[bool, typer.Option("--refresh", help="Fetch live prices first.")]
OfflineOption = Annotated[
    bool, typer.Option("--offline", help="No network: cached and snapshot prices.")
]
CatalogOption = Annotated[
    list[Path] | None, typer.Option(help="A SkyPilot vms.csv to price with (repeatable).")
]


def _fail(message: str, code: int) -> typer.Exit:
    one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
    typer.echo(f"error: {one_line}", err=True)
    return typer.Exit(code)


def _message(exc: BaseException) -> str:
    """What an exception says; a KeyError's str() is its quoted key, so use the key."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _errors_as_exit_codes(func: F) -> F:
    """Map the errors users can cause to one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:

        from jobs.loading import SpecError
        from providers.aws_prices import SpotAdvisorError
        from providers.network import NetworkRatesError
        from providers.skypilot_catalog import CatalogError
        from providers.snapshot import SnapshotError
        from scheduler.config import ConfigError
        from scheduler.price_query import PriceQueryError
        from scheduler.ray_jobs import RayUnavailable
        from scheduler.store import StoreError, UnknownJob

        bad_input = (SpecError, ConfigError, StoreError, UnknownJob, PriceQueryError)
        bad_tables = (CatalogError, SnapshotError, SpotAdvisorError, NetworkRatesError)

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (*bad_input, *bad_tables) as exc:
            raise _fail(_message(exc), EXIT_BAD_INPUT) from None
        except (RayUnavailable, RuntimeError, TimeoutError) as exc:
            raise _fail(_message(exc), EXIT_JOB_FAILED) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def _refresh_mode(refresh: bool, offline: bool) -> Refresh:
    from scheduler.pricebook import Refresh

    if refresh and offline:
        raise _fail("--refresh and --offline exclude each other", EXIT_BAD_INPUT)
    return Refresh.FORCE if refresh else Refresh.NEVER if offline else Refresh.AUTO


def _scheduler(catalogs: list[Path] | None = None) -> Scheduler:
    from scheduler.api import Scheduler

    if not catalogs:
        return Scheduler()
    from scheduler.config import load_settings

    settings = load_settings()
    missing = [p for p in catalogs if not p.is_file()]
    if missing:
        raise _fail(f"{missing[0]}: --catalog: no such file", EXIT_BAD_INPUT)
    return Scheduler(settings.model_copy(update={"catalogs": [*settings.catalogs, *catalogs]}))


def _job_table(views: list[JobView]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("ID", "NAME", "STATE", "WHERE", "MARKET", "$/H", "COST", "EXIT", "SUBMITTED"):
        table.add_column(column)
    for v in views:
        where = f"{v.cloud} {v.zone} {v.instance_type}" if v.cloud else "-"
        table.add_row(
            str(v.id),
            v.name,
            v.state.value,
            where,
            v.market or "-",
            money(v.price_per_hour),
            money(v.cost),
            "-" if v.exit_code is None else str(v.exit_code),
            v.submitted_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console().print(table)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
@_errors_as_exit_codes
def submit(
    file: Annotated[Path, typer.Argument(help="Job spec (YAML).")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the job to its end.")] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Only store it (PENDING); `sched reconcile` starts it.")
    ] = False,
) -> None:
    """Validate and submit a job; prints its id."""
    s = _scheduler()
    job = s.submit(file, start=not queue)
    typer.echo(job.id)
    if not wait:
        return
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(f"job {job.id}") as live:
            final = s.wait(job.id, on_change=lambda v: live.update(_progress_line(v)))
    else:
        final = s.wait(job.id, on_change=lambda v: typer.echo(_progress_line(v), err=True))
    view = s.get(job.id, refresh=False)
    typer.echo(
        f"job {view.id} {final.value}: cost {money(view.cost)}"
        + (f", exit code {view.exit_code}" if view.exit_code is not None else ""),
        err=True,
    )
    if final.value != "SUCCEEDED":
        raise typer.Exit(EXIT_JOB_FAILED)


def _progress_line(view: JobView) -> str:
    where = f" on {view.cloud} {view.zone} {view.instance_type}" if view.cloud else ""
    return f"job {view.id} {view.state.value}{where}"


@app.command()
@_errors_as_exit_codes
def status(
    job: Annotated[int | None, typer.Argument(help="Job id; omit for recent jobs.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one job in detail, or the recent ones."""
    s = _scheduler()
    if job is None:
        _list(s, as_json, limit=50)
        return
    view = s.get(job)
    ledger = s.ledger(job)
    if as_json:
        data = view.model_dump(mode="json")
        data["events"] = [e.model_dump(mode="json") for e in s.events(job)]
        data["ledger"] = [line.model_dump(mode="json") for line in ledger]
        _print_json(data)
        return
    _job_table([view])
    if view.message:
        typer.echo(f"message: {view.message}")
    _attempt_table(s.attempts(job), {line.attempt_id: line for line in ledger})
    typer.echo("events:")
    _print_events(s.events(job))


def _attempt_table(attempts: list[Any], ledger: dict[int, Any]) -> None:
    """Where each attempt ran, when, how it ended and what it cost (compute, data)."""
    from rich.table import Table

    if not attempts:
        return
    table = Table(box=None, header_style="bold", title="attempts", title_justify="left")
    columns = ("#", "WHERE", "MARKET", "$/H", "STARTED", "ENDED", "STATE", "EXIT")
    for column in (*columns, "COMPUTE", "EGRESS", "COST"):
        table.add_column(column)
    for a in attempts:
        line = ledger.get(a.id)
        table.add_row(
            str(a.number),
            f"{a.cloud} {a.zone} {a.instance_type}"
            + (f" x{a.num_nodes}" if a.num_nodes > 1 else ""),
            a.market,
            money(a.price_per_hour * a.num_nodes),
            f"{a.started_at:%Y-%m-%d %H:%M:%S}" if a.started_at else "-",
            f"{a.ended_at:%Y-%m-%d %H:%M:%S}" if a.ended_at else "-",
            a.state + (f": {a.message}" if a.message else ""),
            "-" if a.exit_code is None else str(a.exit_code),
            money(line.compute_usd) if line else "-",
            money(line.egress_usd) if line else "-",
            money(a.cost),
        )
    console().print(table)


def _print_events(events: list[Any]) -> None:
    for e in events:
        typer.echo(f"  {e.at:%H:%M:%S} {e.from_state or '':>12} -> {e.to_state:<12} {e.reason}")


@app.command()
@_errors_as_exit_codes
def events(
    job: Annotated[int, typer.Argument(help="Job id.")],
    as_json: JsonOption = False,
) -> None:
    """Every state transition of a job, oldest first, with its reason."""
    s = _scheduler()
    found = s.events(job)
    if as_json:
        _print_json([e.model_dump(mode="json") for e in found])
    else:
        _print_events(found)


def _list(s: Scheduler, as_json: bool, limit: int | None) -> None:
    views = s.list(limit=limit)
    if as_json:
        _print_json([v.model_dump(mode="json") for v in views])
    elif views:
        _job_table(views)
    else:
        typer.echo("no jobs yet: sched submit FILE")


@app.command("list")
@_errors_as_exit_codes
def list_jobs(
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many jobs.")] = 50,
) -> None:
    """List jobs, newest first."""
    _list(_scheduler(), as_json, limit)


@app.command()
@_errors_as_exit_codes
def logs(
    job: Annotated[int, typer.Argument(help="Job id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until it ends.")] = False,
) -> None:
    """Print a job's output (every attempt)."""
    s = _scheduler()
    if follow:
        for chunk in s.follow_logs(job):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        return
    sys.stdout.write(s.logs(job))


@app.command()
@_errors_as_exit_codes
def cancel(job: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Stop a job wherever it is and record it CANCELLED."""
    state = _scheduler().cancel(job)
    typer.echo(f"job {job} {state.value}")


@app.command()
@_errors_as_exit_codes
def plan(
    file: Annotated[Path, typer.Argument(help="Job spec (YAML).")],
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Placements to show.")] = 5,
    as_json: JsonOption = False,
    refresh: RefreshOption = False,
    offline: OfflineOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Where the job would run, what it is expected to cost, and why; stores nothing.

    Exit 2 when no placement meets the spec's constraints, naming the one that removed
    the last candidates and the nearest miss.
    """

    mode = _refresh_mode(refresh, offline)
    s = _scheduler(catalog)
    result = s.plan(file, refresh=mode)
    launchable = set(s.providers)
    if as_json:
        _print_json(plan_json(result, top, launchable))
    else:
        plan_table(result, top, launchable)
    if not result.placements:
        if as_json:
            typer.echo(f"error: no feasible placement: {result.why_none()}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
@_errors_as_exit_codes
def prices(
    gpu: Annotated[str | None, typer.Option(help="GPU model, e.g. H100 or A100:8.")] = None,
    tpu: Annotated[str | None, typer.Option(help="TPU generation or slice: v5p, v5p-8.")] = None,
    cloud: Annotated[list[str] | None, typer.Option(help="aws or gcp (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Region (repeatable).")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Spot prices only.")] = False,
    on_demand: Annotated[bool, typer.Option("--on-demand", help="On-demand only.")] = False,
    refresh: RefreshOption = False,
    offline: OfflineOption = False,
    catalog: CatalogOption = None,
    history: Annotated[
        str | None, typer.Option(help="Spot price history of this instance type, by zone.")
    ] = None,
    days: Annotated[float, typer.Option(min=0, help="History window in days.")] = 7,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to show.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Live spot and on-demand prices per zone, cheapest first, with how fresh each is."""
    from providers.offering import MarketKind
    from scheduler.price_query import PriceQuery

    if spot and on_demand:
        raise _fail("--spot and --on-demand exclude each other", EXIT_BAD_INPUT)
    mode = _refresh_mode(refresh, offline)
    for c in cloud or []:
        if c not in ("aws", "gcp"):
            raise _fail(f"--cloud: unknown cloud {c!r} (known: aws, gcp)", EXIT_BAD_INPUT)
    s = _scheduler(catalog)
    if history is not None:
        _spot_history(s, history, days, as_json)
        return
    market = MarketKind.SPOT if spot else MarketKind.ON_DEMAND if on_demand else None
    query = PriceQuery(gpu=gpu, tpu=tpu, clouds=cloud or None, regions=region, market=market)
    view = s.prices(query, refresh=mode)
    if as_json:
        _print_json(
            {
                "offerings": [price_json(o) for o in view.offerings[:limit]],
                "matched": len(view.offerings),
                "notes": view.notes,
                "refreshed": [r.model_dump() for r in view.reports],
            }
        )
    else:
        price_table(view.offerings[:limit], len(view.offerings), s.clock())
        for note in view.notes:
            typer.echo(note, err=True)
    failed = [r for r in view.reports if not r.ok]
    for r in failed:
        typer.echo(f"warning: {r.feed}: live prices not fetched: {r.error}", err=True)
    if refresh and failed:
        raise typer.Exit(EXIT_JOB_FAILED)


def _spot_history(s: Scheduler, instance_type: str, days: float, as_json: bool) -> None:
    from rich.table import Table

    points = s.spot_history(instance_type, days=days)
    if as_json:
        _print_json([p.model_dump(mode="json") for p in points])
        return
    if not points:
        typer.echo(
            f"no spot prices recorded for {instance_type} in the last {days:g} days;"
            " `sched prices --refresh` records them",
            err=True,
        )
        return
    by_zone: dict[str, list[Any]] = {}
    for p in points:
        by_zone.setdefault(f"{p.cloud} {p.zone}", []).append(p)
    table = Table(box=None, header_style="bold")
    for column in ("CLOUD ZONE", "POINTS", "FROM", "TO", "MIN", "MEAN", "MAX", "LATEST"):
        table.add_column(column)
    for zone, pts in sorted(by_zone.items()):
        prices = [p.price_per_hour for p in pts]
        table.add_row(
            zone,
            str(len(pts)),
            pts[0].at.strftime("%Y-%m-%d %H:%M"),
            pts[-1].at.strftime("%Y-%m-%d %H:%M"),
            f"${min(prices):.4f}",
            f"${sum(prices) / len(prices):.4f}",
            f"${max(prices):.4f}",
            f"${prices[-1]:.4f}",
        )
    console().print(table)


@app.command()
@_errors_as_exit_codes
def clusters(
    stop: Annotated[
        str | None, typer.Option("--stop", help="Terminate this idle cluster now.")
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include terminated ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Cloud Ray clusters sched brought up: who holds each, and for how long idle ones wait."""
    s = _scheduler()
    if stop is not None:
        try:
            done = s.stop_cluster(stop)
        except (LookupError, ValueError) as exc:
            raise _fail(f"--stop: {exc}", 2) from None
        typer.echo(f"{done.name}: {done.state} ({done.end_reason})")
        return
    found = s.clusters(include_terminated=show_all)
    if as_json:
        _print_json([c.model_dump(mode="json") for c in found])
        return
    cluster_table(found, s.clock(), s.settings.cluster_idle_stop_s)


@app.command()
@_errors_as_exit_codes
def reconcile() -> None:
    """Advance every unfinished job once: place queued jobs, refresh running ones."""
    s = _scheduler()
    for warning in s.reconcile():
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{len(s.unfinished())} unfinished job(s)")


@app.command()
@_errors_as_exit_codes
def controller(
    interval: Annotated[
        float | None, typer.Option(min=0.05, help="Seconds between passes (SCHED_POLL_INTERVAL).")
    ] = None,
    exit_when_idle: Annotated[
        bool, typer.Option("--exit-when-idle", help="Stop once no job is unfinished.")
    ] = False,
) -> None:
    """Run the reconcile loop: place queued jobs, start them, follow them to the end.

    Safe to stop at any moment (Ctrl-C, SIGTERM, even kill -9) and to run beside
    `submit --wait`: every step is a transaction that checks the state it expects.
    """
    import signal
    import time

    s = _scheduler()
    pause = interval if interval is not None else s.settings.poll_interval_s
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"controller: reconciling every {pause:g} s (Ctrl-C to stop)", err=True)
    try:
        while not stopping:
            for warning in s.reconcile():
                typer.echo(f"warning: {warning}", err=True)
            if exit_when_idle and not s.unfinished():
                typer.echo("controller: no unfinished jobs; stopping", err=True)
                return
            time.sleep(pause)
    except KeyboardInterrupt:
        pass
    typer.echo("controller: stopped", err=True)


@app.command()
@_errors_as_exit_codes
def up() -> None:
    """Start the local Ray cluster (done automatically on first submit)."""
    address, started = _scheduler().up()
    typer.echo(f"{'started' if started else 'already running'}: {address}")


@app.command()
@_errors_as_exit_codes
def down() -> None:
    """Stop the local Ray cluster."""
    stopped = _scheduler().down()
    typer.echo("stopped" if stopped else "not running")


def main() -> None:
    app()


# The platform owner's commands register themselves on ``app``.
from scheduler import cli_finops  # noqa: E402, F401
