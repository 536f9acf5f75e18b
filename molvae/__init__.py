"""molvae: a GRU variational autoencoder for molecules, with a property head for latent-space optimization.

The public API is `load`, `MolVAE`, `optimize`, `evaluate`, `fit`, `TrainConfig` and the module `chem`,
plus the subpackages `data`, `model`, `train`, `generation`, `analysis`, `optimization`, `evaluation` and
`plotting`, whose `__init__` modules name their public functions. Heavy modules (torch, RDKit) load on first
use, so `import molvae` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "MolVAE", "optimize", "evaluate", "fit", "TrainConfig", "chem", "data", "model", "train",
           "generation", "analysis", "optimization", "evaluation", "plotting", "__version__"]

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "load": ("molvae.generation.api", "load"),
    "MolVAE": ("molvae.generation.api", "MolVAE"),
    "optimize": ("molvae.optimization.run", "optimize"),
    "evaluate": ("molvae.evaluation.moses", "evaluate"),
    "fit": ("molvae.train.loop", "fit"),
    "TrainConfig": ("molvae.train.config", "TrainConfig"),
    **{name: (f"molvae.{name}", None) for name in ("chem", "data", "model", "train", "generation", "analysis",
                                                   "optimization", "evaluation", "plotting")},
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'molvae' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


def __dir__() -> list[str]:
    return sorted(__all__)
