"""AWS Spot Instance Advisor buckets turned into an interruption rate per hour.

The Advisor publishes, per region and instance type, the share of spot instances
interrupted in the past month as a bucket ("<5%", "5-10%", ..., ">20%"). The cost model
needs a hazard rate: if a share ``p`` of instances running a whole month (730 h) is
interrupted, the constant rate giving that is ``-ln(1 - p) / 730``. We take each bucket's
midpoint, and 25% for the open-ended ">20%".
"""

from __future__ import annotations

import math

HOURS_PER_MONTH = 730.0

BUCKET_MIDPOINTS: dict[str, float] = {
    "<5%": 0.025,
    "5-10%": 0.075,
    "10-15%": 0.125,
    "15-20%": 0.175,
    ">20%": 0.25,
}


def bucket_rate(bucket: str) -> float:
    """Interruptions per hour for a Spot Advisor bucket label; ValueError names the label."""
    share = BUCKET_MIDPOINTS.get(bucket.strip().replace(" ", ""))
    if share is None:
        known = ", ".join(BUCKET_MIDPOINTS)
        raise ValueError(f"unknown interruption bucket {bucket!r} (known: {known})")
    return -math.log(1.0 - share) / HOURS_PER_MONTH
