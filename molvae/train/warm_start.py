"""Warm start (`TrainConfig.init`): a run that begins from another model's weights.

The base model (a shipped name or a checkpoint directory) gives the tokenizer, the architecture
and the weights. What the new data need beyond it is added, never replaced:
- tokens the base vocabulary lacks (stereo marks, new elements) get new ids after the base ones,
  with embedding rows at the mean of the base rows (plus noise at a tenth of their spread, so
  that two new tokens are told apart) and output rows at the mean base row with the lowest base
  bias, so that a new token starts as rare and is learned from there;
- the property head keeps the outputs (and the mean/std) of properties the base model had and
  gets freshly initialized outputs for new ones;
- conditioning (`TrainConfig.conditions`): the weights that read c (their last n_cond input columns,
  molvae.model.vae) keep the base's columns for conditions it had (with their mean/std) and start at
  zero for new ones, so that a conditional model warm-started from an unconditional one computes
  exactly what its base computes, for any c, until training teaches it to read c (`add_conditioning`).
  Zero weights still get gradients (dL/dW = dL/d(output) x c), so they do learn.
The record of what was taken and added goes to config.json under "init".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from molvae.data.tokens import Tokenizer, Vocabulary
from molvae.errors import CheckpointError
from molvae.model import checkpoint as ckpt
from molvae.model.vae import VAE, ModelConfig

__all__ = ["WarmStart", "open_init", "grown_vocabulary", "initial_prop_stats", "initial_cond_stats", "warm_model",
           "add_conditioning", "cond_weight_keys"]

_TOKEN_ROWS = ("embed.weight", "decoder.out.weight", "decoder.out.bias")


@dataclass(frozen=True)
class WarmStart:
    """The base model of a warm-started run: where it is, its config.json, vocabulary and weights."""

    name: str  # as the user gave it (a shipped name or a path)
    path: Path
    saved: dict[str, Any]
    vocab: Vocabulary
    weights: dict[str, torch.Tensor]

    @property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer.from_dict(self.saved["tokenizer"])

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.saved["model"])

    @property
    def prop_stats(self) -> dict[str, tuple[float, float]]:
        return {p["name"]: (float(p["mean"]), float(p["std"])) for p in self.saved.get("properties") or []}

    @property
    def cond_stats(self) -> dict[str, tuple[float, float]]:
        return ckpt.condition_stats(self.saved)


def open_init(name_or_path: str) -> WarmStart:
    """Read the base model `name_or_path` (shipped name or checkpoint directory).

    Raises:
        CheckpointError: no such model, or not a readable molvae checkpoint.
    """

    path = ckpt.resolve_model(name_or_path)
    saved = ckpt.read_config(path)
    vocab = Vocabulary.from_json((path / ckpt.VOCAB).read_text(encoding="utf-8"))
    weights, _ = ckpt.read_safetensors(path / ckpt.WEIGHTS)
    return WarmStart(str(name_or_path), path, saved, vocab, {k: v.float() for k, v in weights.items()})


def grown_vocabulary(base: Vocabulary, token_lists: Iterable[Iterable[str]]) -> tuple[Vocabulary, list[str]]:
    """The base vocabulary with the tokens it lacks appended (most frequent first, ties by token);
    returns it and the added tokens. Base ids are unchanged."""
    counts: Counter[str] = Counter()
    for toks in token_lists:
        counts.update(t for t in toks if t not in base.token_to_id)
    added = sorted(counts, key=lambda t: (-counts[t], t))
    return Vocabulary(list(base.id_to_token[4:]) + added), added


def initial_prop_stats(base: WarmStart, fresh: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Property statistics of the new run, in its property order: the base model's for the
    properties it predicts (its head's outputs keep their meaning), `fresh` (from the data) else."""
    known = base.prop_stats
    return {name: known.get(name, stats) for name, stats in fresh.items()}


