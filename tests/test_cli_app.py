"""CLI tests, in-process, through `molvae.cli.main` so that the exit-code mapping is what users get."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke_cli


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    return invoke_cli(monkeypatch, capsys, *args)


def test_help_and_doctor(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "--help")
    assert code == 0 and "train" in out and "doctor" in out
    code, out = run_cli(monkeypatch, capsys, "doctor")
    assert code == 0
    for name in ("python", "torch", "rdkit", "selfies", "device", "data cache"):
        assert name in out


def test_usage_error_exits_2(monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "train", "--epochs", "0")
    assert code == 2 and "Traceback" not in out


@pytest.mark.parametrize(
    "content,needle",
    [(b"", "empty"), (b"name\nfoo\n", "SMILES column"), (b"\x00\x00\x00", "binary")],
)
def test_bad_training_file_exits_1_without_traceback(monkeypatch, capsys, tmp_path: Path, content, needle) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, out = run_cli(monkeypatch, capsys, "train", "--data", str(path), "--out", str(tmp_path / "m"))
    assert code == 1, out
    assert needle in out and "Traceback" not in out


def test_train_stop_after_reaches_the_training_config(monkeypatch, capsys, tmp_path: Path) -> None:
    import molvae.train.loop as train

    seen = []
    monkeypatch.setattr(train, "fit", lambda cfg: seen.append(cfg) or tmp_path)
    code, out = run_cli(monkeypatch, capsys, "train", "--epochs", "4", "--stop-after", "2", "--out", str(tmp_path))
    assert code == 0, out
    assert seen[0].epochs == 4 and seen[0].stop_after == 2
    code, out = run_cli(monkeypatch, capsys, "train", "--stop-after", "-1")
    assert code == 2 and "Traceback" not in out
