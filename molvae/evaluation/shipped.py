"""Set-level statistics of the MOSES test sets that ship with molvae, so that the first evaluation
against MOSES does not spend most of an hour running ChemNet over 352,299 molecules.

What ships (one compressed ``.npz`` per test set under ``molvae/resources/``): the ChemNet moments
(mean, and the upper triangle of the covariance, both float64 as computed), the BRICS-fragment and
scaffold counts (keys as one UTF-8 blob with byte offsets), the GuacaMol KL inputs, the valid/invalid
counts, and what identifies the set: the number of SMILES and the sha256 of the SMILES list in order
(`molvae.files.strings_digest`). A reference is matched by that content, never by its name, so a copy of
the MOSES test file given as a path finds the statistics too, and an edited one does not.

What does not ship: the per-molecule arrays (packed Morgan fingerprints for SNN, properties for the
Wasserstein rows), about 30 MB; `reference.reference_stats` computes them on first use and caches them.

The files were built from statistics computed with the RDKit version they record; an installed RDKit
that canonicalizes differently can move Frag/Scaf/FCD slightly. `python -m molvae.bench.reference_stats_check`
recomputes everything and compares.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from molvae.files import load_npz, save_npz, strings_digest

__all__ = ["SHIPPED_DIR", "SHIPPED_FILES", "SPLIT_OPTIONS", "SET_FIELDS", "pack", "unpack", "write_shipped", "lookup",
           "compare_stats"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "resources"
SHIPPED_FILES = {"test": "moses_test_stats.npz", "test_scaffolds": "moses_test_scaffolds_stats.npz"}
# The `reference_stats` options `moses.evaluate` uses for each MOSES split (and the shipped files hold).
SPLIT_OPTIONS = {"test": {"props": True, "kl": True}, "test_scaffolds": {"props": False, "kl": False}}
FORMAT = "molvae-reference-stats-v1"
# The fields of `reference.ReferenceStats` that describe the set as a whole, and so can ship.
SET_FIELDS = ("frag_keys", "frag_counts", "scaf_keys", "scaf_counts", "fcd_mu", "fcd_sigma", "kl_desc",
              "kl_maxsim", "counts")


def _pack_strings(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    encoded = [k.encode("utf-8") for k in keys.tolist()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _unpack_strings(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    data = blob.tobytes()
    return np.array([data[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())],
                    dtype=str)


def pack(stats: Mapping[str, np.ndarray], smiles: Sequence[str], rdkit_version: str) -> dict[str, np.ndarray]:
    """The compact arrays of one shipped file, from `ReferenceStats.to_arrays()` of `smiles`."""
    sigma = np.asarray(stats["fcd_sigma"], dtype=np.float64)
    if not np.array_equal(sigma, sigma.T):  # chemnet_moments symmetrizes: the triangle holds it all
        raise ValueError("fcd_sigma is not symmetric")
    out: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "rdkit_version": np.array(rdkit_version),
        "n_smiles": np.array(len(smiles), dtype=np.int64), "smiles_sha256": np.array(strings_digest(smiles)),
        "counts": np.asarray(stats["counts"], dtype=np.int64),
        "fcd_mu": np.asarray(stats["fcd_mu"], dtype=np.float64),
        "fcd_sigma_triu": sigma[np.triu_indices(len(sigma))],
        "kl_desc": np.asarray(stats["kl_desc"], dtype=np.float64),
        "kl_maxsim": np.asarray(stats["kl_maxsim"], dtype=np.float64),
    }
    for name in ("frag", "scaf"):
        out[f"{name}_blob"], out[f"{name}_offsets"] = _pack_strings(np.asarray(stats[f"{name}_keys"]))
        out[f"{name}_counts"] = np.asarray(stats[f"{name}_counts"], dtype=np.float64)
    return out


def unpack(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The `SET_FIELDS` of a shipped file, in the form `ReferenceStats` holds them."""
    mu = arrays["fcd_mu"]
    sigma = np.zeros((len(mu), len(mu)))
    rows, cols = np.triu_indices(len(mu))
    sigma[rows, cols] = arrays["fcd_sigma_triu"]
    sigma[cols, rows] = arrays["fcd_sigma_triu"]
    out = {"fcd_mu": mu, "fcd_sigma": sigma, "kl_desc": arrays["kl_desc"], "kl_maxsim": arrays["kl_maxsim"],
           "counts": arrays["counts"]}
    for name in ("frag", "scaf"):
        out[f"{name}_keys"] = _unpack_strings(arrays[f"{name}_blob"], arrays[f"{name}_offsets"])
        out[f"{name}_counts"] = arrays[f"{name}_counts"]
    return out


