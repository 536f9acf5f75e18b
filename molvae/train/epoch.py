"""Per-epoch bookkeeping for training: loss accumulation, validation metrics, progress display."""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from molvae.data import batching
from molvae.evaluation.model_metrics import mae_r2
from molvae.model.vae import VAE
from molvae.runtime import DistInfo, autocast
from molvae.train.schedules import active_units

__all__ = ["EpochLog", "validation_metrics", "token_reconstruction_rate", "ProgressReporter", "run_summary",
           "step_noise"]

log = logging.getLogger("molvae.train")

_KEYS = ("loss", "recon", "kl", "prop")


def step_noise(seed: int, step: int, n: int, dim: int) -> torch.Tensor:
    """Reparameterization noise (n, dim) for global batch `step`: a function of (seed, step) only."""
    g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0] >> 1))
    return torch.randn(n, dim, generator=g)


class EpochLog:
    """Sums of the loss terms over an epoch (over all processes under DDP)."""

    def __init__(self) -> None:
        self.sums = np.zeros(len(_KEYS) + 3)  # loss terms, n_tokens, n_correct, n_mols
        self.last = float("nan")

    def add(self, res: dict[str, torch.Tensor], denom: float, n_local: int, grad_norm: torch.Tensor,
            di: DistInfo) -> dict[str, float]:
        """Add one batch (terms are sums / denom); returns the global batch's mean loss and grad norm."""
        t = torch.stack([res[k].detach().float() * denom for k in _KEYS]
                        + [res["n_tokens"].float(), res["n_correct"].float(),
                           torch.tensor(float(n_local), device=res["loss"].device)])
        if di.world > 1:
            import torch.distributed as dist

            dist.all_reduce(t)
        v = t.double().cpu().numpy()
        self.sums += v
        self.last = v[0] / max(v[-1], 1.0)
        return {"loss": self.last, "grad_norm": float(grad_norm)}

    @property
    def n_mols(self) -> int:
        return int(self.sums[-1])

    def mean(self, key: str) -> float:
        return float(self.sums[_KEYS.index(key)] / max(self.sums[-1], 1.0))

    def summary(self, prefix: str) -> dict[str, float]:
        out = {f"{prefix}_{k}": self.mean(k) for k in _KEYS}
        out[f"{prefix}_token_acc"] = float(self.sums[-2] / max(self.sums[-3], 1.0))
        return out


