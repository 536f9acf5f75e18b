"""The table benchmarks: molvae.bench.results_table (a saved evaluation), molvae.bench.optimization_table (the tiny
generation checkpoint, 2 starts of 10 steps) and molvae.bench.metrics_cost (30 molecules against 64)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import metrics_cost, optimization_table, results_table

DATA = Path(__file__).parent / "data" / "gen_train.csv"
TINY = Path(__file__).parent / "data" / "train_tiny.csv"  # a SMILES column, as MOSES files have

pytestmark = pytest.mark.usefixtures("one_thread")


def _evaluation(fcd: float) -> dict:
    return {"model": {"samples": [{}, {}], "summary": {"Valid": [0.9, 0.01], "FCD/Test": [fcd, 0.02]},
                      "reconstruction": {"recon_n": 100, "recon_acc": 0.5},
                      "property_head": {"prop_n": 100, "mae_logp": 0.2, "r2_logp": 0.9}}}


def test_results_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b, md = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "t.md"
    a.write_text(json.dumps(_evaluation(0.5)))
    b.write_text(json.dumps(_evaluation(1.25)))
    text = results_table.main([str(a), str(b), "--labels", "A", "B", "--md", str(md)])
    assert capsys.readouterr().out.strip() == text and md.read_text() == text + "\n"
    lines = text.splitlines()
    assert lines[0] == "| metric | A (2 seeds) | B (2 seeds) | MOSES VAE | MOSES CharRNN | MOSES JTN-VAE |"
    fcd = next(line for line in lines if line.startswith("| FCD/Test |"))
    assert "0.500 ± 0.020 | 1.250 ± 0.020 | 0.099" in fcd
    assert next(line for line in lines if line.startswith("| SNN/Test |")).split(" | ")[1] == "-"
    assert "A: Reconstruction (greedy, exact) of the first 100 MOSES test molecules: 0.500." in lines
    with pytest.raises(SystemExit):
        results_table.table([_evaluation(0.5)], ["A", "B"])


def test_optimization_table(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "opt.json"
    report = optimization_table.main(["--model", str(gen_checkpoint), "--device", "cpu", "--threads", "1",
                                      "--n-starts", "2", "--steps", "10", "--json", str(out)])
    printed = capsys.readouterr().out
    assert printed.startswith("| task | method |") and printed.count("| logP |") == 2
    assert json.dumps(json.loads(out.read_text())) == json.dumps(report)  # NaN != NaN as values
    assert [(r["task"], r["method"]) for r in report["rows"]] == [("logP", "gradient"), ("logP", "random"),
                                                                   ("QED", "gradient"), ("QED", "random")]
    for r in report["rows"]:
        assert r["n_starts"] == 2 and r["n_decoded"] > 0 and 0 <= r["improved"] <= 2
        assert not r["best"] < r["result_mean"]  # both NaN when no result of the tiny model is valid


def test_metrics_cost(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "metrics.json"
    report = metrics_cost.main(["--sample-from", str(TINY), "--n", "30", "--reference", str(DATA), "--n-jobs", "1",
                                "--json", str(out)])
    printed = capsys.readouterr().out
    assert "wall time" in printed and "memory" in printed and "FCD/Test" in printed
    saved = json.loads(out.read_text())
    assert saved["n"] == 30 and saved["memory_ok"] is True and saved["result"]["n_input"] == 30
    assert set(saved["checks"]) == set(metrics_cost.EXPECT)
    assert saved["checks"]["Valid"] is True and saved["peak_rss_gib"]["main"] > 0
    assert report["ok"] == (report["memory_ok"] and all(report["checks"].values()))