def write_shipped(path: str | Path, stats: Mapping[str, np.ndarray], smiles: Sequence[str],
                  rdkit_version: str) -> Path:
    """Write the shipped file of `smiles` (compressed) and return its path."""
    save_npz(path, pack(stats, smiles, rdkit_version), compressed=True)
    return Path(path)


def lookup(smiles: Sequence[str], kl: bool) -> tuple[dict[str, np.ndarray], str] | None:
    """The set-level fields of the shipped file whose content is exactly `smiles`, and the RDKit version
    that computed them; None when no file matches or (`kl`) the match holds no GuacaMol KL inputs.

    The sizes are compared first, so any other reference costs no hashing. Without `kl` the KL inputs
    are returned empty, as `reference_stats(kl=False)` computes them.
    """
    for name in SHIPPED_FILES.values():
        arrays = load_npz(SHIPPED_DIR / name)
        if arrays is None or str(arrays["format"]) != FORMAT or int(arrays["n_smiles"]) != len(smiles):
            continue
        if str(arrays["smiles_sha256"]) != strings_digest(smiles):
            continue
        fields = unpack(arrays)
        if kl and len(fields["kl_desc"]) == 0:
            return None
        if not kl:
            fields["kl_desc"], fields["kl_maxsim"] = np.zeros((0, fields["kl_desc"].shape[1])), np.zeros(0)
        return fields, str(arrays["rdkit_version"])
    return None


_RTOL, _ATOL = 1e-6, 1e-9  # float fields: ChemNet on another thread count may differ in the last bits


def compare_stats(a: Any, b: Any) -> list[dict[str, Any]]:
    """Field-by-field comparison of two `ReferenceStats`: one row per field with ``equal`` (exact),
    ``max_abs`` and ``max_rel`` differences for numbers, and ``ok`` (exact for strings, integers and
    fingerprints; floats within rtol 1e-6, atol 1e-9); a last row holds the FCD between the two
    ChemNet Gaussians (ok below 1e-4)."""
    from molvae.evaluation.fcd import frechet_distance

    rows = []
    for field in (*SET_FIELDS[:-1], "fps", "weights", "props"):
        x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
        same_shape = x.shape == y.shape
        equal = same_shape and (x.tolist() == y.tolist() if x.dtype.kind == "U" else bool(np.array_equal(x, y)))
        row: dict[str, Any] = {"field": field, "shape": list(x.shape), "equal": equal, "ok": equal}
        if x.dtype.kind in "fiu" and same_shape and x.size:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            row["max_abs"] = float(diff.max())
            row["max_rel"] = float((diff / np.maximum(np.abs(y.astype(np.float64)), 1e-300)).max())
            if x.dtype.kind == "f":
                row["ok"] = bool(np.allclose(x, y, rtol=_RTOL, atol=_ATOL))
        rows.append(row)
    same_counts = (a.n_valid, a.n_invalid) == (b.n_valid, b.n_invalid)
    rows.append({"field": "n_valid, n_invalid", "shape": [2], "equal": same_counts, "ok": same_counts})
    if a.fcd_mu.size and b.fcd_mu.size:
        fcd = frechet_distance(a.fcd_mu, a.fcd_sigma, b.fcd_mu, b.fcd_sigma)
        # A Gaussian's distance to itself evaluates to ~1e-6, not 0 (eigenvalue rounding of a
        # rank-deficient covariance); FCD is reported to 3 decimals.
        rows.append({"field": "FCD(a, b)", "shape": [], "equal": None, "max_abs": fcd, "ok": abs(fcd) < 1e-4})
    return rows
