"""The GRU variational autoencoder (torch only; knows nothing of RDKit or strings).

Shapes: B batch, T time steps (tokens incl. BOS/EOS), V vocabulary, Z latent_dim, H hidden.

Design choices, each measured against the alternative on the project's 2-core CPU (docs/results.md,
"Training speed and memory", has the figures and the command):
- Sequences are padded, not packed. Packing costs more in index bookkeeping than it saves
  in arithmetic once batches are length-bucketed (data.batches: ~1% padding), and padded
  GRUs run as one call per layer. Padding never changes the result: the decoder's loss ignores
  positions after EOS, and the encoder reads its forward state at the last real token and
  runs its backward direction on each sequence reversed within its own length (so no
  PAD is ever read before a real token). `ModelConfig.pack=True` switches to packed
  sequences (same parameters, same results within float error) for comparison.
- Mixed precision is the caller's business (train.py wraps the forward pass in
  `torch.autocast`, bf16); losses are computed in fp32 here regardless.

Property conditioning (`ModelConfig.n_cond` = C > 0; docs/conditional.md): c (B, C) holds standardized
RDKit properties. The decoder reads it at its start (`c_to_h`, added to the initial state beside z) and
at every step (concatenated after the embedding and z, so it is the last C input columns of the
decoder GRU's first layer); with `cond_encoder` the encoder's mu/logvar layers read it too (their last
C input columns). C = 0 is the unconditional model, with the same parameter names and shapes as before
conditioning existed. Every weight that reads c reads it through its last C columns, so zeroing them
makes a conditional model compute what its unconditional base computes (molvae.train.warm_start).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from molvae.model.losses import kl_divergence, masked_property_loss

__all__ = ["ModelConfig", "Encoder", "Decoder", "PropertyHead", "VAE"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a `VAE`. `vocab_size`, ids and `n_props` come from the data.

    Defaults are the project's default model, sized for CPU training under bf16 autocast
    (18.4 MFLOP per token for training, vs 26.4 for the MOSES VAE's 3x512 decoder).
    `z_to_hidden`: initial decoder state is a linear map of z; `z_every_step`: z is
    concatenated to the decoder input at every step. At least one must be True.
    `max_len`: longest sequence (tokens incl. BOS/EOS) generation decodes by default.
    `n_cond`: length C of the property-conditioning vector c (0: unconditional); comes from the data.
    `cond_encoder`: the encoder reads c too (q(z | x, c)); only meaningful with n_cond > 0.
    """

    vocab_size: int
    embed_dim: int = 64
    enc_hidden: int = 256
    enc_layers: int = 1
    bidirectional: bool = True
    latent_dim: int = 64
    dec_hidden: int = 512
    dec_layers: int = 2
    z_to_hidden: bool = True
    z_every_step: bool = True
    dropout: float = 0.0
    n_props: int = 0
    prop_hidden: int = 128
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    max_len: int = 128
    pack: bool = False
    n_cond: int = 0
    cond_encoder: bool = False

    def __post_init__(self) -> None:
        positive = ("vocab_size", "embed_dim", "enc_hidden", "enc_layers", "latent_dim", "dec_hidden",
                    "dec_layers", "prop_hidden", "max_len")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_props < 0 or self.n_cond < 0:
            raise ValueError(f"ModelConfig.n_props and n_cond must be >= 0, got {self.n_props}, {self.n_cond}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        if not (self.z_to_hidden or self.z_every_step):
            raise ValueError("ModelConfig: z_to_hidden and z_every_step are both False; the decoder would ignore z")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)} is outside the vocabulary")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of `to_dict`; unknown keys raise (a newer format), missing ones take defaults."""
        from molvae.arguments import unknown_fields

        if unknown := unknown_fields(cls, d):
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        return cls(**dict(d))


