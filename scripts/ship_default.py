"""Copy a trained checkpoint into molvae/pretrained/<name>/ as the shipped model.

Weights are stored in fp16 (the model computes in fp32/bf16; fp16 storage halves the size, and
loading casts back). The trainer state is not shipped: the model card says how to retrain.

    python scripts/ship_default.py runs/default      # -> molvae/pretrained/moses-smiles
    python scripts/ship_default.py cycles/3 --temperature 1.15   # with its default sampling setting

The checkpoint's latent density (density.safetensors, density.json: fitted at the end of training) ships with
it. The applicability domain belongs to the old weights: it is removed, and the command that recalibrates it is
printed (`molvae domain --model NAME --data embedded`). A SELFIES checkpoint needs --name (moses-selfies is
retired: RETIRED_MODELS), so shipping one cannot bring that name back by accident.

--temperature / --top-p record the sampling setting the model's FCD-novelty frontier meets novelty .90 at
(config.json "sampling"; `MolVAE.sample` and `molvae sample` use it unless told otherwise).

A maintenance tool, not a benchmark (those are `python -m molvae.bench.<name>`); `--into` ships elsewhere
(the tests: a temporary directory).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Sequence

from safetensors.torch import load_file

from molvae.analysis.domain import DOMAIN_FILE, REFERENCE_FILE
from molvae.generation import pretrained_dir
from molvae.model.checkpoint import WEIGHTS, read_config, sampling_defaults, save_half_weights
from molvae.model.density import DENSITY_FILE, DENSITY_INFO_FILE

# Files of the checkpoint that ship; a shipped file of the old model that the checkpoint lacks is removed, so no
# density or domain of other weights is left beside the new ones.
SHIPPED = ("config.json", "vocab.json", "history.csv", "train_hashes.npy", DENSITY_FILE, DENSITY_INFO_FILE)
STALE = (DENSITY_FILE, DENSITY_INFO_FILE, DOMAIN_FILE, REFERENCE_FILE)


def main(argv: Sequence[str] | None = None) -> Path:
    """Ship the checkpoint the command line `argv` names; returns the shipped model's directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--name", default=None, help="default: moses-smiles (a SMILES checkpoint)")
    parser.add_argument("--into", type=Path, default=None, help="default: molvae/pretrained/")
    parser.add_argument("--temperature", type=float, default=None, help="the model's default sampling temperature")
    parser.add_argument("--top-p", type=float, default=None, help="the model's default nucleus (top-p) setting")
    args = parser.parse_args(argv)
    config = read_config(args.checkpoint)  # refuses anything that is not a molvae checkpoint
    if args.name is None and config["representation"] != "smiles":
        parser.error(f"{args.checkpoint} is a {config['representation']} checkpoint: give --name (the shipped "
                     "default is moses-smiles; moses-selfies is retired)")
    model_name = args.name or "moses-smiles"
    target = (args.into or pretrained_dir()) / model_name
    target.mkdir(parents=True, exist_ok=True)
    state = load_file(args.checkpoint / "model.safetensors")
    save_half_weights(target / WEIGHTS, state)
    for name in STALE:
        if (target / name).is_file() and not (args.checkpoint / name).is_file():
            (target / name).unlink()
    for name in SHIPPED:
        if (args.checkpoint / name).is_file():
            shutil.copyfile(args.checkpoint / name, target / name)
    sampling = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p)) if v is not None}
    if sampling:
        shipped = json.loads((target / "config.json").read_text())
        shipped["sampling"] = {**(shipped.get("sampling") or {}), **sampling}
        sampling_defaults(shipped)  # refuses values outside their ranges before anything is written
        (target / "config.json").write_text(json.dumps(shipped, indent=2) + "\n")
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"shipped {args.checkpoint} -> {target} ({size / 1e6:.1f} MB)")
    if not (target / DOMAIN_FILE).is_file():
        print(f"no applicability domain yet: molvae domain --model {target} --data embedded")
    return target


if __name__ == "__main__":
    main()
