"""Benchmarks as code: one module per benchmark, named by what it measures, each run as

    python -m molvae.bench.<name> [options]      (--help lists them)

Each prints a table and writes JSON, and calls the library's public functions (`molvae.fit`, `molvae.load`,
the `MolVAE` methods, the decoding loops of `molvae.model.inference`, `molvae.evaluate`, `molvae.optimize`).
Each module's `main(argv) -> dict` is its entry point (the result it also writes as JSON); `BENCHMARKS`
maps the names to one line on what each measures. The protocol is in docs/benchmarks.md. Nothing is
imported here: a benchmark loads torch and RDKit only when it runs.
"""
from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS: dict[str, str] = {
    "train_speed": "training molecules/s against the MOSES VAE; equal-time reconstruction (--recon-minutes)",
    "moses_reference": "(library) the MOSES VAE from the molsets wheel: its training step and reconstruction",
}
