"""Latent-space optimization: `optimize(model, objective, ...)`, its objectives and constraints, and the
search loops (gradient, random, Bayesian optimization)."""
from molvae.optimization.objectives import Constraints, Objective
from molvae.optimization.run import METHODS, optimize

__all__ = ["optimize", "Objective", "Constraints", "METHODS"]
