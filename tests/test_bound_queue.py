"""The queue a plan reads offerings from: bounds never fall, nothing is read twice or
lost, and the tight floor is worked out only for groups that reach the front."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.offering import Offering
from scheduler.bound_queue import BoundQueue
from tests.offerings import offering

prices = st.sampled_from([0.0, 0.3, 0.3, 1.0, 2.5, 7.0])


@st.composite
def groups(draw: st.DrawFn) -> list[tuple[list[Offering], tuple[float, float], float]]:
    """Groups cheapest first, each with its tight floor and how much the cheap one falls short."""
    out = []
    for g in range(draw(st.integers(0, 6))):
        sizes = sorted(draw(st.lists(prices, min_size=1, max_size=5)))
        group = [offering(instance_type=f"g{g}.i{i}", price=p) for i, p in enumerate(sizes)]
        hours = draw(st.floats(0, 50))
        usd = draw(st.floats(0, 500))
        out.append((group, (hours, usd), draw(st.floats(0, 1))))
    return out


@settings(max_examples=200, deadline=None)
@given(spec=groups(), stop=st.integers(0, 30))
def test_reads_every_offering_once_in_order_of_a_true_lower_bound(
    spec: list[tuple[list[Offering], tuple[float, float], float]], stop: int
) -> None:
    tight = {id(g): floor for g, floor, _ in spec}
    cheap = {id(g): (floor[0] * (1 - short), floor[1] * (1 - short)) for g, floor, short in spec}
    refined: list[int] = []

    def tighten(group: list[Offering]) -> tuple[float, float]:
        refined.append(id(group))
        return tight[id(group)]

    queue = BoundQueue([g for g, _, _ in spec], lambda g: cheap[id(g)], tighten)
    read: list[tuple[float, Offering]] = []
    for item in queue:
        read.append(item)
        if len(read) == stop:
            break
    bounds = [b for b, _ in read]
    assert bounds == sorted(bounds)
    where = {id(o): id(g) for g, _, _ in spec for o in g}
    for bound, o in read:
        hours, usd = tight[where[id(o)]]
        assert bound <= o.price_per_hour * hours + usd + 1e-9  # never above the tight bound
        assert where[id(o)] in refined  # read only once its group was tightened
    assert len(refined) == len(set(refined))
    unread = [o for group, start in queue.unread() for o in group[start:]]
    everything = sorted(id(o) for g, _, _ in spec for o in g)
    assert sorted([id(o) for _, o in read] + [id(o) for o in unread]) == everything


def test_a_group_never_reached_is_never_tightened() -> None:
    near = [offering(instance_type="near", price=1.0)]
    far = [offering(instance_type="far", price=100.0)]
    tightened: list[str] = []

    def tighten(group: list[Offering]) -> tuple[float, float]:
        tightened.append(group[0].instance_type)
        return (10.0, 0.0)

    queue = iter(BoundQueue([far, near], lambda g: (1.0, 0.0), tighten))
    assert next(queue) == (10.0, near[0])
    assert tightened == ["near"]
