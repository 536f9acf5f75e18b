#!/usr/bin/env python
"""Execute the example notebooks at full settings and store them with their outputs, in place.

    python scripts/run_notebooks.py [NAME ...] [--dpi 90] [--timeout 1800]

Each notebook runs top to bottom in a fresh kernel on this interpreter (a kernelspec written to a
temporary JUPYTER_PATH directory, which takes precedence over the user's), in a temporary working
directory, with MOLVAE_NOTEBOOK_FAST unset (the full settings of the notebook's parameter cell).
Figures are embedded as PNG at --dpi; cell timing metadata is not recorded, so a re-run changes only
the outputs. A cell that raises stops the run and leaves the stored notebook as it was. The time each
notebook took is printed and stored in its metadata (`molvae.seconds`).

The test suite (tests/test_notebooks.py) runs the same notebooks with MOLVAE_NOTEBOOK_FAST=1 and never
writes them; it checks that the stored copies were executed by this script.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def kernel_environment(root: Path, dpi: int) -> dict[str, str]:
    """Environment for the kernel: a `python3` kernelspec running this interpreter and an IPython
    profile that embeds figures at `dpi`, both under `root`."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": False},
    }))
    profile = root / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        f"c.InlineBackend.print_figure_kwargs = {{'bbox_inches': 'tight', 'dpi': {int(dpi)}}}\n")
    env = {"JUPYTER_PATH": str(root / "jupyter"), "IPYTHONDIR": str(root / "ipython"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    return env


def run(path: Path, timeout: int, scratch: Path) -> float:
    """Execute `path` in place; returns the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    work = scratch / f"work_{path.stem}"
    work.mkdir()
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout, startup_timeout=120,
                                     allow_errors=False, record_timing=False,
                                     resources={"metadata": {"path": str(work)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["molvae"] = {"executed_by": "scripts/run_notebooks.py", "fast": False, "seconds": round(seconds, 1),
                             "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    nbformat.validate(nb)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks to run (file names in notebooks/; default: all)")
    ap.add_argument("--dpi", type=int, default=90, help="resolution of the embedded figures")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = ap.parse_args(argv)

    paths = [NOTEBOOKS / n for n in args.names] if args.names else sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)}")
    os.environ.pop("MOLVAE_NOTEBOOK_FAST", None)
    with tempfile.TemporaryDirectory(prefix="molvae_notebooks_") as tmp:
        os.environ.update(kernel_environment(Path(tmp), args.dpi))
        for path in paths:  # one at a time: each trains or samples on the CPU
            print(f"{path.name}: running ...", flush=True)
            try:
                seconds = run(path, args.timeout, Path(tmp))
            except nbclient.exceptions.CellExecutionError as exc:
                print(f"{path.name}: a cell raised; the stored notebook is unchanged\n{exc}", file=sys.stderr)
                return 1
            size = path.stat().st_size / 1024
            print(f"{path.name}: {seconds:.0f} s ({seconds / 60:.1f} min), {size:.0f} KiB written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
