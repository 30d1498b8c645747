"""Filtering and sorting the price book for ``sched prices``: pure, so it is easy to test."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from jobs.accelerators import GPUS, TPU_ALIASES, TPUS
from providers.offering import MarketKind, Offering


class PriceQueryError(ValueError):
    """A filter that can never match; ``str()`` names the option."""


class PriceQuery(BaseModel):
    gpu: str | None = Field(default=None, description="'H100', or 'A100:8' for at least 8.")
    tpu: str | None = Field(default=None, description="'v5p' (any slice) or 'v5p-8'.")
    clouds: list[str] | None = None
    regions: list[str] | None = None
    market: MarketKind | None = None

    def normalized(self) -> PriceQuery:
        """Check the names against the accelerator table so a typo is an error, not 0 rows."""
        gpu, tpu = self.gpu, self.tpu
        if gpu is not None:
            name, _, count = gpu.partition(":")
            info = GPUS.get(name.strip().lower())
            if info is None:
                raise PriceQueryError(f"--gpu: unknown GPU {name!r} (known: {', '.join(_gpus())})")
            if count and (not count.isdigit() or int(count) < 1):
                raise PriceQueryError(f"--gpu: count {count!r} must be a positive integer")
            gpu = f"{info.name}:{count}" if count else info.name
        if tpu is not None:
            text = tpu.strip().lower().removeprefix("tpu-")
            gen, _, size = text.partition("-")
            gen = TPU_ALIASES.get(gen, gen)
            if gen not in TPUS:
                raise PriceQueryError(f"--tpu: unknown TPU generation {gen!r} (known: {_tpus()})")
            tpu = f"tpu-{gen}-{size}" if size else f"tpu-{gen}-"
        return self.model_copy(update={"gpu": gpu, "tpu": tpu})

    def matches(self, o: Offering) -> bool:
        if self.clouds and o.cloud not in self.clouds:
            return False
        if self.regions and o.region not in self.regions:
            return False
        if self.market is not None and o.market is not self.market:
            return False
        a = o.accelerators
        if self.gpu is not None:
            name, _, count = self.gpu.partition(":")
            if a is None or a.name != name or (count and a.count < int(count)):
                return False
        if self.tpu is not None:
            exact = not self.tpu.endswith("-")
            if a is None or (a.name != self.tpu if exact else not a.name.startswith(self.tpu)):
                return False
        return True


def _gpus() -> list[str]:
    return sorted(info.name for info in GPUS.values())


def _tpus() -> str:
    return ", ".join(TPUS)


def price_per_device_hour(o: Offering) -> float | None:
    """$/GPU-hour, or $/chip-hour for a TPU slice: the number to compare across shapes."""
    a = o.accelerators
    if a is None:
        return None
    if a.name.startswith("tpu-"):
        chips = _tpu_chips(a.name)
        return o.price_per_hour / chips if chips else None
    return o.price_per_hour / a.count


def _tpu_chips(name: str) -> int | None:
    _, gen, size = name.split("-", 2)
    info = TPUS.get(gen)
    if info is None or not size.isdigit():
        return None
    return max(int(size) // info.cores_per_chip, 1)


def select_offerings(offerings: Iterable[Offering], query: PriceQuery) -> list[Offering]:
    """Matching offerings, cheapest per hour first; ties by $/device-hour then by place."""
    return sorted(
        (o for o in offerings if query.matches(o)),
        key=lambda o: (
            o.price_per_hour,
            price_per_device_hour(o) or 0.0,
            o.cloud,
            o.zone,
            o.instance_type,
            o.market,
        ),
    )
