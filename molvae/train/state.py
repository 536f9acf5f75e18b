"""Trainer state for `--resume`: last-epoch weights, optimizer tensors and RNG states in
trainer_state.safetensors, with the JSON state (`RunState`, scheduler, optimizer hyper-parameters,
python RNG) embedded in its metadata and copied to trainer_state.json (layout: `molvae.model.checkpoint`).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from safetensors.torch import save as st_save_bytes

from molvae.files import atomic_write_bytes, atomic_write_text, json_text
from molvae.model.checkpoint import (
    FORMAT, FORMAT_VERSION, STATE_JSON, STATE_TENSORS, load_weights, read_config, read_safetensors,
)
from molvae.errors import CheckpointError

__all__ = ["RunState", "save_trainer_state", "load_trainer_state"]


@dataclass
class RunState:
    """Where a run stands: after its last finished epoch, and inside the current one when the state
    was saved mid-epoch (`checkpoint_every`); saved in the trainer state, so these names are keys
    of trainer_state.json."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken (the schedules are functions of it)
    best_val: float | None = None  # the score of the best epoch so far
    best_epoch: int = 0  # its weights are model.safetensors
    bad_epochs: int = 0  # epochs since the best one
    stopped: bool = False  # early stopping ended the run
    epoch_pos: int = 0  # global batches of the current epoch already trained (0 at an epoch boundary)
    epoch_sums: list[float] = field(default_factory=list)  # their loss sums (EpochLog.sums), to finish the epoch's row
    total_steps: int = 0  # the schedule's length in optimizer steps, fixed when the run starts (0: not yet)

    def end_epoch(self, score: float, ranked: bool, patience: int) -> bool:
        """Count a finished epoch of `score` (lower is better); returns whether it is the new best.

        Unranked epochs (no validation set: the train loss, taken at an annealed beta, cannot
        compare epochs) are each the new best, so the last one is kept, and never stop the run.
        """
        improved = not ranked or self.best_val is None or score < self.best_val
        if improved:
            self.best_val, self.best_epoch, self.bad_epochs = score, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.epoch += 1
        self.epoch_pos, self.epoch_sums = 0, []
        if patience and ranked and self.bad_epochs >= patience:
            self.stopped = True
        return improved


def _rng_tensors_and_json() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy_keys"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    js = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": py_version, "state": list(py_state), "gauss_next": py_gauss},
    }
    return tensors, js


def _set_rng(tensors: Mapping[str, torch.Tensor], js: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    npj = js["numpy"]
    np.random.set_state((npj["kind"], tensors["rng.numpy_keys"].numpy().astype(np.uint32), npj["pos"],
                         npj["has_gauss"], npj["cached_gaussian"]))
    pyj = js["python"]
    random.setstate((pyj["version"], tuple(pyj["state"]), pyj["gauss_next"]))


def save_trainer_state(path: str | os.PathLike[str], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       state: Mapping[str, Any]) -> None:
    """Write trainer_state.safetensors (+ .json): last weights, optimizer, RNGs and `state`.

    `state` is JSON-able (epoch, step, best validation, scheduler state...). Optimizer state
    is flattened: its tensors go to "optim.state.<param>.<key>", the rest to JSON.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().to("cpu").contiguous()
                                        for k, v in model.state_dict().items()}
    sd = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"optim.state.{pid}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    rng_tensors, rng_json = _rng_tensors_and_json()
    tensors.update(rng_tensors)
    full = {
        "format": FORMAT + "-trainer-state",
        "format_version": FORMAT_VERSION,
        **dict(state),
        "optimizer": {"class": type(optimizer).__name__, "param_groups": sd["param_groups"], "scalars": scalars},
        "rng": rng_json,
    }
    text = json.dumps(full, allow_nan=False)
    atomic_write_bytes(path / STATE_TENSORS, st_save_bytes(tensors, metadata={"state": text}))
    atomic_write_text(path / STATE_JSON, json_text(full))


def load_trainer_state(path: str | os.PathLike[str], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       restore_rng: bool = True) -> dict[str, Any]:
    """Restore last weights, optimizer and RNG states from `path`; returns the JSON state.

    The JSON embedded in trainer_state.safetensors is authoritative (it was written with
    the tensors in one atomic file); trainer_state.json is a readable copy.

    Raises:
        CheckpointError: no trainer state (the run finished without one, or `path` is not a
            training output), a different format version, or state that does not fit.
    """
    path = Path(path)
    read_config(path)
    if not (path / STATE_TENSORS).is_file():
        raise CheckpointError(
            f"{path} has no {STATE_TENSORS}: it is a model checkpoint but holds no state to resume training from."
        )
    tensors, meta = read_safetensors(path / STATE_TENSORS)
    try:
        state = json.loads(meta["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / STATE_TENSORS} lacks its embedded JSON state: {exc}") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} trainer state has format_version {state.get('format_version')!r}; "
                              f"this molvae reads {FORMAT_VERSION}.")
    load_weights(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path / STATE_TENSORS)
    opt = state["optimizer"]
    if opt["class"] != type(optimizer).__name__:
        raise CheckpointError(f"{path}: optimizer {opt['class']} in the checkpoint, {type(optimizer).__name__} now.")
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim.state."):
            pid, name = key[len("optim.state."):].split(".", 1)
            per_param.setdefault(int(pid), {})[name] = value
    for pid, values in opt["scalars"].items():
        per_param.setdefault(int(pid), {}).update(values)
    groups = []
    for saved, current in zip(opt["param_groups"], optimizer.param_groups):
        # JSON turns tuples (Adam's betas) into lists; give them back their type.
        groups.append({k: tuple(v) if isinstance(v, list) and isinstance(current.get(k), tuple) else v
                       for k, v in saved.items()})
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit this model: {exc}") from exc
    if restore_rng:
        _set_rng({k: v for k, v in tensors.items() if k.startswith("rng.")}, state["rng"])
    return state
