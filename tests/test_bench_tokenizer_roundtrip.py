"""molvae.bench.tokenizer_roundtrip on the first 40 embedded MOSES molecules: every molecule round-trips in both
representations, and the table and JSON say so."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import tokenizer_roundtrip


def test_roundtrip_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tokens.json"
    result = tokenizer_roundtrip.main(["--limit", "40", "--json-out", str(out)])
    printed = capsys.readouterr().out
    assert "round-trip" in printed and "selfies" in printed
    assert json.loads(out.read_text())["n_molecules"] == 40
    for key in ("smiles", "selfies"):
        r = result[key]
        assert r["n_molecules"] == 40 and r["round_trip_rate"] == 1.0 and r["n_failures"] == 0
        assert 10 < r["vocab_size"] < 100 and r["vocab_size_with_specials"] == r["vocab_size"] + 4
        assert 0 < r["mean_tokens"] <= r["max_tokens"] <= 120 and r["us_per_molecule_1core"] > 0


def test_failures_are_counted(tmp_path: Path) -> None:
    data = tmp_path / "odd.csv"
    data.write_text("SMILES\nCCO\nC[C@H](N)C(=O)O\n")
    result = tokenizer_roundtrip.run(data, n_jobs=1, limit=None, constraints="default")
    assert result["smiles"]["n_round_trip_ok"] == 2 and result["selfies"]["round_trip_rate"] == 1.0
