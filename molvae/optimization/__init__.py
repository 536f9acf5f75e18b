"""Latent-space optimization: `optimize(model, objective, ...)`, its objectives and constraints, the search
loops (density-aware gradient, random, Bayesian optimization) and a post-hoc head ensemble."""
from molvae.optimization.heads import HeadEnsemble, fit_heads
from molvae.optimization.objectives import Constraints, Objective
from molvae.optimization.run import METHODS, optimize
from molvae.optimization.settings import SearchSettings

__all__ = ["optimize", "Objective", "Constraints", "METHODS", "SearchSettings", "HeadEnsemble", "fit_heads"]
