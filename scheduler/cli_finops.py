"""The platform owner's commands: commitments, budgets, alerts, cost reports.

Registered on the same ``sched`` app; kept apart so the job commands stay readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli import EXIT_BAD_INPUT, JsonOption, _errors_as_exit_codes, _fail, _scheduler, app
from scheduler.cli_views import console, money


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


@app.command()
@_errors_as_exit_codes
def commitments(
    hours: Annotated[int, typer.Option(min=1, max=24 * 93, help="Hours to look back.")] = 24,
    as_json: JsonOption = False,
) -> None:
    """Savings Plans and CUDs (SCHED_COMMITMENTS): use per hour, headroom, effective discount.

    Effective discount = 1 - (fees + on-demand spend beyond them) / on-demand value of the
    usage; below break-even (utilization 1 - discount) it is negative: the plan costs more
    than on-demand would have.
    """
    from rich.table import Table

    s = _scheduler()
    declared = s.finops.commitments
    if not declared:
        typer.echo("no commitments (declare them in a file named by SCHED_COMMITMENTS)")
        return
    window = s.commitment_hours(hours)
    if as_json:
        data = {
            "commitments": [c.model_dump(mode="json") for c in declared],
            "hours": [
                {
                    "hour": hour.isoformat(),
                    "effective_discount": alloc.effective_discount,
                    "utilization": alloc.utilization,
                    "on_demand_value": alloc.on_demand_value,
                    "uncovered": alloc.uncovered,
                    "by_commitment": {
                        h.commitment.id: {
                            "covered": h.covered,
                            "fee_used": h.fee_used,
                            "fee_unused": h.fee_unused,
                            "utilization": h.utilization,
                            "headroom": h.headroom,
                        }
                        for h in alloc.hours
                    },
                }
                for hour, alloc in window
            ],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in ("ID", "KIND", "SCOPE", "$/H", "OFF", "NOW", f"{hours}H AVG", "HEADROOM $/H"):
        table.add_column(column)
    for c in declared:
        mine = [h for _, alloc in window for h in alloc.hours if h.commitment.id == c.id]
        now = mine[-1] if mine else None
        scope = " ".join([*c.regions, c.family or ""]).strip() or "all regions"
        table.add_row(
            c.id,
            c.kind.value,
            scope,
            money(c.hourly_commitment),
            f"{c.discount:.0%}",
            _pct(now.utilization if now else None),
            _pct(sum(h.utilization for h in mine) / len(mine) if mine else None),
            money(now.headroom) if now else "-",
        )
    console().print(table)
    fees = sum(a.fees for _, a in window)
    value = sum(a.on_demand_value for _, a in window)
    beyond = sum(a.uncovered for _, a in window)
    if value > 0:
        effective = 1 - (fees + beyond) / value
        typer.echo(
            f"last {hours} h: fees {money(fees)}, on-demand beyond them {money(beyond)},"
            f" on-demand value of the usage {money(value)}: effective discount {effective:.1%}"
        )
    else:
        typer.echo(f"last {hours} h: fees {money(fees)} and no on-demand usage to cover")


@app.command()
@_errors_as_exit_codes
def budgets(as_json: JsonOption = False) -> None:
    """Monthly budgets per tag value (SCHED_BUDGETS): spent, level, forecast."""
    from rich.table import Table

    s = _scheduler()
    statuses = s.controller.budget_statuses()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        **st.budget.model_dump(mode="json"),
                        "spent": st.spent,
                        "fraction": st.fraction,
                        "level": st.level.value,
                        "forecast": st.forecast,
                        "forecast_level": st.forecast_level.value,
                    }
                    for st in statuses
                ],
                indent=2,
            )
        )
        return
    if not statuses:
        typer.echo("no budgets (declare them in a file named by SCHED_BUDGETS)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("BUDGET", "MONTHLY", "SPENT", "USED", "LEVEL", "FORECAST", "FORECAST LEVEL"):
        table.add_column(column)
    for st in statuses:
        table.add_row(
            st.budget.key,
            money(st.budget.monthly_usd),
            money(st.spent),
            _pct(st.fraction),
            st.level.value,
            money(st.forecast),
            st.forecast_level.value,
        )
    console().print(table)


@app.command()
@_errors_as_exit_codes
def alerts(as_json: JsonOption = False) -> None:
    """Budget levels, forecasts and spend anomalies raised so far, oldest first."""
    found = _scheduler().store.alerts()
    if as_json:
        typer.echo(json.dumps([a.model_dump(mode="json") for a in found], indent=2))
        return
    for a in found:
        typer.echo(f"{a.at:%Y-%m-%d %H:%M} {a.kind}: {a.message}")


@app.command()
@_errors_as_exit_codes
def report(
    by: Annotated[
        str, typer.Option(help="Tag keys (or cloud, region, market, job), comma-separated.")
    ] = "team",
    since: Annotated[
        str | None, typer.Option(help="A duration back from now (30d, 12h, 2w) or a date.")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV of the rows.")] = False,
    as_json: JsonOption = False,
    focus: Annotated[
        bool, typer.Option("--focus", help="Every charge as FinOps FOCUS 1.1 columns (CSV).")
    ] = False,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG: spend by the first key per day.")
    ] = None,
) -> None:
    """Actual cost from the ledger, rolled up by any tag."""
    from rich.table import Table

    from scheduler.report import grand_total, resolve_since, rollup, to_csv, to_focus_csv, to_json
    from scheduler.report import select as pick
    from scheduler.report_plot import plot as draw

    if sum([as_csv, as_json, focus]) > 1:
        raise _fail("--csv, --json and --focus exclude each other", EXIT_BAD_INPUT)
    keys = [k.strip() for k in by.split(",") if k.strip()]
    if not keys:
        raise _fail("--by: name at least one tag key", EXIT_BAD_INPUT)
    s = _scheduler()
    try:
        start = resolve_since(since, s.clock())
    except ValueError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from None
    lines = s.cost_lines()
    if plot_file is not None:
        if not plot_file.parent.is_dir():
            raise _fail(f"--plot: directory {plot_file.parent} does not exist", EXIT_BAD_INPUT)
        hours = s.commitment_hours(24 * 31) if s.finops.commitments else []
        used = [(h, a.utilization) for h, a in hours if a.utilization is not None]
        draw(pick(lines, start), keys[0], plot_file, commitment_utilization=used or None)
    if focus:
        typer.echo(to_focus_csv(pick(lines, start)), nl=False)
        return
    rows = rollup(lines, keys, start)
    total = grand_total(lines, start)
    if as_csv:
        typer.echo(to_csv(rows, by=keys), nl=False)
        return
    if as_json:
        typer.echo(json.dumps(to_json(rows, total, by=keys, since=start), indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in (*(k.upper() for k in keys), "TOTAL", "COMPUTE", "EGRESS", "HOURS", "JOBS"):
        table.add_column(column)
    for row in [*rows, total]:
        values = (
            [row.group.get(k, "") for k in keys]
            if row.group
            else ["total", *[""] * (len(keys) - 1)]
        )
        table.add_row(
            *values,
            money(row.total_usd),
            money(row.compute_usd),
            money(row.egress_usd),
            f"{row.hours:,.2f}",
            str(row.jobs),
        )
    console().print(table)
    if plot_file is not None:
        typer.echo(f"plot written to {plot_file}")


@app.command("audit")
@_errors_as_exit_codes
def audit_accounts(
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop what was found (never the SCHED_KEEP_TAG ones).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Running machines in the AWS and GCP accounts (not only sched's) that lack the
    mandatory tags (SCHED_REQUIRED_TAGS) or sat idle by their metrics for longer than
    SCHED_AUDIT_IDLE_HOURS, with what each costs an hour."""
    from rich.table import Table

    s = _scheduler()
    findings, results = s.audit(stop=stop)
    if as_json:
        data = {
            "findings": [f.model_dump(mode="json") for f in findings],
            "stopped": [r.model_dump(mode="json") for r in results],
        }
        typer.echo(json.dumps(data, indent=2))
        return
    if not findings:
        typer.echo("nothing found: every running machine is tagged and in use")
        return
    table = Table(box=None, header_style="bold")
    for column in ("CLOUD", "ZONE", "INSTANCE", "TYPE", "$/H", "KEEP", "WHY"):
        table.add_column(column)
    for f in findings:
        i = f.instance
        table.add_row(
            i.cloud,
            i.zone,
            i.instance_id,
            i.instance_type,
            money(i.hourly_usd),
            "kept" if f.kept else "",
            "; ".join(f.reasons),
        )
    console().print(table)
    known = [f.instance.hourly_usd for f in findings if f.instance.hourly_usd is not None]
    typer.echo(f"{len(findings)} machine(s), {money(sum(known))}/h where the price is known")
    for r in results:
        typer.echo(f"{r.action} {r.instance_id}" + (f": {r.error}" if r.error else ""))
