"""molvae.bench.stream_memory: `molvae sample --n 20 -o x.parquet` with the shipped model in a fresh process, and the
same without batch buckets; the table printed and the JSON written with sane values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from molvae.bench import stream_memory


def test_stream_memory_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stream.json"
    report = stream_memory.main(["--sizes", "20", "--without-buckets", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| path | molecules | peak RSS |" in printed and "| streamed (molvae sample -o) | 20 |" in printed
    assert json.loads(out.read_text()) == report
    assert [r["path"] for r in report["rows"]] == ["streamed (molvae sample -o)", "streamed, no batch buckets"]
    for r in report["rows"]:
        assert r["n"] == 20 and 50 < r["peak_rss_mb"] < 4000 and r["seconds"] > 0
    assert "molvae.bench.stream_memory --sizes 20" in report["command"]


def test_peak_rss_of_a_small_process() -> None:
    import sys

    rss, seconds = stream_memory.peak_rss_mb([sys.executable, "-c", "x = bytearray(50_000_000)"])
    assert 45 < rss < 500 and seconds > 0
