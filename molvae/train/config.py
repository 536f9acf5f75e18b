"""`TrainConfig`: every setting of a training run, validated, JSON round-trippable.

This module imports neither torch nor numpy (ModelConfig, which lives with the torch model, is
imported when a TrainConfig is validated), so that the CLI can read the defaults for its help
text without paying for torch on every command.
"""
from __future__ import annotations

import functools
import json
import math
import numbers
import os
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from molvae.errors import UsageError
from molvae.train.schedules import KL_SCHEDULES, LR_SCHEDULES

__all__ = ["TrainConfig", "model_fields", "ENVIRONMENT_FIELDS", "FINE_TUNE_DEFAULTS", "train_config_from_cli",
           "load_train_config", "field_default", "checkpoint_interval", "duration_seconds"]

# Fields that say where/how to run, not what to compute: on --resume these come from the new
# config, all others from the checkpoint so that the resumed run is the interrupted one.
ENVIRONMENT_FIELDS = ("out", "resume", "device", "amp", "threads", "n_jobs", "tensorboard", "progress", "stop_after",
                      "checkpoint_every")

# Defaults of a fine-tuning run (`init` set): they replace the TrainConfig defaults of these fields,
# below a config file and typed options. A warm start keeps the base model's posterior, so the KL
# weight is constant from the first step (no warm-up that would first let the posterior collapse
# into a deterministic autoencoder), and early stopping watches the validation loss closely. Fine-tuning
# sets are small (a series of ~1,000 molecules), so batches are small too: 256 would give 3 updates an epoch.
FINE_TUNE_DEFAULTS: Mapping[str, Any] = {
    "epochs": 5, "batch_size": 32, "lr": 5e-4, "lr_schedule": "cosine", "kl_schedule": "constant", "patience": 2,
}


