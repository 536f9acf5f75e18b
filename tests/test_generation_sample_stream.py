"""Sampling straight to a file in chunks (`molvae.generation.sample_stream`, `molvae sample -o`) and the chunked
writer under it (`molvae.data.write.MoleculeWriter`), on the shipped default model."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import molvae
from molvae.data.write import MoleculeWriter, write_molecules
from molvae.errors import UsageError
from molvae.generation.sample_stream import chunk_seed, sample_to_file
from molvae.model import inference

pytestmark = pytest.mark.usefixtures("one_thread")


def test_one_chunk_is_exactly_sample(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    summary = sample_to_file(shipped, tmp_path / "a.csv", 20, chunk_size=50, seed=4)
    write_molecules(shipped.sample(20, seed=4), tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert summary.rows == summary.rows_written == summary.drawn == 20 and summary.seed == 4


def test_chunks_count_over_the_whole_run(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    path = tmp_path / "run.csv"
    summary = sample_to_file(shipped, path, 23, chunk_size=6, seed=5, temperature=1.5)
    df = pd.read_csv(path)
    assert len(df) == 23 and summary.rows == 23
    first = shipped.sample(6, seed=chunk_seed(5, 0), temperature=1.5)
    second = shipped.sample(6, seed=chunk_seed(5, 1), temperature=1.5)
    assert df["smiles"].head(12).fillna("").tolist() == pd.concat([first, second])["smiles"].tolist()
    valid = df[df["valid"]]
    distinct = valid.drop_duplicates("canonical")
    assert summary.valid == len(valid) and summary.unique == len(distinct)
    assert summary.novel == int(distinct["novel"].sum())
    assert summary.line(23).startswith(f"23 molecules, valid {len(valid) / 23:.1%}, unique")


def test_smi_names_and_parquet_chunks(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    sample_to_file(shipped, tmp_path / "run.smi", 15, chunk_size=4, seed=6)
    names = [int(line.split("\t")[1]) for line in (tmp_path / "run.smi").read_text().splitlines()]
    assert names == sorted(names) and len(set(names)) == len(names) and max(names) <= 14 and len(names) >= 10
    sample_to_file(shipped, tmp_path / "run.parquet", 15, chunk_size=4, seed=6, properties=["qed"])
    df = pd.read_parquet(tmp_path / "run.parquet")
    assert len(df) == 15 and list(df.columns) == ["smiles", "valid", "canonical", "qed", "novel"]


def test_failed_run_leaves_no_file(shipped: molvae.MolVAE, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown property"):
        sample_to_file(shipped, tmp_path / "x.csv", 10, chunk_size=4, seed=0, where="foo>=1")
    assert list(tmp_path.iterdir()) == []


def test_writer_empty_and_chunked(tmp_path: Path) -> None:
    with MoleculeWriter(tmp_path / "empty.parquet"):
        pass
    assert len(pd.read_parquet(tmp_path / "empty.parquet")) == 0
    with MoleculeWriter(tmp_path / "two.csv") as writer:
        writer.write(pd.DataFrame({"smiles": ["CCO", "C"], "x": [1.0, 2.0]}))
        writer.write(pd.DataFrame({"smiles": ["CCN"], "x": [3.0]}))
    assert pd.read_csv(tmp_path / "two.csv").to_dict("list") == {"smiles": ["CCO", "C", "CCN"], "x": [1.0, 2.0, 3.0]}
    assert writer.rows_written == 3


def test_batch_bucket_sizes() -> None:
    sizes = [inference.batch_bucket(n) for n in range(1, 1025)]
    assert sizes[:9] == [1, 2, 4, 4, 8, 8, 8, 8, 16] and sizes[63] == 64 and sizes[64] == 128
    assert all(0 <= s - n < 64 for n, s in enumerate(sizes, 1)) and len(set(sizes)) == 22
    assert inference.batch_bucket(1025) == 1088


def test_bucketed_decoding_runs_few_shapes_and_keeps_the_tokens(shipped: molvae.MolVAE,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoding batch runs at bucket sizes only (each new size would grow oneDNN's caches in bf16),
    and in bf16 on CPU the padding rows change no token of the real rows."""
    model, device = shipped.model, torch.device("cpu")
    precision = inference.resolve_precision("auto", device)
    z = shipped.draw_latents(150, torch.Generator().manual_seed(3), "density")
    sizes: list[int] = []
    step = model.step

    def recording_step(tok: torch.Tensor, h: torch.Tensor, za: torch.Tensor,
                       c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        sizes.append(len(tok))
        return step(tok, h, za, c)

    def run(bucketed: bool) -> torch.Tensor:
        sizes.clear()
        return inference.sample_ids(model, z, "multinomial", 1.0, None, torch.Generator().manual_seed(9), precision,
                                    (shipped.vocab.unk_id,), bucketed=bucketed)

    monkeypatch.setattr(model, "step", recording_step)
    plain = run(False)
    compacted = set(sizes)
    bucketed = run(True)
    assert set(sizes) <= {inference.batch_bucket(n) for n in range(1, 151)} and len(set(sizes)) < len(compacted)
    assert sizes[0] == 192 and len(sizes) == plain.shape[1]
    if precision == "bf16":  # the default there; fp32 (MKL) may differ in the last bit at some batch sizes
        assert torch.equal(plain, bucketed)
        monkeypatch.setattr(model, "step", step)
        greedy = inference.sample_ids(model, z, "greedy", precision=precision, bucketed=True)
        with inference.autocast(device, precision):
            ref = model.greedy_decode(z)  # the whole batch at every step: no compaction, no padding
        assert torch.equal(greedy, ref[:, :greedy.size(1)]) and (ref[:, greedy.size(1):] == model.cfg.pad_id).all()
