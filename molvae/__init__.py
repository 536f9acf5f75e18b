"""molvae: a GRU variational autoencoder for molecules, with a property head for latent-space optimization.

Heavy modules (torch, RDKit) load on first use, so `import molvae` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "MolVAE", "optimize", "evaluate", "chem", "charts", "plots", "__version__"]

_LAZY = {
    "load": ("molvae.generate", "load"),
    "MolVAE": ("molvae.generate", "MolVAE"),
    # the module itself is callable (molvae.optimize(...)) and also holds Constraints etc.; returning the
    # function on first access and the module afterwards (once imported) would make the attribute change type
    "optimize": ("molvae.optimize", None),
    "evaluate": ("molvae.metrics", "evaluate"),
    "chem": ("molvae.chem", None),
    "charts": ("molvae.charts", None),
    "plots": ("molvae.plots", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'molvae' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)


def __dir__() -> list[str]:
    return sorted(__all__)
