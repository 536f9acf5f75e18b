"""molvae.bench.anomaly_auroc with the shipped model on 20 MOSES test molecules against 5 of two out-of-domain sets
from RDKit's wheel: the table printed and the JSON written with AUROCs in [0, 1]."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molvae.bench import anomaly_auroc

pytestmark = pytest.mark.usefixtures("one_thread")


def test_auroc() -> None:
    assert anomaly_auroc.auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert anomaly_auroc.auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert anomaly_auroc.auroc(np.array([1.0]), np.array([1.0, np.inf])) == 0.75


def test_out_of_domain_sets_load_from_the_rdkit_wheel() -> None:
    sets = anomaly_auroc.out_of_domain_sets(["medchem series", "reactive"])
    assert len(sets["medchem series"]) > 500 and len(sets["reactive"]) > 50


def test_anomaly_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "score.json"
    report = anomaly_auroc.main(["--sets", "medchem series,reactive", "--limit", "5", "--n-inside", "20",
                                 "--json", str(out), "--terms", str(tmp_path / "terms.parquet")])
    printed = capsys.readouterr().out
    assert "auroc" in printed and "reactive" in printed
    assert json.dumps(json.loads(out.read_text())["rows"]) == json.dumps(report["rows"])
    inside, *others = report["rows"]
    assert inside["set"] == "MOSES test (in-domain)" and inside["n"] == 20 and "auroc" not in inside
    assert [r["set"] for r in others] == ["medchem series", "reactive"]
    for r in others:
        assert r["n"] == 5 and 0 <= r["auroc"] <= 1 and 0 <= r["flagged_out"] <= 1 and 0 <= r["spellable"] <= 1
    assert report["threshold"] > 0 and (tmp_path / "terms.parquet").exists()
