"""molvae.bench.reference_stats_check --limit: shipped statistics for the first 12 molecules of each MOSES test set,
built through the shipping code path, agree with a recomputation; the shipped directory is restored after."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import reference_stats_check

MOSES = Path.home() / ".cache" / "molvae" / "moses"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.skipif(not (MOSES / "test_scaffolds.csv.gz").exists(), reason="MOSES is not in the molvae cache")
def test_limit_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from molvae.evaluation import shipped

    before = shipped.SHIPPED_DIR
    out = tmp_path / "check.json"
    report = reference_stats_check.main(["--limit", "12", "--n-jobs", "1", "--json", str(out)])
    assert shipped.SHIPPED_DIR == before
    printed = capsys.readouterr().out
    assert "PASS" in printed and "max_rel" in printed
    saved = json.loads(out.read_text())
    assert saved["passed"] is True and saved["limit"] == 12 and saved["seconds"] >= 0
    assert set(saved["splits"]) == set(shipped.SHIPPED_FILES)
    for split in saved["splits"].values():
        assert split["n_smiles"] == 12 and split["source"].startswith("shipped") and all(r["ok"] for r in split["rows"])
    assert report["passed"] is True
