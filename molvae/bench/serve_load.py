"""Load test of `molvae serve` on loopback: C clients for S seconds against /api/sample and /api/score.

    python -m molvae.bench.serve_load                          # 8 clients, 60 s, the shipped model
    python -m molvae.bench.serve_load --clients 2 --seconds 3  # a quick check
    python -m molvae.bench.serve_load --url http://127.0.0.1:8000 --pid 1234   # a server already running

Unless --url is given, the server is started as its own process (`python -m molvae.cli serve`) on a free
loopback port, so that its memory is the server's alone, and stopped afterwards. After a warm-up request
(whose molecules become the SMILES scored), every client alternates POST /api/sample {"n": --n} and POST
/api/score {"smiles": --n molecules} as fast as it is answered. Counted: requests, errors (any status but 200,
or no answer, with the first messages), requests/s, latency p50/p95/max per endpoint and in all, and the
server's resident memory sampled every second (first, last, peak: VmHWM) with its growth from the first
to the last quarter of the run, to show whether it is steady. Prints a table and writes JSON
(runs/bench_serve.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molvae.bench.report import write_json

__all__ = ["main", "run_load", "start_server", "memory_mb"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict[str, Any], timeout: float) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {"error": str(exc)}


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(resident, peak resident) MB of process `pid` from /proc, or None where it cannot be read."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def start_server(model: str | None, port: int, timeout: float = 300) -> subprocess.Popen:
    """`python -m molvae.cli serve` on 127.0.0.1:port, returned once /api/health answers."""
    cmd = [sys.executable, "-m", "molvae.cli", "serve", "--port", str(port)] + (["--model", model] if model else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s")


def _client(base: str, n: int, smiles: list[str], stop: float, offset: int, log: list[tuple[str, float, str]],
            timeout: float) -> None:
    i = offset
    while time.time() < stop:
        kind = ("sample", "score")[i % 2]
        picked = [smiles[(i + j) % len(smiles)] for j in range(n)]
        body = {"n": n, "seed": i} if kind == "sample" else {"smiles": picked}
        t0 = time.perf_counter()
        try:
            status, data = _post(f"{base}/api/{kind}", body, timeout)
            ok = status == 200 and len(data.get("rows", [])) > 0
            err = "" if ok else f"{status}: {str(data.get('error', data))[:200]}"
        except Exception as exc:  # no answer at all counts as an error
            err = f"{type(exc).__name__}: {exc}"[:200]
        log.append((kind, time.perf_counter() - t0, err))
        i += 1


def _latency(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p95_s": None, "max_s": None}
    arr = np.asarray(values)
    return {"p50_s": float(np.percentile(arr, 50)), "p95_s": float(np.percentile(arr, 95)), "max_s": float(arr.max())}


def run_load(base: str, clients: int, seconds: float, n: int, pid: int | None, timeout: float = 600) -> dict[str, Any]:
    """Run the clients against the server at `base`; returns the counts, latencies and memory."""
    status, warm = _post(f"{base}/api/sample", {"n": max(n, 32), "seed": 12345}, timeout)
    if status != 200:
        raise RuntimeError(f"the warm-up request failed ({status}): {warm}")
    smiles = [r["smiles"] for r in warm["rows"]]
    log: list[tuple[str, float, str]] = []
    memory: list[tuple[float, float, float]] = []
    t_start = time.time()
    stop = t_start + seconds
    threads = [threading.Thread(target=_client, args=(base, n, smiles, stop, k, log, timeout), daemon=True)
               for k in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if pid is not None and (mem := memory_mb(pid)) is not None:
            memory.append((time.time() - t_start, *mem))
        time.sleep(1.0)
    elapsed = time.time() - t_start
    errors = [e for _, _, e in log if e]
    out: dict[str, Any] = {
        "clients": clients, "seconds": round(elapsed, 2), "n_per_request": n, "requests": len(log),
        "errors": len(errors), "error_examples": sorted(set(errors))[:5],
        "requests_per_s": len(log) / elapsed if elapsed else 0.0, **_latency([d for _, d, _ in log]),
        "by_endpoint": {k: {"requests": sum(1 for kk, _, _ in log if kk == k),
                            **_latency([d for kk, d, _ in log if kk == k])} for k in ("sample", "score")},
    }
    if memory:
        q = max(len(memory) // 4, 1)
        first, last = np.mean([m[1] for m in memory[:q]]), np.mean([m[1] for m in memory[-q:]])
        out["memory"] = {"rss_first_mb": memory[0][1], "rss_last_mb": memory[-1][1],
                         "peak_mb": max(m[2] for m in memory), "growth_first_to_last_quarter_mb": float(last - first),
                         "samples": [[round(t, 1), round(r, 1)] for t, r, _ in memory]}
    return out


def _table(report: dict[str, Any]) -> str:
    lines = [f"{report['clients']} clients, {report['seconds']:.0f} s, {report['n_per_request']} molecules a request: "
             f"{report['requests']} requests ({report['requests_per_s']:.2f}/s), {report['errors']} errors",
             f"{'endpoint':<10} {'requests':>8} {'p50 s':>8} {'p95 s':>8} {'max s':>8}"]
    for name, row in [*report["by_endpoint"].items(), ("all", report)]:
        fmt = lambda v: f"{v:8.3f}" if v is not None else f"{'-':>8}"  # noqa: E731
        lines.append(f"{name:<10} {row['requests']:>8} {fmt(row['p50_s'])} {fmt(row['p95_s'])} {fmt(row['max_s'])}")
    if "memory" in report:
        m = report["memory"]
        lines.append(f"server memory: {m['rss_first_mb']:.0f} MB at the start, {m['rss_last_mb']:.0f} MB at the end, "
                     f"peak {m['peak_mb']:.0f} MB, {m['growth_first_to_last_quarter_mb']:+.1f} MB first to last quarter")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the load test as the command line `argv` says; print the table, write --json; returns the report."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.serve_load", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (threads)")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the clients send requests")
    ap.add_argument("--n", type=int, default=10, help="molecules per request (sampled or scored)")
    ap.add_argument("--model", default=None, help="model the started server loads (default: the shipped default)")
    ap.add_argument("--url", default=None, help="a server already running (then none is started)")
    ap.add_argument("--pid", type=int, default=None, help="with --url: the server's process id, to read its memory")
    ap.add_argument("--json", default="runs/bench_serve.json")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.n < 1:
        ap.error("--clients and --n must be positive, --seconds above 0")
    proc = None
    try:
        if args.url:
            base, pid = args.url.rstrip("/"), args.pid
        else:
            port = _free_port()
            proc = start_server(args.model, port)
            base, pid = f"http://127.0.0.1:{port}", proc.pid
        report = run_load(base, args.clients, args.seconds, args.n, pid)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    report.update(url=base, model=args.model or "default", cpu=platform.processor() or platform.machine(),
                  cores=os.cpu_count(), python=platform.python_version())
    print(_table(report))
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
