"""The MOSES VAE as a timing and reconstruction reference (docs/benchmarks.md, "Speed").

The reference is `moses/vae/{model,trainer,config}.py` from the molsets 0.3.1 wheel (found with
`wheel`, in the molvae cache, or fetched with `pip download --no-deps molsets==0.3.1`), imported
without running the package's `__init__` (its metrics need packages that no longer install); tqdm is
stubbed if absent. Its default config, its own training step and its own sampling loop are used
unchanged but for one shim: its `sample` builds the end-of-sequence mask as uint8 and negates it with
`~`, which was a logical not in the PyTorch it was written for and is a bitwise not today; the mask is
made bool, which restores the original behaviour.
"""
from __future__ import annotations

import importlib.machinery
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from molvae import chem

__all__ = ["moses_sources", "import_moses_vae", "moses_sampler", "moses_flops_per_token", "MosesRunner",
           "moses_train_for", "moses_reconstruct"]


def moses_sources(source: str | Path | None = None) -> Path:
    """A directory holding the MOSES package's sources (`moses/`, its data sets left out), registered as the
    package `moses` without running its `__init__`. `source`: such a directory, or a molsets wheel (extracted
    to a temporary directory, with the shim), default the wheel in the molvae cache (fetched if absent)."""
    if source is not None and Path(source).is_dir():
        src = Path(source)
    else:
        if source is None:
            from molvae.data.datasets import find_moses_wheel

            source = find_moses_wheel()
        src = Path(tempfile.mkdtemp(prefix="moses_src_"))
        with zipfile.ZipFile(source) as zf:
            zf.extractall(src, [n for n in zf.namelist() if n.startswith("moses/") and "/dataset/data/" not in n])
        model_py = src / "moses" / "vae" / "model.py"
        text = model_py.read_text()
        if "dtype=torch.uint8" not in text:
            raise RuntimeError(f"shim target 'dtype=torch.uint8' not found in {model_py}")
        model_py.write_text(text.replace("dtype=torch.uint8", "dtype=torch.bool"))
    package = types.ModuleType("moses")
    package.__path__ = [str(src / "moses")]  # a namespace stand-in: skips moses/__init__.py
    package.__spec__ = importlib.machinery.ModuleSpec("moses", None, is_package=True)
    package.__spec__.submodule_search_locations = package.__path__
    sys.modules["moses"] = package
    return src


def import_moses_vae(wheel: str | Path | None = None) -> types.SimpleNamespace:
    """The MOSES VAE model class, trainer class, config parser and vocabulary class, from the sources of
    `moses_sources(wheel)`. Fields: VAE, Trainer, parser, OneHotVocab, wheel (the source)."""
    import torch._dynamo  # noqa: F401  (imported before the stubs below: it inspects module specs)

    src = moses_sources(wheel)
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:  # the trainer imports tqdm; the benchmark never shows its bars
        for name in ("tqdm", "tqdm.auto"):
            stub = types.ModuleType(name)
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
            stub.tqdm = lambda it=None, **kw: it
            sys.modules[name] = stub
    from moses.utils import OneHotVocab
    from moses.vae.config import get_parser
    from moses.vae.model import VAE as MosesVAE
    from moses.vae.trainer import VAETrainer

    return types.SimpleNamespace(VAE=MosesVAE, Trainer=VAETrainer, parser=get_parser, OneHotVocab=OneHotVocab,
                                 wheel=str(wheel or src))


def moses_sampler(moses: types.SimpleNamespace, train_smiles: list[str]) -> Any:
    """An untrained MOSES VAE in eval mode with its default config and the one-hot character vocabulary of
    `train_smiles`, as MOSES builds it; `.sample(n, max_len=100)` -> list of n strings."""
    vocab = moses.OneHotVocab.from_data(train_smiles)
    return moses.VAE(vocab, moses.parser().parse_args([])).eval()


def moses_flops_per_token(model: Any) -> float:
    """Forward FLOPs per token of a MOSES VAE (GRU and output matmuls; a multiply-add is 2 FLOPs), counted as
    molvae's `VAE.flops_per_token` counts its own."""
    def gru(rnn: torch.nn.GRU) -> float:
        f = 0.0
        for layer in range(rnn.num_layers):
            inp = rnn.input_size if layer == 0 else rnn.hidden_size * (2 if rnn.bidirectional else 1)
            f += 2 * 3 * rnn.hidden_size * (inp + rnn.hidden_size) * (2 if rnn.bidirectional else 1)
        return f

    out = 2.0 * model.decoder_fc.in_features * model.decoder_fc.out_features
    return gru(model.encoder_rnn) + gru(model.decoder_rnn) + out


