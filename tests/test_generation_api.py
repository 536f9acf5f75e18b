"""MolVAE generation API on a tiny trained checkpoint (fixture `gen_checkpoint` in conftest.py)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

import molvae
from molvae import chem
from molvae.model import inference as sampling
from molvae.errors import CheckpointError, DataError, UsageError
from molvae.generation.api import MolVAE
from molvae.data.write import write_molecules
from molvae.model.inference import slerp

TRAIN = pd.read_csv(Path(__file__).parent / "data" / "gen_train.csv")["smiles"].tolist()
PROPS = ["logp", "qed", "sa"]


pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def selfies_vae() -> MolVAE:
    """An untrained SELFIES model: only the plumbing (SELFIES -> SMILES) is under test."""
    from molvae.model import VAE, ModelConfig
    from molvae.data.tokens import Tokenizer, Vocabulary

    tok = Tokenizer("selfies")
    vocab = Vocabulary.build(tok.tokenize(s) for s in TRAIN)
    torch.manual_seed(0)
    model = VAE(ModelConfig(vocab_size=len(vocab), embed_dim=16, enc_hidden=32, latent_dim=8, dec_hidden=32,
                            dec_layers=1, max_len=40))
    return MolVAE(model, tok, vocab, device="cpu", precision="fp32", n_jobs=1)


# ----------------------------------------------------------------------------- loading
def test_load_missing_default_and_unknown_names(tmp_path: Path) -> None:
    if not (molvae.generation.api.pretrained_dir() / molvae.generation.api.DEFAULT_MODEL).is_dir():
        with pytest.raises(CheckpointError, match="default model"):
            molvae.load()
    with pytest.raises(CheckpointError, match="no model"):
        molvae.load("no-such-model")
    with pytest.raises(CheckpointError):
        molvae.load(tmp_path)  # a directory, but not a checkpoint


def test_repr_and_sizes(vae: MolVAE) -> None:
    assert vae.latent_dim == 16 and "smiles" in repr(vae) and "logp" in repr(vae)


# ------------------------------------------------------------------------------ sample
def test_sample_rows_columns_dtypes(vae: MolVAE) -> None:
    df = vae.sample(40, seed=0)
    assert len(df) == 40
    assert list(df.columns) == ["smiles", "valid", "canonical", *PROPS, "novel"]
    assert df["valid"].dtype == bool and df["novel"].dtype == bool
    for p in PROPS:
        assert df[p].dtype == np.float64
    assert all(isinstance(s, str) for s in df["smiles"])
    valid = df[df["valid"]]
    assert valid[PROPS].notna().all().all() and df.loc[~df["valid"], PROPS].isna().all().all()
    assert all(chem.canonical(s) == c for s, c in zip(valid["smiles"], valid["canonical"]))
    assert not df.loc[~df["valid"], "novel"].any()
    known = {chem.canonical(s) for s in TRAIN}
    assert (valid["novel"] == ~valid["canonical"].isin(known)).all()
    assert df.attrs["seed"] == 0 and df.attrs["n_drawn"] == 40


def test_sample_seeds_reproduce(vae: MolVAE) -> None:
    a = vae.sample(30, seed=5, properties=None)
    b = vae.sample(30, seed=5, properties=None)
    c = vae.sample(30, seed=6, properties=None)
    pd.testing.assert_frame_equal(a, b)
    assert a["smiles"].tolist() != c["smiles"].tolist()
    # A fresh seed is drawn and recorded when none is given, and it reproduces the draw.
    d = vae.sample(10, properties=None)
    e = vae.sample(10, seed=d.attrs["seed"], properties=None)
    assert d["smiles"].tolist() == e["smiles"].tolist()


def test_greedy_is_deterministic_and_matches_model_greedy_decode(vae: MolVAE) -> None:
    a = vae.sample(25, seed=1, method="greedy", properties=None)
    b = vae.sample(25, seed=1, method="greedy", properties=None)
    pd.testing.assert_frame_equal(a, b)
    # The batched loop that drops finished rows gives exactly the model's own greedy decoder.
    z = sampling.prior(25, vae.latent_dim, 3)
    ours = sampling.sample_ids(vae.model, z, "greedy", max_len=vae.max_len)
    ref = vae.model.greedy_decode(z, vae.max_len)
    width = max(ours.size(1), ref.size(1))
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.size(1)), value=vae.vocab.pad_id)
    assert torch.equal(pad(ours), pad(ref))


def test_sampling_stops_when_every_row_has_ended(vae: MolVAE) -> None:
    z = sampling.prior(64, vae.latent_dim, 0)
    ids = sampling.sample_ids(vae.model, z, "multinomial", max_len=vae.max_len,
                              generator=torch.Generator().manual_seed(0))
    ended = (ids == vae.vocab.eos_id).any(1)
    if ended.all():  # the loop ran exactly as long as the longest sequence
        assert (ids[:, -1] == vae.vocab.eos_id).any()
    # after the first EOS only PAD
    first = torch.where(ended, (ids == vae.vocab.eos_id).float().argmax(1), ids.size(1))
    cols = torch.arange(ids.size(1)).unsqueeze(0)
    assert (ids[cols > first.unsqueeze(1)] == vae.vocab.pad_id).all()


def test_beam(vae: MolVAE) -> None:
    df = vae.sample(12, seed=2, method="beam", beam_width=4, properties=None)
    assert len(df) == 12 and df["smiles"].map(lambda s: isinstance(s, str)).all()
    # width 1 is greedy
    g = vae.sample(12, seed=2, method="greedy", properties=None)
    b1 = vae.sample(12, seed=2, method="beam", beam_width=1, properties=None)
    assert g["smiles"].tolist() == b1["smiles"].tolist()
    z = sampling.prior(6, vae.latent_dim, 0)
    ids, scores = sampling.beam_search(vae.model, z, 4, vae.max_len)
    assert ids.shape[:2] == (6, 4) and scores.shape == (6, 4)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best beam first
    for k in range(4):  # each score is its sequence's log-probability under teacher forcing
        assert torch.allclose(scores[:, k], _sequence_logp(vae, z, ids[:, k]), atol=1e-4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(UsageError, match="beam_width"):
            vae.sample(3, method="beam", beam_width=bad)


def _sequence_logp(vae: MolVAE, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Log-probability (B,) of generated id rows (B, L) given z (teacher forcing), over the
    tokens generation may produce (PAD and BOS excluded)."""
    full = torch.cat([torch.full((len(z), 1), vae.vocab.bos_id), ids], 1)
    with torch.no_grad():
        logits = vae.model.decode_logits(full[:, :-1], z).float()
        logp = torch.log_softmax(logits + sampling._ban_mask(vae.model.cfg, (), z.device), -1)
    tok = full[:, 1:]
    lp = logp.gather(2, tok.unsqueeze(-1)).squeeze(-1)
    return torch.where(tok != vae.vocab.pad_id, lp, 0.0).sum(1)


