"""scripts/save_cycle.py: a finished cycle's end weights, in float16, start the next cycle."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from molvae.train import fit
from tests.test_train_loop import BASE

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "save_cycle.py"


def _script():
    spec = importlib.util.spec_from_file_location("save_cycle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_end_weights_saved_in_half_precision_and_continued(tmp_path):
    save_cycle = _script()
    run = fit(BASE.replace(out=str(tmp_path / "run"), max_steps=6, density_molecules=0))
    target = save_cycle.main([str(run), str(tmp_path / "cycles" / "1")])
    saved = load_file(str(target / "model.safetensors"))
    end = {k[6:]: v for k, v in load_file(str(run / "trainer_state.safetensors")).items() if k.startswith("model.")}
    assert saved.keys() == end.keys()
    for k, v in saved.items():
        assert v.dtype == torch.float16 and torch.allclose(v.float(), end[k], atol=1e-3, rtol=1e-3)
    record = json.loads((target / "cycle.json").read_text())
    assert record["step"] == record["total_steps"] == 6
    nxt = fit(BASE.replace(out=str(tmp_path / "run2"), init=str(target), max_steps=2, density_molecules=0))
    assert json.loads((nxt / "config.json").read_text())["init"]  # the next cycle starts from the saved weights


def test_unfinished_cycle_is_refused(tmp_path):
    save_cycle = _script()
    run = fit(BASE.replace(out=str(tmp_path / "run"), max_steps=8, stop_after=1, density_molecules=0))
    with pytest.raises(SystemExit, match="stopped at step 4 of 8"):
        save_cycle.main([str(run), str(tmp_path / "c")])
