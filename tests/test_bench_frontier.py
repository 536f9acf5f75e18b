"""The cycle protocol: FCD at novelty .90 read off a curve, and the benchmark end to end on the embedded data."""
from __future__ import annotations

import json
import math

import pytest

from molvae.bench import frontier


def test_fcd_at_novelty_interpolates_between_the_bracketing_points():
    points = [{"novelty": 0.80, "fcd": 0.20}, {"novelty": 0.95, "fcd": 0.50}, {"novelty": 0.88, "fcd": 0.30}]
    assert frontier.fcd_at_novelty(points) == pytest.approx(0.30 + 0.20 * (0.02 / 0.07))
    assert frontier.fcd_at_novelty(points, 0.80) == pytest.approx(0.20)
    assert math.isnan(frontier.fcd_at_novelty(points, 0.97))  # the curve does not reach it
    assert math.isnan(frontier.fcd_at_novelty([{"novelty": 0.9, "fcd": float("nan")}]))


def test_frontier_on_the_shipped_model_and_embedded_reference(tmp_path, capsys):
    out = tmp_path / "f.json"
    result = frontier.main(["moses-smiles", "--n", "200", "--temperatures", "1.2", "0.7", "--recon", "20",
                            "--reference", "embedded", "--json", str(out)])
    assert json.loads(out.read_text())["rows"][0]["model"] == result["rows"][0]["model"]
    row = result["rows"][0]
    hot, cold = row["points"]
    for p in (hot, cold):
        assert 0.5 < p["valid"] <= 1 and 0.5 < p["unique"] <= 1 and 0 < p["novelty"] <= 1 and p["fcd"] > 0
    assert cold["valid"] > hot["valid"]  # a colder softmax writes more valid strings
    assert row["recon_n"] == 20 and 0 < row["recon_exact"] <= 1
    assert set(row["drugs_exact"]) <= set(frontier.DRUGS)
    assert "FCD at novelty 0.90" in capsys.readouterr().out
