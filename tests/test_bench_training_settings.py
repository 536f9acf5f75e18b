"""molvae.bench.training_settings: the variant presets, their parsing, the resume guard and the table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.train import TrainConfig


@pytest.fixture(scope="module")
def study():
    from molvae.bench import training_settings

    return training_settings


def test_parse_variants_keeps_order_and_drops_repeats(study) -> None:
    assert study.parse_variants(" beta0.05, base,beta0.05 ,") == ["beta0.05", "base"]


@pytest.mark.parametrize("text", ["beta0.3", "base,dec9x9", ""])
def test_parse_variants_names_unknown_ones(study, text: str) -> None:
    with pytest.raises(ValueError, match="valid: base, beta0.5"):
        study.parse_variants(text)


def test_each_variant_changes_only_its_own_settings(study) -> None:
    base = {**study.BASE, "data": "x.csv", "epochs": 1}
    reference = TrainConfig(**study.variant_settings("base", base)).to_dict()
    assert (reference["representation"], reference["beta_end"], reference["kl_warmup_epochs"],
            reference["batch_size"], reference["lr"], reference["lr_schedule"]) == ("smiles", 0.1, 0.5, 512, 1e-3,
                                                                                    "cosine")
    for name, (_, overrides) in study.VARIANTS.items():
        cfg = TrainConfig(**study.variant_settings(name, base)).to_dict()  # validates every preset
        changed = {k for k in cfg if cfg[k] != reference[k]}
        assert changed == {k for k, v in overrides.items() if v != reference[k]}, name  # beta0.1 is base's
        assert all(cfg[k] == v for k, v in overrides.items()), name
        assert cfg["model"] == overrides.get("model", {}), name
    assert study.variant_settings("dec2x768", {**base, "model": {"latent_dim": 32}})["model"] == {
        "latent_dim": 32, "dec_hidden": 768}


def test_warm_start_variants_keep_their_kl_weight_from_the_first_step(study) -> None:
    base = {**study.BASE, **study.WARM, "init": "moses-smiles", "data": "x.csv", "epochs": 1}
    for name in ("base", "beta0.5", "beta0.05"):
        cfg = TrainConfig(**study.variant_settings(name, base))
        assert cfg.kl_schedule == "constant" and cfg.init == "moses-smiles" and cfg.lr == 5e-4
        assert cfg.beta_start == cfg.beta_end == {"base": 0.2, "beta0.5": 0.5, "beta0.05": 0.05}[name]


def test_warm_start_refuses_architecture_variants(study, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        study.main(["--init", "moses-smiles", "--variants", "beta0.5,dec3x512,no-zstep"])
    assert exc.value.code == 2
    assert "variant(s) dec3x512, no-zstep change it" in capsys.readouterr().err


def test_check_settings_lists_differences(study) -> None:
    old = {"n_train": 300_000, "epochs": 1, "priors": ["density"]}
    assert study.check_settings(old, dict(old)) == []
    assert study.check_settings(old, {**old, "epochs": 2}) == ["epochs: 1 -> 2"]


def test_rerun_with_other_settings_is_refused(study, tmp_path: Path, capsys) -> None:
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"settings": {"n_train": 1000}, "commands": [], "rows": {}}))
    with pytest.raises(SystemExit) as exc:
        study.main(["--variants", "base", "--json", str(path), "--out-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "n_train: 1000 -> 300000" in capsys.readouterr().err
    assert not list(tmp_path.glob("n*"))  # refused before any data were written


def test_bad_flags_are_usage_errors(study, capsys) -> None:
    for argv in (["--variants", "nope"], ["--priors", "flat"], ["--n-train", "100", "--n-val", "100"]):
        with pytest.raises(SystemExit) as exc:
            study.main(argv)
        assert exc.value.code == 2
    assert "--n-val (100) must be smaller" in capsys.readouterr().err


def test_markdown_table(study) -> None:
    row = {"variant": "base", "steps": 585, "recon": 0.5, "val_recon": 9.876, "val_kl": 20.0, "active_units": 30,
           "train_min": 9.04, "mol_per_s": 550.4,
           "samples": {"density": {"Valid": 0.9, "Unique@1k": 1.0, "Novelty": 0.95, "FCD/Test": 1.2345},
                       "standard": {"FCD/Test": 2.5}}}
    lines = study.markdown_table([row], ["density", "standard"]).splitlines()
    assert lines[0].startswith("| variant | steps | Valid | Unique | Novelty | FCD/Test | FCD/Test (standard prior) |")
    assert lines[2] == ("| base | 585 | 0.900 | 1.000 | 0.950 | 1.234 | 2.500 | 0.500 | 9.88 | 20.00 | 30 | 9.0 "
                        "| 550 |")
    assert study.markdown_table([{"variant": "x"}]).splitlines()[2].count("| - ") == len(study.TABLE_COLUMNS) - 1
    assert study._finite({"a": float("nan"), "b": (1.0, float("inf"))}) == {"a": None, "b": [1.0, None]}


def test_study_end_to_end_on_a_tiny_subset(study, tmp_path: Path, monkeypatch, capsys) -> None:
    """Train, fit the density, sample, score, write the row; a finished run dir is only rescored; a rerun
    skips the variants in the JSON."""
    import pandas as pd

    from molvae.data import datasets

    moses = tmp_path / "moses.csv"
    smiles = pd.read_csv(Path(__file__).parent / "data" / "gen_train.csv")["smiles"]
    smiles.rename("SMILES").to_frame().to_csv(moses, index=False)
    monkeypatch.setattr(datasets, "dataset_path", lambda source, split: moses)  # stands for MOSES train and test
    path = tmp_path / "study.json"
    argv = ["--variants", "beta0.5", "--n-train", "60", "--n-val", "6", "--n-samples", "40", "--recon-n", "8",
            "--density-molecules", "50", "--reference", str(moses), "--threads", "1", "--n-jobs", "1",
            "--no-progress", "--out-dir", str(tmp_path / "work"), "--json", str(path)]
    study.main(argv)
    row = json.loads(path.read_text())["rows"]["beta0.5"]
    assert row["config"]["beta_end"] == 0.5 and row["config"]["representation"] == "smiles"
    assert row["steps"] == 1  # 54 training molecules, batch 512
    assert 0.0 <= row["samples"]["density"]["Valid"] <= 1.0 and 0.0 <= row["recon"] <= 1.0
    assert row["val_kl"] > 0 and row["train_min"] > 0
    assert len(pd.read_csv(tmp_path / "work" / "n60-e1-seed0" / "moses_train_60_seed0.csv")) == 60
    path.unlink()  # the row was lost, the finished run dir was not: it is scored again, not retrained
    study.main(argv)
    again = json.loads(path.read_text())["rows"]["beta0.5"]
    assert again["fit_s_this_call"] == 0.0
    assert again["samples"]["density"]["Valid"] == row["samples"]["density"]["Valid"]
    capsys.readouterr()
    study.main(argv)
    out = capsys.readouterr().out
    assert "beta0.5: already in" in out and "| beta0.5 | 1 |" in out
