"""molvae.bench.sampling_speed: the tiny generation checkpoint against the (untrained) MOSES VAE, a few molecules;
the table printed and the JSON written with sane values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import sampling_speed

DATA = Path(__file__).parent / "data" / "gen_train.csv"
WHEEL = Path.home() / ".cache" / "molvae" / "wheels" / "molsets-0.3.1-py3-none-any.whl"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_moses_validity() -> None:
    assert sampling_speed.moses_validity(["CCO", "", "C1CC", "c1ccccc1"]).tolist() == [True, False, False, True]


@pytest.mark.skipif(not WHEEL.exists(), reason="the molsets wheel is not in the molvae cache")
def test_sampling_table_and_json(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sample.json"
    report = sampling_speed.main(["--model", str(gen_checkpoint), "--n", "6", "--rounds", "2", "--batch", "4",
                                  "--threads", "1", "--train", str(DATA), "--wheel", str(WHEEL), "--skip-ref-bf16",
                                  "--json", str(out)])
    printed = capsys.readouterr().out
    assert "x ref" in printed and "MOSES VAE (untrained, fp32, as published)" in printed
    assert json.dumps(json.loads(out.read_text())) == json.dumps(report)
    rows = report["rows"]
    assert rows[0]["model"].startswith("MOSES VAE") and rows[1]["model"].startswith("molvae ")
    assert len(rows) == 4 and rows[0]["speedup"] == pytest.approx(1.0)
    for row in rows:
        assert row["n"] == 6 and row["seconds"] > 0 and 0 <= row["validity"] <= 1 and row["molecules_per_s"] > 0
    assert {"machine", "torch", "threads", "batch"} <= set(report)