def test_unique_valid(vae: MolVAE) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the tiny model may run out of draws
        df = vae.sample(15, seed=0, unique_valid=True, properties=["QED"])
    assert 0 < len(df) <= 15 and df["valid"].all() and df["canonical"].is_unique
    assert list(df.columns) == ["smiles", "valid", "canonical", "qed", "novel"]
    assert df["qed"].notna().all()


@pytest.mark.parametrize("kwargs", [
    {"n": 0}, {"n": -3}, {"n": 2.5}, {"n": 5, "temperature": 0}, {"n": 5, "temperature": -1.0},
    {"n": 5, "temperature": 11}, {"n": 5, "temperature": float("nan")}, {"n": 5, "method": "top-k"},
    {"n": 5, "properties": ["colour"]}, {"n": 5, "batch_size": 0},
])
def test_sample_usage_errors(vae: MolVAE, kwargs: dict) -> None:
    with pytest.raises(UsageError):
        vae.sample(**kwargs)


def test_temperature_changes_samples_and_batch_size_is_respected(vae: MolVAE) -> None:
    cold = vae.sample(40, seed=0, temperature=0.2, properties=None, batch_size=7)
    hot = vae.sample(40, seed=0, temperature=3.0, properties=None, batch_size=7)
    assert len(cold) == len(hot) == 40
    assert cold["valid"].mean() >= hot["valid"].mean()


