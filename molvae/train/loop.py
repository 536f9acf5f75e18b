"""Training: `fit(TrainConfig) -> Path` of the checkpoint directory it wrote.

`_fit` is the whole run, top to bottom. Setup (molvae.train.setup): the checkpoint to resume,
the molecules (load, validate, tokenize, split, encode), the VAE and Adam, where the run
stands. Then per epoch: length-bucketed batches; per step, KL and lr schedules as functions
of the global step, forward under bf16 autocast where the hardware runs it natively,
backward, gradient clipping, Adam; then validation (molvae.train.epoch), history.csv and a
checkpoint (molvae.model.checkpoint) after every epoch, so an interrupted run can `--resume`.
The trainer state is also written when the run starts (step 0) and inside epochs every
`checkpoint_every` steps or minutes, with the position in the epoch and its loss sums so far.

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
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from molvae.data import batching
from molvae.errors import DataError, MolvaeError
from molvae.model import checkpoint as ckpt
from molvae.runtime import DistInfo, autocast, init_distributed, peak_rss_mib, resolve_amp, resolve_device
from molvae.train import budget
from molvae.train import state as trainer_state
from molvae.train.config import TrainConfig, checkpoint_interval, duration_seconds
from molvae.train.epoch import EpochLog, ProgressReporter, step_noise, validation_metrics
from molvae.train.schedules import PlateauState, kl_weight, lr_factor
from molvae.train.setup import (absolute_data, build_model, load_data, open_resume, open_warm_start,
                                prepare_out_dir, restore_run, set_threads)
from molvae.train.state import RunState

__all__ = ["fit", "forward_backward"]  # public through molvae.train

log = logging.getLogger("molvae.train")


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
    cfg, resume = open_resume(cfg)  # on resume: the checkpoint's settings, this run's environment
    cfg, warm = open_warm_start(cfg, resume)  # --init: the base model's tokenizer and weights
    set_threads(cfg, di)
    device = resolve_device(cfg.device, di.local_rank)
    amp_dtype = resolve_amp(cfg.amp, device)  # torch.bfloat16 for autocast, or None: fp32 throughout
    resolved = cfg.replace(device=str(device), amp="bf16" if amp_dtype else "off", data=absolute_data(cfg.data),
                           unlabelled=tuple(absolute_data(u) for u in cfg.unlabelled))
    out = Path(cfg.out)
    reporter = ProgressReporter(enabled=cfg.progress and di.is_main)

    data = load_data(cfg, resume, di, reporter, warm)
    model, optimizer, init_record = build_model(cfg, data, resume, device, warm)
    run, plateau, history = restore_run(cfg, resume, model, optimizer)
    steps_per_epoch = len(_global_batches(data.train, cfg, di, 0))
    if not run.total_steps:  # a fresh run (or one saved before this was recorded) fixes its schedule's length
        run.total_steps = _schedule_steps(cfg, model, optimizer, data.train, steps_per_epoch, di, device, amp_dtype)
        if cfg.max_steps or duration_seconds(cfg.time_budget):
            timed = duration_seconds(cfg.time_budget) / run.total_steps if not cfg.max_steps else 0.0
            reporter.note(f"schedule: {run.total_steps:,} steps of {cfg.batch_size} molecules "
                          f"({run.total_steps / steps_per_epoch:.2f} epochs"
                          + (f"; {timed:.3f} s a step as timed here)" if timed else ")"))
    n_epochs = budget.epochs_to_run(run.total_steps, steps_per_epoch)

    def save_state() -> None:
        trainer_state.save_trainer_state(out, model, optimizer, {**asdict(run), "plateau": plateau.to_dict()})

    if di.is_main:
        prepare_out_dir(out, resume, reporter)
        # A fresh run writes its initial weights and state, so the directory is a loadable and
        # resumable checkpoint from the start.
        ckpt.save_model(out, model, data.tokenizer, data.vocab, data.prop_stats, data.data_hash, resolved.to_dict(),
                        weights=resume is None, init=init_record, cond_stats=data.cond_stats)
        ckpt.save_train_hashes(out, data.train_smiles)
        if resume is None:
            save_state()
        elif run.step == 0:
            reporter.note(f"{resume.path}: the run had stopped before its first checkpoint; starting it again")
    checkpoint_due = _checkpoint_schedule(cfg.checkpoint_every)
    net = _data_parallel(model, device, di)
    tb = _tensorboard(out) if cfg.tensorboard and di.is_main else None

    beta = lr = float("nan")
    with reporter:
        for epoch in range(run.epoch, n_epochs):
            if run.stopped or _slice_done(cfg, run, di, reporter, out):
                break
            # ---------------------------------------------------------- train one epoch
            model.train()
            ep = EpochLog()
            if run.epoch_pos:  # resumed inside this epoch: its first batches and their losses are done
                ep.sums[:] = run.epoch_sums
            n_before = ep.n_mols
            batches = _global_batches(data.train, cfg, di, epoch)[run.epoch_pos:]
            batches = batches[: max(0, run.total_steps - run.step)]  # the last epoch ends with the schedule
            task = reporter.start_epoch(epoch + 1, n_epochs, len(batches))
            t0, cpu0 = time.perf_counter(), time.process_time()
            for gidx in batches:
                beta, lr = _beta_and_lr(cfg, run.step, steps_per_epoch, run.total_steps, plateau)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                local, eps, denom = _shard(gidx, cfg.seed, run.step, model.cfg.latent_dim, di, device)
                res, gnorm = forward_backward(net, optimizer, data.train, local, eps, denom, beta=beta,
                                              lambda_=cfg.prop_weight, prop_on_samples=cfg.prop_on_samples,
                                              free_bits=cfg.free_bits,
                                              grad_clip=cfg.grad_clip, device=device, amp_dtype=amp_dtype)
                totals = ep.add(res, denom, len(local), gnorm, di)
                if not math.isfinite(totals["loss"]) or not math.isfinite(totals["grad_norm"]):
                    raise MolvaeError(_diverged_message(totals, epoch, run, out))
                optimizer.step()
                run.step += 1
                run.epoch_pos += 1
                reporter.advance(task, ep, beta, lr)
                if di.is_main and checkpoint_due(run.step):
                    run.epoch_sums = ep.sums.tolist()
                    save_state()
            train_time = time.perf_counter() - t0

            # ------------------------------------------- validate, keep the best, checkpoint
            row: dict[str, Any] = {"epoch": epoch + 1, "step": run.step, "lr": lr, "beta": beta,
                                   **ep.summary("train"),
                                   "train_mol_per_s": (ep.n_mols - n_before) / train_time if train_time > 0
                                   else float("nan")}
            if data.val is not None:  # at beta_end, so that epochs compare while beta anneals
                row.update(validation_metrics(model, data.val, cfg.beta_end, cfg.prop_weight, data.prop_names,
                                              data.prop_stats, device, amp_dtype, cfg.batch_size, cfg.val_recon_n,
                                              cfg.seed))
            # CPU seconds of this process (all threads): the cost of the epoch on a shared machine
            row.update(epoch_time_s=time.perf_counter() - t0, epoch_cpu_s=time.process_time() - cpu0,
                       peak_rss_mib=peak_rss_mib())
            score = row["val_loss"] if data.val is not None else row["train_loss"]
            improved = run.end_epoch(score, ranked=data.val is not None, patience=cfg.patience)
            if cfg.lr_schedule == "plateau":
                plateau.update(score)
            history.append(row)
            if di.is_main:  # best weights (if improved), history, then the trainer state last
                if improved:
                    ckpt.save_model(out, model, data.tokenizer, data.vocab, data.prop_stats, data.data_hash,
                                    resolved.to_dict(), init=init_record, cond_stats=data.cond_stats)
                ckpt.save_history(out, pd.DataFrame(history))
                save_state()
                reporter.epoch_done(row, improved)
                _log_tensorboard(tb, row)
            _barrier(di)
            if run.stopped:
                reporter.note(f"early stopping: no improvement for {cfg.patience} epochs; best epoch {run.best_epoch}")
        if di.is_main and history:
            reporter.run_done(history, run.best_epoch)
    if tb is not None:
        tb.close()
    finished = run.stopped or (bool(history) and history[-1]["epoch"] == n_epochs)
    if di.is_main and finished and cfg.density_molecules > 0 and model.cfg.cond_encoder:
        # The density encodes training molecules through molvae.generation, which passes no c yet (issue 26).
        reporter.note("latent density skipped: the encoder reads c, and the density fit does not pass it yet")
    elif di.is_main and finished and cfg.density_molecules > 0:
        _fit_latent_density(out, data.train_smiles, data.data_hash, cfg, device, reporter)
    return out


def _fit_latent_density(out: Path, train_smiles: list[str], data_hash: str, cfg: TrainConfig, device: torch.device,
                        reporter: ProgressReporter) -> None:
    """Give the finished model (its best weights) its latent density, the default sampling prior: the
    posterior mixture of up to `cfg.density_molecules` training molecules (docs/latent_density.md)."""
    from molvae.generation.api import load
    from molvae.generation.density_fit import DensityConfig, fit_density

    t0 = time.perf_counter()
    vae = load(out, device=device, precision="fp32")
    config = DensityConfig(n_molecules=cfg.density_molecules, seed=cfg.seed)
    try:
        density = fit_density(vae.codec, train_smiles, config, data_hash=data_hash, progress=cfg.progress)
    except DataError as exc:  # too few molecules: the weights are written, the model samples N(0, I)
        log.warning("latent density skipped: %s; the model is saved and samples from the standard normal prior",
                    exc)
        return
    density.save(out)
    reporter.note(f"latent density: posterior mixture of {density.n_components:,} training molecules "
                  f"({time.perf_counter() - t0:.0f} s)")


# ------------------------------------------------------------------- per-step helpers
def _checkpoint_schedule(every: str) -> Callable[[int], bool]:
    """`due(step) -> bool` for mid-epoch checkpoints: every N steps, every N minutes (counted from
    the last one), or never. Only when the state is written depends on time, never what is computed."""
    kind, amount = checkpoint_interval(every)
    last = [time.monotonic()]

    def due(step: int) -> bool:
        if kind == "steps":
            return step % int(amount) == 0
        if kind == "seconds" and time.monotonic() - last[0] >= amount:
            last[0] = time.monotonic()
            return True
        return False

    return due


def _global_batches(train: batching.EncodedData, cfg: TrainConfig, di: DistInfo, epoch: int) -> list[np.ndarray]:
    """Epoch `epoch`'s global batches, a function of (seed, epoch); those too small to give every
    process a row are skipped."""
    return [b for b in batching.batches(train.lengths, cfg.batch_size, True, cfg.seed, epoch) if len(b) >= di.world]


def _beta_and_lr(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int,
                 plateau: PlateauState) -> tuple[float, float]:
    """The KL weight and learning rate of global step `step`: the schedules span `total_steps`."""
    warmup_steps = int(round(cfg.kl_warmup_epochs * steps_per_epoch))
    beta = kl_weight(step, cfg.kl_schedule, cfg.beta_start, cfg.beta_end, warmup_steps, total_steps, cfg.kl_cycles,
                     cfg.kl_cycle_ratio)
    lr = cfg.lr * lr_factor(step, cfg.lr_schedule, total_steps, cfg.lr_warmup_steps, cfg.lr_min_factor,
                            plateau.current)
    return beta, lr


def _schedule_steps(cfg: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    train: batching.EncodedData, steps_per_epoch: int, di: DistInfo, device: torch.device,
                    amp_dtype: torch.dtype | None) -> int:
    """The schedule's length (molvae.train.budget); a time budget is divided by the seconds a step takes
    here, timed on epoch 0's batches (under DDP the slowest process's time, so all agree)."""

    def step_seconds() -> float:
        def one(gidx: np.ndarray) -> None:
            local, eps, denom = _shard(gidx, cfg.seed, 0, model.cfg.latent_dim, di, device)
            forward_backward(model, optimizer, train, local, eps, denom, beta=cfg.beta_end, lambda_=cfg.prop_weight,
                             prop_on_samples=cfg.prop_on_samples, free_bits=cfg.free_bits, grad_clip=cfg.grad_clip,
                             device=device, amp_dtype=amp_dtype)

        model.train()
        seconds = budget.seconds_per_step(one, _global_batches(train, cfg, di, 0))
        optimizer.zero_grad(set_to_none=True)
        if di.world > 1:
            import torch.distributed as dist

            t = torch.tensor([seconds], dtype=torch.float64, device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            seconds = float(t.item())
        return seconds

    return budget.schedule_steps(cfg, steps_per_epoch, step_seconds)


def _shard(gidx: np.ndarray, seed: int, step: int, latent_dim: int, di: DistInfo,
           device: torch.device) -> tuple[np.ndarray, torch.Tensor, float]:
    """This process's rows of global batch `gidx`, their reparameterization noise and the loss
    denominator. The noise is drawn for the whole global batch and then sharded, so it does not
    depend on the number of processes; DDP averages gradients over processes, so each shard's
    sums are divided by global batch / world."""
    local = gidx[di.rank :: di.world]
    eps = step_noise(seed, step, len(gidx), latent_dim)[di.rank :: di.world].to(device)
    return local, eps, len(gidx) / di.world


def forward_backward(net: torch.nn.Module, optimizer: torch.optim.Optimizer, data: batching.EncodedData,
                     idx: np.ndarray, eps: torch.Tensor, denom: float, *, beta: float, lambda_: float,
                     free_bits: float, grad_clip: float, device: torch.device, prop_on_samples: float = 0.0,
                     amp_dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One batch of rows `idx` of `data`: forward (autocast), backward, gradient clipping.

    Returns the loss terms and the gradient norm before clipping; the caller checks them
    and then calls optimizer.step(). (molvae.bench.train_speed times exactly this.)
    """
    lengths = torch.from_numpy(data.lengths[idx].astype(np.int64))
    ids = torch.from_numpy(data.ids[idx, : int(lengths.max())].astype(np.int64)).to(device)
    props = torch.from_numpy(data.props[idx]).to(device) if data.props.shape[1] else None
    conds = torch.from_numpy(data.conds[idx]).to(device) if data.conds.shape[1] else None  # c of a conditional model
    with autocast(device, amp_dtype):
        res = net(ids, lengths.to(device), props, beta=beta, lambda_=lambda_, free_bits=free_bits, eps=eps,
                  denom=denom, prop_on_samples=prop_on_samples, c=conds)
    optimizer.zero_grad(set_to_none=True)
    res["loss"].backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)  # 0: clipping off
    return res, gnorm


