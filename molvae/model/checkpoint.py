"""Checkpoint directories: safetensors + JSON only, written atomically, never unpickled.

Layout of a checkpoint directory (the README's Checkpoint format section):

    config.json                 format, format_version, model config, tokenizer (incl. SELFIES
                                constraints), representation, properties with mean/std,
                                conditions with mean/std (conditional models; absent or
                                empty: unconditional), library versions, training-data
                                hash, resolved train config
    model.safetensors           weights of the model to use (the best validation epoch)
    vocab.json                  the Vocabulary (molvae.data.tokens JSON format)
    history.csv                 one row per finished epoch
    train_hashes.npy            sorted uint64 `molvae.files.smiles_hash` of the training SMILES (novelty)
    trainer_state.safetensors   for --resume (written by molvae.train.state): last-epoch weights
                                ("model.*"), optimizer tensors ("optim.*"), torch/numpy RNG states
                                ("rng.*"); its metadata carries the JSON state too, so tensors
                                and state are one atomic file
    trainer_state.json          readable copy of that JSON state: epoch, step, best validation,
                                scheduler state, optimizer hyper-parameters, python RNG state

Every file is written with `molvae.files.atomic_write_bytes` (a temporary name in the same
directory, renamed over the old one), so a crash leaves each file either old or new, never torn. Files are
written in the order model/config/history first and trainer_state last, so the trainer
state never claims an epoch whose history is missing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes

from molvae.errors import CheckpointError, MissingCheckpointError, MolvaeError
from molvae.files import atomic_write_bytes, atomic_write_text, hash_smiles, json_text, library_versions
from molvae.model.vae import VAE, ModelConfig
from molvae.data.tokens import Tokenizer, Vocabulary

__all__ = [
    "DEFAULT_MODEL", "RETIRED_MODELS", "pretrained_dir", "resolve_model",
    "FORMAT", "FORMAT_VERSION", "CheckpointMeta", "save_model", "save_half_weights", "load_checkpoint", "read_config", "condition_stats", "sampling_defaults", "SAMPLING_DEFAULTS",
    "is_checkpoint", "save_history", "read_history", "save_train_hashes", "load_train_hashes",
    "copy_checkpoint", "remove_training_files", "read_safetensors", "load_weights",
]

FORMAT = "molvae-checkpoint"
FORMAT_VERSION = 1
CONFIG, WEIGHTS, VOCAB, HISTORY = "config.json", "model.safetensors", "vocab.json", "history.csv"
STATE_TENSORS, STATE_JSON, TRAIN_HASHES = "trainer_state.safetensors", "trainer_state.json", "train_hashes.npy"


# ------------------------------------------------------------------------ model + meta
@dataclass(frozen=True)
class CheckpointMeta:
    """Everything in a checkpoint besides the weights.

    prop_stats: {name: (mean, std)} in the order of the property head's outputs; the head
    predicts standardized values, original units = pred * std + mean.
    cond_stats: {name: (mean, std)} in the order of the conditioning vector c of a conditional
    model (empty for an unconditional one); c = (value - mean) / std, value in the property's units.
    sampling: the model's default sampling settings {temperature, top_p} (config.json "sampling": the
    setting its FCD-novelty frontier was read at; see `sampling_defaults`).
    """

    path: Path
    model_config: ModelConfig
    tokenizer: Tokenizer
    vocab: Vocabulary
    prop_names: tuple[str, ...]
    prop_stats: dict[str, tuple[float, float]]
    data_hash: str | None
    versions: dict[str, str]
    train_config: dict[str, Any] | None
    config: dict[str, Any] = field(repr=False)
    cond_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    sampling: dict[str, float] = field(default_factory=dict)

    @property
    def cond_names(self) -> tuple[str, ...]:
        """Names of the conditioning properties, in the order of c's columns (empty: unconditional)."""
        return tuple(self.cond_stats)

    @property
    def representation(self) -> str:
        return self.tokenizer.representation

    def history(self) -> "Any":
        """The training history as a pandas DataFrame, or None when absent."""
        return read_history(self.path)

    def train_hashes(self) -> np.ndarray | None:
        """Sorted uint64 hashes of the training SMILES, or None when absent."""
        return load_train_hashes(self.path)


