"""Training: `fit(TrainConfig)` writes a checkpoint directory; configs, schedules and resume state.

`fit` (and with it torch) loads on first use, so that `TrainConfig` imports without torch: the
CLI reads its defaults for the help text of `molvae train`.
"""
from __future__ import annotations

from typing import Any

from molvae.train.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "fit", "load_train_config"]


def __getattr__(name: str) -> Any:
    if name == "fit":
        from molvae.train.loop import fit

        return fit
    raise AttributeError(f"module 'molvae.train' has no attribute {name!r}")
