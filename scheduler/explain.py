"""One sentence on why the first placement beat the second, in dollars.

The sentence names what the runner-up has going for it (a lower price per hour, fewer
preemptions, local data) and what outweighs it, so a user can check the choice by hand.
"""

from __future__ import annotations

from scheduler.cluster_policy import Choice
from scheduler.placement import Placement, Plan


def money(usd: float) -> str:
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    return f"${usd:,.2f}"


def _size(gb: float) -> str:
    if gb >= 1000:
        return f"{gb / 1000:,.3g} TB"
    return f"{gb:,.3g} GB"


def _egress_story(p: Placement) -> str:
    moves = [m for m in p.data_moves if m.usd > 0]
    if not moves:
        return ""
    biggest = max(moves, key=lambda m: m.usd)
    what = biggest.what.split(" ", 1)
    label = f"the {_size(biggest.gb)} {what[0]} {what[1] if len(what) > 1 else ''}".rstrip()
    text = f"moving {label} from {biggest.src} costs {money(biggest.usd)}"
    others = p.cost.egress - biggest.usd
    if others > 0.005:
        text += f" (other data moves {money(others)})"
    return text


def why_first(first: Placement, second: Placement) -> str:
    """Why ``first`` ranks above ``second``; both costed by the same model."""
    a, b = first.cost, second.cost
    gap = b.total - a.total
    head = f"#1 {first.describe()} beats #2 {second.describe()}"
    if gap <= 1e-9:
        return (
            f"{head} on price per hour ({money(first.price_per_hour)}/h vs"
            f" {money(second.price_per_hour)}/h): both are expected to cost {money(a.total)}"
        )
    pros: list[str] = []
    cons: list[str] = []
    per_hour = first.price_per_hour - second.price_per_hour
    if per_hour > 1e-9:
        pros.append(f"#2 is {money(per_hour)}/h cheaper")
    elif per_hour < -1e-9:
        cons.append(f"#2 costs {money(-per_hour)}/h more")
    d_pre = b.preemption - a.preemption
    if d_pre > 0.005:
        n = second.interruptions
        cons.append(
            f"its expected preemptions ({n:.2f}) add {money(b.preemption)} in checkpoints,"
            f" lost work and restarts"
            + (f" against {money(a.preemption)}" if a.preemption > 0.005 else "")
        )
    elif d_pre < -0.005:
        pros.append(f"#2 saves {money(-d_pre)} in expected preemptions")
    d_egress = b.egress - a.egress
    if d_egress > 0.005:
        cons.append(
            _egress_story(second) + (f" against {money(a.egress)}" if a.egress > 0.005 else "")
        )
    elif d_egress < -0.005:
        pros.append(f"#2 moves {money(-d_egress)} less data")
    d_credit = a.credit - b.credit
    if d_credit > 0.005:
        cons.append(f"#1 runs on {money(a.credit)} of commitments already paid for")
    elif d_credit < -0.005:
        pros.append(f"#2 has {money(-d_credit)} more commitment credit")
    d_compute = b.compute - a.compute
    if not cons and d_compute > 0.005:
        cons.append(f"its compute comes to {money(b.compute)} against {money(a.compute)}")
    text = f"{head} by {money(gap)}"
    if pros and cons:
        return f"{text}: {', '.join(pros)}, but {'; '.join(cons)}"
    if cons:
        return f"{text}: {'; '.join(cons)}"
    return text


def placement_reason(choice: Choice, result: Plan) -> str:
    """One line a person can check: where, at what price, and against what."""
    best = choice.placement
    line = (
        f"placed on {best.describe()} at {money(best.price_per_hour)}/h, expected"
        f" {money(best.cost.total)} over {best.expected_hours:.2f} h"
    )
    if choice.warm:
        line += (
            f"; a warm cluster of that shape is idle, which saves {money(choice.saving)} of"
            f" boot time ({money(choice.expected)} expected)"
        )
    others = [p for p in result.placements if p is not best]
    if others:
        return f"{line}; {why_first(best, others[0])}"
    return f"{line}; the only feasible placement of {result.considered} offerings"
