"""sched: the cost-aware job scheduler. ``from scheduler import Scheduler``.

The import is lazy so that ``sched --help`` does not pay for pydantic, SQLAlchemy
and Ray before it has anything to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scheduler.api import JobHandle, JobView, Scheduler

__all__ = ["JobHandle", "JobView", "Scheduler"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from scheduler import api

        return getattr(api, name)
    raise AttributeError(name)