@functools.cache
def model_fields() -> tuple[str, ...]:
    """ModelConfig fields a user may set; the others (vocab_size, n_props, n_cond, special ids, max_len)
    come from the data."""
    from molvae.model.vae import ModelConfig

    return tuple(f.name for f in fields(ModelConfig)
                 if f.name not in ("vocab_size", "n_props", "n_cond", "pad_id", "bos_id", "eos_id", "max_len"))


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. Its defaults are the only ones: `molvae train` takes them from here.

    Data: `data` is a file path, "embedded" (20k MOSES subset shipped with molvae) or "moses"
    (full MOSES train split, fetched); `properties` are file columns or RDKit names; an empty
    tuple trains without a property head. An empty property cell masks that label only.
    `unlabelled`: further molecule files (or "embedded"/"moses") that train the VAE only: they get
    the properties RDKit computed for `data` and NaN for its measured columns. `max_len` counts
    tokens without BOS/EOS; longer molecules are rejected. `val_fraction` of the molecules (at least one) is held out.
    `conditions`: RDKit property names (`molvae.chem.PROPERTY_NAMES`, e.g. logp, mw, tpsa) that the model
    reads as its conditioning vector c, computed by RDKit for every molecule (labelled or not) and
    standardized with the training split's mean/std; empty: an unconditional model (docs/conditional.md).
    None (the default): the conditions of the `init` model, so that fine-tuning a conditional model keeps it
    conditional (each then joins `properties` if missing: the head predicts c where no target is given);
    none without an `init`. The model setting `cond_encoder` makes the encoder read c too.

    Optimization: Adam at `lr` with `lr_schedule` ('constant' | 'cosine' down to
    lr * lr_min_factor | 'plateau': halve after `lr_patience` epochs without improvement),
    linear warm-up over `lr_warmup_steps`; gradient norm clipped at `grad_clip` (0: off).

    KL: `kl_schedule` ('constant' | 'linear' | 'sigmoid' | 'cyclical') from `beta_start` to
    `beta_end` over `kl_warmup_epochs` (cyclical: `kl_cycles` cycles over the whole run, rising
    for `kl_cycle_ratio` of each); `free_bits` nats per latent dim (0: off). Reconstruction
    is in nats per molecule, so beta_end = 1 is the plain ELBO. Default 0.1: on the embedded
    MOSES subset it reconstructed better than 0.5 with free bits, at a higher KL (docs/training.md,
    "The KL weight of TrainConfig", has the figures); the shipped models were trained at 0.5.
    `prop_weight` is lambda, the weight of the property MSE (standardized units);
    `prop_on_samples` the share of that MSE taken at the sampled z instead of the posterior mean
    (0: means only; the head is then unconstrained between means, where gradient search moves).

    Validation each epoch: loss at beta_end (so epochs compare while beta anneals), token
    accuracy, greedy reconstruction of the first `val_recon_n` validation molecules,
    property MAE in original units, active units. Early stopping after `patience` epochs
    without a val-loss improvement (0: off); the best epoch's weights are the model saved.
    At the end of a finished run (not a `stop_after` slice) the model gets its latent density, the
    posterior mixture of up to `density_molecules` training molecules (0: none).

    Environment: `device` 'auto'|'cpu'|'cuda'; `amp` 'auto' (bf16 where the hardware runs it
    natively) | 'bf16' | 'off'; `threads` torch CPU threads (0: torch's default; under
    torchrun on CPU, cores / local processes). `stop_after` N > 0 ends this invocation once N
    epochs in all are done, with the schedules still spanning `epochs`, so that a long run can
    be trained in slices (a batch-job time limit, a CPU between other work); `--resume`
    continues it to the same result as one uninterrupted run. 0: run to `epochs`.
    `model` holds ModelConfig overrides (see `model_fields()`), e.g. {"dec_hidden": 256}.
    `checkpoint_every`: also write the full trainer state inside an epoch, every N optimizer steps
    ("500") or every N minutes ("10m"); "0" only at the end of each epoch. A run resumed from such a
    checkpoint continues to the same weights as an uninterrupted one.
    `split_seed` draws the validation split (-1: `seed` does), so that runs that continue one another with
    new seeds (training cycles: a new batch order each) keep one split and never train on its molecules.
    Length of the schedule: by default the lr and KL schedules span `epochs` whole epochs. `max_steps`
    N > 0 makes them span N optimizer steps instead, crossing epoch boundaries (the last epoch is cut
    where the steps end, then validated and checkpointed as a whole one). `time_budget` ("90m", "2h")
    sizes N to a wall-clock budget of training steps: before the first step the run times a few
    forward/backward passes on batches spread over the epoch (no optimizer step, RNG restored, so the
    weights and the result do not depend on the timing) and takes N = budget / seconds per step. N is
    fixed then and saved in the trainer state, so a resumed run keeps it. Data preparation, validation
    and the latent density are outside the budget. One such run is one training cycle (docs/training.md).

    Warm start: `init` is a shipped model name or a checkpoint directory whose weights start this run
    with a fresh schedule (FINE_TUNE_DEFAULTS apply unless set). Its tokenizer and representation are
    used; tokens of the data it lacks are added to the vocabulary (new embedding and output rows);
    the property head keeps the outputs of properties it had and gets new ones for new columns.

    Everything is validated here, once: the loop, schedules and validation below trust these values.
    """

    data: str = "embedded"
    unlabelled: tuple[str, ...] = ()
    smiles_col: str | None = None
    properties: tuple[str, ...] = ("logp", "qed", "sa")
    conditions: tuple[str, ...] | None = None
    representation: str = "selfies"
    selfies_constraints: str = "default"
    max_len: int = 120
    val_fraction: float = 0.05
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    lr_warmup_steps: int = 0
    lr_min_factor: float = 0.05
    lr_patience: int = 2
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    kl_schedule: str = "linear"
    beta_start: float = 0.0
    beta_end: float = 0.1
    kl_warmup_epochs: float = 3.0
    kl_cycles: int = 4
    kl_cycle_ratio: float = 0.5
    free_bits: float = 0.0
    prop_weight: float = 1.0
    prop_on_samples: float = 0.0
    patience: int = 5
    val_recon_n: int = 1000
    density_molecules: int = 20_000
    seed: int = 0
    split_seed: int = -1
    device: str = "auto"
    amp: str = "auto"
    threads: int = 0
    out: str = "runs/model"
    resume: str | None = None
    n_jobs: int = 1
    tensorboard: bool = False
    progress: bool = True
    stop_after: int = 0
    checkpoint_every: str = "10m"
    max_steps: int = 0
    time_budget: str = "0"
    init: str | None = None
    model: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in fields(self):  # types first: the range checks below compare values of the right type
            object.__setattr__(self, f.name, _typed(f.name, str(f.type), getattr(self, f.name)))
        object.__setattr__(self, "checkpoint_every", str(self.checkpoint_every).strip().lower())
        object.__setattr__(self, "time_budget", str(self.time_budget).strip().lower())
        checks = [
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0.0 <= self.val_fraction < 1.0, "val_fraction must be in [0, 1)"),
            (self.max_len >= 1, "max_len must be >= 1"),
            (self.grad_clip >= 0, "grad_clip must be >= 0 (0 turns clipping off)"),
            (self.beta_start >= 0 and self.beta_end >= 0, "beta_start and beta_end must be >= 0"),
            (self.kl_warmup_epochs >= 0, "kl_warmup_epochs must be >= 0"),
            (self.kl_cycles >= 1 and 0 <= self.kl_cycle_ratio <= 1, "kl_cycles >= 1, kl_cycle_ratio in [0, 1]"),
            (self.free_bits >= 0, "free_bits must be >= 0"),
            (self.prop_weight >= 0, "prop_weight must be >= 0"),
            (0 <= self.prop_on_samples <= 1, "prop_on_samples must be in [0, 1]"),
            (self.patience >= 0, "patience must be >= 0 (0 turns early stopping off)"),
            (self.val_recon_n >= 0, "val_recon_n must be >= 0"),
            (self.density_molecules >= 0, "density_molecules must be >= 0 (0: no latent density)"),
            (0 < self.lr_min_factor <= 1, "lr_min_factor must be in (0, 1]"),
            (self.lr_warmup_steps >= 0 and self.lr_patience >= 0, "lr_warmup_steps, lr_patience must be >= 0"),
            (self.threads >= 0, "threads must be >= 0"),
            (self.stop_after >= 0, "stop_after must be >= 0 (0: run to epochs)"),
            (self.kl_schedule in KL_SCHEDULES, f"kl_schedule must be one of {', '.join(KL_SCHEDULES)}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (self.representation in ("selfies", "smiles"), "representation must be selfies or smiles"),
            (self.amp in ("auto", "bf16", "off"), "amp must be auto, bf16 or off"),
            (self.split_seed >= -1, "split_seed must be >= 0, or -1 for the seed"),
            (self.max_steps >= 0, "max_steps must be >= 0 (0: the schedule spans epochs)"),
            (duration_seconds(self.time_budget) is not None,
             f"time_budget must be a duration such as 90m, 2h or 5400s, or 0, got {self.time_budget!r}"),
            (not (self.max_steps and duration_seconds(self.time_budget)), "give max_steps or time_budget, not both"),
            (checkpoint_interval(self.checkpoint_every) is not None,
             f"checkpoint_every must be a number of steps (500), of minutes (10m) or 0, got {self.checkpoint_every!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"invalid training configuration: {message}.")
        self._check_conditions()
        unknown = set(self.model) - set(model_fields())
        if unknown:
            raise UsageError(f"unknown model settings {sorted(unknown)}; valid: {', '.join(model_fields())}.")
        from molvae.model.vae import ModelConfig

        types = {f.name: str(f.type) for f in fields(ModelConfig)}
        object.__setattr__(self, "model", {key: _typed(f"model.{key}", types[key], value)
                                           for key, value in self.model.items()})
        try:
            ModelConfig(vocab_size=8, **self.model)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"invalid model settings {dict(self.model)}: {exc}") from exc

    def _check_conditions(self) -> None:
        """Resolve `conditions` None to the init model's (adding them to `properties` where missing), then
        normalize them to RDKit property names (UsageError for others or repeats)."""
        if self.conditions is None:
            inherited = _init_conditions(self.init) if self.init else ()
            object.__setattr__(self, "conditions", inherited)
            if inherited:
                from molvae import chem

                have = {chem.name_key(p) for p in self.properties}
                object.__setattr__(self, "properties",
                                   self.properties + tuple(n for n in inherited if chem.name_key(n) not in have))
        if self.model.get("cond_encoder") and not self.conditions:
            raise UsageError("invalid training configuration: the model setting cond_encoder needs conditions.")
        if not self.conditions:
            return
        from molvae import chem  # RDKit: imported only by a conditional run's config

        try:
            names = tuple(chem.property_name(n) for n in self.conditions)
        except UsageError as exc:
            raise UsageError(f"invalid training configuration: conditions: {exc}") from exc
        if len(set(names)) != len(names):
            raise UsageError(f"invalid training configuration: conditions repeat: {list(self.conditions)}.")
        # Decoding without a target takes c from the property head's prediction at z (issue 26), so the head
        # must predict every condition.
        missing = [n for n in names if n not in {chem.name_key(p) for p in self.properties}]
        if missing:
            raise UsageError(f"invalid training configuration: conditions {missing} are not among properties "
                             f"{list(self.properties)}; add them: the property head predicts c where no target "
                             "is given.")
        object.__setattr__(self, "conditions", names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["properties"] = list(self.properties)
        d["conditions"] = list(self.conditions)
        d["unlabelled"] = list(self.unlabelled)
        d["model"] = dict(self.model)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping (e.g. JSON); unknown keys raise UsageError naming the valid ones."""
        from molvae.arguments import unknown_fields

        if unknown := unknown_fields(cls, d):
            valid = sorted(f.name for f in fields(cls))
            raise UsageError(f"unknown training settings {unknown}; valid: {', '.join(valid)}.")
        return cls(**dict(d))

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)


