"""molvae.bench.moses_agreement on a small sample (40 generated, 30 test and scaffold-test, 50 training
molecules): molvae.evaluate agrees with MOSES's own get_all_metrics, and the table and JSON say so."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from molvae.bench import moses_agreement

CACHE = Path.home() / ".cache" / "molvae"
WHEEL = CACHE / "wheels" / "molsets-0.3.1-py3-none-any.whl"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.skipif(not (WHEEL.exists() and (CACHE / "moses" / "train.csv.gz").exists()),
                    reason="the molsets wheel or MOSES is not in the molvae cache")
def test_small_sample_agrees(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "agreement.json"
    report = moses_agreement.main([str(WHEEL), "--n-gen", "40", "--n-ref", "30", "--n-train", "50", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "agreement: PASS" in printed and "|diff|" in printed
    saved = json.loads(out.read_text())
    assert saved["pass"] is True and saved["n_gen"] == 40 and saved["n_ref"] == 30 and saved["n_train"] == 58
    metrics = {r["metric"] for r in saved["rows"]}
    assert {"Valid", "FCD/Test", "SNN/TestSF", "Novelty", "IntDiv"} <= metrics
    assert all(r["ok"] for r in report["rows"])


def test_compare_flags_a_disagreement() -> None:
    theirs = {"valid": 0.9, "IntDiv": 0.8, "IntDiv2": 0.7, "Filters": 1.0, "Novelty": 0.5, "logP": 0.1, "SA": 0.1,
              "QED": 0.1, "weight": 1.0, "unique@1": 1.0,
              **{f"{m}/{t}": 0.5 for m in ("FCD", "SNN", "Frag", "Scaf") for t in ("Test", "TestSF")}}
    ours = {"Valid": 0.9, "IntDiv": 0.8, "IntDiv2": 0.7, "Filters": 1.0, "Novelty": 0.5, "logP": 0.1, "SA": 0.1,
            "QED": 0.1, "weight": 1.0, "Unique@1": 1.0,
            **{f"{m}/{t}": 0.5 for m in ("FCD", "SNN", "Frag", "Scaf") for t in ("Test", "TestSF")}, "skipped": {}}
    rows, ok = moses_agreement.compare(theirs, ours, [1])
    assert ok and rows[0]["metric"] == "Valid"
    rows, ok = moses_agreement.compare(theirs, {**ours, "FCD/Test": 0.52}, [1])
    assert not ok and [r["metric"] for r in rows if not r["ok"]] == ["FCD/Test"]


def test_mutate_changes_one_character() -> None:
    rng = random.Random(0)
    for _ in range(20):
        assert abs(len(moses_agreement.mutate("CCOc1ccccc1", rng)) - 11) <= 1
