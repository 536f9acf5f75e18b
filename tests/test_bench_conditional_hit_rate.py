"""molvae.bench.conditional_hit_rate with the tiny generation checkpoint: a window its head predicts and one it does
not, three hits asked; steered and rejection rows printed and written with sane values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import conditional_hit_rate

pytestmark = pytest.mark.usefixtures("one_thread")


def test_conditional_rows(gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "conditional.json"
    report = conditional_hit_rate.main(["--model", str(gen_checkpoint), "--n", "3", "--windows", "logp>=2", "mw<=400",
                                        "--json", str(out)])
    printed = capsys.readouterr().out
    assert "steered" in printed and "rejection" in printed and "hit_rate" in printed
    assert json.dumps(json.loads(out.read_text())["rows"]) == json.dumps(report["rows"])
    rows = report["rows"]
    assert [(r["where"], r["method"]) for r in rows] == [("logp>=2", "steered"), ("logp>=2", "rejection"),
                                                          ("mw<=400", "steered"), ("mw<=400", "rejection")]
    for r in rows:
        assert 0 <= r["moses_share"] <= 1 and 0 <= r["validity"] <= 1 and 0 <= r["hit_rate"] <= 1
        assert r["decodes"] >= 1
    assert rows[1]["decodes"] <= rows[0]["decodes"]  # rejection gets the decodes the steered run spent
