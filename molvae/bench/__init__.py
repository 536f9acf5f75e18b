"""Benchmarks as code: one module per benchmark, named by what it measures, each run as

    python -m molvae.bench.<name> [options]      (--help lists them)

Each prints a table and writes JSON, and calls the library's public functions (`molvae.fit`, `molvae.load`,
the `MolVAE` methods, the decoding loops of `molvae.model.inference`, `molvae.evaluate`, `molvae.optimize`).
A module's `main(argv) -> dict` is its entry point (it returns what it writes as JSON; `results_table` returns
its markdown). `BENCHMARKS` maps the names to what each measures; the protocol is in docs/benchmarks.md.
Nothing is imported here: a benchmark loads torch and RDKit only when it runs.
"""
from __future__ import annotations

__all__ = ["BENCHMARKS", "LIBRARY"]

BENCHMARKS: dict[str, str] = {
    "train_speed": "training molecules/s against the MOSES VAE; reconstruction after equal training time",
    "sampling_speed": "sampling molecules/s (RDKit validation included) against the MOSES VAE",
    "tokenizer_roundtrip": "SMILES and SELFIES tokenizers: round-trip rate, vocabulary, token lengths, speed",
    "metrics_cost": "the MOSES metric suite on a training sample: wall time, peak memory, expected values",
    "moses_agreement": "molvae.evaluate against MOSES's own get_all_metrics on a fixed sample",
    "reference_stats_check": "the shipped MOSES reference statistics against a fresh recomputation",
    "model_variants": "SELFIES vs SMILES and two model sizes at the same training budget (MOSES metrics)",
    "training_settings": "training settings (KL weight, free bits, decoder, schedules, batch) at a fixed budget",
    "learning_curve": "epochs and CPU-hours to the FCD goal, from a power law through evaluated checkpoints",
    "sampling_settings": "MOSES metrics across sampling temperatures and decoding methods",
    "density_priors": "latent densities as sampling priors: held-out log-likelihood and sample quality",
    "conditional_hit_rate": "sample(where=...): the steered sampler's hits per decode against rejection",
    "conditional_windows": "sample(where=...) in issue 26's three windows: hits per decode, distinct hits, goals",
    "analogs": "sample(near=...): analogs one logP unit higher of 30 MOSES molecules, share with 5 analogs",
    "anomaly_auroc": "MolVAE.score's anomaly: AUROC against out-of-domain sets, false flags at the threshold",
    "stream_memory": "peak memory of `molvae sample -o` streamed in chunks, at several sizes",
    "optimization_tasks": "latent optimization: top-3 QED / penalized logP and the similarity-constrained task",
    "optimization_table": "the README's optimization table: molvae.optimize's defaults, gradient vs random",
    "finetuning": "fine-tuning on an assay series against from scratch, with full and half labels",
    "results_table": "(report) the markdown results table of `molvae evaluate` JSON beside the published rows",
    "frontier": "a training cycle's short protocol: FCD-novelty curve, FCD at novelty .90, reconstruction",
    "serve_load": "molvae serve under load: C clients on /api/sample and /api/score, latency, errors, memory",
}

# Modules of the package that are not benchmarks themselves: what several benchmarks use.
LIBRARY: dict[str, str] = {
    "moses_reference": "the MOSES VAE from the molsets wheel: its sources, training step, sampling, reconstruction",
    "report": "torch threads held for a run, the JSON report written",
}
