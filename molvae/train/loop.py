"""Training: `fit(TrainConfig) -> Path` of the checkpoint directory it wrote.

The loop, top to bottom: load and validate molecules (molvae.data), tokenize, build the
vocabulary, split train/validation, build the VAE, then per epoch: length-bucketed
batches, bf16 autocast where the hardware supports it, Adam with gradient clipping, KL and
lr schedules as functions of the global step, validation, history.csv, and a checkpoint
(molvae.model.checkpoint) after every epoch so an interrupted run can `--resume`.

Reproducibility: on CPU a run is a deterministic function of the config. Batches depend on
(seed, epoch) only; the reparameterization noise of global batch `step` is drawn from a
generator seeded with (seed, step), so it is the same whether the batch is processed in one
process or sharded, and whether the run was resumed or not. Dropout uses torch's global RNG,
whose state is saved with each checkpoint.

Data parallel (DDP): launch the same command under torchrun, e.g.

    torchrun --nproc_per_node 2 -m molvae.cli train --data embedded --out runs/ddp

Each process joins the job (gloo on CPU, nccl on CUDA; see molvae.runtime.init_distributed),
loads the same data, and takes a disjoint shard `global_batch[rank::world]` of every global
batch of `batch_size` molecules. Losses are normalised by the global batch size and DDP
averages gradients, so each update equals single-process training on the global batch
(within float error; exactly the same noise; dropout masks differ per process; free bits are
applied to each shard's KL estimate). Global batches smaller than the number of processes are
skipped. Rank 0 writes checkpoints and prints progress; every rank validates the full
validation set (no extra communication, identical results).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molvae.model import checkpoint as ckpt
from molvae.data import batching, validation
from molvae.train import state as trainer_state
from molvae.errors import CheckpointError, MolvaeError
from molvae.model.vae import VAE, ModelConfig
from molvae.runtime import DistInfo, autocast, init_distributed, peak_rss_mib, resolve_amp, resolve_device
from molvae.train.schedules import PlateauState, kl_weight, lr_factor
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.train.config import ENVIRONMENT_FIELDS, TrainConfig, train_config_from_cli
from molvae.train.epoch import EpochLog, ProgressReporter, evaluate, step_noise

__all__ = ["TrainConfig", "fit", "train_config_from_cli", "step_noise", "forward_backward"]

log = logging.getLogger("molvae.train")


def _resume_config(cfg: TrainConfig, saved: dict[str, Any] | None, path: Path) -> TrainConfig:
    """The config of the run being resumed, with only the environment fields taken from `cfg`."""
    if not saved:
        raise CheckpointError(f"{path} records no training configuration, so the run cannot be resumed.")
    merged = {k: v for k, v in saved.items()}
    ignored = [k for k, v in cfg.to_dict().items() if k not in ENVIRONMENT_FIELDS and merged.get(k) != v
               and v != getattr(TrainConfig(), k)]
    if ignored:
        log.warning("resuming %s: using the checkpoint's %s, not the new values", path, ", ".join(ignored))
    for k in ENVIRONMENT_FIELDS:
        merged[k] = getattr(cfg, k)
    return TrainConfig.from_dict(merged)


def fit(cfg: TrainConfig) -> Path:
    """Train a VAE as `cfg` says; returns the checkpoint directory (`cfg.out`).

    Raises:
        DataError: no usable molecules. UsageError: inconsistent settings.
        CheckpointError: `cfg.resume` is not a resumable checkpoint, or its data changed.
        MolvaeError: the loss became NaN/inf (the last good epoch's checkpoint is kept).
    """
    dist_info = init_distributed(cfg.device)
    threads = torch.get_num_threads()
    try:
        return _fit(cfg, dist_info)
    finally:
        torch.set_num_threads(threads)  # `cfg.threads` is for training only, not for what the caller does next
        if dist_info.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _fit(cfg: TrainConfig, di: DistInfo) -> Path:
    resume = Path(cfg.resume) if cfg.resume else None
    saved_config = ckpt.read_config(resume) if resume else None
    if resume is not None:
        if not (resume / ckpt.STATE_TENSORS).is_file():
            raise CheckpointError(f"{resume} is a model checkpoint without trainer state; it cannot be resumed.")
        cfg = _resume_config(cfg, saved_config.get("train"), resume)
    out = Path(cfg.out)
    threads = cfg.threads
    if threads == 0 and di.world > 1 and not str(cfg.device).startswith("cuda"):
        threads = max(1, (torch.get_num_threads() * 1) // di.world)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(cfg.device, di.local_rank)
    amp_dtype = resolve_amp(cfg.amp, device)
    data_source = cfg.data
    if data_source not in ("embedded", "moses") and Path(data_source).exists():
        data_source = str(Path(data_source).resolve())  # so --resume works from any directory
    resolved = cfg.replace(device=str(device), amp="bf16" if amp_dtype else "off", data=data_source)

    # ---------------------------------------------------------------- data
    if resume is not None:
        tokenizer = Tokenizer.from_dict(saved_config["tokenizer"])
        vocab = Vocabulary.from_json((resume / ckpt.VOCAB).read_text(encoding="utf-8"))
    else:
        tokenizer, vocab = Tokenizer(cfg.representation, cfg.selfies_constraints), None
    df, report = validation.load_molecules(cfg.data, smiles_col=cfg.smiles_col, properties=cfg.properties,
                                      tokenizer=tokenizer, vocab=vocab, max_len=cfg.max_len,
                                      rejected_path="auto" if di.is_main else None, n_jobs=cfg.n_jobs)
    reporter = ProgressReporter(enabled=cfg.progress and di.is_main)
    if di.is_main:
        reporter.note(report.summary())
    if vocab is None:
        vocab = Vocabulary.build(df["tokens"])
    prop_names = tuple(c for c in df.columns if c not in ("row", "smiles", "tokens"))
    train_idx, val_idx = batching.split_indices(len(df), cfg.val_fraction, cfg.seed)
    train_smiles = df["smiles"].iloc[train_idx].tolist()
    data_hash = batching.data_hash(train_smiles)
    if resume is not None:
        prop_stats = {p["name"]: (p["mean"], p["std"]) for p in saved_config.get("properties") or []}
        if saved_config.get("data_hash") != data_hash:
            raise CheckpointError(f"the training data differ from those of the run in {resume} (data hash "
                                  f"{data_hash[:12]} vs {str(saved_config.get('data_hash'))[:12]}); cannot resume.")
    else:
        train_df = df.iloc[train_idx]
        prop_stats = {}
        for name in prop_names:
            std = float(train_df[name].std(ddof=0))
            prop_stats[name] = (float(train_df[name].mean()), std if std > 1e-8 else 1.0)
    enc = batching.encode(df, vocab=vocab, prop_names=prop_names, prop_stats=prop_stats)
    train, val = enc.subset(train_idx), (enc.subset(val_idx) if len(val_idx) else None)

    # --------------------------------------------------------------- model
    torch.manual_seed(cfg.seed)
    if resume is not None:
        mcfg = ModelConfig.from_dict(saved_config["model"])
    else:
        mcfg = ModelConfig(vocab_size=len(vocab), n_props=len(prop_names), pad_id=vocab.pad_id,
                           bos_id=vocab.bos_id, eos_id=vocab.eos_id, max_len=cfg.max_len + 2, **cfg.model)
    model = VAE(mcfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def global_batches(epoch: int) -> list[np.ndarray]:
        return [b for b in batching.batches(train.lengths, cfg.batch_size, True, cfg.seed, epoch) if len(b) >= di.world]

    steps_per_epoch = len(global_batches(0))
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.kl_warmup_epochs * steps_per_epoch))
    plateau = PlateauState(patience=cfg.lr_patience, min_factor=cfg.lr_min_factor)
    state = {"epoch": 0, "step": 0, "best_val": None, "best_epoch": 0, "bad_epochs": 0, "stopped": False}
    history: list[dict[str, Any]] = []
    if resume is not None:
        loaded = trainer_state.load_trainer_state(resume, model, optimizer)
        state.update({k: loaded[k] for k in state})
        plateau = PlateauState.from_dict(loaded["plateau"])
        old = ckpt.read_history(resume)
        if old is not None and len(old):
            history = old[old["epoch"] <= state["epoch"]].to_dict("records")
        if state["stopped"] or state["epoch"] >= cfg.epochs:
            log.info("%s: the run already finished (epoch %d)", resume, state["epoch"])
    if di.is_main:
        if resume is not None and out.resolve() != resume.resolve():
            ckpt.copy_checkpoint(resume, out)  # continue in a new directory: start from a copy
        elif resume is None:
            stale = ckpt.remove_training_files(out)  # a previous run's state must not be resumed into this one
            if stale:
                reporter.note(f"{out}: replacing the previous run's {', '.join(stale)}")
        # Fresh run: initial weights, so the directory is a loadable checkpoint from the start.
        ckpt.save_model(out, model, tokenizer, vocab, prop_stats, data_hash, resolved.to_dict(),
                        weights=resume is None)
        ckpt.save_train_hashes(out, train_smiles)
    net: torch.nn.Module = model
    if di.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    tb = _tensorboard(out) if cfg.tensorboard and di.is_main else None

    # ---------------------------------------------------------------- loop
    beta = lr = float("nan")
    with reporter:
        for epoch in range(state["epoch"], cfg.epochs):
            if state["stopped"]:
                break
            if cfg.stop_after and state["epoch"] >= cfg.stop_after:
                if di.is_main:
                    reporter.note(f"stopping after epoch {state['epoch']} of {cfg.epochs} (stop_after="
                                  f"{cfg.stop_after}); continue with: molvae train --resume {out}")
                break
            model.train()
            ep = EpochLog()
            batches_e = global_batches(epoch)
            task = reporter.start_epoch(epoch + 1, cfg.epochs, len(batches_e))
            t0 = time.perf_counter()
            for gidx in batches_e:
                step = state["step"]
                beta = kl_weight(step, cfg.kl_schedule, cfg.beta_start, cfg.beta_end, warmup_steps, total_steps,
                                 cfg.kl_cycles, cfg.kl_cycle_ratio)
                lr = cfg.lr * lr_factor(step, cfg.lr_schedule, total_steps, cfg.lr_warmup_steps, cfg.lr_min_factor,
                                        plateau.current)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                local = gidx[di.rank :: di.world]
                eps = step_noise(cfg.seed, step, len(gidx), mcfg.latent_dim)[di.rank :: di.world].to(device)
                denom = len(gidx) / di.world  # DDP averages over processes: sum over shards / global batch
                res, gnorm = forward_backward(net, optimizer, train, local, eps, denom, beta=beta,
                                              lambda_=cfg.prop_weight, free_bits=cfg.free_bits,
                                              grad_clip=cfg.grad_clip, device=device, amp_dtype=amp_dtype)
                totals = ep.add(res, denom, len(local), gnorm, di)
                if not math.isfinite(totals["loss"]) or not math.isfinite(totals["grad_norm"]):
                    raise MolvaeError(_diverged_message(totals, epoch, step, state, out))
                optimizer.step()
                state["step"] = step + 1
                reporter.advance(task, ep, beta, lr)
            train_time = time.perf_counter() - t0

            row: dict[str, Any] = {"epoch": epoch + 1, "step": state["step"], "lr": lr, "beta": beta,
                                   **ep.summary("train")}
            row["train_mol_per_s"] = ep.n_mols / train_time if train_time > 0 else float("nan")
            if val is not None:
                metrics = evaluate(model, val, cfg.beta_end, cfg.prop_weight, prop_names, prop_stats, device,
                                   amp_dtype, cfg.batch_size, cfg.val_recon_n, cfg.seed)
                row.update(metrics)
                score = metrics["val_loss"]
            else:
                score = row["train_loss"]
            row["epoch_time_s"] = time.perf_counter() - t0
            row["peak_rss_mib"] = peak_rss_mib()
            # Without a validation set the train loss (taken at an annealed beta) cannot rank
            # epochs, so the last epoch is kept.
            improved = val is None or state["best_val"] is None or score < state["best_val"]
            if improved:
                state.update(best_val=score, best_epoch=epoch + 1, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            if cfg.lr_schedule == "plateau":
                plateau.update(score)
            state["epoch"] = epoch + 1
            if cfg.patience and val is not None and state["bad_epochs"] >= cfg.patience:
                state["stopped"] = True
            history.append(row)
            if di.is_main:
                _write_epoch(out, model, optimizer, history, state, plateau, improved, tokenizer, vocab,
                             prop_stats, data_hash, resolved)
                reporter.epoch_done(row, improved)
                if tb is not None:
                    for key, value in row.items():
                        if key != "epoch" and isinstance(value, (int, float)):
                            tb.add_scalar(key, value, epoch + 1)
                    tb.flush()
            if di.world > 1:
                import torch.distributed as dist

                dist.barrier()
            if state["stopped"]:
                reporter.note(f"early stopping: no improvement for {cfg.patience} epochs; best epoch "
                              f"{state['best_epoch']}")
    if tb is not None:
        tb.close()
    return out


def forward_backward(net: torch.nn.Module, optimizer: torch.optim.Optimizer, data: batching.EncodedData,
                     idx: np.ndarray, eps: torch.Tensor, denom: float, *, beta: float, lambda_: float,
                     free_bits: float, grad_clip: float, device: torch.device,
                     amp_dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One batch of rows `idx` of `data`: forward (autocast), backward, gradient clipping.

    Returns the loss terms and the gradient norm before clipping; the caller checks them
    and then calls optimizer.step(). (scripts/bench_train.py times exactly this.)
    """
    lengths = torch.from_numpy(data.lengths[idx].astype(np.int64))
    ids = torch.from_numpy(data.ids[idx, : int(lengths.max())].astype(np.int64)).to(device)
    props = torch.from_numpy(data.props[idx]).to(device) if data.props.shape[1] else None
    with autocast(device, amp_dtype):
        res = net(ids, lengths.to(device), props, beta=beta, lambda_=lambda_, free_bits=free_bits, eps=eps,
                  denom=denom)
    optimizer.zero_grad(set_to_none=True)
    res["loss"].backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    return res, gnorm


def _write_epoch(out: Path, model: VAE, optimizer: torch.optim.Optimizer, history: list[dict[str, Any]],
                 state: dict[str, Any], plateau: PlateauState, improved: bool, tokenizer: Tokenizer,
                 vocab: Vocabulary, prop_stats: dict[str, tuple[float, float]], data_hash: str,
                 resolved: TrainConfig) -> None:
    """Checkpoint after an epoch: best weights (if improved), history, then trainer state last."""
    import pandas as pd

    if improved:
        ckpt.save_model(out, model, tokenizer, vocab, prop_stats, data_hash, resolved.to_dict())
    ckpt.save_history(out, pd.DataFrame(history))
    trainer_state.save_trainer_state(out, model, optimizer, {**state, "plateau": plateau.to_dict()})


def _diverged_message(totals: dict[str, float], epoch: int, step: int, state: dict[str, Any], out: Path) -> str:
    where = (f"the checkpoint of epoch {state['epoch']} (best: epoch {state['best_epoch']}) in {out} is kept"
             if state["epoch"] else "no epoch had finished, so no checkpoint was written")
    return (f"training diverged: the loss became {totals['loss']} (gradient norm {totals['grad_norm']}) at "
            f"epoch {epoch + 1}, step {step + 1}; {where}. Lower the learning rate (--lr) or the gradient "
            f"clipping threshold, or turn mixed precision off (amp='off'), and train again.")


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed (pip install tensorboard); not logging to TensorBoard")
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))
