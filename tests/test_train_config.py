"""TrainConfig: validation at construction, JSON round trip, the precedence of given options over a
config file over TrainConfig's defaults (through `molvae train`: tests/test_cli_app.py), resume merging."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from molvae.errors import UsageError
from molvae.train.config import TrainConfig, field_default, train_config_from_cli
from molvae.train.setup import _resume_config


def test_validation_at_construction_and_round_trip():
    with pytest.raises(UsageError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(UsageError, match="kl_schedule"):
        TrainConfig(kl_schedule="exp")
    with pytest.raises(UsageError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(UsageError, match="unknown model settings"):
        TrainConfig(model={"hidden": 3})
    with pytest.raises(UsageError, match="unknown training settings"):
        TrainConfig.from_dict({"epoch": 3})
    assert TrainConfig(amp=False).amp == "off"
    cfg = TrainConfig(properties=["logp"], epochs=3, model={"dec_hidden": 64})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert field_default("epochs") == TrainConfig().epochs and field_default("model") == {}


def test_config_module_imports_without_torch():
    # The CLI reads TrainConfig's defaults for `molvae train --help`; that must not load torch.
    code = "import sys, molvae.train.config; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_precedence_function_level(config_file: Path):
    # Not given (None): the file's value stays.
    cfg = train_config_from_cli(config_file=str(config_file), epochs=None, batch_size=None, properties=None)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.properties) == (7, 128, 5e-4, ("qed",))
    assert cfg.model == {"dec_hidden": 256}
    # Given: it wins, also when it equals the TrainConfig default.
    cfg = train_config_from_cli(config_file=str(config_file), batch_size=TrainConfig().batch_size,
                                epochs=TrainConfig().epochs, properties=("logP",))
    assert (cfg.batch_size, cfg.epochs, cfg.properties, cfg.lr) == (TrainConfig().batch_size,
                                                                    TrainConfig().epochs, ("logP",), 5e-4)
    # An explicitly empty property list means no property head (it is a value, not "not given").
    assert train_config_from_cli(config_file=str(config_file), properties=()).properties == ()
    # No file: TrainConfig's defaults, except what is given.
    assert train_config_from_cli(epochs=None, lr=None) == TrainConfig()
    assert train_config_from_cli(epochs=3) == TrainConfig(epochs=3)
    with pytest.raises(UsageError, match="unknown training settings"):
        train_config_from_cli(epoch=3)


def test_resume_warns_only_about_values_that_differ_from_the_defaults(tmp_path: Path, caplog):
    saved = TrainConfig(properties=("logp", "qed"), epochs=3).to_dict()
    with caplog.at_level(logging.WARNING, logger="molvae.train"):
        cfg = _resume_config(TrainConfig(resume=str(tmp_path), threads=1), saved, tmp_path)
    assert cfg.properties == ("logp", "qed") and cfg.epochs == 3 and cfg.threads == 1
    assert not caplog.records  # untouched defaults (a tuple against the saved list) are not "new values"
    with caplog.at_level(logging.WARNING, logger="molvae.train"):
        _resume_config(TrainConfig(resume=str(tmp_path), epochs=5), saved, tmp_path)
    assert "epochs" in caplog.text and "properties" not in caplog.text