# What each annotation accepts, as the message names it. A path may stand for a string (it is kept as one);
# checkpoint_every and time_budget also take a bare number (500 steps, 0 seconds), as JSON writes it.
_EXPECTED = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string",
             "str | None": "a string or null", "tuple[str, ...]": "a list of strings",
             "tuple[str, ...] | None": "a list of strings or null",
             "Mapping[str, Any]": "an object of model settings"}
_NUMBER_AS_TEXT = ("checkpoint_every", "time_budget")


def _typed(name: str, annotation: str, value: Any) -> Any:
    """`value` of TrainConfig field `name` in the form the field holds (str for a path, a tuple for a list),
    or UsageError naming the field, the value and the type expected. A field of another annotation (a
    later one) passes unchanged."""
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation == "int" and is_int:
        return int(value)
    if annotation == "float" and is_real and math.isfinite(value):
        return float(value)
    if annotation == "bool" and isinstance(value, bool):
        return value
    if annotation in ("str", "str | None"):
        if value is None and annotation == "str | None":
            return None
        if isinstance(value, (str, os.PathLike)) or (name in _NUMBER_AS_TEXT and is_real):
            return str(value)
        if name == "amp" and isinstance(value, bool):
            return "auto" if value else "off"
    if annotation in ("tuple[str, ...]", "tuple[str, ...] | None"):
        if value is None:
            return None if annotation.endswith("None") else ()
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
            return tuple(str(v) for v in value)
    if annotation == "Mapping[str, Any]":
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return dict(value)
    if annotation not in _EXPECTED:
        return value
    raise UsageError(f"invalid training configuration: {name} must be {_EXPECTED[annotation]}, "
                     f"got {value!r} ({type(value).__name__}).")


