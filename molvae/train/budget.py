"""The length of a run's schedule in optimizer steps: `epochs` whole epochs, `max_steps`, or as many
steps as fit a wall-clock `time_budget` at the speed this machine shows for this model and data.

The speed is timed before the first step on batches spread over the first epoch (short and long
molecules alike), with forward and backward but no optimizer step, and torch's RNG restored after,
so the timing leaves the weights, the optimizer and every later random draw as they were: a run
sized by a budget computes exactly what the same run with `max_steps` set to its length computes.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np
import torch

from molvae.train.config import TrainConfig, duration_seconds

__all__ = ["schedule_steps", "seconds_per_step", "epochs_to_run"]

# Steps timed for the speed (after warm-up steps whose time is dropped: autocast and allocator start-up).
_WARMUP, _TIMED = 3, 12


def seconds_per_step(step_fn: Callable[[np.ndarray], None], batches: Sequence[np.ndarray]) -> float:
    """Median wall seconds of `step_fn(batch)` over up to `_TIMED` batches taken evenly from `batches`
    (a whole epoch's, in training order), after `_WARMUP` untimed ones. torch's RNG state is restored."""
    rng = torch.get_rng_state()
    try:
        picks = np.linspace(0, len(batches) - 1, num=min(len(batches), _TIMED)).round().astype(int)
        for i in picks[:_WARMUP]:
            step_fn(batches[i])
        times = []
        for i in picks:
            t0 = time.perf_counter()
            step_fn(batches[i])
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_rng_state(rng)
    # The mean, not the median: the time of an epoch is the sum of its steps, long molecules included.
    return float(np.mean(times))


def schedule_steps(cfg: TrainConfig, steps_per_epoch: int, step_seconds: Callable[[], float]) -> int:
    """The schedule's length in optimizer steps for a fresh run: `max_steps`, else `time_budget` divided
    by `step_seconds()` (called only then), else `epochs` x `steps_per_epoch`. At least one step."""
    if cfg.max_steps:
        return cfg.max_steps
    budget = duration_seconds(cfg.time_budget) or 0.0
    if budget > 0:
        return max(1, int(budget / step_seconds() + 1e-6))  # 1e-6: 0.7 / 0.1 is 6.999...
    return max(1, steps_per_epoch * cfg.epochs)


def epochs_to_run(total_steps: int, steps_per_epoch: int) -> int:
    """Epochs, the last possibly cut short, that hold `total_steps` steps."""
    return max(1, math.ceil(total_steps / max(1, steps_per_epoch)))
