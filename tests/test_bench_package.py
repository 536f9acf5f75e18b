"""molvae.bench: every module is listed in BENCHMARKS or LIBRARY, each benchmark has a `main(argv)` and `--help`,
every module and every scripts/*.py is named by a test file, and none of them edits sys.path."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import molvae.bench as bench

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "molvae" / "bench").glob("*.py") if p.stem != "__init__")


def test_every_module_is_listed() -> None:
    assert set(MODULES) == set(bench.BENCHMARKS) | set(bench.LIBRARY)
    assert not set(bench.BENCHMARKS) & set(bench.LIBRARY)


@pytest.mark.parametrize("name", sorted(bench.BENCHMARKS))
def test_help(name: str, capsys: pytest.CaptureFixture) -> None:
    module = importlib.import_module(f"molvae.bench.{name}")
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0 and f"python -m molvae.bench.{name}" in capsys.readouterr().out


def test_every_file_is_named_by_a_test() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    unnamed = [f"molvae/bench/{m}.py" for m in MODULES if not re.search(rf"molvae\.bench(\.| import .*){m}\b", tests)
               and f"bench import {m}" not in tests]
    unnamed += [f"scripts/{p.name}" for p in (ROOT / "scripts").glob("*.py")
                if p.name not in tests and f'"{p.stem}"' not in tests]
    assert not unnamed, unnamed


def test_no_sys_path_edits() -> None:
    files = [*(ROOT / "molvae" / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]
    assert not [str(p) for p in files if "sys.path.insert" in p.read_text() or "sys.path.append" in p.read_text()]


def test_report_helpers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    import torch

    from molvae.bench.report import torch_threads, write_json

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    path = write_json(tmp_path / "sub" / "r.json", {"x": float("nan"), "p": tmp_path})
    assert capsys.readouterr().out == f"wrote {path}\n"
    saved = json.loads(path.read_text())
    assert saved["p"] == str(tmp_path) and saved["x"] != saved["x"]
