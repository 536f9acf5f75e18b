"""`molvae evaluate` in-process: JSON output on a small fixed sample, and usage errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from molvae.data.datasets import embedded_path
from tests.test_cli_app import run_cli


def test_evaluate_file_json(monkeypatch, capsys, tmp_path: Path) -> None:
    test = pd.read_csv(embedded_path("test"))["SMILES"]
    gen = tmp_path / "gen.csv"
    pd.DataFrame({"smiles": [*test[:150], "not_a_smiles", "", *test[:10]]}).to_csv(gen, index=False)
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"smiles": test[500:900]}).to_csv(ref, index=False)
    code, out = run_cli(monkeypatch, capsys, "evaluate", str(gen), "--reference", str(ref), "--json", "--n-jobs", "1")
    assert code == 0, out
    res = json.loads(out)["file"]
    assert res["n_input"] == 162 and res["n_valid"] == 160 and res["n_unique"] == 150
    assert abs(res["Valid"] - 160 / 162) < 1e-9
    assert "Unique@1k" in res["skipped"] and "needs" in res["skipped"]["Unique@1k"]
    assert 0 < res["FCD/Test"] < 20 and 0 < res["IntDiv"] < 1


def test_evaluate_needs_file_or_model(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "evaluate")
    assert code == 2 and "Traceback" not in out
