"""molvae.bench.conditional_windows with tiny models: the tiny generation checkpoint (no conditioning: its prior
is steered) and a tiny model conditioned on logP (c drawn inside the window), a few molecules per window; the rows
printed and written with sane values, goals as pass/fail, the conditions used recorded."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from molvae.bench import conditional_windows

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cond_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generation fixture's data and model, conditioned on logP, trained briefly (8 epochs of 4 batches)."""
    from molvae.train import TrainConfig, fit

    return fit(TrainConfig(
        data=str(DATA / "gen_train.csv"), representation="smiles", properties=("logp", "qed"), conditions=("logp",),
        max_len=62, epochs=8, batch_size=16, lr=5e-3, lr_schedule="constant", val_fraction=0.0, patience=0,
        beta_start=0.0, beta_end=0.1, kl_warmup_epochs=8, seed=0, amp="off", threads=1, progress=False,
        out=str(tmp_path_factory.mktemp("cond") / "tiny"),
        model={"embed_dim": 32, "enc_hidden": 64, "latent_dim": 16, "dec_hidden": 128, "dec_layers": 1,
               "prop_hidden": 32}))


def _check_rows(report: dict, windows: list[str], n: int, max_decodes: int) -> None:
    assert [r["where"] for r in report["rows"]] == windows
    for r in report["rows"]:
        assert 0 <= r["returned"] <= n and 1 <= r["decodes"] <= max_decodes
        assert 0 <= r["hit_rate"] <= 1 and 0 <= r["validity"] <= 1
        assert r["hit_rate"] == pytest.approx(r["hits"] / r["decodes"])
        assert r["hit_rate_goal"] == ("pass" if r["hit_rate"] >= 0.70 else "fail")
        assert math.isnan(r["distinct"]) if not r["returned"] else 0 < r["distinct"] <= 1
        assert r["distinct_goal"] == ("pass" if r["distinct"] >= 0.95 else "fail")
        assert r["seconds"] > 0 and r["uses_conditions"] == bool(r["conditioned"])


def test_windows_of_a_model_without_conditioning(gen_checkpoint: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "windows.json"
    windows = ["logp>=1", "mw>=150,mw<=400,tpsa<=120"]
    report = conditional_windows.main(["--model", str(gen_checkpoint), "--n", "4", "--max-decodes", "64",
                                       "--windows", *windows, "--out", str(out)])
    printed = capsys.readouterr().out
    for text in ("hit_rate_goal", "distinct_goal", "steered", "logp>=1"):
        assert text in printed, text
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(report["rows"], default=str))
    assert saved["model_path"] == str(gen_checkpoint) and saved["seed"] == 0 and saved["hardware"]
    assert saved["is_conditional"] is False and saved["cond_names"] == []
    _check_rows(report, windows, 4, 64)
    assert all(r["conditioned"] == [] for r in report["rows"])  # no conditioning: the head steers


def test_windows_of_a_conditional_model_use_its_conditions(cond_checkpoint: Path, tmp_path: Path) -> None:
    windows = ["logp>=1,logp<=4"]
    report = conditional_windows.main(["--model", str(cond_checkpoint), "--n", "4", "--max-decodes", "64",
                                       "--windows", *windows, "--out", str(tmp_path / "w.json")])
    assert report["is_conditional"] is True and report["cond_names"] == ["logp"]
    _check_rows(report, windows, 4, 64)
    assert report["rows"][0]["conditioned"] == ["logp"] and report["rows"][0]["uses_conditions"] is True


def test_the_default_windows_are_the_issues() -> None:
    assert conditional_windows.WINDOWS == ("logp>=4,logp<=5", "mw>=300,mw<=350,tpsa<=60,qed>=0.85", "logp>=5")
    assert conditional_windows.GOALS == {"hit_rate": 0.70, "distinct": 0.95}
