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


@pytest.mark.parametrize("field,value,expected", [
    ("epochs", "ten", "an integer"), ("epochs", 2.5, "an integer"), ("epochs", True, "an integer"),
    ("lr", "0.1", "a finite number"), ("lr", float("nan"), "a finite number"), ("progress", "yes", "true or false"),
    ("properties", "logp", "a list of strings"), ("properties", [1], "a list of strings"),
    ("model", [64], "an object"), ("smiles_col", 3, "a string or null"), ("data", 7, "a string"),
    ("model", {"dec_hidden": "256"}, "model.dec_hidden must be an integer"),
    ("model", {"latent_dim": 2.5}, "model.latent_dim must be an integer"),
    ("model", {"bidirectional": 1}, "model.bidirectional must be true or false"),
])
def test_every_field_is_type_checked_with_its_name_value_and_type(field, value, expected):
    with pytest.raises(UsageError) as err:
        TrainConfig.from_dict({field: value})
    text = str(err.value)
    shown = next(iter(value.values())) if isinstance(value, dict) else value
    assert field in text and repr(shown) in text and expected in text


def test_types_that_stand_for_a_field_are_kept_in_its_form(tmp_path: Path):
    cfg = TrainConfig.from_dict({"out": tmp_path, "checkpoint_every": 500, "time_budget": 0, "amp": False,
                                 "properties": ["qed"], "kl_warmup_epochs": 2, "unlabelled": [tmp_path]})
    assert cfg.out == str(tmp_path) and cfg.checkpoint_every == "500" and cfg.time_budget == "0"
    assert cfg.amp == "off" and cfg.properties == ("qed",) and cfg.kl_warmup_epochs == 2.0
    assert cfg.unlabelled == (str(tmp_path),)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("name", ["cycle_config.json", "cycle_config_cond.json"])
def test_the_training_cycle_configs_are_valid(name):
    """scripts/train_cycle.sh passes these to `molvae train --config`: every field must be a TrainConfig field
    of the right type, and the conditional one's conditions must be head targets."""
    from pathlib import Path

    from molvae.train.config import TrainConfig, load_train_config

    d = load_train_config(Path(__file__).resolve().parents[1] / "scripts" / name)
    cfg = TrainConfig.from_dict({**d, "init": "moses-smiles"})
    assert cfg.time_budget == "90m" and cfg.split_seed == 0 and cfg.beta_end == 0.5
    assert set(cfg.conditions) <= set(cfg.properties)
    assert bool(cfg.conditions) == ("cond" in name)
