"""molvae.bench.model_variants: one small SMILES variant trained for an epoch on 40 embedded MOSES molecules,
sampled and scored against tests/data/gen_train.csv; molvae.bench.sampling_settings: two temperatures and greedy
decoding of the tiny generation checkpoint. The tables printed and the JSON written with sane values."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from molvae.bench import model_variants, sampling_settings
from molvae.data import embedded_path

REFERENCE = Path(__file__).parent / "data" / "gen_train.csv"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_model_variants(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "variants.json"
    report = model_variants.main(["--variants", "smiles-small", "--n-train", "40", "--epochs", "1", "--n-samples", "10",
                                  "--recon-n", "5", "--batch-size", "16", "--train", str(embedded_path("train")),
                                  "--test", str(embedded_path("test")), "--reference", str(REFERENCE),
                                  "--out-dir", str(tmp_path / "runs"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "smiles-small" in printed and "FCD/Test" in printed and f"wrote {out}" in printed
    assert json.dumps(json.loads(out.read_text())["rows"]) == json.dumps(report["rows"])  # NaN != NaN as values
    (row,) = report["rows"]
    assert row["variant"] == "smiles-small" and row["params"] > 0 and row["train_s"] > 0
    assert 0 <= row["Valid"] <= 1 and 0 <= row["recon"] <= 1 and math.isnan(row["Novelty"])  # no training set given
    assert (tmp_path / "runs" / "smiles-small" / "model.safetensors").exists()


def test_sampling_settings(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sweep.json"
    report = sampling_settings.main(["--model", str(gen_checkpoint), "--device", "cpu", "--n", "12",
                                     "--temperatures", "1.0", "0.7", "--greedy", "--n-jobs", "1",
                                     "--reference", str(REFERENCE), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| setting | Valid |" in printed and "| T = 0.7 |" in printed and "| greedy |" in printed
    assert json.dumps(json.loads(out.read_text())["rows"]) == json.dumps(report["rows"])
    assert [(r["method"], r["temperature"]) for r in report["rows"]] == [("multinomial", 1.0), ("multinomial", 0.7),
                                                                          ("greedy", 1.0)]
    for r in report["rows"]:
        assert 0 <= r["metrics"]["Valid"] <= 1 and 0 <= r["metrics"]["Ring>=8"] <= 1 and r["sample_s"] >= 0
    assert report["n"] == 12 and "hardware" in report


def test_macrocycle_share() -> None:
    assert sampling_settings.macrocycle_share(["C1CCCCCCC1", "c1ccccc1", "not a molecule"]) == 0.5
