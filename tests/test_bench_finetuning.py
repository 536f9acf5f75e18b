"""molvae.bench.finetuning on tests/data/assay_series.csv (50 molecules with pIC50), the tiny generation
checkpoint as the base, one epoch per variant: five rows with sane values, printed and written."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from molvae.bench import finetuning

SERIES = Path(__file__).parent / "data" / "assay_series.csv"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_finetuning_rows(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "finetune.json"
    record = finetuning.main(["--base", str(gen_checkpoint), "--series", str(SERIES), "--epochs", "1",
                              "--n-samples", "8", "--work", str(tmp_path / "work"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert "from scratch" in printed and "nn_sim" in printed
    assert json.dumps(json.loads(out.read_text())) == json.dumps(record)  # NaN != NaN as values
    assert record["n_train"] + record["n_test"] == 50 and record["n_test"] == 10
    names = [r["model"] for r in record["rows"]]
    assert names[0].endswith("unchanged") and names[1:] == ["fine-tuned", "from scratch", "fine-tuned, half the labels",
                                                          "fine-tuned, labelled half only"]
    for r in record["rows"]:
        assert 0 <= r["valid"] <= 1 and 0 <= r["unique"] <= 1 and r["train_min"] >= 0
    assert math.isnan(record["rows"][0]["mae"])  # the base has no pIC50 head
    assert all(r["mae"] >= 0 and not r["r2"] > 1 for r in record["rows"][1:])  # R2 NaN when the labels are equal


def test_load_series_reads_a_csv() -> None:
    df = finetuning.load_series(str(SERIES), "pIC50")
    assert list(df.columns) == ["smiles", "pIC50"] and len(df) == 50
    assert df["pIC50"].dtype == float and df["pIC50"].notna().sum() == 23  # "NA" and ">10" are unlabelled


def test_nn_similarity() -> None:
    assert finetuning.nn_similarity(["CCO"], ["CCO", "c1ccccc1"]) == 1.0
    assert math.isnan(finetuning.nn_similarity([], ["CCO"]))
