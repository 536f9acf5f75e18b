"""Generation: `load()` gives a `MolVAE` (the notebook API) that samples, encodes, decodes,
reconstructs and interpolates, returning molecule tables. A `MolVAE` holds a `MoleculeCodec` (network,
tokenizer, vocabulary; the batched steps between molecules and latents) and a `LatentPrior` (what sampling
draws from); `fit_density` makes the learned latent density that prior uses. What the model says about
given molecules (predictions, scores, applicability domain) is `molvae.analysis`."""
from molvae.generation.api import DEFAULT_MODEL, MolVAE, load, pretrained_dir
from molvae.generation.codec import MoleculeCodec
from molvae.generation.density_fit import DensityConfig, fit_density
from molvae.generation.prior import LatentPrior

__all__ = ["MolVAE", "load", "DEFAULT_MODEL", "pretrained_dir", "MoleculeCodec", "LatentPrior", "DensityConfig",
           "fit_density"]