def save_model(
    path: str | os.PathLike[str],
    model: VAE,
    tokenizer: Tokenizer,
    vocab: Vocabulary,
    prop_stats: Mapping[str, tuple[float, float]] | None = None,
    data_hash: str | None = None,
    train_config: Mapping[str, Any] | None = None,
    weights: bool = True,
    init: Mapping[str, Any] | None = None,
    cond_stats: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Write config.json, vocab.json and (unless weights=False) model.safetensors to `path`.

    `init`: for a warm-started run, the record of its base model and what was added to it
    (molvae.train.warm_start), stored as config.json's "init". `cond_stats`: {name: (mean, std)} of a
    conditional model's conditions in the order of c's columns, stored as "conditions".
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if len(vocab) != model.cfg.vocab_size:
        raise ValueError(f"vocabulary has {len(vocab)} tokens but the model {model.cfg.vocab_size}")
    stats = dict(prop_stats or {})
    if len(stats) != model.cfg.n_props:
        raise ValueError(f"{len(stats)} property stats for a model with {model.cfg.n_props} outputs")
    conds = dict(cond_stats or {})
    if len(conds) != model.cfg.n_cond:
        raise ValueError(f"{len(conds)} condition stats for a model with {model.cfg.n_cond} conditions")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "representation": tokenizer.representation,
        "model": model.cfg.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "properties": [{"name": n, "mean": float(m), "std": float(s)} for n, (m, s) in stats.items()],
        "conditions": [{"name": n, "mean": float(m), "std": float(s)} for n, (m, s) in conds.items()],
        "data_hash": data_hash,
        "versions": library_versions(),
        "train": dict(train_config) if train_config is not None else None,
    }
    if init is not None:
        config["init"] = dict(init)
    if weights:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        atomic_write_bytes(path / WEIGHTS, st_save_bytes(state, metadata={"format": FORMAT}))
    atomic_write_text(path / VOCAB, vocab.to_json())
    atomic_write_text(path / CONFIG, json_text(config))
    return path


def save_half_weights(path: str | os.PathLike[str], state: Mapping[str, torch.Tensor]) -> Path:
    """Write `state` as a model.safetensors in float16 (integer tensors as they are), for weights that ship or
    are committed: half the size, and loading casts them back to the model's dtype."""
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    path = Path(path)
    atomic_write_bytes(path, st_save_bytes(half, metadata={"format": "molvae", "stored_dtype": "float16"}))
    return path


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a directory holding a molvae config.json."""
    try:
        read_config(path)
        return True
    except CheckpointError:
        return False


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated config.json of checkpoint directory `path`.

    Raises:
        CheckpointError: not a directory, no config.json, not a molvae checkpoint, or a
            format_version this molvae cannot read.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; a molvae checkpoint is a directory with {CONFIG}.")
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise CheckpointError(f"{path} is not a molvae checkpoint: it has no {CONFIG}.")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} cannot be read as JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a molvae checkpoint ({CONFIG} lacks \"format\": \"{FORMAT}\").")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format_version {version!r}, but this molvae reads version {FORMAT_VERSION}; "
            "use the molvae release that wrote it, or retrain."
        )
    return config


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[VAE, CheckpointMeta]:
    """Load the model (in eval mode, on `device`) and its metadata from a checkpoint directory.

    Only safetensors and JSON are read; nothing is unpickled.

    Raises:
        CheckpointError: see `read_config`; also missing/corrupt weights or vocabulary, or
            weights that do not fit the configured architecture.
    """
    path = Path(path)
    config = read_config(path)
    try:
        model_cfg = ModelConfig.from_dict(config["model"])
        tokenizer = Tokenizer.from_dict(config["tokenizer"])
        props = config.get("properties") or []
        prop_stats = {p["name"]: (float(p["mean"]), float(p["std"])) for p in props}
        cond_stats = condition_stats(config)
        sampling = sampling_defaults(config)
    except MolvaeError:  # already a message of its own (molvae errors are ValueErrors too)
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG} is malformed: {exc}") from exc
    try:
        vocab = Vocabulary.from_json((path / VOCAB).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{path} has no readable {VOCAB}: {exc}") from exc
    if len(vocab) != model_cfg.vocab_size:
        raise CheckpointError(f"{path}: {VOCAB} has {len(vocab)} tokens but the model expects {model_cfg.vocab_size}.")
    if len(cond_stats) != model_cfg.n_cond:
        raise CheckpointError(f"{path}: {CONFIG} lists {len(cond_stats)} conditions but the model reads "
                              f"{model_cfg.n_cond}.")
    state = read_safetensors(path / WEIGHTS)[0]
    model = VAE(model_cfg)
    load_weights(model, state, path / WEIGHTS)
    model.to(device).eval()
    meta = CheckpointMeta(
        path=path, model_config=model_cfg, tokenizer=tokenizer, vocab=vocab, prop_names=tuple(prop_stats),
        prop_stats=prop_stats, data_hash=config.get("data_hash"), versions=dict(config.get("versions") or {}),
        train_config=config.get("train"), config=config, cond_stats=cond_stats, sampling=sampling,
    )
    return model, meta


def condition_stats(config: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """{name: (mean, std)} of config.json's "conditions", in c's column order; {} when absent (a checkpoint
    written before conditioning existed, or an unconditional model)."""
    return {p["name"]: (float(p["mean"]), float(p["std"])) for p in config.get("conditions") or []}


SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": 1.0}


def sampling_defaults(config: Mapping[str, Any]) -> dict[str, float]:
    """The model's default sampling settings: config.json's "sampling" ({"temperature": T in (0, 10],
    "top_p": p in (0, 1]}, either may be left out) over `SAMPLING_DEFAULTS`. ValueError when malformed."""
    given = config.get("sampling") or {}
    unknown = set(given) - set(SAMPLING_DEFAULTS)
    if unknown:
        raise ValueError(f'"sampling" has unknown settings {sorted(unknown)}; expected temperature, top_p')
    out = {**SAMPLING_DEFAULTS, **{k: float(v) for k, v in given.items()}}
    if not (0 < out["temperature"] <= 10 and 0 < out["top_p"] <= 1):
        raise ValueError(f'"sampling" must have temperature in (0, 10] and top_p in (0, 1], got {given}')
    return out


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and the header's __metadata__ of a safetensors file, from one read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    try:
        tensors = st_load_bytes(data)
        # Format: 8-byte little-endian header length, then the JSON header.
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + n]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from exc
    return tensors, meta


def load_weights(model: VAE, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Load `state` into `model` strictly; CheckpointError naming `source` and the mismatched keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or bad:
        raise CheckpointError(
            f"{source} does not fit the configured model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shape {bad[:5]}."
        )
    model.load_state_dict(state, strict=True)


def copy_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy the files of checkpoint `src` into directory `dst` (each atomically; config.json last)."""
    src, dst = Path(src), Path(dst)
    read_config(src)
    names = (WEIGHTS, VOCAB, HISTORY, TRAIN_HASHES, STATE_TENSORS, STATE_JSON, CONFIG)
    for name in names:
        if (src / name).is_file():
            atomic_write_bytes(dst / name, (src / name).read_bytes())
    return dst


