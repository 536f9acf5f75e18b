"""The setup steps of a training run, each named for what it gives the loop: the resumed
checkpoint, the data, the model and optimizer, where the run stands, the output directory.

They run in the order `molvae.train.loop` calls them. The order matters for reproducibility:
torch's global RNG is seeded just before the model is built, and a resumed run restores the
saved RNG states after that, so a resumed run continues the interrupted one exactly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from molvae.data import batching, validation
from molvae.data.datasets import is_dataset_name
from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import CheckpointError
from molvae.model import checkpoint as ckpt
from molvae.model.vae import VAE, ModelConfig
from molvae.runtime import DistInfo
from molvae.train import state as trainer_state
from molvae.train.config import ENVIRONMENT_FIELDS, TrainConfig
from molvae.train.epoch import ProgressReporter
from molvae.train.schedules import PlateauState
from molvae.train.state import RunState
from molvae.train.warm_start import (WarmStart, grown_vocabulary, initial_cond_stats, initial_prop_stats, open_init,
                                     warm_model)

__all__ = ["Resume", "open_resume", "open_warm_start", "set_threads", "absolute_data", "TrainData", "load_data",
           "build_model", "restore_run", "prepare_out_dir"]

log = logging.getLogger("molvae.train")


# ------------------------------------------------------------------------------- resume
@dataclass(frozen=True)
class Resume:
    """The checkpoint a run resumes from: its directory and its config.json."""

    path: Path
    saved: dict[str, Any]


def open_resume(cfg: TrainConfig) -> tuple[TrainConfig, Resume | None]:
    """The config to run and the checkpoint to resume (None for a fresh run).

    On resume the checkpoint's settings win, except the environment fields (where and how to
    run), which come from `cfg`: the resumed run is the interrupted one.
    """
    if cfg.resume is None:
        return cfg, None
    path = Path(cfg.resume)
    saved = ckpt.read_config(path)
    if not (path / ckpt.STATE_TENSORS).is_file():
        raise CheckpointError(f"{path} is a model checkpoint without trainer state; it cannot be resumed"
                              + (f" (to start from its weights, use --init {path})." if saved.get("train") else "."))
    return _resume_config(cfg, saved.get("train"), path), Resume(path, saved)


def open_warm_start(cfg: TrainConfig, resume: Resume | None) -> tuple[TrainConfig, WarmStart | None]:
    """The config to run and the base model of a fresh warm-started run (None otherwise: a resumed
    run has its weights already). The representation and SELFIES constraints follow the base."""
    if cfg.init is None or resume is not None:
        return cfg, None
    warm = open_init(cfg.init)
    tok = warm.tokenizer
    if (cfg.representation, cfg.selfies_constraints) != (tok.representation, tok.selfies_constraints):
        log.info("--init %s: using its representation %s", cfg.init, tok.representation)
    return cfg.replace(representation=tok.representation, selfies_constraints=tok.selfies_constraints), warm


def _resume_config(cfg: TrainConfig, saved: dict[str, Any] | None, path: Path) -> TrainConfig:
    if not saved:
        raise CheckpointError(f"{path} records no training configuration, so the run cannot be resumed.")
    merged = dict(saved)
    # Compared as dicts on both sides (to_dict turns tuples into lists), so an untouched default
    # is not reported as a value the user asked for.
    defaults, new = TrainConfig().to_dict(), cfg.to_dict()
    ignored = [k for k, v in new.items() if k not in ENVIRONMENT_FIELDS and merged.get(k) != v and v != defaults[k]]
    if ignored:
        log.warning("resuming %s: using the checkpoint's %s, not the new values", path, ", ".join(ignored))
    for k in ENVIRONMENT_FIELDS:
        merged[k] = getattr(cfg, k)
    return TrainConfig.from_dict(merged)


# -------------------------------------------------------------------------- environment
def set_threads(cfg: TrainConfig, di: DistInfo) -> None:
    """torch CPU threads for training: `cfg.threads`, or under torchrun on CPU the cores shared
    out between the local processes (each would otherwise take them all)."""
    threads = cfg.threads
    if threads == 0 and di.world > 1 and not str(cfg.device).startswith("cuda"):
        threads = max(1, torch.get_num_threads() // di.world)
    if threads:
        torch.set_num_threads(threads)


def absolute_data(data: str) -> str:
    """`data` with a file path made absolute, so that --resume works from any directory."""
    if not is_dataset_name(data) and Path(data).exists():
        return str(Path(data).resolve())
    return data


# --------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TrainData:
    """The validated, tokenized, split and encoded molecules of a run, and what describes them."""

    tokenizer: Tokenizer
    vocab: Vocabulary
    prop_names: tuple[str, ...]
    prop_stats: dict[str, tuple[float, float]]  # name -> (mean, std) over the training split (or the base model's)
    train: batching.EncodedData
    val: batching.EncodedData | None  # None when val_fraction is 0
    train_smiles: list[str]
    data_hash: str
    cond_stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # conditions, in c's order

    @property
    def cond_names(self) -> tuple[str, ...]:
        return tuple(self.cond_stats)


def load_data(cfg: TrainConfig, resume: Resume | None, di: DistInfo, reporter: ProgressReporter,
              warm: WarmStart | None = None) -> TrainData:
    """Load and validate the molecules, tokenize, split, standardize properties, encode.

    A resumed run reuses the checkpoint's tokenizer, vocabulary and property statistics, and
    refuses data that differ from the interrupted run's. A warm-started run uses the base model's
    tokenizer, grows its vocabulary by the tokens it lacks and keeps its property statistics.
    Conditions (`cfg.conditions`) are computed by RDKit for every molecule and standardized like the
    properties (the training split's mean/std; the checkpoint's on resume; the base's for conditions
    the base model reads).
    """
    vocab: Vocabulary | None = None
    if resume is not None:
        tokenizer = Tokenizer.from_dict(resume.saved["tokenizer"])
        vocab = Vocabulary.from_json((resume.path / ckpt.VOCAB).read_text(encoding="utf-8"))
    elif warm is not None:
        tokenizer = warm.tokenizer
    else:
        tokenizer = Tokenizer(cfg.representation, cfg.selfies_constraints)
    df = _molecules(cfg, tokenizer, vocab, di, reporter)
    if warm is not None:
        vocab, added = grown_vocabulary(warm.vocab, df["tokens"])
        if added and di.is_main:
            reporter.note(f"vocabulary of {warm.name} grows by {len(added)} tokens: {' '.join(added)}")
    elif vocab is None:
        vocab = Vocabulary.build(df["tokens"])
    prop_names = tuple(c for c in df.columns if c not in ("row", "smiles", "tokens"))
    train_idx, val_idx = batching.split_indices(len(df), cfg.val_fraction,
                                                cfg.seed if cfg.split_seed < 0 else cfg.split_seed)
    train_smiles = df["smiles"].iloc[train_idx].tolist()
    data_hash = batching.data_hash(train_smiles)
    conds = _conditions(cfg, df["smiles"].tolist())
    if resume is not None:
        prop_stats = {p["name"]: (p["mean"], p["std"]) for p in resume.saved.get("properties") or []}
        cond_stats = ckpt.condition_stats(resume.saved)
        if resume.saved.get("data_hash") != data_hash:
            raise CheckpointError(f"the training data differ from those of the run in {resume.path} (data hash "
                                  f"{data_hash[:12]} vs {str(resume.saved.get('data_hash'))[:12]}); cannot resume.")
        if tuple(cond_stats) != cfg.conditions:
            raise CheckpointError(f"{resume.path} conditions on {list(cond_stats)}, its configuration on "
                                  f"{list(cfg.conditions)}; cannot resume.")
    else:
        train_df = df.iloc[train_idx]
        prop_stats = {name: batching.label_stats(train_df[name].to_numpy()) for name in prop_names}
        cond_stats = {name: batching.label_stats(conds[name].to_numpy()[train_idx]) for name in cfg.conditions}
        if warm is not None:
            prop_stats = initial_prop_stats(warm, prop_stats)
            cond_stats = initial_cond_stats(warm, cond_stats)
    enc = batching.encode(df, vocab=vocab, prop_names=prop_names, prop_stats=prop_stats, conditions=conds,
                          cond_stats=cond_stats)
    return TrainData(tokenizer, vocab, prop_names, prop_stats, enc.subset(train_idx),
                     enc.subset(val_idx) if len(val_idx) else None, train_smiles, data_hash, cond_stats)


def _conditions(cfg: TrainConfig, smiles: list[str]) -> "pd.DataFrame | None":
    """The raw conditioning properties of every molecule (rows of `smiles`, columns `cfg.conditions`, in the
    properties' units), computed by RDKit for labelled and unlabelled molecules alike; None without
    conditions. Kept apart from the property columns: a condition may also be a head target."""
    if not cfg.conditions:
        return None
    return validation._computed_properties(smiles, cfg.conditions, n_jobs=cfg.n_jobs).reset_index(drop=True)


def _molecules(cfg: TrainConfig, tokenizer: Tokenizer, vocab: Vocabulary | None, di: DistInfo,
               reporter: ProgressReporter) -> "pd.DataFrame":
    """The validated molecules of `cfg.data`, then those of each `cfg.unlabelled` file not already
    there. Unlabelled rows get the properties RDKit computed for `cfg.data` and NaN for its measured
    columns (the property loss is masked to labelled rows)."""
    import pandas as pd

    frames, computed = [], ()
    for source in (cfg.data, *cfg.unlabelled):
        labelled = source == cfg.data
        # An unlabelled file gets the properties RDKit computed for the labelled one, never a measured
        # column's name (a measured logP stays measured: its unlabelled rows are NaN).
        df, report = validation.load_molecules(source, smiles_col=cfg.smiles_col if labelled else None,
                                               properties=cfg.properties if labelled else computed,
                                               tokenizer=tokenizer, vocab=vocab, max_len=cfg.max_len,
                                               rejected_path="auto" if di.is_main else None, n_jobs=cfg.n_jobs)
        if labelled:
            computed = report.computed
        if di.is_main:
            reporter.note(report.summary())
        frames.append(df)
    if len(frames) == 1:
        return frames[0]
    merged = pd.concat([frames[0]] + [f.reindex(columns=frames[0].columns) for f in frames[1:]], ignore_index=True)
    merged = merged.drop_duplicates("smiles", keep="first").reset_index(drop=True)
    if di.is_main:
        reporter.note(f"{len(merged) - len(frames[0]):,} unlabelled molecules added from "
                      f"{', '.join(cfg.unlabelled)}")
    return merged


# ---------------------------------------------------------------------- model, optimizer
def build_model(cfg: TrainConfig, data: TrainData, resume: Resume | None, device: torch.device,
                warm: WarmStart | None = None) -> tuple[VAE, torch.optim.Optimizer, dict[str, Any] | None]:
    """The VAE (the checkpoint's architecture on resume, the base model's on a warm start), its
    Adam optimizer, and the warm start's record for config.json (None for a run from scratch).

    Seeds torch's global RNG first, so the initial weights are a function of `cfg.seed`.
    """
    torch.manual_seed(cfg.seed)
    record = resume.saved.get("init") if resume is not None else None
    if warm is not None:
        model, record = warm_model(warm, data.vocab, data.prop_names, cfg.max_len + 2, device, data.cond_names,
                                   cfg.model.get("cond_encoder"))
    elif resume is not None:
        model = VAE(ModelConfig.from_dict(resume.saved["model"])).to(device)
    else:
        vocab = data.vocab
        model = VAE(ModelConfig(vocab_size=len(vocab), n_props=len(data.prop_names), pad_id=vocab.pad_id,
                                bos_id=vocab.bos_id, eos_id=vocab.eos_id, max_len=cfg.max_len + 2,
                                n_cond=len(data.cond_names), **cfg.model)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return model, optimizer, record


def restore_run(cfg: TrainConfig, resume: Resume | None, model: VAE,
                optimizer: torch.optim.Optimizer) -> tuple[RunState, PlateauState, list[dict[str, Any]]]:
    """Where the run stands (epoch, step, best epoch, lr plateau) and its history so far.

    A fresh run starts at zero. A resumed one loads the last checkpoint's weights, optimizer and RNG
    states into `model` and `optimizer` (at an epoch boundary or inside an epoch), and keeps the
    history rows of the finished epochs.
    """
    plateau = PlateauState(patience=cfg.lr_patience, min_factor=cfg.lr_min_factor)
    if resume is None:
        return RunState(), plateau, []
    loaded = trainer_state.load_trainer_state(resume.path, model, optimizer)
    run = RunState(**{f.name: loaded[f.name] for f in fields(RunState) if f.name in loaded})  # older: no epoch_pos
    history: list[dict[str, Any]] = []
    old = ckpt.read_history(resume.path)
    if old is not None and len(old):
        history = old[old["epoch"] <= run.epoch].to_dict("records")
    if run.stopped or run.epoch >= cfg.epochs:
        log.info("%s: the run already finished (epoch %d)", resume.path, run.epoch)
    return run, PlateauState.from_dict(loaded["plateau"]), history


def prepare_out_dir(out: Path, resume: Resume | None, reporter: ProgressReporter) -> None:
    """Resuming into a new directory starts from a copy of the checkpoint; a fresh run removes a
    previous run's training files first, so its state cannot be resumed into this run."""
    if resume is not None and out.resolve() != resume.path.resolve():
        ckpt.copy_checkpoint(resume.path, out)
    elif resume is None:
        stale = ckpt.remove_training_files(out)
        if stale:
            reporter.note(f"{out}: replacing the previous run's {', '.join(stale)}")
