"""Copy a trained checkpoint into molvae/pretrained/<name>/ as the shipped model.

Weights are stored in fp16 (the model computes in fp32/bf16; fp16 storage halves the size, and
loading casts back). The trainer state is not shipped: the model card says how to retrain.

    python scripts/ship_default.py runs/default      # -> molvae/pretrained/moses-<representation>

A maintenance tool, not a benchmark (those are `python -m molvae.bench.<name>`); `--into` ships elsewhere
(the tests: a temporary directory).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Sequence

from safetensors.torch import load_file

from molvae.generation import pretrained_dir
from molvae.model.checkpoint import WEIGHTS, read_config, save_half_weights

SHIPPED = ("config.json", "vocab.json", "history.csv", "train_hashes.npy")


def main(argv: Sequence[str] | None = None) -> Path:
    """Ship the checkpoint the command line `argv` names; returns the shipped model's directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--name", default=None, help="default: moses-<representation of the checkpoint>")
    parser.add_argument("--into", type=Path, default=None, help="default: molvae/pretrained/")
    args = parser.parse_args(argv)
    config = read_config(args.checkpoint)  # refuses anything that is not a molvae checkpoint
    name = args.name or f"moses-{config['representation']}"
    target = (args.into or pretrained_dir()) / name
    target.mkdir(parents=True, exist_ok=True)
    state = load_file(args.checkpoint / "model.safetensors")
    save_half_weights(target / WEIGHTS, state)
    for name in SHIPPED:
        if (args.checkpoint / name).is_file():
            shutil.copyfile(args.checkpoint / name, target / name)
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"shipped {args.checkpoint} -> {target} ({size / 1e6:.1f} MB)")
    return target


if __name__ == "__main__":
    main()
