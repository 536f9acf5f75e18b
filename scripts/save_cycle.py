"""Keep a finished training cycle's end weights in the repository, so that the next cycle can start from them
on any machine (`scripts/train_cycle.sh N+1` looks for cycles/N).

    python scripts/save_cycle.py runs/cycle-N cycles/N

Writes cycles/N/: model.safetensors (the weights at the end of the schedule, float16: the model computes in
fp32/bf16 and loads them back as such), config.json, vocab.json, history.csv, and cycle.json (the run's
schedule length, steps, wall time and where the weights came from).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file

from molvae.model.checkpoint import WEIGHTS, read_config, read_history, save_half_weights


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    config = read_config(args.run)  # refuses anything that is not a molvae checkpoint
    state = json.loads((args.run / "trainer_state.json").read_text())
    if state["step"] < state.get("total_steps", 0):
        raise SystemExit(f"{args.run} stopped at step {state['step']} of {state['total_steps']}: resume it first")
    last = {k[len("model."):]: v for k, v in load_file(str(args.run / "trainer_state.safetensors")).items()
            if k.startswith("model.")}
    args.target.mkdir(parents=True, exist_ok=True)
    save_half_weights(args.target / WEIGHTS, last)
    for name in ("config.json", "vocab.json", "history.csv"):
        shutil.copyfile(args.run / name, args.target / name)
    history = read_history(args.run)
    record = {"run": str(args.run), "weights": "end of schedule (trainer state)", "step": state["step"],
              "total_steps": state.get("total_steps"), "epochs": int(history["epoch"].iloc[-1]),
              "best_epoch": state.get("best_epoch"), "init": config.get("init"),
              "train_seconds": float(history["epoch_time_s"].sum()), "train": config.get("train")}
    (args.target / "cycle.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"saved the end weights of {args.run} (step {state['step']}) -> {args.target}")
    return args.target


if __name__ == "__main__":
    main()
