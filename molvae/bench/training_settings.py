"""Sample efficiency of training settings (issue 15, item 3): which KL weight, free bits, decoder size, z
every step or not, learning-rate schedule and batch size give the best model for the same short budget.

Every variant trains `--epochs` (default 1) on the same seeded random subset of `--n-train` MOSES training
molecules (written once to a CSV in the work dir; `--n-val` of them held out for validation, the same ones
for every variant; properties logP, QED, SA), from the same seed. Variants are named presets: "base" and
one-factor-at-a-time changes of it (`--list` prints them). Each finished model gets its learned latent
density at the end of training (`molvae.fit`), and is then scored:

- `--n-samples` molecules (seed 0) drawn from each prior in `--priors` (default: the learned density, what
  `MolVAE.sample` uses): validity, uniqueness, novelty against the subset, FCD/Test (`--reference moses`:
  the whole MOSES test split; `embedded`: the shipped 2,000 test molecules, quicker and noisier; or a file);
- exact greedy reconstruction of the first `--recon-n` MOSES test molecules (canonical SMILES match);
- the last epoch's validation reconstruction and KL (nats per molecule, at the final beta), token-exact
  greedy reconstruction of the validation molecules, active units;
- training minutes (sum of the epochs' wall time) and molecules per second.

It is resumable: each variant's row goes into `--json` as soon as it is done and a rerun skips the variants
already there; a variant's run directory that holds a trainer state resumes where it stopped. Prints a
markdown table of every variant in the JSON. docs/training_study.md has the commands of the real run.

    flock /tmp/molvae-bench.lock .venv/bin/python -m molvae.bench.training_settings [--n-train 300000] [--epochs 1]
        [--variants base,beta0.5,...] [--n-samples 10000] [--reference moses] [--json runs/study_training.json]
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

# name -> (what changes against "base", TrainConfig overrides; "model" overrides merge into base's)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "base": ("baseline: SMILES, decoder 2x512 with z every step, beta 0.1 (linear warm-up over half an epoch), "
             "batch 512, lr 1e-3 cosine", {}),
    "beta0.5": ("KL weight 0.5 (the shipped default's)", {"beta_end": 0.5}),
    "beta0.2": ("KL weight 0.2 (the long run's)", {"beta_end": 0.2}),
    "beta0.1": ("KL weight 0.1", {"beta_end": 0.1}),
    "beta0.05": ("KL weight 0.05 (the MOSES VAE's cap)", {"beta_end": 0.05}),
    "beta0.01": ("KL weight 0.01", {"beta_end": 0.01}),
    "beta0.05-fb0.1": ("KL weight 0.05, free bits 0.1 nats/dim", {"beta_end": 0.05, "free_bits": 0.1}),
    "dec1x512": ("decoder 1 GRU layer of 512", {"model": {"dec_layers": 1}}),
    "dec3x512": ("decoder 3 GRU layers of 512 (the MOSES VAE's)", {"model": {"dec_layers": 3}}),
    "dec2x768": ("decoder 2 GRU layers of 768", {"model": {"dec_hidden": 768}}),
    "no-zstep": ("z only sets the decoder's initial state (not fed at every step)", {"model": {"z_every_step": False}}),
    "prop-samples": ("property head trained half on posterior means, half on sampled z (prop_on_samples 0.5)",
                     {"prop_on_samples": 0.5}),
    "lr-constant": ("constant learning rate 1e-3", {"lr_schedule": "constant"}),
    "batch256": ("batch 256 (twice the steps)", {"batch_size": 256}),
    "batch1024": ("batch 1024 (half the steps)", {"batch_size": 1024}),
}

# The baseline's training settings; `base_settings` adds the data, budget and environment.
BASE: dict[str, Any] = {
    "representation": "smiles", "properties": ("logp", "qed", "sa"), "max_len": 120, "batch_size": 512,
    "lr": 1e-3, "lr_schedule": "cosine", "lr_warmup_steps": 0, "lr_min_factor": 0.05, "kl_schedule": "linear",
    "beta_start": 0.0, "beta_end": 0.1, "kl_warmup_epochs": 0.5, "free_bits": 0.0, "prop_weight": 1.0,
    "patience": 0, "seed": 0, "model": {},
}

# Warm-start mode (`--init MODEL`): every variant continues the weights of MODEL with a fresh schedule, as the
# long run of the default does (configs/default_long.json): lr 5e-4 cosine after a short warm-up, the KL weight
# constant from the first step (the model already has its latent code). Only training settings can change then.
WARM: dict[str, Any] = {"lr": 5e-4, "lr_warmup_steps": 20, "kl_schedule": "constant", "beta_end": 0.2}

# Settings that must match for rows of one JSON to compare; a rerun with others is refused.
STUDY_SETTINGS = ("n_train", "n_val", "epochs", "data_seed", "n_samples", "priors", "recon_n", "reference",
                  "density_molecules", "init")

TABLE_COLUMNS = (
    ("variant", "variant", None), ("steps", "steps", "d"), ("Valid", "Valid", ".3f"),
    ("Unique", "Unique", ".3f"), ("Novelty", "Novelty", ".3f"), ("FCD/Test", "FCD/Test", ".3f"),
    ("recon", "recon (test, exact)", ".3f"), ("val_recon", "val recon (nats)", ".2f"),
    ("val_kl", "val KL (nats)", ".2f"), ("active_units", "active units", "d"), ("train_min", "train min", ".1f"),
    ("mol_per_s", "mol/s", ".0f"),
)


def parse_variants(text: str) -> list[str]:
    """The variant names of a comma-separated list, in order, without repeats.

    Raises ValueError naming the unknown ones and the valid names."""
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise ValueError(f"unknown variant(s) {unknown or [text]}; valid: {', '.join(VARIANTS)}")
    return names


def variant_settings(name: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """TrainConfig keyword arguments of variant `name`: `base` with its overrides (model overrides merged)."""
    overrides = VARIANTS[name][1]
    settings = {**base, **{k: v for k, v in overrides.items() if k != "model"}}
    if settings.get("kl_schedule") == "constant":
        settings["beta_start"] = settings["beta_end"]
    settings["model"] = {**base.get("model", {}), **overrides.get("model", {})}
    return settings


def check_settings(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The study settings on which `previous` (from the JSON) and `current` differ, as 'name: old -> new'."""
    return [f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in STUDY_SETTINGS
            if previous.get(k) != current.get(k)]


