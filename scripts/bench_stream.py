"""Peak memory of `molvae sample -o FILE` (streamed in chunks) at two sizes, and of the in-memory path
(`MolVAE.sample` then one write) at the larger one.

    flock /tmp/molvae-bench.lock .venv/bin/python scripts/bench_stream.py [--sizes 2000 10000] [--chunk 1000]

(The defaults are small so that the run stays under 10 minutes on the shared 2-core machine: sampling
runs at about 80 molecules/s there under load.)

Each run is a fresh process (the CLI, one torch thread, the shipped default model, seed 0, .parquet
output); its peak resident set size is read from the kernel (getrusage of the finished child, the largest
single process: RDKit worker processes are counted separately and are smaller). Prints a table and writes
JSON (runs/bench_stream.json).
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

ROOT = Path(__file__).resolve().parents[1]
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
_IN_MEMORY = ("import sys, molvae; from molvae.data.write import write_molecules; "
              "write_molecules(molvae.load(device='cpu').sample(int(sys.argv[1]), seed=0), sys.argv[2])")


def peak_rss_mb(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of running `cmd` in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], check=True, capture_output=True, text=True,
                         env=env, cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000])
    ap.add_argument("--chunk", type=int, default=1_000)
    ap.add_argument("--json", default=str(ROOT / "runs" / "bench_stream.json"))
    args = ap.parse_args()
    molvae_cli = str(Path(sys.executable).parent / "molvae")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            out = Path(tmp) / f"s{n}.parquet"
            rss, sec = peak_rss_mb([molvae_cli, "sample", "--n", str(n), "--seed", "0", "-o", str(out),
                                    "--chunk-size", str(args.chunk), "--device", "cpu"])
            rows.append({"path": "streamed (molvae sample -o)", "n": n, "peak_rss_mb": rss, "seconds": sec})
            print(rows[-1], file=sys.stderr, flush=True)
        n = max(args.sizes)
        rss, sec = peak_rss_mb([sys.executable, "-c", _IN_MEMORY, str(n), str(Path(tmp) / "m.parquet")])
        rows.append({"path": "in memory (MolVAE.sample, then write)", "n": n, "peak_rss_mb": rss, "seconds": sec})
    for r in rows:
        print(f"{r['path']:<40} {r['n']:>9,d} molecules  peak RSS {r['peak_rss_mb']:>7.0f} MB  {r['seconds']:>6.0f} s")
    report = {"rows": rows, "chunk": args.chunk, "threads": 1,
              "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "command": "flock /tmp/molvae-bench.lock .venv/bin/python scripts/"
               "bench_stream.py " + " ".join(sys.argv[1:])}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