def test_selfies_model_returns_smiles(selfies_vae: MolVAE) -> None:
    df = selfies_vae.sample(20, seed=0, properties=None)
    assert not df["smiles"].str.contains(r"\[C\]|\[Branch", regex=True).any()
    assert df["valid"].mean() > 0.8  # SELFIES decode to molecules almost always
    assert all(isinstance(s, str) for s in selfies_vae.decode(np.zeros((2, 8))))


def test_bf16_precision_runs(gen_checkpoint: Path) -> None:
    v = molvae.load(gen_checkpoint, device="cpu", precision="bf16")
    df = v.sample(8, seed=0, properties=None)
    assert len(df) == 8 and v.precision == "bf16"
    with pytest.raises(UsageError, match="precision"):
        molvae.load(gen_checkpoint, precision="fp8")


# ------------------------------------------------------------------------ encode/decode
def test_encode_shapes_and_posterior_samples(vae: MolVAE) -> None:
    mu = vae.encode(TRAIN[:5])
    assert mu.shape == (5, 16) and mu.dtype == np.float32
    assert np.allclose(vae.encode(TRAIN[0]), mu[:1], atol=1e-5)  # a single string gives one row
    assert np.allclose(vae.encode(list(reversed(TRAIN[:5]))), mu[::-1], atol=1e-5)  # batching by length
    s1, s2 = vae.encode(TRAIN[:5], sample=True, seed=1), vae.encode(TRAIN[:5], sample=True, seed=1)
    assert np.array_equal(s1, s2) and not np.allclose(s1, mu)
    # non-canonical input encodes like its canonical form
    assert np.allclose(vae.encode("OCC"), vae.encode("CCO"), atol=1e-6)


def test_encode_bad_input_error_names_row_value_and_token(vae: MolVAE) -> None:
    inputs = ["CCO", "C[Se]C", "C1CC", "c1ccccc1"]
    with pytest.raises(DataError) as err:
        vae.encode(inputs)
    msg = str(err.value)
    assert "row 1 'C[Se]C'" in msg and "'[Se]'" in msg and "vocabulary" in msg
    assert "row 2 'C1CC'" in msg and "on_invalid='skip'" in msg
    with pytest.warns(RuntimeWarning, match=r"skipped 2 of 4.*\[Se\]"):
        z, rows = vae.encode(inputs, on_invalid="skip", return_rows=True)
    assert z.shape == (2, 16) and rows.tolist() == [0, 3]
    assert np.allclose(z, vae.encode(["CCO", "c1ccccc1"]), atol=1e-5)
    for bad in ("", None, 7, "CC O"):
        with pytest.raises(DataError, match="row 0"):
            vae.encode([bad])
    with pytest.raises(UsageError, match="on_invalid"):
        vae.encode(["CCO"], on_invalid="ignore")


def test_decode(vae: MolVAE) -> None:
    z = vae.encode(TRAIN[:6])
    out = vae.decode(z)
    assert len(out) == 6 and out == vae.decode(z) and all(isinstance(s, str) for s in out)
    assert vae.decode(z[0]) == out[:1]  # one vector
    assert vae.decode(torch.from_numpy(z)) == out
    table = vae.decode_table(z)
    assert table["smiles"].tolist() == out and "qed" in table
    assert len(vae.decode(z, method="multinomial", seed=0)) == 6


@pytest.mark.parametrize("z", [np.zeros((3, 15)), np.zeros((3, 17)), np.zeros(5), np.zeros((2, 3, 16)),
                               np.full((1, 16), np.nan), [["a"] * 16]])
def test_decode_bad_latents(vae: MolVAE, z) -> None:
    with pytest.raises(UsageError, match="z "):
        vae.decode(z)


def test_decode_wrong_width_message(vae: MolVAE) -> None:
    with pytest.raises(UsageError, match=r"shape \(3, 15\).*16 dimensions"):
        vae.decode(np.zeros((3, 15)))


