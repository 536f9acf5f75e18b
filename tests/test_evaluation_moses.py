"""Tests of molvae.evaluation.moses (MOSES metric suite) on tiny hand-made sets with known answers, plus
the agreement check against the MOSES reference code when the molsets wheel can be had."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molvae import chem
from molvae.errors import UsageError
from molvae.evaluation.fcd import chemnet_token_ids, frechet_distance
from molvae.evaluation.reference import reference_stats
from molvae.files import load_npz
from molvae.evaluation.kernels import discrete_kldiv, popcount, tanimoto_reduce
from molvae.evaluation.moses import cos_similarity, evaluate, internal_diversity
from molvae.evaluation.table import MOSES_BASELINES, format_table

ROOT = Path(__file__).resolve().parents[1]
_ORIGINAL_DATA = os.environ.get("MOLVAE_DATA")  # before the fixture below redirects the cache
TEST = pd.read_csv(ROOT / "data" / "moses_test_2k.csv")["SMILES"].tolist()
TRAIN = pd.read_csv(ROOT / "data" / "moses_train_20k.csv")["SMILES"].tolist()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLVAE_DATA", str(tmp_path / "cache"))


def packed(smiles, n_bits=1024):
    rows = []
    for s in smiles:
        bits = np.zeros(n_bits, dtype=np.uint8)
        bits[list(chem.fingerprint(s, 2, n_bits).GetOnBits())] = 1
        rows.append(np.packbits(bits))
    return np.array(rows)


def rdkit_matrix(a, b):
    from rdkit import DataStructs

    fa = [chem.fingerprint(s, 2, 1024) for s in a]
    fb = [chem.fingerprint(s, 2, 1024) for s in b]
    return np.array([DataStructs.BulkTanimotoSimilarity(x, fb) for x in fa])


# --------------------------------------------------------------------------- kernels


def test_tanimoto_reduce_matches_rdkit_across_blocks():
    a, b = TEST[:37], TEST[100:161]
    ref = rdkit_matrix(a, b)
    w = np.arange(1, len(b) + 1, dtype=float)
    for block in [(7, 13), (2048, 8192)]:
        got_max = tanimoto_reduce(packed(a), packed(b), agg="max", block=block)
        np.testing.assert_allclose(got_max, ref.max(1), atol=1e-6)
        got_mean = tanimoto_reduce(packed(a), packed(b), agg="mean", p=2, stock_weights=w, block=block)
        np.testing.assert_allclose(got_mean, (ref ** 2 * w).sum(1) / w.sum(), atol=1e-6)
    self_sim = rdkit_matrix(a, a)
    np.fill_diagonal(self_sim, 0.0)
    got = tanimoto_reduce(packed(a), packed(a), agg="max", exclude_self=True, block=(5, 9))
    np.testing.assert_allclose(got, self_sim.max(1), atol=1e-6)


def test_tanimoto_float32_path_equals_low_precision_path(monkeypatch):
    import torch

    from molvae.evaluation import kernels as metric_kernels

    a, b = packed(TEST[:40]), packed(TEST[40:90])
    fast = tanimoto_reduce(a, b, agg="max"), tanimoto_reduce(a, b, agg="mean", p=2)
    monkeypatch.setattr(metric_kernels, "_matmul_dtype", lambda max_count, device: torch.float32)
    exact = tanimoto_reduce(a, b, agg="max"), tanimoto_reduce(a, b, agg="mean", p=2)
    np.testing.assert_array_equal(fast[0], exact[0])
    np.testing.assert_allclose(fast[1], exact[1], rtol=1e-6)


def test_tanimoto_empty_fingerprints_follow_moses():
    fps = np.zeros((3, 128), dtype=np.uint8)
    fps[2, 0] = 0b1000_0001
    assert popcount(fps).tolist() == [0, 0, 2]
    # MOSES sets 0/0 (two empty fingerprints) to similarity 1
    np.testing.assert_allclose(tanimoto_reduce(fps, fps, agg="mean"), [2 / 3, 2 / 3, 1 / 3])


def test_internal_diversity_of_identical_molecules_is_zero():
    fps = packed(["c1ccccc1O"] * 4)
    assert internal_diversity(fps) == pytest.approx(0.0, abs=1e-12)
    assert internal_diversity(fps, p=2) == pytest.approx(0.0, abs=1e-12)


def test_internal_diversity_weights_equal_duplicates():
    mols = TEST[:20]
    w = np.array([1, 3] * 10, dtype=float)
    expanded = [m for m, k in zip(mols, w) for _ in range(int(k))]
    for p in (1, 2):
        assert internal_diversity(packed(mols), w, p=p) == pytest.approx(internal_diversity(packed(expanded), p=p))
    sim = rdkit_matrix(mols, mols)
    assert internal_diversity(packed(mols)) == pytest.approx(1 - sim.mean(), abs=1e-6)


def test_cos_similarity():
    assert cos_similarity({"a": 1, "b": 2}, {"a": 2, "b": 4}) == pytest.approx(1.0)
    assert cos_similarity({"a": 1}, {"b": 1}) == 0.0
    assert cos_similarity({}, {"a": 1}) is None


def test_chemnet_tokens_follow_fcd_torch():
    end, unk = 34, 33
    assert chemnet_token_ids("CCl") == [0, 5, end]
    assert chemnet_token_ids("BrC") == [8, 0, end]
    assert chemnet_token_ids("CC.O") == [0, 0, end]  # fcd_torch stops at the first fragment
    assert chemnet_token_ids("[Se]") == [26, 9, unk, 27, end]  # S, then unknown 'e'
    long = chemnet_token_ids("C" * 500)
    assert len(long) == 350 and long[-1] == end


def test_frechet_distance_matches_fcd_package():
    from fcd import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((200, 16)) @ rng.standard_normal((16, 16))
    args = (a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy deprecates the sqrtm argument fcd passes
        want = calculate_frechet_distance(mu1=args[0], sigma1=args[1], mu2=args[2], sigma2=args[3])
    assert frechet_distance(*args) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(args[0], args[1], args[0], args[1]) == pytest.approx(0.0, abs=1e-6)


def test_discrete_kldiv_without_overlap_is_large_not_nan():
    value = discrete_kldiv(np.arange(10.0), np.full(5, 100.0))
    assert math.isfinite(value) and value > 10


# --------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def small_result():
    gen = ["CCO", "OCC", "", None, "xyz", "C1CC", *TEST[:30], TEST[0], TEST[1], TRAIN[0], TRAIN[1]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOLVAE_DATA", tempfile.mkdtemp())
        return gen, evaluate(gen, reference=TEST[200:400], test_scaffolds=TEST[400:500], train=TRAIN[:500],
                             ks=(10, 100), n_jobs=1)


def test_counts_and_reasons(small_result):
    gen, r = small_result
    assert r["n_input"] == len(gen) == 40
    assert r["n_empty"] == 2  # "" and None
    assert r["n_invalid"] == 4  # plus "xyz" and "C1CC"
    assert r["n_valid"] == 36
    assert r["n_unique"] == 33  # CCO == OCC, and TEST[0], TEST[1] repeated
    assert r["Valid"] == pytest.approx(36 / 40)
    assert r["Unique@10"] == pytest.approx(0.9)  # the first 10 valid include CCO twice
    assert "Unique@100" not in r
    assert r["skipped"]["Unique@100"] == "needs 100 valid molecules, got 36"
    assert r["Novelty"] == pytest.approx((33 - 2) / 33)
    assert r["n_novel"] == 31


def test_no_nan_and_all_metrics_present(small_result):
    _, r = small_result
    for name in ["FCD/Test", "FCD/TestSF", "SNN/Test", "SNN/TestSF", "Frag/Test", "Frag/TestSF", "Scaf/Test",
                 "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "logP", "SA", "QED", "weight", "KLScore",
                 "FCDScore"]:
        assert isinstance(r[name], float) and math.isfinite(r[name]), name
    assert 0 <= r["SNN/Test"] <= 1 and 0 <= r["IntDiv"] <= 1
    assert r["FCDScore"] == pytest.approx(math.exp(-0.2 * r["FCD/Test"]))
    assert set(r["details"]["kl_divergences"]) >= {"BertzCT", "NumAromaticRings", "internal_similarity"}


def test_snn_counts_duplicates_like_moses(small_result):
    gen, r = small_result
    valid = [chem.canonical(s) for s in gen if chem.canonical(s)]
    want = rdkit_matrix(valid, TEST[200:400]).max(1).mean()
    assert r["SNN/Test"] == pytest.approx(want, abs=1e-6)


def test_training_molecules_are_not_novel_even_when_written_differently():
    from rdkit import Chem

    train = TRAIN[:50]
    randomized = [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True) for s in train]
    r = evaluate(randomized[:20], reference=TEST[:50], train=randomized, ks=(), n_jobs=1, kl_score=False)
    assert r["Novelty"] == 0.0 and r["n_novel"] == 0
    assert r["skipped"]["FCD/TestSF"] == "no scaffold test set given"


def test_identical_molecules():
    r = evaluate(["c1ccccc1O"] * 12, reference=TEST[:50], ks=(10,), n_jobs=1, kl_score=True)
    assert r["IntDiv"] == pytest.approx(0.0, abs=1e-9) and r["IntDiv2"] == pytest.approx(0.0, abs=1e-9)
    assert r["Unique@10"] == pytest.approx(0.1)
    assert "KLScore" in r["skipped"] and "needs at least 2 distinct" in r["skipped"]["KLScore"]
    assert r["skipped"]["Novelty"] == "no training set given"


def test_nothing_valid_never_crashes():
    r = evaluate(["", "xyz", "C1CC"], reference=TEST[:20], test_scaffolds=TEST[20:40], train=TRAIN[:10],
                 ks=(1000,), n_jobs=1)
    assert r["Valid"] == 0.0 and r["n_valid"] == 0
    assert r["skipped"]["SNN/Test"] == "no valid generated molecules"
    assert r["skipped"]["Novelty"] == "no valid generated molecules"
    assert r["skipped"]["FCD/Test"].startswith("needs at least 2 valid molecules")
    floats = [v for v in r.values() if isinstance(v, float)]
    assert floats == [0.0]

    empty = evaluate([], reference=TEST[:20], ks=(), n_jobs=1)
    assert empty["skipped"]["Valid"] == "no molecules given" and empty["n_input"] == 0


def test_acyclic_set_skips_scaffold_similarity():
    r = evaluate(["CCO", "CCN", "CCCC"], reference=TEST[:20], ks=(), n_jobs=1, kl_score=False)
    assert r["skipped"]["Scaf/Test"] == "no generated molecule has a Bemis-Murcko scaffold with >= 2 rings"
    assert "Frag/Test" in r


def test_bad_arguments():
    with pytest.raises(UsageError):
        evaluate("CCO", reference=TEST[:5])
    with pytest.raises(UsageError):
        evaluate(["CCO"], reference="no/such/file.csv")


def test_reference_stats_cache_is_npz(tmp_path):
    stats = reference_stats(TEST[:30], n_jobs=1, kl=False)
    files = list((tmp_path / "cache" / "metrics").glob("ref-*.npz"))
    assert len(files) == 1 and load_npz(files[0]) is not None
    again = reference_stats(TEST[:30], n_jobs=1, kl=False)
    np.testing.assert_array_equal(stats.fps, again.fps)
    np.testing.assert_allclose(stats.fcd_sigma, again.fcd_sigma)
    assert stats.frag() == again.frag() and stats.n_valid == again.n_valid == 30


def test_format_table(small_result):
    _, r = small_result
    text = format_table(r)
    assert "MOSES VAE" in text and "MOSES CharRNN" in text and "0.695" in text
    assert "Unique@100: skipped, needs 100 valid molecules, got 36" in text
    many = format_table({"a": [r, r], "b": r}, baselines=["Train"])
    assert "±0.000" in many and "MOSES Train" in many
    assert "MOSES" not in format_table(r, baselines=False).splitlines()[0]
    with pytest.raises(UsageError):
        format_table(r, baselines=["GPT"])
    assert MOSES_BASELINES["VAE"]["FCD/Test"] == (0.099, 0.013)


# --------------------------------------------------------------------------- shipped reference statistics


@pytest.fixture(scope="module")
def shipped_subset(tmp_path_factory):
    """Shipped files for 300 test molecules (as "test") and 300 others (as "test_scaffolds"), written by
    the shipping code path, and the statistics they were built from: computed afresh (never from
    shipped files) and left in the metrics cache under ``cache/``."""
    from rdkit import __version__ as rdkit_version

    from molvae.evaluation import shipped

    directory = tmp_path_factory.mktemp("shipped")
    sets = {"test": TEST[:300], "test_scaffolds": TEST[300:600]}
    built = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOLVAE_DATA", str(directory / "cache"))
        for split, smiles in sets.items():
            built[split] = reference_stats(smiles, **shipped.SPLIT_OPTIONS[split], n_jobs=1, use_shipped=False)
            assert built[split].source == "computed"
            shipped.write_shipped(directory / shipped.SHIPPED_FILES[split], built[split].to_arrays(), smiles,
                                  rdkit_version)
    return directory, sets, built


def test_shipped_statistics_equal_recomputed(shipped_subset, monkeypatch):
    from molvae.evaluation import shipped

    directory, sets, built = shipped_subset
    monkeypatch.setattr(shipped, "SHIPPED_DIR", directory)
    for split, smiles in sets.items():
        raw = load_npz(directory / shipped.SHIPPED_FILES[split])
        assert raw is not None and raw["fcd_mu"].dtype == raw["fcd_sigma_triu"].dtype == np.float64
        got = reference_stats(smiles, **shipped.SPLIT_OPTIONS[split], n_jobs=1, cache=False)
        assert got.source.startswith("shipped (RDKit ")
        rows = shipped.compare_stats(got, built[split])
        assert all(r["ok"] for r in rows), rows
        assert all(r["equal"] for r in rows if r["field"] != "FCD(a, b)"), rows  # bit for bit
    no_kl = reference_stats(sets["test"], props=True, kl=False, n_jobs=1, cache=False)
    assert no_kl.source.startswith("shipped") and no_kl.kl_desc.shape == (0, 9)


def test_shipped_statistics_are_matched_by_content_only(shipped_subset, monkeypatch):
    from molvae.evaluation import shipped

    directory, sets, _ = shipped_subset
    monkeypatch.setattr(shipped, "SHIPPED_DIR", directory)
    assert shipped.lookup(sets["test"], kl=True) is not None
    assert shipped.lookup(["CCO", *sets["test"][1:]], kl=True) is None  # one molecule changed
    assert shipped.lookup(sets["test"][::-1], kl=True) is None  # the KL subset depends on the order
    assert shipped.lookup(sets["test_scaffolds"], kl=True) is None  # built without KL inputs
    assert shipped.lookup(sets["test_scaffolds"], kl=False) is not None


def test_evaluate_gives_the_same_results_with_shipped_statistics(shipped_subset, monkeypatch, tmp_path):
    from molvae.evaluation import shipped

    directory, sets, _ = shipped_subset
    gen = [*TEST[600:700], TEST[0], "xyz"]
    kwargs = dict(reference=sets["test"], test_scaffolds=sets["test_scaffolds"], ks=(10,), n_jobs=1)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)  # nothing ships here
    monkeypatch.setenv("MOLVAE_DATA", str(directory / "cache"))  # the statistics computed in the fixture
    computed = evaluate(gen, **kwargs)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", directory)
    with_shipped = evaluate(gen, **kwargs, cache=False)
    assert computed["details"]["reference_Test"] == "cache"
    assert with_shipped["details"]["reference_TestSF"].startswith("shipped")
    for result in (computed, with_shipped):
        result["details"] = {k: v for k, v in result["details"].items() if k not in ("seconds", "reference_Test",
                                                                                     "reference_TestSF")}
    assert with_shipped == computed


def test_shipped_statistics_of_another_parse_are_recomputed(shipped_subset, monkeypatch, tmp_path):
    """An RDKit that parses a different number of molecules than the one that built the file: the
    shipped statistics describe another set, so they are not used."""
    from molvae.evaluation import shipped

    directory, sets, built = shipped_subset
    arrays = built["test_scaffolds"].to_arrays()
    arrays["counts"] = arrays["counts"] + np.array([-1, 1])
    shipped.write_shipped(tmp_path / shipped.SHIPPED_FILES["test_scaffolds"], arrays, sets["test_scaffolds"], "x")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)
    with pytest.warns(RuntimeWarning, match="recomputing"):
        stats = reference_stats(sets["test_scaffolds"], props=False, kl=False, n_jobs=1, cache=False)
    assert stats.source == "computed" and stats.n_valid == 300


def test_molecule_arrays_in_chunks_match_the_full_records(monkeypatch):
    from molvae.evaluation import reference

    full = reference_stats(TEST[:40], n_jobs=1, kl=False, cache=False, use_shipped=False)
    monkeypatch.setattr(reference, "_PROGRESS_MIN", 10)
    monkeypatch.setattr(reference, "_PROGRESS_CHUNK", 7)  # a progress bar over 6 chunks
    arrays = reference.molecule_arrays([*TEST[:40], "xyz"], props=True, n_jobs=1)
    np.testing.assert_array_equal(arrays["fps"], full.fps)
    np.testing.assert_array_equal(arrays["props"], full.props)
    assert arrays["counts"].tolist() == [40, 1]


def test_package_ships_moses_statistics():
    """The shipped files: small, float64 moments, and (when MOSES is in the cache) matching its test sets."""
    from molvae.evaluation import shipped

    paths = [shipped.SHIPPED_DIR / name for name in shipped.SHIPPED_FILES.values()]
    assert sum(p.stat().st_size for p in paths) < 10e6
    for path in paths:
        raw = load_npz(path)
        assert raw["fcd_sigma_triu"].dtype == np.float64 and raw["fcd_sigma_triu"].shape == (512 * 513 // 2,)
    cache = Path(_ORIGINAL_DATA or Path.home() / ".cache" / "molvae") / "moses"
    if not all((cache / f"{split}.csv.gz").exists() for split in shipped.SHIPPED_FILES):
        pytest.skip("MOSES splits not in the cache")
    from molvae.data.read import read_table

    for split in shipped.SHIPPED_FILES:
        df, col = read_table(cache / f"{split}.csv.gz")
        found = shipped.lookup(df[col].tolist(), kl=shipped.SPLIT_OPTIONS[split]["kl"])
        assert found is not None and int(found[0]["counts"].sum()) == len(df)


# --------------------------------------------------------------------------- agreement with MOSES


def _moses_source() -> str:
    """The molsets wheel (or unpacked source): $MOLVAE_MOSES_WHEEL, the molvae cache, /tmp/moses_src,
    else `pip download --no-deps molsets==0.3.1` into a temporary directory; skip if impossible."""
    env = os.environ.get("MOLVAE_MOSES_WHEEL")
    if env and Path(env).exists():
        return env
    from molvae.data.datasets import MOLSETS_WHEEL

    cache = Path(_ORIGINAL_DATA or Path.home() / ".cache" / "molvae") / "wheels" / MOLSETS_WHEEL
    if cache.exists():
        return str(cache)
    if Path("/tmp/moses_src/moses/metrics/metrics.py").exists():
        return "/tmp/moses_src"
    from molvae.errors import DataError
    from molvae.data.datasets import find_moses_wheel

    try:
        return str(find_moses_wheel(Path(tempfile.mkdtemp(prefix="molsets_"))))
    except DataError as exc:
        pytest.skip(f"molsets 0.3.1 wheel unavailable (set MOLVAE_MOSES_WHEEL to a local copy): {exc}")


@pytest.mark.slow
def test_agreement_with_moses_reference_code(tmp_path):
    src = _moses_source()
    out = tmp_path / "agreement.json"
    proc = subprocess.run([sys.executable, "-m", "molvae.bench.moses_agreement", src,
                           "--n-gen", "150", "--n-ref", "400", "--n-train", "1000", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert out.exists(), proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert proc.returncode == 0 and report["pass"], proc.stdout + proc.stderr
    assert {r["metric"] for r in report["rows"]} >= {"Valid", "FCD/Test", "SNN/TestSF", "Novelty", "weight"}
