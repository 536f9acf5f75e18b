"""Schedules sized by max_steps or a time budget: one training cycle."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from molvae.errors import UsageError
from molvae.model import checkpoint as ckpt
from molvae.train import budget
from molvae.train.config import duration_seconds
from molvae.train.schedules import lr_factor

from tests.test_train_loop import BASE  # 4 global batches of 16 per epoch


def _state(path):
    return json.loads((path / "trainer_state.json").read_text())


def _weights(path):
    return {k: v for k, v in load_file(str(path / "trainer_state.safetensors")).items() if k.startswith("model.")}


def _fixed_speed(monkeypatch, seconds: float) -> list[int]:
    """Time steps for real (so the timing's side effects are exercised) but report `seconds` per step."""
    calls = []
    real = budget.seconds_per_step

    def timed(step_fn, batches):
        calls.append(len(batches))
        real(step_fn, batches)
        return seconds

    monkeypatch.setattr(budget, "seconds_per_step", timed)
    return calls


def test_max_steps_crosses_epochs_and_cuts_the_last(tmp_path):
    out = tmp_path / "run"
    from molvae.train import fit

    fit(BASE.replace(out=str(out), max_steps=6, lr_schedule="cosine", lr_min_factor=0.1))
    history = ckpt.read_history(out)
    assert history["epoch"].tolist() == [1, 2] and history["step"].tolist() == [4, 6]
    state = _state(out)
    assert state["step"] == 6 and state["total_steps"] == 6 and state["epoch"] == 2
    # the cosine spans the 6 steps, not two whole epochs (8): its last step is near the floor
    last = BASE.lr * lr_factor(5, "cosine", 6, 0, 0.1, 1.0)
    assert history["lr"].iloc[-1] == pytest.approx(last) and last < BASE.lr * lr_factor(5, "cosine", 8, 0, 0.1, 1.0)


def test_time_budget_run_equals_the_max_steps_run_of_its_length(tmp_path, monkeypatch):
    from molvae.train import fit

    calls = _fixed_speed(monkeypatch, 0.1)
    a = fit(BASE.replace(out=str(tmp_path / "budget"), time_budget="0.7s"))
    assert calls == [4] and _state(a)["total_steps"] == 7
    b = fit(BASE.replace(out=str(tmp_path / "steps"), max_steps=7))
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # timing changed nothing


def test_resumed_budget_run_keeps_its_length(tmp_path, monkeypatch):
    from molvae.train import fit

    _fixed_speed(monkeypatch, 0.1)
    out = tmp_path / "run"
    fit(BASE.replace(out=str(out), time_budget="1m", stop_after=1))  # 600 steps, stopped after epoch 1
    assert _state(out)["total_steps"] == 600 and _state(out)["step"] == 4
    calls = _fixed_speed(monkeypatch, 100.0)  # a re-timing would now give a one-step schedule
    fit(BASE.replace(out=str(out), resume=str(out), stop_after=2))
    assert calls == [] and _state(out)["total_steps"] == 600 and _state(out)["step"] == 8


@pytest.mark.parametrize("text, seconds", [("90m", 5400.0), ("1.5h", 5400.0), ("30s", 30.0), ("45", 45.0),
                                           ("0", 0.0), ("abc", None), ("-5m", None), ("", None), ("infh", None)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


def test_budget_settings_are_validated():
    with pytest.raises(UsageError, match="time_budget must be a duration"):
        BASE.replace(time_budget="soon")
    with pytest.raises(UsageError, match="not both"):
        BASE.replace(time_budget="90m", max_steps=10)
    with pytest.raises(UsageError, match="max_steps must be >= 0"):
        BASE.replace(max_steps=-1)


def test_schedule_steps_rules():
    never = lambda: pytest.fail("timed without a budget")  # noqa: E731
    assert budget.schedule_steps(BASE, 4, never) == 8  # epochs x steps per epoch
    assert budget.schedule_steps(BASE.replace(max_steps=5), 4, never) == 5
    assert budget.schedule_steps(BASE.replace(time_budget="10s"), 4, lambda: 0.5) == 20
    assert budget.schedule_steps(BASE.replace(time_budget="1s"), 4, lambda: 5.0) == 1
    assert budget.epochs_to_run(9, 4) == 3 and budget.epochs_to_run(8, 4) == 2


def test_split_seed_keeps_the_validation_split_across_seeds(tmp_path):
    from molvae.model import checkpoint as ck
    from molvae.train import fit

    def val_of(seed, split_seed):
        out = fit(BASE.replace(out=str(tmp_path / f"r{seed}{split_seed}"), seed=seed, split_seed=split_seed,
                               max_steps=1, density_molecules=0))
        return ck.read_config(out)["data_hash"]  # the hash of the training split's molecules

    assert val_of(3, -1) == val_of(5, 3) != val_of(5, -1)
