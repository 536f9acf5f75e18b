"""`molvae.bench.serve_load`, the load test of `molvae serve`, run briefly: 2 clients for 3 seconds against a
server it starts itself; every request answered, the counts, latencies and the server's memory reported."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install -e '.[web]')")

from molvae.bench import serve_load  # noqa: E402


def test_short_load_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the server process it starts
    out = tmp_path / "serve.json"
    report = serve_load.main(["--clients", "2", "--seconds", "3", "--n", "3", "--json", str(out)])
    assert report["requests"] >= 2 and report["errors"] == 0, report["error_examples"]
    assert report["by_endpoint"]["sample"]["requests"] >= 1 and report["by_endpoint"]["score"]["requests"] >= 1
    assert 0 < report["p50_s"] <= report["p95_s"] <= report["max_s"]
    assert report["memory"]["peak_mb"] >= report["memory"]["rss_first_mb"] > 50
    assert json.loads(out.read_text())["requests"] == report["requests"]
    assert "2 clients" in capsys.readouterr().out


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        serve_load.main(["--help"])
    assert exc.value.code == 0 and "python -m molvae.bench.serve_load" in capsys.readouterr().out
