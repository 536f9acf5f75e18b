"""Streaming samples straight into a file in chunks (`molvae sample -o FILE`), so that a run of ten million
molecules needs the memory of one chunk, not of the whole table. (`molvae.cli.input_stream` is the other
direction: molecules read from a file in chunks for `molvae score` and `molvae predict`.)

Each chunk is an ordinary `MolVAE.sample` call; chunk 0 uses the run's seed itself (a run that fits in
one chunk writes exactly what `MolVAE.sample(n, seed)` returns) and chunk k > 0 a seed derived from it.
Uniqueness and novelty are counted over the whole run from 64-bit hashes of the canonical SMILES
(`molvae.files.smiles_hash`): 8 bytes per valid molecule instead of the row itself.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from molvae import arguments
from molvae.model import inference

if TYPE_CHECKING:
    from molvae.generation.api import MolVAE

__all__ = ["StreamSummary", "sample_to_file", "chunk_seed"]

_CHUNK_KEY = 7_777_777  # derives chunk seeds from the run's seed


def chunk_seed(seed: int, k: int) -> int:
    """The seed of chunk k of a run seeded with `seed` (chunk 0: `seed` itself)."""
    return int(seed) if k == 0 else inference.sub_seed(seed, _CHUNK_KEY, k)


@dataclass(frozen=True)
class StreamSummary:
    """Counts over a whole streamed run: rows (molecules written to the table), valid, unique (distinct
    valid canonical SMILES), novel (distinct valid ones not in the training set; None when the training
    set is unknown), drawn (latents decoded), rows_written (rows in the file: .smi/.sdf keep valid
    molecules only), seed, seconds."""

    rows: int
    valid: int
    unique: int
    novel: int | None
    drawn: int
    rows_written: int
    seed: int
    seconds: float

    def line(self, n_asked: int | None = None) -> str:
        """The run's summary in the words of the CLI's summary line."""
        parts = [f"{self.rows} molecules" + (f" (asked {n_asked})" if n_asked is not None and n_asked != self.rows
                                             else "")]
        if self.rows:
            parts.append(f"valid {self.valid / self.rows:.1%}")
        if self.valid:
            parts.append(f"unique {self.unique / self.valid:.1%}")
        if self.novel is not None and self.unique:
            parts.append(f"novel {self.novel / self.unique:.1%}")
        parts.append(f"{self.seconds:.2f} s")
        if self.seconds > 0 and self.rows:
            parts.append(f"{self.rows / self.seconds:,.0f} molecules/s")
        return ", ".join(parts)


def _distinct(parts: list[np.ndarray]) -> np.ndarray:
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


def sample_to_file(vae: MolVAE, path: str | os.PathLike[str], n: int, chunk_size: int = 10_000,
                   seed: int | None = None, progress: Callable[[int], None] | None = None,
                   **sample_args: Any) -> StreamSummary:
    """Sample `n` molecules (`MolVAE.sample` with `sample_args`, e.g. temperature, prior, where) into
    `path` (.csv/.smi/.sdf/.parquet, written atomically) in chunks of `chunk_size`; returns the counts.
    `progress(k)` is called after each chunk of k molecules."""
    from molvae.data.write import MoleculeWriter
    from molvae.files import smiles_hash

    n = arguments.positive_int(n, "n")
    chunk_size = arguments.positive_int(chunk_size, "chunk_size")
    seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
    t0 = time.perf_counter()
    valid_hashes: list[np.ndarray] = []
    novel_hashes: list[np.ndarray] = []
    rows = valid = drawn = 0
    has_novel = True
    with MoleculeWriter(path) as writer:
        for k, start in enumerate(range(0, n, chunk_size)):
            df = vae.sample(min(chunk_size, n - start), seed=chunk_seed(seed, k), **sample_args)
            ok = df["valid"].to_numpy(dtype=bool)
            hashes = np.fromiter((smiles_hash(s) for s in df["canonical"][ok]), dtype=np.uint64, count=int(ok.sum()))
            valid_hashes.append(np.unique(hashes))
            has_novel = has_novel and "novel" in df
            if has_novel:
                novel_hashes.append(np.unique(hashes[df["novel"].to_numpy(dtype=bool)[ok]]))
            if len(valid_hashes) >= 64:  # merge now and then: the list of per-chunk arrays stays short
                valid_hashes, novel_hashes = [_distinct(valid_hashes)], [_distinct(novel_hashes)]
            rows, valid, drawn = rows + len(df), valid + int(ok.sum()), drawn + int(df.attrs.get("n_drawn", len(df)))
            df.index = range(len(df))
            writer.write(df)
            if progress is not None:
                progress(len(df))
    return StreamSummary(rows, valid, len(_distinct(valid_hashes)), len(_distinct(novel_hashes)) if has_novel else None,
                         drawn, writer.rows_written, seed, time.perf_counter() - t0)