def initial_cond_stats(base: WarmStart, fresh: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Condition statistics of the new run, in its order: the base model's for conditions it reads (its
    weights on them keep their meaning), `fresh` (the training split's) else."""
    known = base.cond_stats
    return {name: known.get(name, stats) for name, stats in fresh.items()}


def cond_weight_keys(cfg: ModelConfig) -> tuple[str, ...]:
    """Names of the weights of a model of `cfg` that read c: each reads it through its last n_cond input
    columns (dim 1). Empty for an unconditional model."""
    if not cfg.n_cond:
        return ()
    keys = ("decoder.rnn.weight_ih_l0", "decoder.c_to_h.weight")
    return keys + (("encoder.to_mu.weight", "encoder.to_logvar.weight") if cfg.cond_encoder else ())


def _cond_weight(source: torch.Tensor | None, target: torch.Tensor, source_conds: Sequence[str],
                 target_conds: Sequence[str]) -> torch.Tensor:
    """A weight that reads c in the new model, from its `source` in the base (None: the base lacks it;
    `source_conds`: the conditions its last columns read there, () if none): the other input columns
    copied, each condition's column copied where the base read it, zero where it did not."""
    out = torch.zeros_like(target)
    if source is None:
        return out
    other = target.shape[1] - len(target_conds)
    out[:, :other] = source[:, :other]
    for j, name in enumerate(target_conds):
        if name in source_conds:
            out[:, other + j] = source[:, other + list(source_conds).index(name)]
    return out


def add_conditioning(model: VAE, n_cond: int, cond_encoder: bool = False) -> VAE:
    """The conditional twin of the unconditional `model`: a VAE reading c (B, n_cond) (the encoder too
    with `cond_encoder`), with `model`'s weights and zero weights on c, so that for any c it computes
    exactly what `model` computes (same device and train/eval mode)."""
    if model.cfg.n_cond:
        raise ValueError(f"the model is already conditional (n_cond={model.cfg.n_cond})")
    twin = VAE(replace(model.cfg, n_cond=n_cond, cond_encoder=cond_encoder and n_cond > 0))
    source, state = model.state_dict(), twin.state_dict()
    keys = cond_weight_keys(twin.cfg)
    names = [str(j) for j in range(n_cond)]  # placeholders: the base reads none of them
    for key, target in state.items():
        state[key] = _cond_weight(source.get(key), target, (), names) if key in keys else source[key]
    twin.load_state_dict(state)
    device = next(model.parameters()).device
    return twin.to(device).train(model.training)


def warm_model(base: WarmStart, vocab: Vocabulary, prop_names: tuple[str, ...], max_len: int,
               device: torch.device, cond_names: tuple[str, ...] = (),
               cond_encoder: bool | None = None) -> tuple[VAE, dict[str, Any]]:
    """The VAE of the new run, its weights taken from `base` (see the module docstring); returns it
    and the "init" record for config.json. `cond_names`: the run's conditions, in c's order;
    `cond_encoder`: whether the encoder reads c (None: as the base). Call after torch's global RNG is
    seeded: new rows come from the fresh model's initialization."""
    base_cfg = base.model_config
    cond_encoder = base_cfg.cond_encoder if cond_encoder is None else cond_encoder
    mcfg = replace(base_cfg, vocab_size=len(vocab), n_props=len(prop_names), max_len=max_len,
                   n_cond=len(cond_names), cond_encoder=bool(cond_encoder and cond_names))
    model = VAE(mcfg)
    state = model.state_dict()
    old_ids = [base.vocab.token_to_id[t] for t in base.vocab.id_to_token]  # base ids = the first new ids
    n_base = len(old_ids)
    base_props = list(base.prop_stats)
    base_conds, base_keys, new_keys = list(base.cond_stats), cond_weight_keys(base_cfg), cond_weight_keys(mcfg)
    for key, target in state.items():
        source = base.weights.get(key)
        if key in new_keys or key in base_keys:
            target.copy_(_cond_weight(source, target, base_conds if key in base_keys else (), cond_names)
                         if key in new_keys else source[:, :target.shape[1]])
        elif key.startswith("prop_head.") and key.split(".")[2] == "5":  # the output layer: rows by property
            for i, name in enumerate(prop_names):
                if source is not None and name in base_props:
                    target[i] = source[base_props.index(name)]
        elif source is None:
            continue  # a property head the base lacked: freshly initialized
        elif key in _TOKEN_ROWS:
            target[:n_base] = source
            extra = len(vocab) - n_base
            if extra and key == "embed.weight":
                spread = source[4:].std(0, keepdim=True)
                target[n_base:] = source[4:].mean(0, keepdim=True) + 0.1 * spread * torch.randn(extra, source.shape[1])
            elif extra and key == "decoder.out.weight":
                target[n_base:] = source[4:].mean(0, keepdim=True)
            elif extra:
                target[n_base:] = source[4:].min()
        elif source.shape == target.shape:
            target.copy_(source)
        else:
            raise CheckpointError(f"{base.path}: weight {key} has shape {tuple(source.shape)}, the model built "
                                  f"from its config {tuple(target.shape)}")
    model.load_state_dict(state)
    record = {
        "base": base.name, "base_path": str(base.path.resolve()), "base_data_hash": base.saved.get("data_hash"),
        "added_tokens": list(vocab.id_to_token[n_base:]),
        "kept_properties": [p for p in prop_names if p in base_props],
        "new_properties": [p for p in prop_names if p not in base_props],
        "kept_conditions": [c for c in cond_names if c in base_conds],
        "new_conditions": [c for c in cond_names if c not in base_conds],
    }
    return model.to(device), record
