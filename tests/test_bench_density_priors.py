"""molvae.bench.density_priors with the tiny generation checkpoint: N(0, I), a posterior mixture and two fitted
mixtures on 40 embedded MOSES molecules, scored against tests/data/gen_train.csv; table and JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from molvae.bench import density_priors
from molvae.data import embedded_path

TEST = Path(__file__).parent / "data" / "gen_train.csv"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_density_priors_rows(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "density.json"
    report = density_priors.main(["--model", str(gen_checkpoint), "--n", "16", "--n-fit", "30", "--n-heldout", "10",
                                  "--components", "2", "--means-components", "2", "--exemplars", "10",
                                  "--threads", "1", "--train", str(embedded_path("train")), "--test", str(TEST),
                                  "--json", str(out)])
    printed = capsys.readouterr().out
    assert "heldout LL" in printed and "post-mix" in printed
    assert json.dumps(json.loads(out.read_text())["rows"]) == json.dumps(report["rows"])  # NaN != NaN as values
    rows = report["rows"]
    assert [(r["prior"], r["source"], r["components"]) for r in rows] == [
        ("N(0, I)", "-", 0), ("post-mix", "q(z|x)", 10), ("mixture", "posterior", 2), ("mixture", "means", 2)]
    for r in rows:
        assert math.isfinite(r["heldout_loglik"]) and 0 <= r["Valid"] <= 1
        assert r["FCD/Test"] >= 0 or (math.isnan(r["FCD/Test"]) and r["Valid"] * 16 < 2)  # FCD needs 2 valid
