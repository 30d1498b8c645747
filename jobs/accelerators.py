"""Accelerator names a job may ask for, and how a request like ``A100:8`` is read.

The table is deliberately small and explicit: a typo such as ``A10O:8`` should be
rejected at submit time with the list of names we know, not discovered hours later
as "no feasible placement".
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AcceleratorKind(StrEnum):
    GPU = "gpu"
    TPU = "tpu"


class AcceleratorInfo(BaseModel):
    """What we know about one accelerator model, independent of any cloud."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Canonical name, as used in job specs and offerings.")
    kind: AcceleratorKind
    memory_gb: float = Field(description="Memory per device (GPU) or per chip (TPU), in GB.")
    cores_per_chip: int = Field(
        default=1, description="TPU only: the '-N' suffix counts TensorCores, not chips."
    )


GPUS: dict[str, AcceleratorInfo] = {
    info.name.lower(): info
    for info in (
        AcceleratorInfo(name="B200", kind=AcceleratorKind.GPU, memory_gb=180),
        AcceleratorInfo(name="H200", kind=AcceleratorKind.GPU, memory_gb=141),
        AcceleratorInfo(name="H100", kind=AcceleratorKind.GPU, memory_gb=80),
        AcceleratorInfo(name="H100-MEGA", kind=AcceleratorKind.GPU, memory_gb=80),
        AcceleratorInfo(name="A100-80GB", kind=AcceleratorKind.GPU, memory_gb=80),
        AcceleratorInfo(name="A100", kind=AcceleratorKind.GPU, memory_gb=40),
        AcceleratorInfo(name="L40S", kind=AcceleratorKind.GPU, memory_gb=48),
        AcceleratorInfo(name="L4", kind=AcceleratorKind.GPU, memory_gb=24),
        AcceleratorInfo(name="A10G", kind=AcceleratorKind.GPU, memory_gb=24),
        AcceleratorInfo(name="V100", kind=AcceleratorKind.GPU, memory_gb=16),
        AcceleratorInfo(name="V100-32GB", kind=AcceleratorKind.GPU, memory_gb=32),
        AcceleratorInfo(name="T4", kind=AcceleratorKind.GPU, memory_gb=16),
        AcceleratorInfo(name="P100", kind=AcceleratorKind.GPU, memory_gb=16),
        AcceleratorInfo(name="K80", kind=AcceleratorKind.GPU, memory_gb=12),
    )
}

# TPU generations: v2/v3/v4/v5p count two TensorCores per chip in their slice names
# (v5p-8 is 4 chips); v5e ("v5litepod") and v6e count chips.
TPUS: dict[str, AcceleratorInfo] = {
    info.name: info
    for info in (
        AcceleratorInfo(name="v2", kind=AcceleratorKind.TPU, memory_gb=8, cores_per_chip=2),
        AcceleratorInfo(name="v3", kind=AcceleratorKind.TPU, memory_gb=16, cores_per_chip=2),
        AcceleratorInfo(name="v4", kind=AcceleratorKind.TPU, memory_gb=32, cores_per_chip=2),
        AcceleratorInfo(name="v5p", kind=AcceleratorKind.TPU, memory_gb=95, cores_per_chip=2),
        AcceleratorInfo(name="v5litepod", kind=AcceleratorKind.TPU, memory_gb=16),
        AcceleratorInfo(name="v6e", kind=AcceleratorKind.TPU, memory_gb=32),
    )
}
TPU_ALIASES = {"v5e": "v5litepod"}

_GPU_RE = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9-]*?)(?::(?P<count>[^:]*))?")
_TPU_RE = re.compile(r"tpu-(?P<gen>v[0-9]+[a-z]*)-(?P<size>[^-]+)", re.IGNORECASE)
MAX_PER_NODE = 16  # no cloud sells a node with more accelerators than this


class AcceleratorRequest(BaseModel):
    """One concrete alternative: ``count`` devices of ``name`` (a TPU slice counts as 1)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Canonical name: 'A100', 'H100', or 'tpu-v5p-8'.")
    kind: AcceleratorKind
    count: int = Field(ge=1, description="GPUs per node; always 1 for a TPU slice.")
    memory_gb: float = Field(description="Memory per device (GPU) or chip (TPU), GB.")
    tpu_chips: int | None = Field(default=None, description="Chips in the TPU slice.")

    def __str__(self) -> str:
        return self.name if self.kind is AcceleratorKind.TPU else f"{self.name}:{self.count}"


def parse_accelerator(text: str) -> AcceleratorRequest:
    """Read ``A100:8``, ``H100`` (one device) or ``tpu-v5p-8``; raise ValueError otherwise."""
    raw = text.strip()
    tpu = _TPU_RE.fullmatch(raw)
    if tpu:
        gen = tpu["gen"].lower()
        gen = TPU_ALIASES.get(gen, gen)
        info = TPUS.get(gen)
        if info is None:
            known = ", ".join(f"tpu-{g}-N" for g in TPUS)
            raise ValueError(f"unknown TPU generation {tpu['gen']!r} (known: {known})")
        size = tpu["size"]
        if not re.fullmatch(r"[0-9]{1,5}", size) or int(size) < 1:
            raise ValueError(f"TPU slice size {size!r} must be a positive whole number")
        cores = int(size)
        if cores % info.cores_per_chip:
            raise ValueError(
                f"tpu-{gen}-{cores}: size must be a multiple of {info.cores_per_chip} cores"
            )
        return AcceleratorRequest(
            name=f"tpu-{gen}-{cores}",
            kind=AcceleratorKind.TPU,
            count=1,
            memory_gb=info.memory_gb,
            tpu_chips=cores // info.cores_per_chip,
        )
    gpu = _GPU_RE.fullmatch(raw)
    if not gpu:
        raise ValueError(f"{raw!r} is not NAME, NAME:COUNT or tpu-GEN-SIZE")
    info = GPUS.get(gpu["name"].lower())
    if info is None:
        known = ", ".join(i.name for i in GPUS.values())
        raise ValueError(f"unknown accelerator {gpu['name']!r} (known: {known}, tpu-GEN-SIZE)")
    count_text = gpu["count"]
    if count_text is None:
        count = 1
    elif re.fullmatch(r"[0-9]+", count_text) and int(count_text) >= 1:
        count = int(count_text)
        if count > MAX_PER_NODE:
            raise ValueError(f"count {count} in {raw!r} is more than {MAX_PER_NODE} per node")
    else:
        raise ValueError(f"count {count_text!r} in {raw!r} must be a positive whole number")
    return AcceleratorRequest(
        name=info.name, kind=AcceleratorKind.GPU, count=count, memory_gb=info.memory_gb
    )