def markdown_table(rows: Sequence[Mapping[str, Any]], priors: Sequence[str] = ("density",)) -> str:
    """A markdown table of result rows: sample metrics of the first prior, FCD/Test of the others."""
    columns = list(TABLE_COLUMNS)
    for prior in priors[1:]:
        columns.insert(6, (f"FCD/Test {prior}", f"FCD/Test ({prior} prior)", ".3f"))
    lines = ["| " + " | ".join(c[1] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        flat = dict(row)
        first = row.get("samples", {}).get(priors[0], {})
        flat.update({k: first.get(k) for k in ("Valid", "Novelty", "FCD/Test")})
        flat["Unique"] = first.get("Unique@10k", first.get("Unique@1k"))
        for prior in priors[1:]:
            flat[f"FCD/Test {prior}"] = row.get("samples", {}).get(prior, {}).get("FCD/Test")
        cells = []
        for key, _, fmt in columns:
            value = flat.get(key)
            cells.append("-" if value is None else format(value, fmt) if fmt else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _finite(obj: Any) -> Any:
    """`obj` with NaN and infinities replaced by None (JSON has no NaN) and numpy scalars made plain."""
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _subset(work: Path, n_train: int, seed: int) -> Path:
    """The seeded random subset of MOSES train (column `smiles`), written once and shared by all variants."""
    import pandas as pd

    from molvae.data.datasets import dataset_path
    from molvae.files import atomic_write_text

    path = work / f"moses_train_{n_train}_seed{seed}.csv"
    if not path.exists():
        train = pd.read_csv(dataset_path("moses", "train"), usecols=["SMILES"])
        subset = train.sample(n_train, random_state=seed).rename(columns={"SMILES": "smiles"})
        atomic_write_text(path, subset.to_csv(index=False))
    return path


def _train(cfg: Any) -> float:
    """Train (or resume, or just finish) the run of `cfg`; returns the wall seconds of this call."""
    import molvae
    from molvae.model import checkpoint as ckpt
    from molvae.model.density import DENSITY_FILE

    out = Path(cfg.out)
    t0 = time.perf_counter()
    if (out / ckpt.STATE_JSON).exists():
        saved = ckpt.read_config(out).get("train") or {}
        keys = [k for k in BASE if k != "model"] + ["epochs", "val_fraction", "density_molecules", "init"]
        differ = [k for k in keys if _plain(saved.get(k)) != _plain(getattr(cfg, k))]
        differ += ["model"] * (dict(saved.get("model") or {}) != dict(cfg.model))
        differ += ["data"] * (Path(str(saved.get("data"))).resolve() != Path(cfg.data).resolve())
        if differ:
            raise SystemExit(f"{out} holds a run with other settings ({', '.join(differ)}); delete it or use "
                             "another --out-dir.")
        history = out / ckpt.HISTORY
        done = history.exists() and _last_epoch(history) == cfg.epochs
        if done and (cfg.density_molecules == 0 or (out / DENSITY_FILE).exists()):
            return 0.0  # finished, density fitted: only the evaluation was missing
        molvae.fit(cfg.replace(resume=cfg.out))  # continues the run, or fits the missing density
    else:
        molvae.fit(cfg)
    return time.perf_counter() - t0


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _last_epoch(history: Path) -> int:
    import pandas as pd

    df = pd.read_csv(history)
    return int(df["epoch"].iloc[-1]) if len(df) else 0


def _score(name: str, cfg: Any, fit_s: float, args: argparse.Namespace, train_smiles: list[str] | None,
           test: list[str]) -> dict[str, Any]:
    """The result row of a trained variant (see the module docstring)."""
    import pandas as pd
    import torch

    import molvae
    from molvae.evaluation.model_metrics import reconstruction_accuracy
    from molvae.model import checkpoint as ckpt
    from molvae.runtime import hardware_summary

    t0 = time.perf_counter()
    vae = molvae.load(cfg.out, device=args.device, n_jobs=args.n_jobs)
    torch.set_num_threads(args.threads)
    history = pd.read_csv(Path(cfg.out) / ckpt.HISTORY)
    last = history.loc[history["val_loss"].idxmin()]  # the epoch whose weights were saved (one epoch: the last)
    row: dict[str, Any] = {
        "variant": name, "change": VARIANTS[name][0], "overrides": VARIANTS[name][1],
        "params": sum(p.numel() for p in vae.model.parameters()), "steps": int(history["step"].iloc[-1]),
        "val_recon": float(last["val_recon"]), "val_kl": float(last["val_kl"]),
        "val_recon_acc": float(last["val_recon_acc"]), "active_units": int(last["active_units"]),
        "kl_active_units": int(last["kl_active_units"]),
        **{c: float(last[c]) for c in history.columns if c.startswith("val_mae_")},
        "train_min": float(history["epoch_time_s"].sum()) / 60.0,
        "mol_per_s": float(history["train_mol_per_s"].mean()), "fit_s_this_call": fit_s, "samples": {},
    }
    for prior in args.priors:
        df = vae.sample(args.n_samples, seed=0, prior=prior, properties=())
        res = molvae.evaluate(df["smiles"].tolist(), reference=args.reference, train=train_smiles,
                              n_jobs=args.n_jobs, ks=(1000, 10_000), device=str(vae.device))
        row["samples"][prior] = {**{k: v for k, v in res.items() if isinstance(v, (int, float))},
                                 "sample_s": df.attrs["seconds"]}
    recon = reconstruction_accuracy(vae, test[: args.recon_n])
    row.update(recon=recon["recon_acc"], recon_valid=recon["recon_valid"], eval_s=time.perf_counter() - t0,
               hardware=hardware_summary(vae.device), config=cfg.to_dict())
    return row


def _parse(argv: Sequence[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parsed and checked command line (argparse exits 2 with a message on a bad one)."""
    ap = argparse.ArgumentParser(prog="python -m molvae.bench.training_settings", description=__doc__.splitlines()[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all; --list)")
    ap.add_argument("--list", action="store_true", help="print the variants and exit")
    ap.add_argument("--n-train", type=int, default=300_000, help="MOSES training molecules (validation included)")
    ap.add_argument("--n-val", type=int, default=1000, help="of those, held out for validation")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the random subset")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n-samples", type=int, default=10_000, help="samples per prior (seed 0)")
    ap.add_argument("--priors", default="density", help="comma-separated: density, standard (N(0, I))")
    ap.add_argument("--reference", default="moses",
                    help="test set of FCD/Test: moses, embedded (2,000 MOSES test molecules) or a SMILES file")
    ap.add_argument("--recon-n", type=int, default=1000, help="first MOSES test molecules reconstructed")
    ap.add_argument("--density-molecules", type=int, default=20_000, help="training molecules in the latent density")
    ap.add_argument("--init", default=None,
                    help="warm-start every variant from this model (shipped name or checkpoint dir) with the long "
                         "run's schedule; novelty then counts against the whole MOSES train set, which the model saw")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto: trains, samples and runs ChemNet")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--n-jobs", type=int, default=2, help="processes for RDKit work")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars or step lines")
    ap.add_argument("--out-dir", default="runs/study_training", help="subset CSV and run dirs")
    ap.add_argument("--json", default="runs/study_training.json")
    args = ap.parse_args(argv)
    if args.list:
        return ap, args
    try:
        args.variants = parse_variants(args.variants)
    except ValueError as exc:
        ap.error(str(exc))
    args.priors = list(dict.fromkeys(p.strip() for p in args.priors.split(",") if p.strip()))
    if not args.priors or set(args.priors) - {"density", "standard"}:
        ap.error(f"--priors takes density and/or standard, got {args.priors}")
    for flag in ("n_train", "n_val", "epochs", "n_samples", "recon_n", "threads", "n_jobs"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.n_val >= args.n_train:
        ap.error(f"--n-val ({args.n_val}) must be smaller than --n-train ({args.n_train})")
    if args.reference not in ("moses", "embedded") and not Path(args.reference).is_file():
        ap.error(f"--reference must be moses, embedded or a SMILES file; {args.reference!r} is none of them")
    if args.init is not None and (bad := [n for n in args.variants if "model" in VARIANTS[n][1]]):
        ap.error(f"--init keeps the model's architecture; variant(s) {', '.join(bad)} change it")
    if args.density_molecules < 1:
        ap.error("--density-molecules must be >= 1: the study samples from the learned density")
    return ap, args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train and score the variants the command line `argv` names (resumable); print the table, write --json;
    returns the study record (settings, commands, rows by variant)."""
    ap, args = _parse(argv)
    if args.list:
        for name, (change, overrides) in VARIANTS.items():
            print(f"{name:16s} {change}  {json.dumps(overrides) if overrides else ''}")
        return {}
    names = args.variants

    import pandas as pd

    import molvae
    from molvae.data.datasets import dataset_path
    from molvae.files import atomic_write_text, json_text

    settings = {k: getattr(args, k) for k in STUDY_SETTINGS}
    json_path = Path(args.json)
    record: dict[str, Any] = {"settings": settings, "commands": [], "rows": {}}
    if json_path.exists():
        record = json.loads(json_path.read_text(encoding="utf-8"))
        if differ := check_settings(record["settings"], settings):
            ap.error(f"{json_path} holds a study with other settings ({'; '.join(differ)}); use another --json "
                     "or the same settings")
    record["commands"].append(" ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    work = Path(args.out_dir) / (f"n{args.n_train}-e{args.epochs}-seed{args.data_seed}"
                                 + (f"-init-{Path(args.init).name}" if args.init else ""))
    work.mkdir(parents=True, exist_ok=True)
    subset = _subset(work, args.n_train, args.data_seed)
    # Novelty against the subset; a warm-started model saw all of MOSES train (None: evaluate uses all of it).
    novelty_train = None if args.init else pd.read_csv(subset)["smiles"].tolist()
    test = pd.read_csv(dataset_path("moses", "test"), usecols=["SMILES"])["SMILES"].tolist()
    base = {**BASE, **(WARM if args.init else {}), "init": args.init, "data": str(subset), "epochs": args.epochs,
            "val_fraction": args.n_val / args.n_train,
            "val_recon_n": args.n_val, "density_molecules": args.density_molecules, "threads": args.threads,
            "n_jobs": args.n_jobs, "device": args.device, "progress": not args.no_progress, "checkpoint_every": "10m"}

    for name in names:
        if name in record["rows"]:
            print(f"{name}: already in {json_path}, skipped", flush=True)
            continue
        cfg = molvae.TrainConfig(**variant_settings(name, base), out=str(work / name))
        print(f"== {name}: {VARIANTS[name][0]}", flush=True)
        fit_s = _train(cfg)
        row = _finite(_score(name, cfg, fit_s, args, novelty_train, test))
        record["rows"][name] = row
        atomic_write_text(json_path, json_text(record))
        print(markdown_table([row], args.priors).splitlines()[-1], flush=True)

    order = [n for n in names if n in record["rows"]] + [n for n in record["rows"] if n not in names]
    done = [record["rows"][n] for n in order]
    print()
    print(f"{args.n_train:,} MOSES train molecules ({args.n_val:,} held out), {args.epochs} epoch(s), "
          + (f"warm-started from {args.init}, " if args.init else "")
          + f"{args.n_samples:,} samples from the {args.priors[0]} prior, FCD/Test against {args.reference}, "
          f"recon of the first {args.recon_n:,} MOSES test molecules")
    print(markdown_table(done, args.priors))
    print(f"wrote {json_path}")
    return record


if __name__ == "__main__":
    main()
