"""Peak memory of `molvae sample --n N -o x.parquet` (streamed in chunks) at several N.

    flock /tmp/molvae-bench.lock taskset -c 1 .venv/bin/python -m molvae.bench.stream_memory            # 10,000 and 100,000
    flock /tmp/molvae-bench.lock taskset -c 1 .venv/bin/python -m molvae.bench.stream_memory --million  # also 1,000,000
    ... -m molvae.bench.stream_memory --sizes 10000 30000 --without-buckets                           # quick check

Each run is a fresh process: the CLI with its defaults (the shipped model, --chunk-size 10,000, .parquet
output), seed 0, one torch thread (OMP_NUM_THREADS=1). Its peak resident set size is read from the kernel
(getrusage of the finished children: the largest single process, which is the sampling process; the RDKit
worker processes it forks per chunk are counted separately and are no larger). `--without-buckets` also
runs each N with `molvae.model.inference.batch_bucket` replaced by the identity, i.e. the decoding batch
compacted to every size it passes through, as before batch buckets were introduced. `--in-memory` also
measures `MolVAE.sample(N)` followed by one write, at the largest N. Prints a table and writes JSON
(runs/bench_stream.json). The 2-core machine samples about 100 molecules/s on one shared core: 100,000
molecules take about 20 minutes, 1,000,000 more than two hours.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["peak_rss_mb", "main"]

_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
_UNBUCKETED_CLI = ("import sys; import molvae.model.inference as inference; inference.batch_bucket = lambda n: n; "
                   "from molvae.cli import main; sys.argv[0] = 'molvae'; sys.exit(main())")
_IN_MEMORY = ("import sys, molvae; from molvae.data.write import write_molecules; "
              "write_molecules(molvae.load(device='cpu').sample(int(sys.argv[1]), seed=0), sys.argv[2])")


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of running `cmd` in a fresh process with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, capture_output=True, text=True,
                         env=env)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure as the command line `argv` says; print the table, write --json; returns the report."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.stream_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="molecules per run")
    ap.add_argument("--million", action="store_true", help="also run 1,000,000 molecules (hours on this machine)")
    ap.add_argument("--without-buckets", action="store_true", help="also run each size without batch buckets")
    ap.add_argument("--in-memory", action="store_true", help="also run MolVAE.sample then one write at the largest size")
    ap.add_argument("--json", default="runs/bench_stream.json")
    args = ap.parse_args(argv)
    sizes = args.sizes + ([1_000_000] if args.million and 1_000_000 not in args.sizes else [])
    variants = [("streamed (molvae sample -o)", [str(Path(sys.executable).parent / "molvae")])]
    if args.without_buckets:
        variants.append(("streamed, no batch buckets", [sys.executable, "-c", _UNBUCKETED_CLI]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "x.parquet")
        for n in sizes:
            for path, cli in variants:
                rss, sec = peak_rss_mb([*cli, "sample", "--n", str(n), "--seed", "0", "-o", out, "--device", "cpu"])
                rows.append({"path": path, "n": n, "peak_rss_mb": round(rss, 1), "seconds": round(sec, 1)})
                print(rows[-1], file=sys.stderr, flush=True)
        if args.in_memory:
            n = max(sizes)
            rss, sec = peak_rss_mb([sys.executable, "-c", _IN_MEMORY, str(n), out])
            rows.append({"path": "in memory (MolVAE.sample, then write)", "n": n, "peak_rss_mb": round(rss, 1),
                         "seconds": round(sec, 1)})
    print(f"| path | molecules | peak RSS | time | molecules/s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['n']:,d} | {r['peak_rss_mb']:.0f} MB | {r['seconds']:.0f} s "
              f"| {r['n'] / r['seconds']:.0f} |")
    report = {"rows": rows, "chunk_size": 10_000, "threads": 1,
              "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "command": "flock /tmp/molvae-bench.lock taskset -c 1 .venv/bin/python -m molvae.bench.stream_memory "
                         + " ".join(sys.argv[1:] if argv is None else argv)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
