"""Batched decoding loops on a `VAE`: multinomial / greedy sampling and beam search.

Torch only (no RDKit, no strings): latents in, token ids out. Every step runs the whole
batch through `VAE.step` at once; no Python loop ever runs per molecule.

Shapes: B latents, K beam width, V vocabulary, L generated positions (EOS included).

Design notes (the measurements behind them: docs/results.md, "Inside the decoding loop"):
- Rows that have produced EOS are dropped from the running batch ("compaction"), so a
  batch costs the sum of its sequence lengths rather than B x the longest one, and the
  loop stops as soon as the last row has ended.
- bf16 autocast is the fast path on CPUs with AVX512-BF16/AMX. Logits are cast to fp32
  before softmax/argmax so that only the GRU/linear arithmetic is in bf16.
- Throughput per step is flat above a few hundred rows, so the shrinking batch costs
  little until its last few rows.
- Memory: in bf16 on CPU every linear/GRU product of a new batch size creates oneDNN
  kernels that stay in two caches of 1,024 entries each (ideep's LRU_CACHE_CAPACITY and
  oneDNN's primitive cache), and a compacted batch takes up to 1,024 sizes, so resident
  memory grows with each new size. The running batch is therefore padded to one of 22
  `batch_bucket` sizes there; padding copies a real row and its outputs are dropped.
- On a shared machine whose cores are busy, more than one torch thread can make each step
  far slower (OpenMP waits for a descheduled thread); the thread count is the caller's
  choice (torch.set_num_threads), not changed here.

Conditional models (`cfg.n_cond` = C > 0) need c (B, C), the standardized conditioning vector of
each latent, in every loop here; c follows its latent through compaction and beams. Which c to use
is the caller's decision (a window's target, or the property head's prediction at z), so a missing c
raises rather than being guessed here.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
import torch
import torch.nn.functional as F

from molvae import runtime

__all__ = [
    "PRECISIONS",
    "METHODS",
    "resolve_precision",
    "autocast",
    "prior",
    "batch_bucket",
    "sample_ids",
    "nucleus",
    "beam_search",
    "decode",
    "sub_seed",
    "slerp",
]

PRECISIONS = ("auto", "fp32", "bf16")
METHODS = ("multinomial", "greedy", "beam")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> "bf16" where the hardware runs it natively (CUDA with bf16, CPU with
    AVX512-BF16/AMX; `molvae.runtime.resolve_amp`), else "fp32"; `precision` is one of `PRECISIONS`."""
    amp = {"auto": "auto", "fp32": "off", "bf16": "bf16"}[precision]
    return "bf16" if runtime.resolve_amp(amp, device) is not None else "fp32"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """Autocast context for a resolved precision ("fp32": no autocast)."""
    return runtime.autocast(device, torch.bfloat16 if precision == "bf16" else None)


def prior(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """n draws from N(0, I), (n, latent_dim) float32 on CPU, determined by `seed` alone
    (drawn on CPU so that a seed gives the same latents on every device)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(n, latent_dim, generator=gen)


def sub_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one batch or round, derived from the user's seed and `keys`."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), *keys]).generate_state(2, np.uint64)
    return int(state[0] >> np.uint64(1))


def batch_bucket(n: int) -> int:
    """The padded size a running batch of n rows is decoded at: the next power of two up to
    64, then the next multiple of 64 (1024 rows and fewer: 22 sizes; at most 63 padded rows,
    and below about 256 rows a step costs the same whatever the size)."""
    n = int(n)
    return 1 << max(n - 1, 0).bit_length() if n <= 64 else -(-n // 64) * 64


def _padded(idx: torch.Tensor, size: int) -> torch.Tensor:
    """idx (n,) with n >= 1 extended to (size,) by repeating idx[0]: the padding rows copy a real row."""
    return idx if len(idx) >= size else torch.cat([idx, idx[:1].expand(size - len(idx))])


def _require_cond(model: torch.nn.Module, c: torch.Tensor | None, n: int) -> None:
    """ValueError unless c fits the model: (n, n_cond) for a conditional model, None for another."""
    n_cond = int(getattr(model.cfg, "n_cond", 0))
    if n_cond and c is None:
        raise ValueError(f"this model is conditional (n_cond={n_cond}): decoding needs c, an ({n}, {n_cond}) "
                         "tensor of standardized conditioning properties, one row per latent (for no target, "
                         "the property head's prediction at z)")
    if not n_cond and c is not None:
        raise ValueError("this model is unconditional (n_cond=0): decode without c")
    if c is not None and tuple(c.shape) != (n, n_cond):
        raise ValueError(f"c has shape {tuple(c.shape)}; decoding {n} latents needs ({n}, {n_cond})")


def _ban_mask(cfg: object, banned: Sequence[int], device: torch.device) -> torch.Tensor:
    """(V,) additive logit mask: -inf at PAD, BOS and `banned`, 0 elsewhere."""
    mask = torch.zeros(cfg.vocab_size, device=device)
    mask[[cfg.pad_id, cfg.bos_id, *banned]] = float("-inf")
    return mask


@torch.no_grad()
def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus (top-p) filtering of token probabilities (B, V): per row, the most probable tokens whose
    cumulative probability first reaches `top_p` (at least one) keep their probability, the others get 0;
    torch.multinomial renormalizes. Unlike a lower temperature, it cuts the unlikely tail and leaves the
    ratios between the likely tokens as they are."""
    sorted_p, order = probs.sort(dim=-1, descending=True)
    drop = (sorted_p.cumsum(-1) - sorted_p) >= top_p  # the mass before a token already reaches top_p
    return probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))


