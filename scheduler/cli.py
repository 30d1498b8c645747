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

if TYPE_CHECKING:
    from rich.console import Console

    from scheduler.api import JobView, Scheduler
    from scheduler.placement import Plan

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


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _errors_as_exit_codes(func: F) -> F:
    """Map the errors users can cause to one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:

        from jobs.loading import SpecError
        from providers.skypilot_catalog import CatalogError
        from providers.snapshot import SnapshotError
        from scheduler.config import ConfigError
        from scheduler.price_query import PriceQueryError
        from scheduler.ray_jobs import RayUnavailable
        from scheduler.store import StoreError, UnknownJob

        bad_input = (SpecError, ConfigError, StoreError, UnknownJob, PriceQueryError)

        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except (*bad_input, CatalogError, SnapshotError) as exc:
            raise _fail(str(exc).strip("'\""), EXIT_BAD_INPUT) from None
        except (RayUnavailable, RuntimeError, TimeoutError) as exc:
            raise _fail(str(exc), EXIT_JOB_FAILED) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


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


def _console() -> Console:
    """A terminal gets its own width; a pipe or a log gets whole rows, never '…'."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


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
            _money(v.price_per_hour),
            _money(v.cost),
            "-" if v.exit_code is None else str(v.exit_code),
            v.submitted_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    _console().print(table)


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
        f"job {view.id} {final.value}: cost {_money(view.cost)}"
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
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show one job in detail, or the recent ones."""
    s = _scheduler()
    if job is None:
        _list(s, as_json, limit=50)
        return
    view = s.get(job)
    if as_json:
        data = view.model_dump(mode="json")
        data["events"] = [e.model_dump(mode="json") for e in s.events(job)]
        _print_json(data)
        return
    _job_table([view])
    if view.message:
        typer.echo(f"message: {view.message}")
    _attempt_table(s.attempts(job))
    typer.echo("events:")
    _print_events(s.events(job))


def _attempt_table(attempts: list[Any]) -> None:
    """Where each attempt ran, when, how it ended and what it cost."""
    from rich.table import Table

    if not attempts:
        return
    table = Table(box=None, header_style="bold", title="attempts", title_justify="left")
    for column in ("#", "WHERE", "MARKET", "$/H", "STARTED", "ENDED", "STATE", "EXIT", "COST"):
        table.add_column(column)
    for a in attempts:
        table.add_row(
            str(a.number),
            f"{a.cloud} {a.zone} {a.instance_type}"
            + (f" x{a.num_nodes}" if a.num_nodes > 1 else ""),
            a.market,
            _money(a.price_per_hour * a.num_nodes),
            f"{a.started_at:%Y-%m-%d %H:%M:%S}" if a.started_at else "-",
            f"{a.ended_at:%Y-%m-%d %H:%M:%S}" if a.ended_at else "-",
            a.state + (f": {a.message}" if a.message else ""),
            "-" if a.exit_code is None else str(a.exit_code),
            _money(a.cost),
        )
    _console().print(table)


def _print_events(events: list[Any]) -> None:
    for e in events:
        typer.echo(f"  {e.at:%H:%M:%S} {e.from_state or '':>12} -> {e.to_state:<12} {e.reason}")


@app.command()
@_errors_as_exit_codes
def events(
    job: Annotated[int, typer.Argument(help="Job id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch live prices first.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="No network: cached and snapshot prices.")
    ] = False,
    catalog: Annotated[
        list[Path] | None, typer.Option(help="A SkyPilot vms.csv to plan against (repeatable).")
    ] = None,
) -> None:
    """Where the job would run, what it is expected to cost, and why; stores nothing.

    Exit 2 when no placement meets the spec's constraints, naming the one that removed
    the last candidates and the nearest miss.
    """
    from scheduler.pricebook import Refresh

    if refresh and offline:
        raise _fail("--refresh and --offline exclude each other", EXIT_BAD_INPUT)
    s = _scheduler(catalog)
    mode = Refresh.FORCE if refresh else Refresh.NEVER if offline else Refresh.AUTO
    result = s.plan(file, refresh=mode)
    launchable = set(s.providers)
    if as_json:
        _print_json(_plan_json(result, top, launchable))
    else:
        _plan_table(result, top, launchable)
    if not result.placements:
        if as_json:
            typer.echo(f"error: no feasible placement: {result.why_none()}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)


def _plan_json(result: Plan, top: int, launchable: set[str]) -> dict[str, Any]:
    from scheduler.explain import why_first

    shown = result.placements[:top]
    return {
        "placements": [
            {
                "rank": i,
                **p.model_dump(mode="json"),
                "price_per_hour": p.price_per_hour,
                "total": p.cost.total,
                "launchable": p.offering.cloud in launchable,
            }
            for i, p in enumerate(shown, start=1)
        ],
        "why": why_first(shown[0], shown[1]) if len(shown) > 1 else None,
        "feasible": result.feasible,
        "considered": result.considered,
        "funnel": [f.model_dump(mode="json") for f in result.funnel],
        "error": None if result.placements else f"no feasible placement: {result.why_none()}",
    }


def _plan_table(result: Plan, top: int, launchable: set[str]) -> None:
    from rich.table import Table

    from scheduler.explain import why_first

    console = _console()
    if not result.placements:
        typer.echo(f"error: no feasible placement: {result.why_none()}", err=True)
        typer.echo(result.funnel_text(), err=True)
        return
    shown = result.placements[:top]
    credit = any(p.cost.credit for p in shown)
    table = Table(box=None, header_style="bold")
    columns = ["#", "CLOUD", "REGION/ZONE", "TYPE", "MARKET", "$/H", "HOURS", "INTR"]
    columns += ["COMPUTE", "PREEMPT", "EGRESS", *(["CREDIT"] if credit else []), "TOTAL"]
    for column in columns:
        table.add_column(column, justify="right" if column[0] in "$HICPET" else "left")
    for i, p in enumerate(shown, start=1):
        o = p.offering
        row = [
            str(i),
            o.cloud,
            o.zone if o.cloud == "local" else f"{o.region}/{o.zone}",
            o.shape,
            o.market.value,
            _money(p.price_per_hour),
            f"{p.expected_hours:,.2f}",
            f"{p.interruptions:.2f}" if p.spot is not None else "-",
            _money(p.cost.compute),
            _money(p.cost.preemption),
            _money(p.cost.egress),
            *([_money(-p.cost.credit)] if credit else []),
            _money(p.cost.total),
        ]
        table.add_row(*row)
    console.print(table)
    if len(shown) > 1:
        console.print(why_first(shown[0], shown[1]), soft_wrap=True)
    best = shown[0]
    if best.spot is not None and best.spot.checkpoint_interval_hours:
        console.print(
            f"#1 checkpoints every {best.spot.checkpoint_interval_hours * 60:,.0f} min"
            f" (Daly), restarts in {best.restart_hours * 60:,.0f} min",
            soft_wrap=True,
        )
    console.print(result.funnel_text(), soft_wrap=True)
    if best.offering.cloud not in launchable:
        typer.echo(
            f"note: sched cannot launch on {best.offering.cloud} from here yet;"
            " submit places the job among: " + ", ".join(sorted(launchable)),
            err=True,
        )


@app.command()
@_errors_as_exit_codes
def prices(
    gpu: Annotated[str | None, typer.Option(help="GPU model, e.g. H100 or A100:8.")] = None,
    tpu: Annotated[str | None, typer.Option(help="TPU generation or slice: v5p, v5p-8.")] = None,
    cloud: Annotated[list[str] | None, typer.Option(help="aws or gcp (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Region (repeatable).")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Spot prices only.")] = False,
    on_demand: Annotated[bool, typer.Option("--on-demand", help="On-demand only.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Fetch live prices now.")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="No network: cached and snapshot prices.")
    ] = False,
    catalog: Annotated[
        list[Path] | None, typer.Option(help="A SkyPilot vms.csv to load (repeatable).")
    ] = None,
    history: Annotated[
        str | None, typer.Option(help="Spot price history of this instance type, by zone.")
    ] = None,
    days: Annotated[float, typer.Option(min=0, help="History window in days.")] = 7,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to show.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Live spot and on-demand prices per zone, cheapest first, with how fresh each is."""
    from providers.offering import MarketKind
    from scheduler.price_query import PriceQuery
    from scheduler.pricebook import Refresh

    if spot and on_demand:
        raise _fail("--spot and --on-demand exclude each other", EXIT_BAD_INPUT)
    if refresh and offline:
        raise _fail("--refresh and --offline exclude each other", EXIT_BAD_INPUT)
    for c in cloud or []:
        if c not in ("aws", "gcp"):
            raise _fail(f"--cloud: unknown cloud {c!r} (known: aws, gcp)", EXIT_BAD_INPUT)
    s = _scheduler(catalog)
    if history is not None:
        _spot_history(s, history, days, as_json)
        return
    market = MarketKind.SPOT if spot else MarketKind.ON_DEMAND if on_demand else None
    query = PriceQuery(gpu=gpu, tpu=tpu, clouds=cloud or None, regions=region, market=market)
    mode = Refresh.FORCE if refresh else Refresh.NEVER if offline else Refresh.AUTO
    view = s.prices(query, refresh=mode)
    if as_json:
        _print_json(
            {
                "offerings": [_price_json(o) for o in view.offerings[:limit]],
                "matched": len(view.offerings),
                "notes": view.notes,
                "refreshed": [r.model_dump() for r in view.reports],
            }
        )
    else:
        _price_table(view.offerings[:limit], len(view.offerings), s.clock())
        for note in view.notes:
            typer.echo(note, err=True)
    failed = [r for r in view.reports if not r.ok]
    for r in failed:
        typer.echo(f"warning: {r.feed}: live prices not fetched: {r.error}", err=True)
    if refresh and failed:
        raise typer.Exit(EXIT_JOB_FAILED)


