"""Estimate pi by sampling, in rounds of Ray tasks, checkpointing after each round.

Reads SCHED_RESUME_FROM (a checkpoint directory) to pick up where a previous
attempt stopped, and writes to SCHED_CHECKPOINT_DIR.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
from pathlib import Path

import ray

CHECKPOINT = "pi_checkpoint.json"


@ray.remote
def sample(seed: int, n: int) -> int:
    rng = random.Random(seed)
    return sum(1 for _ in range(n) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)


def load(directory: str | None) -> dict[str, int]:
    if directory and (Path(directory) / CHECKPOINT).exists():
        return json.loads((Path(directory) / CHECKPOINT).read_text())
    return {"round": 0, "inside": 0, "total": 0}


def save(directory: str | None, state: dict[str, int]) -> None:
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (CHECKPOINT + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path / CHECKPOINT)  # atomic: a preemption never leaves half a checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()

    state = load(os.environ.get("SCHED_RESUME_FROM"))
    if state["round"]:
        print(f"resuming after round {state['round']} ({state['total']} samples)", flush=True)
    ray.init(log_to_driver=False)
    for rnd in range(state["round"], args.rounds):
        seeds = [rnd * args.tasks + t for t in range(args.tasks)]
        inside = sum(ray.get([sample.remote(s, args.samples) for s in seeds]))
        state = {
            "round": rnd + 1,
            "inside": state["inside"] + inside,
            "total": state["total"] + args.tasks * args.samples,
        }
        save(os.environ.get("SCHED_CHECKPOINT_DIR"), state)
        estimate = 4 * state["inside"] / state["total"]
        print(f"round {rnd + 1}/{args.rounds}: pi ~ {estimate:.5f}", flush=True)
    estimate = 4 * state["inside"] / state["total"]
    print(
        f"pi ~ {estimate:.6f} (error {abs(estimate - math.pi):.6f}) from {state['total']} samples"
    )


if __name__ == "__main__":
    main()