def _init_conditions(init: str) -> tuple[str, ...]:
    """The condition names of the `init` model (shipped name or checkpoint directory), in c's order."""
    from molvae.model.checkpoint import condition_stats, read_config, resolve_model

    return tuple(condition_stats(read_config(resolve_model(init))))


def checkpoint_interval(text: str) -> tuple[str, float] | None:
    """("steps", N) for "N", ("seconds", 60 * M) for "Mm", ("off", 0) for "0"; None when malformed."""
    text = text.strip().lower()
    try:
        if text.endswith("m"):
            seconds = duration_seconds(text)
            return ("seconds", seconds) if seconds else None
        steps = int(text)
    except ValueError:
        return None
    if steps < 0:
        return None
    return ("steps", float(steps)) if steps else ("off", 0.0)


def duration_seconds(text: str) -> float | None:
    """Seconds in "5400s", "90m", "1.5h" or a bare number of seconds; 0 for "0"; None when malformed."""
    text = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(text[-1:], 1.0)
    try:
        value = float(text[:-1] if text[-1:] in "smh" else text)
    except ValueError:
        return None
    return value * scale if value >= 0 and value == value and value != float("inf") else None


def load_train_config(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path` (a partial TrainConfig), with a clear error when unreadable."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read training config {path}: {exc}") from exc
    if not isinstance(d, dict):
        raise UsageError(f"training config {path} must hold a JSON object of TrainConfig fields.")
    return d


def field_default(name: str) -> Any:
    """The TrainConfig default of field `name` (read from the class: nothing is constructed)."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def train_config_from_cli(config_file: str | None = None, **given: Any) -> TrainConfig:
    """A TrainConfig from the TrainConfig defaults, a JSON config file and CLI options.

    Precedence: an option in `given` whose value is not None > the file > FINE_TUNE_DEFAULTS when
    the run has an `init` model > the TrainConfig default. None means "not typed" (every `molvae train`
    option defaults to None), so a typed value overrides the file even when it equals the default.
    Fields whose value may itself be None (smiles_col, resume, init) therefore cannot be reset to None
    from the CLI, only left alone.
    """
    typed = {key: value for key, value in given.items() if value is not None}
    from_file: dict[str, Any] = load_train_config(config_file) if config_file else {}
    merged = dict(FINE_TUNE_DEFAULTS) if (typed.get("init") or from_file.get("init")) else {}
    merged.update(from_file)
    merged.update(typed)
    return TrainConfig.from_dict(merged)
