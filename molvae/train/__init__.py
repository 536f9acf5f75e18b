"""Training: `fit(TrainConfig)` writes a checkpoint directory; configs, schedules and resume state.

`fit` (and with it torch) loads on first use, so that `TrainConfig` imports without torch: the
CLI reads its defaults for the help text of `molvae train`. `forward_backward` (one training step
short of the optimizer step) and `step_noise` (the reparameterization noise of a global step) are
public for the benchmarks that time training steps (molvae.bench.train_speed); they load lazily too.
"""
from __future__ import annotations

from typing import Any

from molvae.train.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "fit", "load_train_config", "forward_backward", "step_noise"]


def __getattr__(name: str) -> Any:
    if name in ("fit", "forward_backward"):
        from molvae.train import loop

        return getattr(loop, name)
    if name == "step_noise":
        from molvae.train.epoch import step_noise

        return step_noise
    raise AttributeError(f"module 'molvae.train' has no attribute {name!r}")
