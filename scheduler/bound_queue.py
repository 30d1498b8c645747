"""Offerings from many groups, read in order of a lower bound of their total cost.

A plan stops reading once the bound passes the placements it keeps, so the tighter the
bound the less it reads; but a tight bound costs work per group (a spot estimate and a
data price per run class), and a CPU-only job sees a thousand groups, most never reached.
So each group enters with a cheap bound and is bounded tightly only when it comes to
the front: best-first with lazy refinement. Pure: no I/O, no prices of its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from providers.offering import Offering

Floor = tuple[float, float]
"""(hours, dollars): no offering of a group costs less than price x hours + dollars."""


class _Head:
    """A group in the queue: where its unread part starts and its floor."""

    __slots__ = ("group", "hours", "pos", "tight", "usd")

    def __init__(self, group: list[Offering], floor: Floor) -> None:
        self.pos, self.group, self.tight = 0, group, False
        self.hours, self.usd = floor

    def bound(self) -> float:
        return self.group[self.pos].price_per_hour * self.hours + self.usd


class BoundQueue:
    """``groups`` are each cheapest first; ``cheap`` and ``tight`` give a group's floor
    (both true lower bounds, ``tight`` the better). Yields (bound, offering), the bounds
    never decreasing, so once one is too dear every later one is."""

    def __init__(
        self,
        groups: Sequence[list[Offering]],
        cheap: Callable[[list[Offering]], Floor],
        tight: Callable[[list[Offering]], Floor],
    ) -> None:
        self._tight = tight
        self._last: _Head | None = None
        # [bound, order, head]: compared as floats then ints, in C, never by head
        self._heap: list[list[Any]] = []
        for n, group in enumerate(groups):
            if group:
                head = _Head(group, cheap(group))
                self._heap.append([head.bound(), n, head])
        heapq.heapify(self._heap)

    def __iter__(self) -> Iterator[tuple[float, Offering]]:
        heap = self._heap
        while heap:
            entry = heap[0]
            bound, _, head = entry
            if head.pos >= len(head.group):  # its rest was taken (take_rest_of_last)
                heapq.heappop(heap)
                continue
            if not head.tight:
                head.hours, head.usd = self._tight(head.group)
                head.tight = True
                entry[0] = max(bound, head.bound())
                heapq.heapreplace(heap, entry)
                continue
            offering = head.group[head.pos]
            head.pos += 1
            if head.pos < len(head.group):
                entry[0] = head.bound()
                heapq.heapreplace(heap, entry)
            else:
                heapq.heappop(heap)
            self._last = head
            yield bound, offering

    def take_rest_of_last(self) -> list[Offering]:
        """The unread part of the group the last offering came from, which will not be
        read: for a caller that knows the rest of that group (dearer still) fails too."""
        head = self._last
        if head is None:
            return []
        rest = head.group[head.pos :]
        head.pos = len(head.group)
        return rest

    def unread(self) -> Iterator[tuple[list[Offering], int]]:
        """Each group with offerings not yet read, and where they start, in no order."""
        while self._heap:
            head = self._heap.pop()[2]
            yield head.group, head.pos
