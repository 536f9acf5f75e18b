"""molvae.bench.analogs with the tiny generation checkpoint on its own training molecules: the start molecules
are chosen deterministically inside 1.5 <= logP <= 2.5, each asks `sample(near=...)` for a few analogs one logP
unit higher, and every analog the API returns passes the benchmark's own RDKit check (window and similarity)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from molvae import chem
from molvae.bench import analogs

pytestmark = pytest.mark.usefixtures("one_thread")

GEN_TRAIN = Path(__file__).parent / "data" / "gen_train.csv"  # 18 of its 64 molecules have 1.5 <= logP <= 2.5


def test_start_molecules_are_chosen_by_the_seed_inside_the_logp_range() -> None:
    starts = analogs.start_molecules(str(GEN_TRAIN), 5, seed=0)
    assert len(starts) == 5 and starts == analogs.start_molecules(str(GEN_TRAIN), 5, seed=0)
    assert starts != analogs.start_molecules(str(GEN_TRAIN), 5, seed=1)
    logp = chem.properties([s for s, _ in starts], ["logp"], n_jobs=1)["logp"].tolist()
    assert logp == pytest.approx([v for _, v in starts]) and all(1.5 <= v <= 2.5 for v in logp)
    assert len(analogs.start_molecules(str(GEN_TRAIN), 100, seed=0)) == 18  # fewer when the source has fewer


def test_analogs_rows_and_summary(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "analogs.json"
    report = analogs.main(["--model", str(gen_checkpoint), "--molecules", str(GEN_TRAIN), "--n-molecules", "2",
                           "--per-molecule", "2", "--max-decodes", "24", "--similarity", "0.2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "mean_similarity" in printed and "molecules with >= 2 analogs" in printed
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(report["rows"]))
    assert saved["model_path"] == str(gen_checkpoint) and saved["seed"] == 0 and saved["hardware"]
    assert (saved["n_molecules"], saved["per_molecule"], saved["max_decodes"], saved["tolerance"]) == (2, 2, 24, 0.25)
    rows = report["rows"]
    assert [r["smiles"] for r in rows] == [s for s, _ in analogs.start_molecules(str(GEN_TRAIN), 2, seed=0)]
    for r in rows:
        assert r["error"] is None, r["error"]
        lo, hi = r["logp0"] + 0.75, r["logp0"] + 1.25
        assert r["where"] == f"logp>={round(lo, 3)},logp<={round(hi, 3)}"
        assert 1 <= r["decodes"] <= 24 and r["hits"] <= r["decodes"] and 0 <= r["hit_rate"] <= 1
        assert r["analogs"] == r["returned"] <= 2  # every analog returned meets the window and the similarity floor
        assert all(s >= 0.2 for s in r["similarities"]) and r["success"] == (r["analogs"] >= 2)
    s = report["summary"]
    assert s["molecules"] == 2 and s["success_share"] == sum(r["success"] for r in rows) / 2
    assert s["goal_met"] == ("pass" if s["success_share"] >= 0.90 else "fail")
    sims = [x for r in rows for x in r["similarities"]]
    expected = sum(sims) / len(sims) if sims else math.nan
    assert s["mean_similarity"] == pytest.approx(expected, nan_ok=True)