# ------------------------------------------------------------------ per-epoch helpers
def _slice_done(cfg: TrainConfig, run: RunState, di: DistInfo, reporter: ProgressReporter, out: Path) -> bool:
    """Whether this invocation's slice (`stop_after` epochs in all) is done; says how to go on."""
    if not cfg.stop_after or run.epoch < cfg.stop_after:
        return False
    if di.is_main:
        reporter.note(f"stopping after epoch {run.epoch} of {cfg.epochs} (stop_after={cfg.stop_after}); "
                      f"continue with: molvae train --resume {out}")
    return True


def _diverged_message(totals: dict[str, float], epoch: int, run: RunState, out: Path) -> str:
    where = (f"the checkpoint of epoch {run.epoch} (best: epoch {run.best_epoch}) in {out} is kept"
             if run.epoch else "no epoch had finished, so no checkpoint was written")
    return (f"training diverged: the loss became {totals['loss']} (gradient norm {totals['grad_norm']}) at "
            f"epoch {epoch + 1}, step {run.step + 1}; {where}. Lower the learning rate (--lr) or the gradient "
            f"clipping threshold, or turn mixed precision off (amp='off'), and train again.")


def _data_parallel(model: torch.nn.Module, device: torch.device, di: DistInfo) -> torch.nn.Module:
    """`model` wrapped for DDP under torchrun (it averages gradients over processes), else itself."""
    if di.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _barrier(di: DistInfo) -> None:
    """Under DDP, no rank starts the next epoch before rank 0 has written this one's checkpoint."""
    if di.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed (pip install tensorboard); not logging to TensorBoard")
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _log_tensorboard(tb: Any, row: dict[str, Any]) -> None:
    if tb is None:
        return
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)):
            tb.add_scalar(key, value, row["epoch"])
    tb.flush()
