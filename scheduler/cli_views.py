"""How plans and prices look: terminal tables and JSON, kept apart from the commands.

Rich is imported inside the functions so that `sched --help` does not pay for it.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from scheduler.placement import Plan


def console() -> Console:
    """A terminal gets its own width; a pipe or a log gets whole rows, never '…'."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=240)


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def cluster_table(clusters: list[Any], now: datetime, idle_stop_s: float) -> None:
    """One row per cluster; an idle one says how long until it is stopped."""
    from rich.table import Table

    if not clusters:
        typer.echo("no cloud clusters (SCHED_LAUNCH_CLOUDS lists the clouds to launch on)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "WHERE", "MARKET", "$/H", "STATE", "USE", "HEAD"):
        table.add_column(column)
    for c in clusters:
        if c.state == "TERMINATED":
            use = c.end_reason or ""
        elif c.attempt_id is not None:
            use = f"attempt {c.attempt_id}"
        else:
            idle = (now - c.last_used_at).total_seconds()
            use = f"idle {idle:.0f} s, stops in {max(0.0, idle_stop_s - idle):.0f} s"
        nodes = f" x{c.num_nodes}" if c.num_nodes > 1 else ""
        table.add_row(
            c.name,
            f"{c.cloud} {c.zone} {c.instance_type}{nodes}",
            c.market,
            money(c.price_per_hour * c.num_nodes),
            c.state,
            use,
            c.head_address or "-",
        )
    console().print(table)


def plan_json(result: Plan, top: int, launchable: set[str]) -> dict[str, Any]:
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


def plan_table(result: Plan, top: int, launchable: set[str]) -> None:
    from rich.table import Table

    from scheduler.explain import why_first

    out = console()
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
            money(p.price_per_hour),
            f"{p.expected_hours:,.2f}",
            f"{p.interruptions:.2f}" if p.spot is not None else "-",
            money(p.cost.compute),
            money(p.cost.preemption),
            money(p.cost.egress),
            *([money(-p.cost.credit)] if credit else []),
            money(p.cost.total),
        ]
        table.add_row(*row)
    out.print(table)
    if len(shown) > 1:
        out.print(why_first(shown[0], shown[1]), soft_wrap=True)
    best = shown[0]
    if best.spot is not None and best.spot.checkpoint_interval_hours:
        out.print(
            f"#1 checkpoints every {best.spot.checkpoint_interval_hours * 60:,.0f} min"
            f" (Daly), restarts in {best.restart_hours * 60:,.0f} min",
            soft_wrap=True,
        )
    out.print(result.funnel_text(), soft_wrap=True)
    if best.offering.cloud not in launchable:
        typer.echo(
            f"note: sched cannot launch on {best.offering.cloud} from here yet;"
            " submit places the job among: " + ", ".join(sorted(launchable)),
            err=True,
        )


def price_json(o: Any) -> dict[str, Any]:
    from scheduler.price_query import price_per_device_hour

    return {**o.model_dump(mode="json"), "price_per_device_hour": price_per_device_hour(o)}


def age(when: Any, now: Any) -> str:
    seconds = (now - when).total_seconds()
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h ago"
    return when.date().isoformat()


def price_table(offerings: list[Any], matched: int, now: Any) -> None:
    from rich.table import Table

    from scheduler.price_query import price_per_device_hour

    out = console()
    if not offerings:
        out.print("no offering matches")
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
            age(o.as_of, now),
            o.price_source.value,
        )
    out.print(table)
    if matched > len(offerings):
        out.print(f"{matched - len(offerings)} more; use --limit to see them")
