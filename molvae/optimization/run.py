"""Latent-space optimization: `molvae.optimize(model, objective, ...)` -> DataFrame.

Three methods share one interface and one budget of decoded molecules per start
(`molvae.optimization.search`): "gradient" (normalized steps on the property head's prediction
plus the learned latent log-density, in units of the start's posterior std:
`molvae.optimization.gradient`), "random" (prior draws or perturbations around the start) and
"bo" (Gaussian-process expected improvement). Whatever guides the
search, results are chosen and reported by the decoded molecule's RDKit values only
(`molvae.optimization.objectives` explains scoring, units and the plogp guide).

Result rows: the `top_k` best distinct molecules per start that pass every constraint and
differ from the start, best first. Columns:

- start_id, start (SMILES; for prior starts the molecule the starting latent decodes to),
  rank, smiles (canonical), method
- score_before, score, improvement (score - score_before), improved (improvement > 0)
- per objective property p: p_before, p_after (the result values: RDKit, or for a user's
  column the head's prediction on the re-encoded molecule, see `scored_by`), p_pred (the
  head's prediction at the latent the molecule was decoded from)
- score_pred, similarity (Tanimoto, Morgan r=2 2048 bits, to the start), step (first
  decode step that produced the molecule), n_decoded (latents this start decoded), scored_by

`df.attrs`: method, objectives, n_decoded, budget (all starts), budget_per_start, n_valid, n_ok
(passed every constraint), settings (the resolved `SearchSettings` as a dict),
rejected ({reason: count of decoded latents}; a latent is counted under every reason it
fails), guidance, seed, seconds, similarity, constraints (dict), and run: a `RunRecord`
whose `trajectories` is a DataFrame of every decoded latent (traj, start_id, step, smiles,
canonical, valid, ok, result, rejected, similarity, score, score_pred, per objective p and
p_pred; see `molvae.plotting.trajectories.plot_trajectories`) and `starts` a per-start summary
(n_decoded, n_valid, n_results, best_score, improved).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from molvae import arguments, chem
from molvae.model import inference
from molvae.errors import DataError, UsageError
from molvae.optimization.objectives import (
    REJECT_REASONS,
    Constraints,
    Objective,
    Scorer,
    parse_objectives,
)
from molvae.optimization.bo import bo_search
from molvae.optimization.gradient import gradient_search, place_copies
from molvae.optimization.likelihood import StartLikelihood
from molvae.optimization.search import Evaluator, Starts, decode_steps, random_search
from molvae.optimization.settings import SearchSettings, resolve_settings

__all__ = ["optimize", "Objective", "Constraints", "RunRecord", "METHODS", "SearchSettings"]

METHODS = ("gradient", "random", "bo")


class RunRecord:
    """The per-latent and per-start records of one `optimize` run (`df.attrs["run"]`).

    Kept in a plain object, compared by identity and shared rather than deep-copied when
    pandas copies `attrs`: a DataFrame in `attrs` makes `pd.concat` of two results fail
    (pandas compares attrs with ==) and would be copied by every DataFrame operation."""

    __slots__ = ("starts", "trajectories")

    def __init__(self, trajectories: pd.DataFrame, starts: pd.DataFrame):
        self.trajectories, self.starts = trajectories, starts

    def __deepcopy__(self, memo: dict) -> RunRecord:
        return self

    def __repr__(self) -> str:
        return f"RunRecord({len(self.trajectories)} decoded latents, {len(self.starts)} starts)"


def _starts(model: Any, start: str | Sequence[str] | None, n_starts: int, seed: int, spread: float) -> Starts:
    """Prior draws (start None), or each user molecule encoded to its posterior (mean mu,
    std sigma) with n_starts trajectories of its own: the first at mu, the others at
    mu + spread * sigma * eps."""
    z_dim = model.latent_dim
    if start is None:
        z0 = inference.prior(n_starts, z_dim, seed)
        return Starts(z0, np.arange(n_starts), torch.ones_like(z0), [None] * n_starts, [None] * n_starts, True)
    try:
        items = [start] if isinstance(start, str) else list(start)
    except TypeError:
        raise UsageError(f"start must be a SMILES string, a list of them or None, got {type(start).__name__}") from None
    if not items:
        raise UsageError("start is an empty list; pass SMILES strings or None for prior samples")
    from molvae.generation.inputs import encode_batched, encode_inputs

    try:
        enc = encode_inputs(items, model.tokenizer, model.vocab, "error", max_len=model.max_len)
    except DataError as exc:
        raise DataError(f"cannot start from the given molecule(s): {exc}") from exc
    mu, logvar = encode_batched(model.model, enc.ids, 1024, model.precision)
    per = n_starts
    gen = torch.Generator().manual_seed(int(seed))
    mu_t, sd_t = torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * logvar))
    group = np.repeat(np.arange(len(items)), per)
    z0 = mu_t[group].clone()
    sigma = sd_t[group].clone()
    jitter = np.flatnonzero(np.tile(np.arange(per), len(items)) > 0)
    if len(jitter):
        z0[jitter] += spread * sigma[jitter] * torch.randn(len(jitter), z_dim, generator=gen)
    canon = [chem.canonical(s) for s in items]
    return Starts(z0, group, sigma, [str(s) for s in items], canon, False, center=mu_t[group].clone())


def _before(model: Any, scorer: Scorer, starts: Starts) -> pd.DataFrame:
    """Objective values of each start molecule (RDKit, or the head on its encoding)."""
    n = len(starts.smiles)
    out = pd.DataFrame(index=range(n))
    rd = scorer.rdkit_names()
    smiles = [s if s else "" for s in starts.canonical]
    if rd:
        values = chem.properties(smiles, rd)
        for name in rd:
            out[name] = values[name].to_numpy()
    head = scorer.head_only_names()
    for name in head:
        out[name] = math.nan
    ok = [i for i, s in enumerate(starts.canonical) if s]
    if head and ok:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z, rows = model.encode([smiles[i] for i in ok], on_invalid="skip", return_rows=True)
        if len(rows):
            with torch.no_grad():
                p = model.model.predict_props(torch.from_numpy(z).to(model.device)).float().cpu().numpy()
            vals = scorer.predicted_values(p)
            for name in head:
                out.loc[[ok[r] for r in rows], name] = np.asarray(vals[name], dtype=np.float64)
    out["score"] = scorer.score({n: out[n].to_numpy() for n in scorer.names}) if n else []
    return out


def _results(obs: pd.DataFrame, before: pd.DataFrame, starts: Starts, scorer: Scorer, method: str,
             top_k: int) -> pd.DataFrame:
    names = scorer.names
    per_start = obs.groupby("start_id").size() if len(obs) else pd.Series(dtype=int)
    good = obs[obs["result"].astype(bool)] if len(obs) else obs
    # Earliest step first so that a molecule found repeatedly keeps the step it was first found.
    good = good.sort_values(["start_id", "step", "traj"], kind="stable").drop_duplicates(["start_id", "canonical"])
    good = good.sort_values(["start_id", "score", "step"], ascending=[True, False, True], kind="stable")
    good = good.groupby("start_id", sort=True).head(top_k)
    rows = pd.DataFrame({
        "start_id": good["start_id"].to_numpy(dtype=np.int64),
        "start": [starts.smiles[g] for g in good["start_id"]],
    })
    rows["rank"] = good.groupby("start_id").cumcount().to_numpy() + 1
    rows["smiles"] = good["canonical"].to_numpy()
    rows["method"] = method
    sid = rows["start_id"].to_numpy()
    rows["score_before"] = before["score"].to_numpy()[sid] if len(sid) else []
    rows["score"] = good["score"].to_numpy()
    rows["improvement"] = rows["score"] - rows["score_before"]
    rows["improved"] = (rows["improvement"] > 0) | (rows["score_before"].isna() & rows["score"].notna())
    for n in names:
        rows[f"{n}_before"] = before[n].to_numpy()[sid] if len(sid) else []
        rows[f"{n}_after"] = good[n].to_numpy()
        rows[f"{n}_pred"] = good[f"{n}_pred"].to_numpy()
    rows["score_pred"] = good["score_pred"].to_numpy()
    rows["similarity"] = good["similarity"].to_numpy()
    rows["step"] = good["step"].to_numpy(dtype=np.int64)
    rows["n_decoded"] = per_start.reindex(sid).fillna(0).to_numpy(dtype=np.int64) if len(sid) else []
    rows["scored_by"] = scorer.scored_by()
    return rows.reset_index(drop=True)


def _start_summary(obs: pd.DataFrame, before: pd.DataFrame, starts: Starts) -> pd.DataFrame:
    n = len(starts.smiles)
    out = pd.DataFrame({"start_id": np.arange(n), "start": starts.smiles, "score_before": before["score"].to_numpy()})
    if len(obs):
        g = obs.groupby("start_id")
        out["n_decoded"] = g.size().reindex(range(n)).fillna(0).astype(int).to_numpy()
        out["n_valid"] = g["valid"].sum().reindex(range(n)).fillna(0).astype(int).to_numpy()
        res = obs[obs["result"].astype(bool)].groupby("start_id")
        out["n_results"] = res["canonical"].nunique().reindex(range(n)).fillna(0).astype(int).to_numpy()
        out["best_score"] = res["score"].max().reindex(range(n)).to_numpy(dtype=np.float64)
    else:
        out["n_decoded"] = out["n_valid"] = out["n_results"] = 0
        out["best_score"] = math.nan
    out["improved"] = (out["best_score"] > out["score_before"]) | (out["score_before"].isna()
                                                                  & out["best_score"].notna())
    return out


def optimize(model: Any, objective: str | Objective | Sequence[str | Objective] = "logp",
             n_starts: int | None = None, steps: int | None = None, lr: float | None = None,
             method: str = "gradient", start: str | Sequence[str] | None = None, similarity: float | None = None,
             constraints: Constraints | None = None, density_weight: float | None = None,
             trust_radius: float | None = None, decode_every: int | None = None, budget: int | None = None,
             seed: int = 0, top_k: int = 1, n_jobs: int | None = 1, noise: float | None = None,
             spread: float | None = None, temperature: float | None = None, heads: Any = None,
             uncertainty_weight: float | None = None, candidates: int | None = None,
             refine_steps: int | None = None, target_nll: float | None = None) -> pd.DataFrame:
    """Search the latent space of `model` (a `MolVAE`) for molecules that score well.

    objective: "logp", "qed:max:1.0,sa:min:0.5", "logp:target=2.5", an `Objective` or a list;
      names are case-insensitive. The gradient method needs properties the head predicts
      (plogp / plogp_raw are guided from the logP and SA heads); random and bo also take any
      RDKit property (`chem.PROPERTY_NAMES`). Otherwise UsageError lists what is possible.
    start: SMILES or list of SMILES, or None for prior draws. Each start molecule gets its own
      trajectories and its own budget.
    Search settings (None: the default of the method and kind of start, `settings.DEFAULTS`;
      see `SearchSettings` for units): n_starts (prior starts, or trajectories per start
      molecule), steps, decode_every (decode each trajectory every k steps and at the last),
      budget (decoded molecules per start; default: what the decode steps spend), lr (step
      length, posterior stds), density_weight (learned latent log-density, gradient), trust_radius
      (posterior stds from the start; random and bo sample inside it), noise (Langevin, gradient),
      spread (copies of a start molecule around its mean), temperature (0: greedy decoding; T > 0:
      sampling at T, the contract of `molvae.optimization.settings`),
      uncertainty_weight (gradient: penalty on the disagreement of `heads`); gradient from start
      molecules: candidates (copies searched per start, of which n_starts are decoded: those whose
      decoder likelihood of the start is nearest target_nll nats) and refine_steps (steps towards the
      latent that reconstructs the start; the copies begin between it and the mean).
    heads: a `HeadEnsemble` or the directory holding one (`molvae.optimization.heads`); gradient only.
    similarity: Tanimoto floor in [0, 1] to the start molecule. constraints: `Constraints`.
    top_k: rows per start. n_jobs: processes for RDKit rescoring of large batches (0 or None: all cores).
    Returns the result DataFrame (see module docstring); it may be empty: nothing valid
    passed the constraints, and `attrs["rejected"]` says why.
    """
    t0 = time.perf_counter()
    seed, top_k, similarity, constraints = _checked(method, start, seed, top_k, similarity, constraints, n_jobs)
    cfg = resolve_settings(method, start is not None, dict(
        n_starts=n_starts, steps=steps, decode_every=decode_every, budget=budget, lr=lr,
        density_weight=density_weight, trust_radius=trust_radius, noise=noise, spread=spread,
        temperature=temperature, uncertainty_weight=uncertainty_weight, candidates=candidates,
        refine_steps=refine_steps, target_nll=target_nll))
    heads = _head_ensemble(heads, method, cfg, model)
    scorer = Scorer(parse_objectives(objective), model.prop_stats, need_guide=(method == "gradient"))
    if method == "gradient" and model.model.prop_head is None:
        raise UsageError("this model has no property head; use method='random' or 'bo'")

    local = method == "gradient" and start is not None
    copies = (cfg.candidates or cfg.n_starts) if local else cfg.n_starts
    starts = _starts(model, start, copies, seed, 0.0 if local else cfg.spread)
    likelihood = _place_local_copies(model, starts, copies, cfg, seed) if local else None
    per_start = None if starts.from_prior else copies
    budget_used = _budget_per_start(cfg, method, per_start)
    ev = Evaluator(model, scorer, constraints, starts, similarity, budget_used, n_jobs,
                   temperature=cfg.temperature, seed=seed)
    if method == "gradient":
        gradient_search(ev, cfg.steps, cfg.decode_every, cfg.lr, cfg.density_weight, cfg.trust_radius, cfg.noise,
                        seed, per_start, heads, cfg.uncertainty_weight, likelihood,
                        cfg.n_starts if local else None, cfg.target_nll)
    elif method == "random":
        random_search(ev, cfg.steps, cfg.decode_every, cfg.trust_radius, seed)
    else:
        bo_search(ev, cfg.steps, cfg.decode_every, cfg.trust_radius, seed)

    obs = ev.observations()
    before = _before(model, scorer, starts)
    df = _results(obs, before, starts, scorer, method, top_k)
    df.attrs.update(
        method=method, objectives=scorer.describe(), scored_by=scorer.scored_by(),
        n_decoded=int(ev.used), budget=int(budget_used) * starts.n_starts, budget_per_start=int(budget_used),
        settings=cfg.to_dict(), n_valid=int(obs["valid"].sum()) if len(obs) else 0,
        n_ok=int(obs["ok"].sum()) if len(obs) else 0, rejected=_rejected(obs),
        guidance=_guidance(method, cfg, model, scorer, heads, start is not None, copies), seed=seed,
        seconds=time.perf_counter() - t0, similarity=similarity, constraints=dataclasses.asdict(constraints),
        run=RunRecord(obs, _start_summary(obs, before, starts)),
    )
    return df


# ---------------------------------------------------------------- the steps of `optimize`
def _checked(method: Any, start: Any, seed: Any, top_k: Any, similarity: Any, constraints: Any,
             n_jobs: Any) -> tuple[int, int, float | None, Constraints]:
    """The arguments `resolve_settings` does not check, checked once here: (seed, top_k, similarity,
    constraints) in the types the steps below trust."""
    arguments.choice(method, "method", METHODS)
    top_k = arguments.positive_int(top_k, "top_k")
    if similarity is not None:
        similarity = arguments.number(similarity, "similarity", 0.0, 1.0)
        if start is None:
            raise UsageError("a similarity floor needs start molecules (start=SMILES or a list); prior starts have "
                             "no molecule to stay similar to")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer))):
        raise UsageError(f"n_jobs must be an integer (0 or None: all cores), got {n_jobs!r}")
    constraints = Constraints() if constraints is None else constraints
    if not isinstance(constraints, Constraints):
        raise UsageError(f"constraints must be a molvae.optimization.run.Constraints, got {type(constraints).__name__}")
    return int(seed), top_k, similarity, constraints


def _head_ensemble(heads: Any, method: str, cfg: SearchSettings, model: Any) -> Any:
    """The `HeadEnsemble` (loaded from its directory when given one) checked against `model`, or None."""
    if heads is None:
        if cfg.uncertainty_weight > 0:
            raise UsageError("uncertainty_weight needs heads (a HeadEnsemble or its directory)")
        return None
    from molvae.optimization.heads import HeadEnsemble

    if method != "gradient":
        raise UsageError("heads guide the gradient method only; random and bo use no head")
    heads = heads if isinstance(heads, HeadEnsemble) else HeadEnsemble.load(heads)
    heads.check(model)
    return heads


def _place_local_copies(model: Any, starts: Starts, copies: int, cfg: SearchSettings, seed: int) -> StartLikelihood:
    """Gradient search from start molecules: the copies of each start move between the posterior mean and the
    latent that reconstructs the start (`gradient.place_copies`); returns the likelihood that ranks them."""
    likelihood = StartLikelihood(model, starts.smiles)
    z_star = likelihood.refine(starts.center[::copies], starts.sigma[::copies], cfg.refine_steps)
    place_copies(starts, copies, z_star if cfg.refine_steps else None, cfg.spread, seed)
    return likelihood


def _budget_per_start(cfg: SearchSettings, method: str, per_start: int | None) -> int:
    """Decoded molecules each start may spend: what the decode steps spend, capped by `cfg.budget`."""
    plan = decode_steps(cfg.steps, cfg.decode_every)
    if method == "gradient" and per_start is not None:
        plan = [p for p in plan if p > 0]
    spend = (cfg.n_starts if per_start else 1) * len(plan)
    return spend if cfg.budget is None else min(cfg.budget, spend)


def _rejected(obs: pd.DataFrame) -> dict[str, int]:
    """{reason: decoded latents that failed it} (a latent counts under every reason it fails)."""
    rejected = {r: 0 for r in REJECT_REASONS}
    if len(obs):
        for text in obs["rejected"]:
            for r in filter(None, str(text).split(",")):
                rejected[r] += 1
        rejected["duplicate_of_start"] = int((obs["ok"] & ~obs["result"]).sum())
    return rejected


def _guidance(method: str, cfg: SearchSettings, model: Any, scorer: Scorer, heads: Any, from_molecules: bool,
              copies: int) -> str:
    """One sentence on what guided the search and how it decoded (`df.attrs["guidance"]`)."""
    radius = f", within {cfg.trust_radius:g} posterior stds of the start" if cfg.trust_radius else ""
    local = method == "gradient" and from_molecules
    if method == "gradient":
        text = (f"normalized steps of {cfg.lr:g} posterior stds on the head's predicted score"
                + (f" + {cfg.density_weight:g} x log q(z) ({model.density_kind})" if cfg.density_weight else "")
                + (f", Langevin noise {cfg.noise:g}" if cfg.noise else "")
                + (f" - {cfg.uncertainty_weight:g} x the std of the score across {heads.n_members} heads"
                   if heads is not None and cfg.uncertainty_weight else "") + radius)
        if local and cfg.refine_steps:
            text += (f"; copies begin between the posterior mean and the latent that reconstructs the start "
                     f"({cfg.refine_steps} steps on the decoder's log-likelihood of the start)")
        if local and copies > cfg.n_starts:
            text += (f"; of {copies} copies per start, the {cfg.n_starts} whose -log p(start | z) is nearest "
                     f"{cfg.target_nll:g} nats are decoded")
    elif method == "random":
        text = ("prior draws" if not from_molecules and cfg.trust_radius is None
                else "random perturbations around the start" + radius)
    else:
        text = "GP (Matern 5/2) expected improvement over random candidate latents, batched" + radius
    text += (f"; decoded by sampling at temperature {cfg.temperature:g}" if cfg.temperature
             else "; decoded greedily")
    if scorer.needs_cycle():
        text += "; plogp predicted from the logP and SA heads plus the decoded molecule's ring penalty"
    return text
