"""Where a conditional model's latents and conditions come from when it samples inside a property window
(`MolVAE.sample(n, where=...)`; docs/conditional.md). The unconditional way is the steered prior
(`molvae.generation.steered_prior`); this one replaces it for the windows on conditioned properties.

A conditional model's learned density is a posterior mixture whose components keep their training
molecule's conditioning vector c (`LatentDensity.conds`). A window picks the components whose molecule lies
inside it: their c is a realistic joint property vector that meets the window (the properties the window
does not name stay as they occur together in the data), and their z is a latent the decoder has seen with
that c. Draws take z from the component's posterior and c with it. Where fewer than `MIN_INSIDE` training
molecules meet the window, the components nearest it are taken instead with c moved into the window (by
`INSIDE_MARGIN` of the property's training std, or to the middle of a narrower window), so a window beyond
the data is asked for, not refused; RDKit checks every molecule anyway.

A component used again mostly decodes to a molecule already found, so uses are spread as in the steered
prior (`pick_slots`: the j-th use of a component weighs `DECAY`^j) and a component whose decode repeated a
molecule is charged `REPEAT_COST` further uses.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from molvae.generation.steered_prior import DECAY, REPEAT_COST, pick_slots

if TYPE_CHECKING:
    from molvae.generation.codec import MoleculeCodec
    from molvae.generation.conditions import Window
    from molvae.model.density import LatentDensity

__all__ = ["ConditionedDraws", "conditioned_windows", "MIN_INSIDE", "INSIDE_MARGIN", "NEAREST"]

MIN_INSIDE = 16  # training molecules inside the window below which the nearest components are moved into it
NEAREST = 256  # components taken, nearest the window first, when too few are inside it
INSIDE_MARGIN = 0.25  # of the property's training std: how far inside a window a moved condition is placed


def conditioned_windows(codec: MoleculeCodec, windows: Sequence[Window]) -> list[Window]:
    """The windows on properties the model is conditioned on (the ones `ConditionedDraws` can target)."""
    return [w for w in windows if w.name in codec.cond_names]


def move_inside(values: np.ndarray, windows: Sequence[Window], std: np.ndarray) -> np.ndarray:
    """Values (n, S) in units, one column per window, moved into their windows: a value inside stays; one
    outside goes `INSIDE_MARGIN` std past the nearest bound (never past the window's middle)."""
    out = np.array(values, dtype=np.float64, copy=True)
    for j, w in enumerate(windows):
        half = (w.hi - w.lo) / 2 if math.isfinite(w.hi - w.lo) else math.inf
        step = min(INSIDE_MARGIN * std[j], half)
        col = out[:, j]
        col[col < w.lo] = w.lo + step
        col[col > w.hi] = w.hi - step
    return out


class ConditionedDraws:
    """(z, c) draws for a conditional model's posterior-mixture `density` (with stored conds) inside
    `windows` (all on conditioned properties). `inside` says how many training molecules of the density
    met the windows; `moved` whether the nearest components' conditions had to be moved into them."""

    def __init__(self, codec: MoleculeCodec, density: LatentDensity, windows: Sequence[Window], scale: float = 1.0):
        self.density, self.windows, self.scale = density, list(windows), float(scale)
        cols = [codec.cond_names.index(w.name) for w in self.windows]
        units = codec.unstandardize(density.conds)  # (K, C)
        values = units[:, cols]
        inside = np.ones(len(units), dtype=bool)
        for j, w in enumerate(self.windows):
            inside &= w.contains(values[:, j])
        self.inside = int(inside.sum())
        self.moved = self.inside < MIN_INSIDE
        if not self.moved:
            self.pool = np.flatnonzero(inside)
            self.conds = density.conds.double().cpu().numpy()[self.pool]
        else:
            std = np.asarray([codec.cond_stats[w.name][1] for w in self.windows])
            dist = np.zeros(len(units))
            for j, w in enumerate(self.windows):
                dist += (np.maximum(w.lo - values[:, j], 0) + np.maximum(values[:, j] - w.hi, 0)) ** 2 / std[j] ** 2
            self.pool = np.argsort(dist, kind="stable")[:NEAREST]
            units = units[self.pool]
            units[:, cols] = move_inside(units[:, cols], self.windows, std)
            self.conds = codec.standardize(units).double().numpy()
        self.uses = np.zeros(len(self.pool))
        self._last = np.zeros(0, dtype=np.int64)

    def draw(self, m: int, gen: torch.Generator, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """m latents (m, Z) and their conditions c (m, C), float32 on CPU."""
        weights = self.density.weights.double().cpu().numpy()[self.pool]
        k = pick_slots(weights, self.uses, m, rng, decay=DECAY)
        np.add.at(self.uses, k, 1)
        self._last = k
        comp = torch.from_numpy(self.pool[k])
        eps = torch.randn(m, self.density.dim, generator=gen, dtype=torch.float64) * self.scale
        z = self.density.means.double().cpu()[comp] + self.density.scales.double().cpu()[comp] * eps
        return z.float(), torch.from_numpy(self.conds[k]).float()

    def observe(self, repeated: np.ndarray) -> None:
        """Damp the components of the latest draws whose decode repeated a molecule (repeated (m,) bool)."""
        if len(self._last) == len(repeated):
            np.add.at(self.uses, self._last[repeated], REPEAT_COST)

    def summary(self) -> dict[str, object]:
        return {"inside": self.inside, "moved": self.moved, "components": int(len(self.pool))}