def sample_ids(
    model: torch.nn.Module,
    z: torch.Tensor,
    method: str = "multinomial",
    temperature: float = 1.0,
    max_len: int | None = None,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
    banned: Sequence[int] = (),
    bucketed: bool | None = None,
    c: torch.Tensor | None = None,
    top_p: float = 1.0,
) -> torch.Tensor:
    """Decode latents z (B, Z) token by token (conditional models: with conditions c (B, C)).

    method "multinomial" draws each token from softmax(logits / temperature) (using
    `generator` if given), restricted to its nucleus when top_p < 1 (`nucleus`); "greedy"
    takes the argmax (temperature and top_p are then irrelevant).
    Returns ids (B, L) long on z's device: the generated tokens after BOS, EOS included,
    PAD after EOS; L <= max_len - 1 (max_len counts BOS and EOS, default the model's).
    Rows without EOS were cut at max_len. Finished rows leave the running batch, and the
    loop ends when none is left. PAD, BOS and the ids in `banned` (e.g. <unk>) are never
    generated: they are not molecule tokens.

    bucketed: run the batch at `batch_bucket` sizes, padded with copies of a running row
    whose outputs are dropped (None: on CPU in bf16, where each new batch size would add
    oneDNN kernels to caches of 1,024 entries that are never freed; see the module notes).
    The real rows' logits are the same bits either way in bf16 on CPU, so the tokens are too.
    """
    cfg = model.cfg
    _require_cond(model, c, z.size(0))
    steps = int(max_len or cfg.max_len) - 1
    B, device = z.size(0), z.device
    out = torch.full((B, max(steps, 0)), cfg.pad_id, dtype=torch.long, device=device)
    if B == 0 or steps <= 0:
        return out
    if bucketed is None:
        bucketed = device.type == "cpu" and precision == "bf16"

    def size(n: int) -> int:
        return batch_bucket(n) if bucketed else n

    active = torch.arange(B, device=device)  # rows of `out` still running
    slots = _padded(torch.arange(B, device=device), size(B))  # running slot -> running row (n real, then copies)
    mask = _ban_mask(cfg, banned, device)
    used = 0
    ca = c.to(device)[slots] if c is not None else None
    with autocast(device, precision):
        za = z[slots]
        h = model.init_hidden(za, ca)  # (layers, len(slots), H); the first len(active) slots are the real rows
        tok = torch.full((len(slots),), cfg.bos_id, dtype=torch.long, device=device)
        for t in range(steps):
            logits, h = model.step(tok, h, za, ca)
            logits = logits[:len(active)].float() + mask
            if method == "greedy":
                nxt = logits.argmax(-1)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                if top_p < 1.0:
                    probs = nucleus(probs, top_p)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            out[active, t] = nxt
            used = t + 1
            ended = nxt == cfg.eos_id
            if bool(ended.any()):
                keep = (~ended).nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                active, nxt = active[keep], nxt[keep]
                slots = _padded(torch.arange(len(keep), device=device), size(len(keep)))
                h, za = h[:, keep[slots]], za[keep[slots]]
                ca = ca[keep[slots]] if ca is not None else None
            tok = nxt[slots] if len(slots) > len(nxt) else nxt
    return out[:, :used]


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    z: torch.Tensor,
    beam_width: int = 5,
    max_len: int | None = None,
    precision: str = "fp32",
    banned: Sequence[int] = (),
    c: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search for the most likely token sequences given each latent z (B, Z) (and its
    conditions c (B, C) for a conditional model).

    Returns ids (B, K, L) long (after BOS, EOS included, PAD after it) and scores (B, K)
    float32, the summed token log-probabilities (nats), best beam first. A finished beam
    is carried on unchanged at no cost, competing with the running ones. Stops when all
    B*K beams have ended or after max_len - 1 tokens. Tokens are restricted as in `sample_ids`.
    """
    cfg = model.cfg
    _require_cond(model, c, z.size(0))
    steps = int(max_len or cfg.max_len) - 1
    B, K, V, device = z.size(0), beam_width, cfg.vocab_size, z.device
    if B == 0 or steps <= 0:
        return (torch.full((B, K, 0), cfg.pad_id, dtype=torch.long, device=device),
                torch.zeros(B, K, device=device))
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first at step one
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    hist = torch.empty(B, K, 0, dtype=torch.long, device=device)
    # A finished beam may only continue with PAD, at log-probability 0.
    carry = torch.full((V,), float("-inf"), device=device)
    carry[cfg.pad_id] = 0.0
    base = (torch.arange(B, device=device) * K).unsqueeze(1)
    mask = _ban_mask(cfg, banned, device)
    with autocast(device, precision):
        c = c.to(device) if c is not None else None
        h = model.init_hidden(z, c).repeat_interleave(K, dim=1)  # (layers, B*K, H)
        ck = c.repeat_interleave(K, dim=0) if c is not None else None  # each beam keeps its latent's c
        zk = z.repeat_interleave(K, dim=0)
        tok = torch.full((B * K,), cfg.bos_id, dtype=torch.long, device=device)
        for _ in range(steps):
            logits, h = model.step(tok, h, zk, ck)
            logp = F.log_softmax(logits.float() + mask, dim=-1).view(B, K, V)
            logp = torch.where(finished.unsqueeze(-1), carry, logp)
            scores, idx = (scores.unsqueeze(-1) + logp).view(B, K * V).topk(K, dim=1)
            origin, token = idx // V, idx % V
            hist = torch.cat([hist.gather(1, origin.unsqueeze(-1).expand(-1, -1, hist.size(2))),
                              token.unsqueeze(-1)], dim=2)
            finished = finished.gather(1, origin) | (token == cfg.eos_id)
            flat = (origin + base).view(-1)
            h, tok = h[:, flat], token.view(-1)
            if bool(finished.all()):
                break
    return hist, scores


def decode(
    model: torch.nn.Module,
    z: torch.Tensor,
    method: str,
    temperature: float = 1.0,
    seed: int = 0,
    beam_width: int = 5,
    batch_size: int = 1024,
    max_len: int | None = None,
    precision: str = "fp32",
    banned: Sequence[int] = (),
    c: torch.Tensor | None = None,
    top_p: float = 1.0,
) -> np.ndarray:
    """Decode latents z (n, Z) (any device) in batches on the model's device; a conditional model
    needs c (n, C), the standardized conditions of each latent.

    Returns ids (n, L) int64 numpy, PAD-padded (see `sample_ids`). "beam" keeps the best
    beam per latent and runs batch_size // beam_width latents at once. Multinomial batch k
    draws from a generator seeded with sub_seed(seed, k), so a result depends on (seed,
    batch_size, device, precision) only. Arguments are trusted: `MolVAE` checks them.
    """
    _require_cond(model, c, z.size(0))
    max_len = int(max_len if max_len is not None else model.cfg.max_len)
    size = batch_size
    if method == "beam":
        size = max(1, size // beam_width)  # B*K rows run at once
    device = next(model.parameters()).device
    parts = []
    for k, start in enumerate(range(0, z.size(0), size)):
        zb = z[start:start + size].to(device)
        cb = c[start:start + size].to(device) if c is not None else None
        if method == "beam":
            ids = beam_search(model, zb, beam_width, max_len, precision, banned, c=cb)[0][:, 0]
        else:
            gen = torch.Generator(device=device).manual_seed(sub_seed(seed, k)) if method == "multinomial" else None
            ids = sample_ids(model, zb, method, temperature, max_len, gen, precision, banned, c=cb, top_p=top_p)
        parts.append(ids.cpu().numpy())
    out = np.full((z.size(0), max((p.shape[1] for p in parts), default=0)), model.cfg.pad_id, dtype=np.int64)
    row = 0
    for p in parts:
        out[row:row + len(p), :p.shape[1]] = p
        row += len(p)
    return out


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between vectors a and b (Z,) at fractions t (k,) -> (k, Z)
    float32; linear where a and b are (anti)parallel or one is zero."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    linear = (a[None] + t[:, None] * (b - a)[None]).astype(np.float32)
    if na < 1e-8 or nb < 1e-8:
        return linear
    omega = np.arccos(float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)))
    if np.sin(omega) < 1e-6:
        return linear
    wa = np.sin((1.0 - t) * omega) / np.sin(omega)
    wb = np.sin(t * omega) / np.sin(omega)
    return (wa[:, None] * a[None] + wb[:, None] * b[None]).astype(np.float32)