def _to_device(enc: batching.EncodedData, idx: np.ndarray,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """ids (B, T), lengths (B,), props (B, P) and c (B, C) (None for an unconditional data set) of rows `idx`."""
    lengths = torch.from_numpy(enc.lengths[idx].astype(np.int64))
    ids = torch.from_numpy(enc.ids[idx, : int(lengths.max())].astype(np.int64))
    conds = torch.from_numpy(enc.conds[idx]).to(device) if enc.conds.shape[1] else None
    return ids.to(device), lengths.to(device), torch.from_numpy(enc.props[idx]).to(device), conds


@torch.no_grad()
def token_reconstruction_rate(model: VAE, enc: batching.EncodedData, device: torch.device,
                              amp_dtype: torch.dtype | None = None, batch_size: int = 512) -> float:
    """Fraction of molecules whose greedy decoding from the posterior mean reproduces every
    token up to and including EOS (exact token match; no chemistry involved, unlike
    `molvae.evaluation.model_metrics.reconstruction_accuracy`, which compares canonical SMILES)."""
    if len(enc) == 0:
        return float("nan")
    model.eval()
    hits = 0
    for idx in batching.batches(enc.lengths, batch_size, shuffle=False):
        ids, lengths, _, conds = _to_device(enc, idx, device)
        with autocast(device, amp_dtype):
            mu, _ = model.encode(ids, lengths, conds)
            # ids.size(1) - 1 steps suffice: a longer output has no EOS where the target has one.
            pred = model.greedy_decode(mu, max_len=ids.size(1), c=conds)
        target = ids[:, 1:]
        if pred.size(1) < target.size(1):
            pred = torch.nn.functional.pad(pred, (0, target.size(1) - pred.size(1)), value=model.cfg.pad_id)
        hits += int((pred[:, : target.size(1)] == target).all(1).sum())
    return hits / len(enc)


@torch.no_grad()
def validation_metrics(model: VAE, val: batching.EncodedData, beta: float, prop_weight: float,
                       prop_names: tuple[str, ...], prop_stats: dict[str, tuple[float, float]], device: torch.device,
                       amp_dtype: torch.dtype | None, batch_size: int, recon_n: int, seed: int) -> dict[str, float]:
    """Validation metrics: loss terms at `beta` (fixed noise, so epochs compare), teacher-forced
    token accuracy, greedy reconstruction accuracy of the first `recon_n` molecules, per property
    `val_mae_<name>` (original units) and `val_r2_<name>` over the molecules labelled for it, active
    units (Burda: Var_x[mu_u] > 0.01) and dims with KL > 0.01 nats."""
    model.eval()
    sums = np.zeros(len(_KEYS) + 2)
    kl_dims = torch.zeros(model.cfg.latent_dim, dtype=torch.float64)
    mus, preds, targets = [], [], []
    for bi, idx in enumerate(batching.batches(val.lengths, batch_size, shuffle=False)):
        ids, lengths, props, conds = _to_device(val, idx, device)
        eps = step_noise(seed + 1_000_003, bi, len(idx), model.cfg.latent_dim).to(device)
        with autocast(device, amp_dtype):
            res = model(ids, lengths, props if prop_names else None, beta=beta, lambda_=prop_weight, eps=eps,
                        denom=1.0, c=conds)
            pred = model.predict_props(res["mu"]).float() if prop_names else None
        sums += np.array([float(res[k]) for k in _KEYS] + [float(res["n_tokens"]), float(res["n_correct"])])
        kl_dims += res["kl_per_dim"].double().cpu()
        mus.append(res["mu"].float().cpu().numpy())
        if pred is not None:
            preds.append(pred.cpu().numpy())
            targets.append(props.float().cpu().numpy())
    n = len(val)
    out = {f"val_{k}": float(sums[i] / n) for i, k in enumerate(_KEYS)}
    out["val_token_acc"] = float(sums[-1] / max(sums[-2], 1.0))
    out["val_recon_acc"] = (token_reconstruction_rate(model, val.subset(np.arange(min(recon_n, n))), device,
                                                      amp_dtype, batch_size) if recon_n > 0 else float("nan"))
    if preds:
        pred_all, target_all = np.concatenate(preds), np.concatenate(targets)
        for j, name in enumerate(prop_names):
            mae, r2, _ = mae_r2(pred_all[:, j], target_all[:, j])
            out[f"val_mae_{name}"] = mae * prop_stats[name][1]
            out[f"val_r2_{name}"] = r2
    out["active_units"] = active_units(np.concatenate(mus))
    out["kl_active_units"] = int(((kl_dims / n) > 0.01).sum())
    return out


class ProgressReporter:
    """A rich progress bar with the running loss, and one summary line per epoch (rank 0 only).

    When stderr is not a terminal (nohup, a batch job, a log file) rich draws no bar, so a plain line
    with the step, loss and estimated time left is printed every `interval_s` seconds instead.
    """

    def __init__(self, enabled: bool = True, interval_s: float = 60.0):
        self.enabled = enabled
        self.progress: Any = None
        self.console: Any = None
        self.interval_s = interval_s
        self._plain: dict[str, Any] = {}
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True)

    def __enter__(self) -> "ProgressReporter":
        if self.enabled:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
                                     transient=False)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
            self.progress = None

    def start_epoch(self, epoch: int, epochs: int, n_batches: int) -> Any:
        if self.progress is None:
            return None
        if not self.console.is_terminal:
            now = time.monotonic()
            self._plain = {"epoch": f"{epoch}/{epochs}", "total": n_batches, "done": 0, "t0": now, "last": now}
        return self.progress.add_task("train", total=n_batches, epoch=f"{epoch}/{epochs}", stats="")

    def advance(self, task: Any, ep: EpochLog, beta: float, lr: float) -> None:
        if self.progress is not None and task is not None:
            self.progress.update(task, advance=1, stats=f"loss {ep.last:.3f} (epoch {ep.mean('loss'):.3f}) "
                                                        f"beta {beta:.3g} lr {lr:.2e}")
            if self._plain:
                self._plain_line(ep, beta, lr)

    def _plain_line(self, ep: EpochLog, beta: float, lr: float) -> None:
        p = self._plain
        p["done"] += 1
        now = time.monotonic()
        if now - p["last"] < self.interval_s and p["done"] < p["total"]:
            return
        p["last"] = now
        left = (now - p["t0"]) / p["done"] * (p["total"] - p["done"])
        self.note(f"epoch {p['epoch']} step {p['done']}/{p['total']}  loss {ep.mean('loss'):.3f}  beta {beta:.3g}  "
                  f"lr {lr:.2e}  {now - p['t0']:.0f} s elapsed, about {left:.0f} s left in this epoch")

    def epoch_done(self, row: dict[str, Any], improved: bool) -> None:
        parts = [f"epoch {row['epoch']}", f"train {row['train_loss']:.3f}"]
        for key, fmt in (("val_loss", ".3f"), ("val_recon", ".2f"), ("val_kl", ".2f"), ("val_token_acc", ".3f"),
                         ("val_recon_acc", ".3f"), ("active_units", "d")):
            if key in row:
                parts.append(f"{key} {row[key]:{fmt}}")
        parts += _property_parts(row)
        parts.append(f"{row['train_mol_per_s']:.0f} mol/s")
        self.note("  ".join(parts) + ("  *" if improved else ""))

    def run_done(self, history: list[dict[str, Any]], best_epoch: int) -> None:
        """The closing line of a run: its best epoch's validation figures (the weights it kept), with the
        MAE and R^2 of every property in that property's own units."""
        self.note(run_summary(history, best_epoch))

    def note(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False, soft_wrap=True)  # log lines stay whole in files
        else:
            log.info("%s", text)


def _property_parts(row: dict[str, Any]) -> list[str]:
    """'<name> MAE m R2 r' for each property with validation metrics in `row` (in the property's units)."""
    parts = []
    for key in row:
        if key.startswith("val_mae_"):
            name = key[len("val_mae_"):]
            parts.append(f"{name} MAE {_num(row[key])} R2 {_num(row.get(f'val_r2_{name}', float('nan')), '.2f')}")
    return parts


def _num(value: Any, fmt: str = "#.3g") -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:{fmt}}"


def run_summary(history: list[dict[str, Any]], best_epoch: int) -> str:
    """One line on a finished run: the best epoch (the weights kept; the last epoch when none was ranked)
    with its validation loss, reconstruction accuracy and every property's MAE and R^2."""
    if not history:
        return "no epoch finished"
    rows = {int(r["epoch"]): r for r in history}
    row = rows.get(int(best_epoch)) or history[-1]
    parts = [f"best epoch {row['epoch']} of {len(history)}"]
    for key, label, fmt in (("val_loss", "val_loss", ".3f"), ("val_recon_acc", "reconstruction", ".1%")):
        if key in row:
            parts.append(f"{label} {_num(row[key], fmt)}")
    props = _property_parts(row)
    if props:
        parts.append("validation " + ", ".join(props))
    return "; ".join(parts)