def remove_training_files(path: str | os.PathLike[str]) -> list[str]:
    """Delete the trainer state and history of an earlier run in `path`; returns the names removed."""
    removed = []
    for name in (STATE_JSON, STATE_TENSORS, HISTORY):
        file = Path(path) / name
        if file.is_file():
            file.unlink()
            removed.append(name)
    return removed


# ------------------------------------------------------------------------------ history
def save_history(path: str | os.PathLike[str], history: Any) -> None:
    """Write a pandas DataFrame as history.csv (atomically)."""
    atomic_write_text(Path(path) / HISTORY, history.to_csv(index=False))


def read_history(path: str | os.PathLike[str]) -> Any:
    import pandas as pd

    file = Path(path) / HISTORY
    if not file.is_file():
        return None
    try:
        return pd.read_csv(file)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


# --------------------------------------------------------------------- training hashes
def save_train_hashes(path: str | os.PathLike[str], smiles: Sequence[str]) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, hash_smiles(smiles), allow_pickle=False)
    atomic_write_bytes(Path(path) / TRAIN_HASHES, buf.getvalue())


def load_train_hashes(path: str | os.PathLike[str]) -> np.ndarray | None:
    file = Path(path) / TRAIN_HASHES
    if not file.is_file():
        return None
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as exc:
        raise CheckpointError(f"{file} is not a plain numpy array: {exc}") from exc


DEFAULT_MODEL = "moses-smiles"

# Names of models that shipped once and no longer do, with what to do instead (one paragraph each).
RETIRED_MODELS: dict[str, str] = {
    "moses-selfies": (
        "the model 'moses-selfies' is no longer shipped: at equal training its samples were far from MOSES "
        "(FCD/Test 4.9 against .24 for the default 'moses-smiles'), and the training time goes to the SMILES "
        "default. SELFIES stays a training option: `molvae data moses && molvae train --data moses --repr selfies "
        "--epochs 2 --batch-size 512 --out runs/selfies` (in a source checkout, `bash scripts/train_default.sh "
        "runs/selfies selfies` repeats the removed model's recipe), then load it with molvae.load('runs/selfies') "
        "or `--model runs/selfies`."
    ),
}


def pretrained_dir() -> Path:
    """Directory of the models shipped with the package (molvae/pretrained/)."""
    return Path(__file__).resolve().parents[1] / "pretrained"


def resolve_model(name_or_path: str | Path | None) -> Path:
    """None -> the shipped default; a bare name -> molvae/pretrained/<name>; else a path. A retired
    model's name (RETIRED_MODELS) gives a CheckpointError saying what replaces it; a name or path that is
    neither gives a MissingCheckpointError (also a FileNotFoundError)."""
    shipped = pretrained_dir()
    available = sorted(p.name for p in shipped.iterdir() if p.is_dir()) if shipped.is_dir() else []
    if name_or_path is None:
        path = shipped / DEFAULT_MODEL
        if not path.is_dir():
            raise MissingCheckpointError(
                f"the default model {DEFAULT_MODEL!r} is not installed (looked in {shipped}); "
                + (f"shipped models: {', '.join(available)}. " if available else "no models are shipped yet. ")
                + "Train one with `molvae train --out DIR` and load it with molvae.load('DIR')."
            )
        return path
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if (shipped / str(name_or_path)).is_dir() and len(path.parts) == 1:
        return shipped / str(name_or_path)
    if str(name_or_path) in RETIRED_MODELS:
        raise CheckpointError(RETIRED_MODELS[str(name_or_path)])
    raise MissingCheckpointError(
        f"no model {str(name_or_path)!r}: not a checkpoint directory and not a shipped model name"
        + (f" (shipped: {', '.join(available)})" if available else "")
    )