def _reverse_within_length(ids: torch.Tensor, lengths: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Each row's first `length` entries reversed, PAD after: (B, T) -> (B, T)."""
    t = torch.arange(ids.size(1), device=ids.device).unsqueeze(0)
    last = lengths.unsqueeze(1) - 1
    rev = ids.gather(1, (last - t).clamp(min=0))
    return rev.masked_fill(t > last, pad_id)


def _run_gru(rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor | None, h0: torch.Tensor | None,
             pack: bool) -> torch.Tensor:
    """Top-layer outputs (B, T, H) of a batch-first GRU; packed or on padded input."""
    if not pack or lengths is None:
        return rnn(x, h0)[0]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out = rnn(packed, h0)[0]
    return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


class Encoder(nn.Module):
    """Token embeddings (B, T, E) (and c (B, C) with `cond_encoder`) -> posterior mean and log-variance,
    each (B, Z).

    The bidirectional encoder is two unidirectional GRUs rather than one `bidirectional=True`
    GRU: the backward one reads each sequence reversed within its length, which keeps
    padding from leaking into the state without packing.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        drop = cfg.dropout if cfg.enc_layers > 1 else 0.0
        self.fwd = nn.GRU(cfg.embed_dim, cfg.enc_hidden, cfg.enc_layers, batch_first=True, dropout=drop)
        self.bwd = (nn.GRU(cfg.embed_dim, cfg.enc_hidden, cfg.enc_layers, batch_first=True, dropout=drop)
                    if cfg.bidirectional else None)
        out = cfg.enc_hidden * (2 if cfg.bidirectional else 1)
        out += cfg.n_cond if cfg.cond_encoder else 0  # c joins the pooled state: its last C columns
        self.to_mu = nn.Linear(out, cfg.latent_dim)
        self.to_logvar = nn.Linear(out, cfg.latent_dim)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, embed: nn.Embedding,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.cfg.enc_hidden)
        states = [_run_gru(self.fwd, embed(ids), lengths, None, self.cfg.pack).gather(1, last)]
        if self.bwd is not None:
            rev = _reverse_within_length(ids, lengths, self.cfg.pad_id)
            states.append(_run_gru(self.bwd, embed(rev), lengths, None, self.cfg.pack).gather(1, last))
        h = torch.cat(states, dim=-1).squeeze(1)
        if self.cfg.cond_encoder and self.cfg.n_cond:
            h = torch.cat([h, c.to(h.dtype)], dim=-1)
        return self.to_mu(h), self.to_logvar(h)


class Decoder(nn.Module):
    """GRU language model conditioned on z (initial state and/or input at every step) and, with
    n_cond > 0, on c (added to the initial state and concatenated to every step's input)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        in_dim = cfg.embed_dim + (cfg.latent_dim if cfg.z_every_step else 0) + cfg.n_cond
        drop = cfg.dropout if cfg.dec_layers > 1 else 0.0
        self.rnn = nn.GRU(in_dim, cfg.dec_hidden, cfg.dec_layers, batch_first=True, dropout=drop)
        self.z_to_h = nn.Linear(cfg.latent_dim, cfg.dec_layers * cfg.dec_hidden) if cfg.z_to_hidden else None
        # No bias: z_to_h has one, and without it zero weights add exactly nothing (warm start).
        self.c_to_h = nn.Linear(cfg.n_cond, cfg.dec_layers * cfg.dec_hidden, bias=False) if cfg.n_cond else None
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.dec_hidden, cfg.vocab_size)

    def init_hidden(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, Z), c (B, C) or None -> initial state (layers, B, H)."""
        cfg = self.cfg
        shape = (z.size(0), cfg.dec_layers, cfg.dec_hidden)
        h = self.z_to_h(z).view(shape) if self.z_to_h is not None else None
        if self.c_to_h is not None:
            hc = self.c_to_h(c).view(shape)
            h = hc if h is None else h + hc
        if h is None:
            return z.new_zeros(cfg.dec_layers, z.size(0), cfg.dec_hidden)
        return h.transpose(0, 1).contiguous()

    def _inputs(self, emb: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Step inputs (B, T, E [+ Z] [+ C]): the embedding, then z, then c (its last columns)."""
        parts = [emb]
        if self.cfg.z_every_step:
            parts.append(z.unsqueeze(1).expand(-1, emb.size(1), -1).to(emb.dtype))
        if self.cfg.n_cond:
            parts.append(c.unsqueeze(1).expand(-1, emb.size(1), -1).to(emb.dtype))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else emb

    def forward(self, emb: torch.Tensor, z: torch.Tensor, lengths: torch.Tensor | None = None,
                c: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: input embeddings (B, T, E), z (B, Z), c (B, C) or None -> logits (B, T, V)."""
        h0 = self.init_hidden(z, c)
        out = _run_gru(self.rnn, self._inputs(emb, z, c), lengths, h0, self.cfg.pack)
        return self.out(self.drop(out))

    def step(self, emb: torch.Tensor, h: torch.Tensor, z: torch.Tensor,
             c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step for a whole batch: emb (B, E), h (layers, B, H), c (B, C) or None -> logits (B, V), new h."""
        out, h = self.rnn(self._inputs(emb.unsqueeze(1), z, c), h)
        return self.out(out[:, 0]), h


class PropertyHead(nn.Module):
    """MLP from the latent (the posterior mean in training) to standardized properties (B, P)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.prop_hidden), nn.SiLU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.prop_hidden, cfg.prop_hidden), nn.SiLU(),
            nn.Linear(cfg.prop_hidden, cfg.n_props),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VAE(nn.Module):
    """Embedding shared by encoder and decoder, GRU encoder/decoder, optional property head.

    Generation API (all batched; no per-molecule Python loops):
        h = model.init_hidden(z, c)              # (layers, B, H)
        logits, h = model.step(tok, h, z, c)     # tok (B,) long -> logits (B, V)
    c (B, C) is the standardized conditioning vector of a conditional model (n_cond = C > 0) and
    None for an unconditional one; `check_cond` says clearly when it is missing or misshapen.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.pad_id)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.prop_head = PropertyHead(cfg) if cfg.n_props > 0 else None

    # ----------------------------------------------------------------- pieces
    def check_cond(self, c: torch.Tensor | None, batch: int, needed: bool = True) -> None:
        """Raise ValueError unless c fits this model: None for an unconditional model, a (batch, n_cond)
        tensor for a conditional one (`needed`=False: None is accepted too, for the encoder without
        `cond_encoder`)."""
        n = self.cfg.n_cond
        if n == 0:
            if c is not None:
                raise ValueError("this model is unconditional (n_cond=0); call it without c")
            return
        if c is None:
            if needed:
                raise ValueError(f"this model is conditional: pass c, a (batch, {n}) tensor of its conditioning "
                                 "properties standardized with the checkpoint's 'conditions' mean/std (when no "
                                 "target is given, the property head's prediction at z)")
            return
        if tuple(c.shape) != (batch, n):
            raise ValueError(f"c has shape {tuple(c.shape)}; this model needs ({batch}, {n})")

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor,
               c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (B, T) long with BOS..EOS then PAD, lengths (B,) incl. BOS/EOS, c (B, C) (needed only
        with `cond_encoder`) -> mu, logvar (B, Z)."""
        self.check_cond(c, ids.size(0), needed=self.cfg.cond_encoder)
        mu, logvar = self.encoder(ids, lengths.to(ids.device), self.embed, c)
        return mu.float(), logvar.float()

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z = mu + sigma * eps; eps ~ N(0, I) unless given (train.py passes it for reproducibility)."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, ids_in: torch.Tensor, z: torch.Tensor, lengths: torch.Tensor | None = None,
                      c: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: ids_in (B, T) (BOS first), z (B, Z), c (B, C) -> logits (B, T, V) for the next tokens."""
        self.check_cond(c, z.size(0))
        return self.decoder(self.embed(ids_in), z, lengths, c)

    def init_hidden(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Initial decoder state (layers, B, H) for latents z (B, Z) and conditions c (B, C)."""
        self.check_cond(c, z.size(0))
        return self.decoder.init_hidden(z, c)

    def step(self, tok: torch.Tensor, h: torch.Tensor, z: torch.Tensor,
             c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoding step: previous tokens (B,) long, state (layers, B, H), z (B, Z), c (B, C)
        -> (logits (B, V), h)."""
        self.check_cond(c, z.size(0))
        return self.decoder.step(self.embed(tok), h, z, c)

    def predict_props(self, z: torch.Tensor) -> torch.Tensor:
        """Standardized property predictions (B, P) from latents (B, Z)."""
        if self.prop_head is None:
            raise RuntimeError("this model has no property head (n_props=0)")
        return self.prop_head(z)

    @torch.no_grad()
    def greedy_decode(self, z: torch.Tensor, max_len: int | None = None, c: torch.Tensor | None = None) -> torch.Tensor:
        """Argmax decoding from z (B, Z) (and c (B, C)) -> ids (B, <= max_len - 1) after BOS, EOS included,
        PAD after EOS.

        Stops as soon as every row has produced EOS.
        """
        max_len = max_len or self.cfg.max_len
        B = z.size(0)
        h = self.init_hidden(z, c)
        tok = torch.full((B,), self.cfg.bos_id, dtype=torch.long, device=z.device)
        done = torch.zeros(B, dtype=torch.bool, device=z.device)
        out = []
        for _ in range(max_len - 1):
            logits, h = self.step(tok, h, z, c)
            tok = logits.argmax(-1).masked_fill(done, self.cfg.pad_id)
            out.append(tok)
            done |= tok == self.cfg.eos_id
            if bool(done.all()):
                break
        return torch.stack(out, 1) if out else z.new_zeros(B, 0, dtype=torch.long)

    # ------------------------------------------------------------------ loss
    def forward(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        props: torch.Tensor | None = None,
        beta: float = 1.0,
        lambda_: float = 1.0,
        free_bits: float = 0.0,
        eps: torch.Tensor | None = None,
        denom: float | None = None,
        sample: bool = True,
        prop_on_samples: float = 0.0,
        c: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms for a batch.

        ids (B, T) long BOS..EOS+PAD; lengths (B,); props (B, P) standardized or None; c (B, C) the
        standardized conditioning properties of a conditional model (None otherwise).
        recon: cross-entropy summed over each molecule's tokens (PAD ignored), nats/molecule.
        kl: KL to the prior summed over latent dims, nats/molecule. `free_bits` (nats per dim)
            applies to the loss only: each dim's batch-mean KL counts as at least free_bits.
        prop: MSE of the property head on mu over the labelled cells of `props` (NaN: no label), per
            molecule (see `masked_property_loss`); with `prop_on_samples` = a > 0 (and `sample`), the
            mix (1 - a) * MSE at mu + a * MSE at the sampled z, so that the head also holds between
            posterior means, where gradient search moves.
        loss = recon + beta * kl_loss + lambda_ * prop. Terms are sums over the batch divided
        by `denom` (default B; train.py sets it so data-parallel shards average exactly).
        Also returns kl_per_dim (Z,), n_tokens, n_correct (teacher-forced argmax hits), mu, logvar.
        `sample=False` decodes from mu (validation).
        """
        B = ids.size(0)
        denom = float(denom if denom is not None else B)
        mu, logvar = self.encode(ids, lengths, c)
        z = self.reparameterize(mu, logvar, eps) if sample else mu
        logits = self.decode_logits(ids[:, :-1], z, lengths - 1 if self.cfg.pack else None, c).float()
        target = ids[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                             ignore_index=self.cfg.pad_id, reduction="none")
        recon = ce.sum() / denom
        kl_el = kl_divergence(mu, logvar)
        kl_per_dim = kl_el.sum(0) / denom
        kl = kl_per_dim.sum()
        kl_loss = torch.clamp(kl_per_dim, min=free_bits).sum() if free_bits > 0 else kl
        if self.prop_head is not None and props is not None and props.numel():
            prop = masked_property_loss(self.predict_props(mu).float(), props.float()) / denom
            if prop_on_samples > 0 and sample:
                at_z = masked_property_loss(self.predict_props(z).float(), props.float()) / denom
                prop = (1.0 - prop_on_samples) * prop + prop_on_samples * at_z
        else:
            prop = torch.zeros((), device=ids.device)
        loss = recon + beta * kl_loss + lambda_ * prop
        with torch.no_grad():
            mask = target != self.cfg.pad_id
            n_correct = ((logits.argmax(-1) == target) & mask).sum()
        return {
            "loss": loss, "recon": recon.detach(), "kl": kl.detach(), "kl_loss": kl_loss.detach(),
            "prop": prop.detach(), "kl_per_dim": kl_per_dim.detach(), "n_tokens": mask.sum(),
            "n_correct": n_correct, "mu": mu.detach(), "logvar": logvar.detach(),
        }

    # ------------------------------------------------------------- accounting
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> dict[str, float]:
        """Multiply-add FLOPs (2 per MAC) per token of the forward pass, by part.

        Training costs about 3x the forward (backward = 2x). The property head runs once
        per molecule and is ignored here.
        """
        c = self.cfg

        def gru(inp: int, hid: int, layers: int) -> float:
            f = 0.0
            for layer in range(layers):
                f += 2 * 3 * hid * ((inp if layer == 0 else hid) + hid)
            return f

        enc = gru(c.embed_dim, c.enc_hidden, c.enc_layers) * (2 if c.bidirectional else 1)
        dec = gru(c.embed_dim + (c.latent_dim if c.z_every_step else 0) + c.n_cond, c.dec_hidden, c.dec_layers)
        out = 2.0 * c.dec_hidden * c.vocab_size
        return {"encoder": enc, "decoder": dec, "output": out, "total": enc + dec + out}