# --------------------------------------------------------------------------- analyses
def test_reconstruct_exact_agrees_with_canonical_comparison(vae: MolVAE) -> None:
    inputs = TRAIN[:20] + ["OCC"]
    df = vae.reconstruct(inputs, properties=["logp"])
    assert len(df) == 21 and df["row"].tolist() == list(range(21))
    assert {"row", "input", "output", "smiles", "valid", "canonical", "exact", "logp", "novel"} <= set(df.columns)
    assert df["output"].tolist() == df["smiles"].tolist()
    expected = [c is not None and c == chem.canonical(i) for i, c in zip(df["input"], df["canonical"])]
    assert df["exact"].tolist() == expected
    assert df["exact"].mean() > 0.2  # the tiny model memorized some of its 64 molecules
    assert df["smiles"].tolist() == vae.decode(vae.encode(inputs))
    # a training molecule reconstructed exactly is not novel; the novel column knows the training set
    train_rows = df.iloc[:20]
    assert train_rows["exact"].any() and not train_rows.loc[train_rows["exact"], "novel"].any()


def test_reconstruct_skip(vae: MolVAE) -> None:
    with pytest.warns(RuntimeWarning):
        df = vae.reconstruct(["CCO", "not a smiles", TRAIN[0]], on_invalid="skip")
    assert df["row"].tolist() == [0, 2] and df["input"].tolist() == ["CCO", TRAIN[0]]


@pytest.mark.parametrize("kind", ["linear", "slerp"])
def test_interpolate_endpoints(vae: MolVAE, kind: str) -> None:
    a, b = TRAIN[0], TRAIN[1]
    df = vae.interpolate(a, b, steps=5, kind=kind)
    assert len(df) == 5 and df["step"].tolist() == list(range(5))
    assert df["t"].iloc[0] == 0.0 and df["t"].iloc[-1] == 1.0
    ends = vae.decode(vae.encode([a, b]))
    assert df["smiles"].iloc[0] == ends[0] and df["smiles"].iloc[-1] == ends[1]
    assert {"sim_a", "sim_b", "qed"} <= set(df.columns)
    if df["valid"].iloc[0] and chem.canonical(a) == df["canonical"].iloc[0]:
        assert df["sim_a"].iloc[0] == 1.0


def test_interpolate_errors(vae: MolVAE) -> None:
    with pytest.raises(UsageError, match="steps"):
        vae.interpolate("CCO", "CCN", steps=1)
    with pytest.raises(UsageError, match="kind"):
        vae.interpolate("CCO", "CCN", kind="cubic")
    with pytest.raises(DataError, match="second molecule.*Se"):
        vae.interpolate("CCO", "C[Se]C")


def test_slerp_endpoints_and_norm() -> None:
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    out = slerp(a, b, np.linspace(0, 1, 5))
    assert np.allclose(out[0], a) and np.allclose(out[-1], b)
    assert np.allclose(np.linalg.norm(out, axis=1), 3.0)
    assert np.allclose(slerp(a, 2 * a, np.array([0.5])), [[4.5, 0.0]])  # parallel: linear


def test_neighbors(vae: MolVAE) -> None:
    q = TRAIN[2]
    df = vae.neighbors(q, n=12, radius=0.3, seed=0)
    assert len(df) == 12 and {"similarity", "distance", "valid", "qed"} <= set(df.columns)
    assert df["similarity"].is_monotonic_decreasing and df["similarity"].between(0, 1).all()
    assert df["smiles"].tolist() == vae.neighbors(q, n=12, radius=0.3, seed=0)["smiles"].tolist()
    still = vae.neighbors(q, n=3, radius=0.0, seed=0, properties=None)
    assert set(still["smiles"]) == set(vae.decode(vae.encode(q))) and (still["distance"] == 0).all()
    uniq = vae.neighbors(q, n=12, radius=1.0, seed=0, unique=True)
    assert uniq["valid"].all() and uniq["canonical"].is_unique and chem.canonical(q) not in set(uniq["canonical"])
    with pytest.raises(UsageError):
        vae.neighbors(q, n=0)
    with pytest.raises(UsageError):
        vae.neighbors(q, radius=-1)


