"""The FinOps files a platform owner writes: commitments (SCHED_COMMITMENTS) and budgets
(SCHED_BUDGETS). Each failure is one line naming the file and the entry."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from providers.commitment import Commitment
from providers.config_files import load_model
from scheduler.budgets import Budget
from scheduler.config import ConfigError


class CommitmentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commitments: list[Commitment]


class BudgetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budgets: list[Budget]


def load_commitments(path: Path | None) -> list[Commitment]:
    if path is None:
        return []
    found = load_model(path, CommitmentsFile, ConfigError).commitments
    ids = [c.id for c in found]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise ConfigError(f"{path}: commitments: id {dup!r} is declared twice")
    return found


def load_budgets(path: Path | None) -> list[Budget]:
    if path is None:
        return []
    found = load_model(path, BudgetsFile, ConfigError).budgets
    keys = [(b.tag, b.value) for b in found]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ConfigError(f"{path}: budgets: {dup[0]}={dup[1]} has two budgets")
    return found