def _price_json(o: Any) -> dict[str, Any]:
    from scheduler.price_query import price_per_device_hour

    return {**o.model_dump(mode="json"), "price_per_device_hour": price_per_device_hour(o)}


def _age(when: Any, now: Any) -> str:
    seconds = (now - when).total_seconds()
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h ago"
    return when.date().isoformat()


def _price_table(offerings: list[Any], matched: int, now: Any) -> None:
    from rich.table import Table

    from scheduler.price_query import price_per_device_hour

    console = _console()
    if not offerings:
        console.print("no offering matches")
        return
    table = Table(box=None, header_style="bold")
    columns = ("CLOUD", "REGION", "ZONE", "TYPE", "ACCELERATORS", "MARKET", "$/H", "$/DEV-H")
    for column in (*columns, "INTERRUPT/H", "AS OF", "SOURCE"):
        table.add_column(column)
    for o in offerings:
        a = o.accelerators
        per_device = price_per_device_hour(o)
        rate = "-" if o.market.value == "on_demand" else f"{o.interruption_rate:.4f}"
        if o.market.value == "spot" and o.interruption_source.value != "none":
            rate += f" ({o.interruption_source.value.split('_')[0]})"
        table.add_row(
            o.cloud,
            o.region,
            o.zone,
            o.instance_type,
            "-" if a is None else (a.name if a.name.startswith("tpu-") else f"{a.name}:{a.count}"),
            o.market.value,
            f"${o.price_per_hour:,.4f}",
            "-" if per_device is None else f"${per_device:,.4f}",
            rate,
            _age(o.as_of, now),
            o.price_source.value,
        )
    console.print(table)
    if matched > len(offerings):
        console.print(f"{matched - len(offerings)} more; use --limit to see them")


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
    _console().print(table)


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
