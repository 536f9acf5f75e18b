"""CLI tests, in-process, through `molvae.cli.main` so that the exit-code mapping is what users get."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.train.config import TrainConfig
from tests.conftest import invoke_cli


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    return invoke_cli(monkeypatch, capsys, *args)


def test_help_and_doctor(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "--help")
    assert code == 0 and "train" in out and "doctor" in out
    code, out = run_cli(monkeypatch, capsys, "doctor")
    assert code == 0
    for name in ("python", "torch", "rdkit", "selfies", "device", "data cache"):
        assert name in out


def _train_cli(monkeypatch, capsys, tmp_path: Path, *args: str) -> TrainConfig:
    """The TrainConfig `molvae train ARGS` hands to `fit` (which is replaced, so nothing trains)."""
    import molvae.train.loop as loop

    seen: list[TrainConfig] = []
    monkeypatch.setattr(loop, "fit", lambda cfg: seen.append(cfg) or tmp_path)
    code, out = run_cli(monkeypatch, capsys, "train", *args)
    assert code == 0, out
    return seen[0]


def test_train_option_overrides_the_config_file_exactly_when_typed(monkeypatch, capsys, tmp_path: Path,
                                                                  config_file: Path) -> None:
    # Not typed: the file's values stay.
    cfg = _train_cli(monkeypatch, capsys, tmp_path, "--config", str(config_file))
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.properties) == (7, 128, 5e-4, ("qed",))
    assert cfg.model == {"dec_hidden": 256} and cfg.out == TrainConfig().out

    # Typed values equal to the TrainConfig defaults still override the file.
    default = TrainConfig()
    cfg = _train_cli(monkeypatch, capsys, tmp_path, "--config", str(config_file), "--batch-size",
                     str(default.batch_size), "--epochs", str(default.epochs), "-p", "logp", "-p", "sa")
    assert (cfg.batch_size, cfg.epochs, cfg.properties, cfg.lr) == (default.batch_size, default.epochs,
                                                                    ("logp", "sa"), 5e-4)

    # Without --config: TrainConfig's defaults, except what is typed.
    assert _train_cli(monkeypatch, capsys, tmp_path) == TrainConfig()
    cfg = _train_cli(monkeypatch, capsys, tmp_path, "--repr", "smiles", "--out", str(tmp_path / "m"),
                     "--stop-after", "2", "--max-len", "60", "--seed", "4")
    assert cfg == TrainConfig(representation="smiles", out=str(tmp_path / "m"), stop_after=2, max_len=60, seed=4)


def test_train_help_shows_the_trainconfig_defaults(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "train", "--help")
    assert code == 0
    default = TrainConfig()
    for text in (f"Default: {default.batch_size}.", f"Default: {default.epochs}.", f"Default: {default.out}.",
                 f"Default: {', '.join(default.properties)}."):
        assert text in out, text


def test_train_bad_config_file_exits_2(monkeypatch, capsys, tmp_path: Path) -> None:
    file = tmp_path / "cfg.json"
    file.write_text(json.dumps({"epoch": 3}))
    code, out = run_cli(monkeypatch, capsys, "train", "--config", str(file))
    assert code == 2 and "unknown training settings" in out and "Traceback" not in out


def test_usage_error_exits_2(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "train", "--epochs", "0")
    assert code == 2 and "Traceback" not in out


@pytest.mark.parametrize(
    "content,needle",
    [(b"", "empty"), (b"name\nfoo\n", "SMILES column"), (b"\x00\x00\x00", "binary")],
)
def test_bad_training_file_exits_1_without_traceback(monkeypatch, capsys, tmp_path: Path, content, needle) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, out = run_cli(monkeypatch, capsys, "train", "--data", str(path), "--out", str(tmp_path / "m"))
    assert code == 1, out
    assert needle in out and "Traceback" not in out


def test_train_stop_after_reaches_the_training_config(monkeypatch, capsys, tmp_path: Path) -> None:
    cfg = _train_cli(monkeypatch, capsys, tmp_path, "--epochs", "4", "--stop-after", "2", "--out", str(tmp_path))
    assert cfg.epochs == 4 and cfg.stop_after == 2
    code, out = run_cli(monkeypatch, capsys, "train", "--stop-after", "-1")
    assert code == 2 and "Traceback" not in out


@pytest.mark.parametrize("args,needle", [
    (["--lr", "0"], "lr must be > 0"),  # typer's own bound let 0 through
    (["--epochs", "0"], "epochs must be >= 1"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--max-len", "0"], "max_len must be >= 1"),
    (["--max-steps", "-1"], "max_steps must be >= 0"),
])
def test_train_bounds_are_trainconfigs_and_its_message_shows(monkeypatch, capsys, args, needle) -> None:
    code, out = run_cli(monkeypatch, capsys, "train", *args)
    assert code == 2 and needle in out and "Traceback" not in out


def test_train_max_len_below_8_reaches_the_config(monkeypatch, capsys, tmp_path: Path) -> None:
    # typer wanted --max-len >= 8 where TrainConfig allows 1: one bound, TrainConfig's.
    assert _train_cli(monkeypatch, capsys, tmp_path, "--max-len", "4").max_len == 4


def test_train_config_file_of_a_wrong_type_names_the_field(monkeypatch, capsys, tmp_path: Path) -> None:
    file = tmp_path / "cfg.json"
    file.write_text(json.dumps({"epochs": "ten"}))
    code, out = run_cli(monkeypatch, capsys, "train", "--config", str(file))
    assert code == 2 and "Traceback" not in out
    assert "epochs must be an integer, got 'ten' (str)" in out


def test_training_on_two_molecules_keeps_the_weights_and_skips_the_density(monkeypatch, capsys, tmp_path: Path,
                                                                          caplog) -> None:
    data = tmp_path / "two.csv"
    data.write_text("smiles\nCCO\nc1ccccc1O\n")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({
        "properties": [], "val_fraction": 0.0, "progress": False, "amp": "off", "threads": 1,
        "model": {"embed_dim": 8, "enc_hidden": 16, "latent_dim": 4, "dec_hidden": 16, "dec_layers": 1,
                  "prop_hidden": 8}}))
    out = tmp_path / "m"
    with caplog.at_level("WARNING", logger="molvae.train"):
        code, text = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--repr", "smiles", "--max-len", "20",
                             "--epochs", "1", "--batch-size", "2", "--out", str(out), "--config", str(config))
    assert code == 0, text
    assert (out / "model.safetensors").is_file() and not (out / "density.safetensors").exists()
    assert "latent density skipped" in caplog.text and "too few" in caplog.text


def test_train_condition_reaches_the_training_config(monkeypatch, capsys, tmp_path: Path) -> None:
    # Comma-separated or repeated; TrainConfig normalizes the names.
    cfg = _train_cli(monkeypatch, capsys, tmp_path, "-p", "logp", "-p", "mw", "-p", "tpsa",
                     "--condition", "logP, mw", "--condition", "tpsa")
    assert cfg.conditions == ("logp", "mw", "tpsa") and cfg.properties == ("logp", "mw", "tpsa")
    assert _train_cli(monkeypatch, capsys, tmp_path).conditions == ()
    # A config file's conditions stay unless typed; typed "" means none.
    file = tmp_path / "cond.json"
    file.write_text(json.dumps({"properties": ["logp", "mw"], "conditions": ["mw"]}))
    assert _train_cli(monkeypatch, capsys, tmp_path, "--config", str(file)).conditions == ("mw",)
    for typed, expected in (("logp", ("logp",)), ("", ())):
        cfg = _train_cli(monkeypatch, capsys, tmp_path, "--config", str(file), "--condition", typed)
        assert cfg.conditions == expected


@pytest.mark.parametrize("args,needle", [
    (["--condition", "logp,mw,tpsa"], "conditions ['mw', 'tpsa'] are not among properties"),  # default: logp, qed, sa
    (["-p", "pIC50", "--condition", "pIC50"], "unknown property 'pIC50'"),
    (["--condition", "logp,logp"], "conditions repeat"),
])
def test_train_condition_errors_are_trainconfigs_and_exit_2(monkeypatch, capsys, args, needle) -> None:
    code, out = run_cli(monkeypatch, capsys, "train", *args)
    assert code == 2 and needle in out and "Traceback" not in out


def test_training_a_conditional_model_from_the_command_line(monkeypatch, capsys, tmp_path: Path) -> None:
    data = tmp_path / "four.csv"
    data.write_text("smiles\nCCO\nc1ccccc1O\nCCN(CC)CC\nCC(=O)Nc1ccc(O)cc1\n")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({
        "val_fraction": 0.0, "progress": False, "amp": "off", "threads": 1, "density_molecules": 0,
        "model": {"embed_dim": 8, "enc_hidden": 16, "latent_dim": 4, "dec_hidden": 16, "dec_layers": 1,
                  "prop_hidden": 8}}))
    out = tmp_path / "m"
    code, text = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--repr", "smiles", "--max-len", "30",
                         "-p", "logp", "-p", "tpsa", "--condition", "logp,tpsa", "--epochs", "1", "--batch-size", "2",
                         "--out", str(out), "--config", str(config))
    assert code == 0, text
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["conditions"] == ["logp", "tpsa"] and saved["model"]["n_cond"] == 2
    assert [c["name"] for c in saved["conditions"]] == ["logp", "tpsa"]
