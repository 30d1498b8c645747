"""What a SkyPilot ``vms.csv`` looks like: its columns, its conventions (the 700.0
placeholder price, GCP accelerators priced apart from their hosts) and the cells that need
decoding. providers/skypilot_catalog.py reads files with it.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from providers.aws_prices import load_spot_advisor
from providers.gcp_prices import DEFAULT_SPOT_INTERRUPTION_RATE
from providers.offering import InterruptionSource

CLOUDS = ("aws", "gcp")
REQUIRED_COLUMNS = (
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "Region",
    "AvailabilityZone",
    "Price",
    "SpotPrice",
)
PLACEHOLDER_PRICE = 700.0  # SkyPilot's "no price published"

# GCP accelerators that come inside a machine type built for them: (name, count) -> hosts.
GCP_DEDICATED_HOSTS: dict[tuple[str, int], tuple[str, ...]] = {
    **{("A100", n): (f"a2-highgpu-{n}g",) for n in (1, 2, 4, 8)},
    ("A100", 16): ("a2-megagpu-16g",),
    **{("A100-80GB", n): (f"a2-ultragpu-{n}g",) for n in (1, 2, 4, 8)},
    **{("H100", n): (f"a3-highgpu-{n}g",) for n in (1, 2, 4, 8)},
    ("H100-MEGA", 8): ("a3-megagpu-8g",),
    ("H200", 8): ("a3-ultragpu-8g",),
    ("B200", 8): ("a4-highgpu-8g",),
    ("L4", 1): tuple(f"g2-standard-{c}" for c in (4, 8, 12, 16, 32)),
    ("L4", 2): ("g2-standard-24",),
    ("L4", 4): ("g2-standard-48",),
    ("L4", 8): ("g2-standard-96",),
}
DEDICATED_NAMES = frozenset(name for name, _ in GCP_DEDICATED_HOSTS)
DEDICATED_HOST_TYPES = frozenset(h for hosts in GCP_DEDICATED_HOSTS.values() for h in hosts)
# GCP machine families priced without the GPUs/TPUs they come with.
GCP_ACCELERATOR_FAMILIES = ("a2-", "a3-", "a4-", "a4x-", "g2-", "g4-", "ct")

SpotRate = Callable[[str, str], tuple[float, InterruptionSource]]
"""(region, instance type) -> (spot interruptions per hour, where that figure came from)."""


# ---- small parsers (pure) --------------------------------------------------------------------


def cloud_from_instance_type(instance_type: str) -> str | None:
    """AWS names have a dot (``p4d.24xlarge``); GCP's have dashes, or none at all on an
    accelerator-only row."""
    if not instance_type:
        return "gcp"
    if "." in instance_type:
        return "aws"
    if "-" in instance_type:
        return "gcp"
    return None


def cloud_from_path(path: Path) -> str | None:
    """SkyPilot keeps catalogs as ``<cloud>/vms.csv``; a name like ``gcp_vms.csv`` works too.
    Only the name and its folder count: a cloud's name further up says nothing."""
    for part in reversed(path.parts[-2:]):
        tokens = set(re.split(r"[^a-z0-9]+", part.lower()))
        found = [c for c in CLOUDS if c in tokens]
        if len(found) == 1:
            return found[0]
    return None


def gpu_memory_mib(gpu_info: str) -> float | None:
    """Memory per device from a ``GpuInfo`` cell, or None.

    SkyPilot writes the EC2-style dict with Python's repr (single quotes), so JSON is
    tried first and a literal second; a cell that is neither (GCP's TPU rows carry the
    slice name there) is no information rather than an error.
    """
    text = gpu_info.strip()
    if not text.startswith("{"):
        return None
    data: Any
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    try:
        size = data["Gpus"][0]["MemoryInfo"]["SizeInMiB"]
        value = float(size)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):  # 10**400: Overflow
        return None
    return value if math.isfinite(value) and value > 0 else None


def default_spot_rate(cloud: str) -> SpotRate:
    """AWS: the Spot Advisor bucket of the region and type (configs/aws_spot_advisor.yaml);
    GCP publishes none, so the configured rate the live GCP feeds use."""
    if cloud == "aws":
        table = load_spot_advisor()
        return lambda region, itype: table.rate(region, itype)[:2]
    return lambda _region, _itype: (DEFAULT_SPOT_INTERRUPTION_RATE, InterruptionSource.CONFIGURED)