def test_predict_in_original_units(vae: MolVAE) -> None:
    df = vae.predict(TRAIN[:8], rdkit=True)
    assert list(df.columns) == ["row", "smiles", "stereo_removed", "standardized", "logp", "qed", "logp_rdkit",
                                "qed_rdkit"]
    z = torch.from_numpy(vae.encode(TRAIN[:8]))
    with torch.no_grad():
        raw = vae.model.predict_props(z).numpy()
    mean, std = vae.prop_stats["qed"]
    assert np.allclose(df["qed"], raw[:, 1] * std + mean, atol=1e-5)
    # trained on these molecules: predictions land near RDKit's values in original units
    assert np.abs(df["logp"] - df["logp_rdkit"]).mean() < 1.5
    assert np.isclose(df["logp_rdkit"].iloc[0], chem.properties([TRAIN[0]], ["logp"])["logp"].iloc[0])


def test_predict_without_head(selfies_vae: MolVAE) -> None:
    with pytest.raises(UsageError, match="property head"):
        selfies_vae.predict(["CCO"])


# ------------------------------------------------------------------------- output files
@pytest.fixture(scope="module")
def table(vae: MolVAE) -> pd.DataFrame:
    """Decoded training molecules (mostly valid) and samples (mostly invalid)."""
    df = pd.concat([vae.decode_table(vae.encode(TRAIN[:20])), vae.sample(10, seed=0)], ignore_index=True)
    assert df["valid"].any() and not df["valid"].all()
    return df


@pytest.mark.parametrize("ext", [".csv", ".smi", ".sdf", ".parquet"])
def test_write_molecules_round_trip(table: pd.DataFrame, tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"out{ext}"
    n = write_molecules(table, path)
    valid = table[table["valid"]]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    if ext == ".csv":
        back = pd.read_csv(path, keep_default_na=False, na_values=[""])
        assert n == len(table) and back["smiles"].fillna("").tolist() == table["smiles"].tolist()
        assert np.allclose(back["qed"], table["qed"], equal_nan=True)
    elif ext == ".parquet":
        back = pd.read_parquet(path)
        assert n == len(table) and back["smiles"].tolist() == table["smiles"].tolist()
        assert back["valid"].dtype == bool and np.allclose(back["qed"], table["qed"], equal_nan=True)
    elif ext == ".smi":
        lines = path.read_text().splitlines()
        assert n == len(valid) == len(lines)
        assert [ln.split("\t")[0] for ln in lines] == valid["smiles"].tolist()
    else:
        mols = [m for m in Chem.SDMolSupplier(str(path))]
        assert n == len(valid) == len(mols) and all(m is not None for m in mols)
        for mol, (_, row) in zip(mols, valid.iterrows()):
            assert Chem.MolToSmiles(mol) == row["canonical"]
            assert math.isclose(float(mol.GetProp("qed")), row["qed"], rel_tol=1e-5)
            assert math.isclose(float(mol.GetProp("logp")), row["logp"], rel_tol=1e-5, abs_tol=1e-6)
            assert mol.GetProp("novel") in ("0", "1")


def test_write_molecules_errors(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown extension"):
        write_molecules(table, tmp_path / "out.xlsx")
    with pytest.raises(UsageError, match="smiles"):
        write_molecules(pd.DataFrame({"x": [1]}), tmp_path / "out.csv")
    with pytest.raises(DataError, match="does not exist"):
        write_molecules(table, tmp_path / "missing" / "out.csv")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ pictures
def test_grid_and_show(vae: MolVAE, table: pd.DataFrame, tmp_path: Path) -> None:
    from PIL import Image

    from molvae.plotting import molecules as plots

    df = pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "xx"], "qed": [0.4, 0.45, float("nan")]})
    img = vae.grid(df, n=4)
    assert isinstance(img, Image.Image) and img.size[0] > 0
    out = plots.grid(df, legend="qed", path=tmp_path / "g.png")
    assert out == tmp_path / "g.png" and Image.open(out).format == "PNG"
    assert plots.legend_text("qed", 0.4123) == "QED 0.41"
    with pytest.raises(UsageError, match="legend"):
        plots.grid(df, legend="colour")
    with pytest.raises(UsageError, match="valid"):
        plots.grid(pd.DataFrame({"smiles": ["xx"]}))
    shown = plots.show(df)
    assert "mol" in shown and shown["mol"].iloc[2] is None and "mol" not in df
    assert "data:image/png" in shown._repr_html_()
    write_molecules(shown, tmp_path / "s.csv")  # the picture column is left out of files
    assert "mol" not in pd.read_csv(tmp_path / "s.csv").columns
