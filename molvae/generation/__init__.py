"""Generation: `load()` gives a `MolVAE` (the notebook API) that samples, encodes, decodes,
reconstructs, interpolates and predicts, returning molecule tables."""
from molvae.generation.api import DEFAULT_MODEL, MolVAE, load, pretrained_dir

__all__ = ["MolVAE", "load", "DEFAULT_MODEL", "pretrained_dir"]