class MosesRunner:
    """The MOSES VAE trainer's inner step (as in VAETrainer._train_epoch) with its default config and
    `batch` molecules per step: its own collate, forward, backward, clipping, Adam, reading the losses."""

    def __init__(self, moses: types.SimpleNamespace, smiles: list[str], batch: int, seed: int = 0):
        self.name = "MOSES VAE (reference)"
        self.config = moses.parser().parse_args([])
        self.config.n_batch = batch
        torch.manual_seed(seed)
        self.trainer = moses.Trainer(self.config)
        vocab = self.trainer.get_vocabulary(smiles)
        self.model = moses.VAE(vocab, self.config)
        self.loader = self.trainer.get_dataloader(self.model, smiles, shuffle=True)
        self.it = iter(self.loader)
        self.opt = torch.optim.Adam(self.trainer.get_optim_params(self.model), lr=self.config.lr_start)
        self.kl_weight = self.config.kl_w_start

    def _next_batch(self) -> Any:
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def step(self) -> tuple[int, int, int]:
        """One training step; returns (molecules, tokens, tokens computed on: the same, it packs)."""
        self.model.train()
        batch = tuple(x.to(self.model.device) for x in self._next_batch())
        kl_loss, recon_loss = self.model(batch)
        loss = self.kl_weight * kl_loss + recon_loss
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainer.get_optim_params(self.model), self.config.clip_grad)
        self.opt.step()
        kl_loss.item(), recon_loss.item(), loss.item()
        n_tok = sum(len(x) for x in batch)
        return len(batch), n_tok, n_tok

    def flops_per_token(self) -> float:
        """Forward FLOPs per token (see `moses_flops_per_token`)."""
        return moses_flops_per_token(self.model)


def moses_train_for(seconds: float, runner: MosesRunner) -> tuple[int, float]:
    """Train with MOSES's loop at epoch 0 of its schedule (kl weight kl_w_start, lr_start) for `seconds` of
    wall time; returns (steps, epochs)."""
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        runner.step()
        steps += 1
    return steps, steps * runner.config.n_batch / len(runner.loader.dataset)


@torch.no_grad()
def moses_reconstruct(model: Any, smiles: list[str], max_len: int = 100) -> tuple[float, float]:
    """(exact canonical reconstruction rate, teacher-forced reconstruction nats per molecule) of `smiles` by a
    MOSES VAE: its encoder's mean, argmax decoding in its own sampling loop (at most `max_len` tokens)."""
    model.eval()
    hits, nats = 0, 0.0
    for start in range(0, len(smiles), 256):
        chunk = smiles[start:start + 256]
        x = [model.string2tensor(s) for s in chunk]
        order = sorted(range(len(x)), key=lambda i: -len(x[i]))
        packed = torch.nn.utils.rnn.pack_sequence([model.x_emb(x[i]) for i in order])
        _, h = model.encoder_rnn(packed, None)
        h = h[-(1 + int(model.encoder_rnn.bidirectional)):]
        z = model.q_mu(torch.cat(h.split(1), dim=-1).squeeze(0))  # rows in `order`
        sorted_x = [x[i] for i in order]
        # forward_decoder returns the mean CE over predicted tokens; scaled to nats per molecule.
        nats += float(model.forward_decoder(sorted_x, z)) * sum(len(t) - 1 for t in sorted_x)
        for j, text in enumerate(_argmax_decode(model, z, max_len)):
            hits += chem.canonical(text) == chem.canonical(chunk[order[j]])
    return hits / max(len(smiles), 1), nats / max(len(smiles), 1)


def _argmax_decode(model: Any, z: torch.Tensor, max_len: int) -> list[str]:
    """MOSES's sampling loop with argmax instead of sampling: strings of latents `z` (n, latent)."""
    n = len(z)
    hid = model.decoder_lat(z).unsqueeze(0).repeat(model.decoder_rnn.num_layers, 1, 1)
    w = torch.full((n,), model.bos, dtype=torch.long)
    out = torch.full((n, max_len), model.pad, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    for i in range(max_len):
        o, hid = model.decoder_rnn(torch.cat([model.x_emb(w).unsqueeze(1), z.unsqueeze(1)], -1), hid)
        w = model.decoder_fc(o.squeeze(1)).argmax(-1)
        out[~done, i] = w[~done]
        done |= w == model.eos
        if bool(done.all()):
            break
    texts = []
    for row in out.tolist():
        ids = row[: row.index(model.eos)] if model.eos in row else row
        texts.append(model.vocabulary.ids2string(ids, rem_bos=False, rem_eos=False))
    return texts
