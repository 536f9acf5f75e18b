"""RDKit layer: parsing with reasons, canonical SMILES, standardization, properties,
structural filters and fingerprint similarity.

Everything here works on SMILES strings or RDKit molecules and knows nothing of torch.
Functions that take a SMILES return ``None`` (or NaN / 0.0 where documented) for strings
RDKit cannot read, and never print RDKit's log messages: `parse` captures them as a
reason instead. Nothing is silenced at import; use `rdkit_quiet` to silence your own code.
"""
from __future__ import annotations

import csv
import math
import sys
from contextlib import contextmanager
from functools import lru_cache, partial
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs, RDConfig, RDLogger, rdBase
from rdkit.Chem import Crippen, Descriptors, QED, rdMolDescriptors
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams
from rdkit.Chem.MolStandardize import rdMolStandardize

from molvae.errors import UsageError
from molvae.parallel import pmap

__all__ = [
    "rdkit_quiet", "to_mol", "parse", "canonical", "canonical_many", "standardize",
    "PROPERTY_NAMES", "name_key", "property_name", "penalized_logp", "mol_properties", "properties",
    "largest_ring", "passes_moses_filters", "pains_match", "brenk_match", "filters",
    "fingerprint", "tanimoto", "bulk_tanimoto",
]

# --------------------------------------------------------------------------- logging


@contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence all RDKit log output inside the block; restore the previous levels after."""
    status = getattr(rdBase, "LogStatus", None)
    # LogStatus lines look like "rdApp.warning:enabled"; without it, restore RDKit's defaults.
    before = (dict(line.split(":") for line in status().splitlines() if ":" in line) if status
              else {"rdApp.warning": "enabled", "rdApp.error": "enabled"})
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        for level, state in before.items():
            (RDLogger.EnableLog if state == "enabled" else RDLogger.DisableLog)(level)


@contextmanager
def _capture_errors() -> Iterator[list[str]]:
    """Collect RDKit error-log lines (timestamps stripped) into the yielded list."""
    lines: list[str] = []
    capture = getattr(rdBase, "CaptureErrorLog", None)  # RDKit >= 2025; older: list stays empty
    if capture is None:
        yield lines
        return
    with capture() as cap:
        yield lines
    for line in cap.messages.splitlines():
        line = line.split("] ", 1)[1] if line.startswith("[") and "] " in line else line
        if line.strip():
            lines.append(line.strip())


# --------------------------------------------------------------------------- parsing


def _diagnose(smiles: str) -> str:
    """Failure reason without the error log: syntax error, or the sanitization exception."""
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return "SMILES Parse Error"
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:  # RDKit raises several MolSanitizeException subclasses
            return str(exc).strip() or type(exc).__name__
    return "RDKit could not parse the SMILES"


def parse(smiles: Any) -> tuple[Chem.Mol | None, str | None]:
    """Parse and sanitize a SMILES string: ``(mol, None)`` or ``(None, reason)``.

    The reason is RDKit's first error message (e.g. ``"SMILES Parse Error: unclosed ring
    for input: 'C1CC'"``) or one of ``"missing value"``, ``"not a string (int)"``,
    ``"empty SMILES"``, ``"SMILES contains whitespace"``. Surrounding whitespace is stripped;
    inner whitespace is rejected because RDKit would silently read ``"CCO foo"`` as ``CCO``.
    """
    if smiles is None or (isinstance(smiles, float) and math.isnan(smiles)):
        return None, "missing value"
    if not isinstance(smiles, str):
        return None, f"not a string ({type(smiles).__name__})"
    text = smiles.strip()
    if not text:
        return None, "empty SMILES"
    if any(ch.isspace() for ch in text):
        return None, "SMILES contains whitespace"
    if not text.isascii():
        # SMILES is an ASCII language; RDKit may skip such characters silently ('C\x80' -> methane)
        bad = next(ch for ch in text if not ch.isascii())
        return None, f"SMILES contains a non-ASCII character {bad!r} at position {text.index(bad)}"
    with rdkit_quiet(), _capture_errors() as lines:
        mol = Chem.MolFromSmiles(text)
    if mol is not None:
        return (mol, None) if mol.GetNumAtoms() > 0 else (None, "SMILES has no atoms")
    return None, lines[0] if lines else _diagnose(text)


def to_mol(smiles: Any) -> Chem.Mol | None:
    """Sanitized molecule, or ``None`` when `parse` fails (silently)."""
    return parse(smiles)[0]


def _as_mol(mol_or_smiles: Any) -> Chem.Mol | None:
    return mol_or_smiles if isinstance(mol_or_smiles, Chem.Mol) else to_mol(mol_or_smiles)


def canonical(smiles: Any, isomeric: bool = True) -> str | None:
    """RDKit canonical SMILES, or ``None`` if unparseable."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=isomeric)


def canonical_many(smiles: Sequence[str], n_jobs: int = 1, isomeric: bool = True) -> list[str | None]:
    """`canonical` over a list, order kept; process-parallel with `n_jobs` > 1 for long lists."""
    return pmap(partial(canonical, isomeric=isomeric), list(smiles), n_jobs)


@lru_cache(maxsize=None)
def _standardizers() -> tuple[Any, Any]:
    return rdMolStandardize.LargestFragmentChooser(), rdMolStandardize.Uncharger()


def standardize(smiles: Any, remove_stereo: bool = False) -> str | None:
    """Keep the largest fragment, neutralize charges where possible, canonicalize.

    ``"CC(=O)[O-].[Na+]"`` -> ``"CC(=O)O"``. Charges that cannot be neutralized by adding or
    removing H (quaternary N) stay. Returns ``None`` if unparseable or standardization fails.
    """
    mol = to_mol(smiles)
    if mol is None:
        return None
    chooser, uncharger = _standardizers()
    try:
        with rdkit_quiet():  # the standardizers log an info line per call
            mol = uncharger.uncharge(chooser.choose(mol))
            if remove_stereo:
                Chem.RemoveStereochemistry(mol)
            return Chem.MolToSmiles(mol)
    except (RuntimeError, ValueError):
        return None


# --------------------------------------------------------------------------- properties

PROPERTY_NAMES: tuple[str, ...] = ("logp", "qed", "sa", "plogp", "plogp_raw", "mw", "tpsa",
                                   "hbd", "hba", "rotb", "rings", "heavy_atoms")

# JT-VAE's normalization of penalized logP (means/stds over ZINC250k).
_LOGP_MEAN, _LOGP_STD = 2.4570953396190123, 1.434324401111988
_SA_MEAN, _SA_STD = 3.0525811293166134, 0.8335207024513095
_CYCLE_MEAN, _CYCLE_STD = -0.0485696876403053, 0.2860212110245455


def penalized_logp(logp: Any, sa: Any, cycle: Any, normalized: bool = True) -> Any:
    """Penalized logP from its parts (floats, numpy or torch arrays of one shape): JT-VAE's normalized
    form (each term standardized with its ZINC250k mean/std) or, with `normalized=False`, the raw
    logP - SA - ring penalty. One definition for RDKit scores and the optimizer's differentiable guide."""
    if not normalized:
        return logp - sa - cycle
    return (logp - _LOGP_MEAN) / _LOGP_STD - (sa - _SA_MEAN) / _SA_STD - (cycle - _CYCLE_MEAN) / _CYCLE_STD


def name_key(name: str) -> str:
    """The one spelling-insensitive form of a property name: stripped, lower case, ``-`` as ``_``
    (``" logP"`` -> ``"logp"``, ``"heavy-atoms"`` -> ``"heavy_atoms"``); user columns too."""
    return name.strip().lower().replace("-", "_")


def property_name(name: str) -> str:
    """Normalize a property name case-insensitively (``"logP"`` -> ``"logp"``).

    Raises `UsageError` listing the valid names for anything else.
    """
    key = name_key(name) if isinstance(name, str) else None
    if key not in PROPERTY_NAMES:
        raise UsageError(f"unknown property {name!r}; valid names: {', '.join(PROPERTY_NAMES)}")
    return key


@lru_cache(maxsize=None)
def _sascorer() -> Any:
    """RDKit Contrib's SA scorer, imported once (it loads its fragment table on first use)."""
    try:
        from rdkit.Contrib.SA_Score import sascorer  # namespace package in the PyPI wheel
    except ImportError:
        import os
        path = os.path.join(RDConfig.RDContribDir, "SA_Score")
        if path not in sys.path:
            sys.path.append(path)
        import sascorer  # type: ignore[no-redef]
    return sascorer


def _cycle_penalty(mol: Chem.Mol) -> float:
    """Largest cycle beyond 6 atoms, else 0: JT-VAE's ring penalty.

    JT-VAE takes cycles from networkx's cycle basis of the bond graph, not RDKit's SSSR; the two differ on
    bridged systems (adamantane: 8 against 6), so we use the same basis to reproduce published plogp values.
    """
    import networkx as nx

    graph = nx.Graph()
    graph.add_edges_from((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds())
    sizes = [len(cycle) for cycle in nx.cycle_basis(graph)]
    return float(max(0, max(sizes, default=0) - 6))


# Base quantities; plogp/plogp_raw are combined from logp, sa and cycle in mol_properties.
_BASE: Mapping[str, Callable[[Chem.Mol], float]] = MappingProxyType({
    "logp": Crippen.MolLogP,
    "qed": QED.qed,
    "sa": lambda m: _sascorer().calculateScore(m),
    "cycle": _cycle_penalty,
    "mw": Descriptors.MolWt,  # average molecular weight, g/mol
    "tpsa": rdMolDescriptors.CalcTPSA,  # topological polar surface area, Å^2
    "hbd": rdMolDescriptors.CalcNumHBD,
    "hba": rdMolDescriptors.CalcNumHBA,
    "rotb": rdMolDescriptors.CalcNumRotatableBonds,
    "rings": rdMolDescriptors.CalcNumRings,  # SSSR ring count
    "heavy_atoms": lambda m: m.GetNumHeavyAtoms(),
})


def mol_properties(mol: Chem.Mol | None, names: Sequence[str] = ("logp", "qed", "sa")) -> dict[str, float]:
    """Properties of one molecule as floats keyed by normalized name; NaN if `mol` is None
    or RDKit fails on it. Shared inputs (logP, SA) are computed once per call."""
    keys = [property_name(n) for n in names]
    if mol is None:
        return {k: math.nan for k in keys}
    memo: dict[str, float] = {}

    def get(key: str) -> float:
        if key not in memo:
            try:
                memo[key] = float(_BASE[key](mol))
            except (RuntimeError, ValueError, ZeroDivisionError):
                memo[key] = math.nan
        return memo[key]

    out: dict[str, float] = {}
    for k in keys:
        if k == "plogp":
            out[k] = penalized_logp(get("logp"), get("sa"), get("cycle"))
        elif k == "plogp_raw":
            out[k] = penalized_logp(get("logp"), get("sa"), get("cycle"), normalized=False)
        else:
            out[k] = get(k)
    return out


def _properties_row(smiles: str, names: tuple[str, ...]) -> list[float]:
    values = mol_properties(to_mol(smiles), names)
    return [values[n] for n in names]


def properties(smiles: Sequence[str], names: Sequence[str] = ("logp", "qed", "sa"),
               n_jobs: int = 1) -> pd.DataFrame:
    """DataFrame (n, len(names)) of float properties, one column per normalized name,
    index 0..n-1, NaN rows for unparseable SMILES."""
    keys = tuple(property_name(n) for n in names)
    rows = pmap(partial(_properties_row, names=keys), list(smiles), n_jobs)
    return pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(len(rows), len(keys)), columns=list(keys))


# --------------------------------------------------------------------------- filters

_MOSES_ALLOWED = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


@lru_cache(maxsize=None)
def _moses_patterns() -> tuple[Chem.Mol, ...]:
    """MOSES MCF + PAINS SMARTS, compiled once per process (the csv files ship in resources)."""
    base = resources.files("molvae") / "resources"
    with (base / "mcf.csv").open(newline="") as f:
        mcf = [row["smarts"] for row in csv.DictReader(f)]
    with (base / "wehi_pains.csv").open(newline="") as f:  # no header: smarts, name
        pains = [row[0] for row in csv.reader(f) if row]
    return tuple(Chem.MolFromSmarts(s) for s in mcf + pains)


def largest_ring(mol: Chem.Mol) -> int:
    """Atoms in the largest ring of RDKit's ring perception (SSSR) of `mol`; 0 for an acyclic molecule."""
    return max((len(ring) for ring in mol.GetRingInfo().AtomRings()), default=0)


def passes_moses_filters(mol: Chem.Mol | str | None) -> bool:
    """MOSES `mol_passes_filters`: allowed atoms C,N,S,O,F,Cl,Br,H; no formal charges;
    no ring of 8 or more atoms (MOSES tests ``len(ring) >= 8``); no MCF or PAINS SMARTS
    match on the H-explicit molecule; non-isomeric SMILES round-trips. False if invalid."""
    mol = _as_mol(mol)
    if mol is None:
        return False
    if largest_ring(mol) >= 8:
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in _MOSES_ALLOWED for atom in mol.GetAtoms()):
        return False
    h_mol = Chem.AddHs(mol)  # the PAINS SMARTS spell out hydrogens as [#1]
    if any(h_mol.HasSubstructMatch(p) for p in _moses_patterns()):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    if not smiles:
        return False
    with rdkit_quiet():
        return Chem.MolFromSmiles(smiles) is not None


@lru_cache(maxsize=None)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, name))
    return FilterCatalog(params)


def pains_match(mol: Chem.Mol | str | None) -> list[str]:
    """Descriptions of RDKit's PAINS (A+B+C) alerts that match; [] if none or invalid."""
    mol = _as_mol(mol)
    return [] if mol is None else [m.GetDescription() for m in _catalog("PAINS").GetMatches(mol)]


def brenk_match(mol: Chem.Mol | str | None) -> list[str]:
    """Descriptions of RDKit's Brenk unwanted-group alerts that match; [] if none or invalid."""
    mol = _as_mol(mol)
    return [] if mol is None else [m.GetDescription() for m in _catalog("BRENK").GetMatches(mol)]


def _filters_row(smiles: str) -> tuple[bool, bool, bool, bool]:
    mol = to_mol(smiles)
    if mol is None:
        return False, False, False, False
    return True, passes_moses_filters(mol), bool(pains_match(mol)), bool(brenk_match(mol))


def filters(smiles: Sequence[str], n_jobs: int = 1) -> pd.DataFrame:
    """Boolean DataFrame, index 0..n-1: ``moses`` (passes MOSES filters), ``pains`` (any RDKit
    PAINS alert), ``brenk`` (any Brenk alert), plus ``valid``; invalid rows are False throughout."""
    rows = pmap(_filters_row, list(smiles), n_jobs)
    df = pd.DataFrame(rows, columns=["valid", "moses", "pains", "brenk"], dtype=bool)
    return df[["moses", "pains", "brenk", "valid"]]


# --------------------------------------------------------------------------- similarity


@lru_cache(maxsize=None)
def _morgan(radius: int, n_bits: int) -> Any:
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def fingerprint(mol_or_smiles: Chem.Mol | str | None, radius: int = 2,
                n_bits: int = 2048) -> DataStructs.ExplicitBitVect | None:
    """Morgan (ECFP-like, no chirality) bit fingerprint, or ``None`` if invalid."""
    mol = _as_mol(mol_or_smiles)
    return None if mol is None else _morgan(radius, n_bits).GetFingerprint(mol)


def tanimoto(a: Chem.Mol | str, b: Chem.Mol | str, radius: int = 2, n_bits: int = 2048) -> float:
    """Tanimoto similarity of Morgan fingerprints in [0, 1]; 0.0 if either is invalid."""
    fa, fb = fingerprint(a, radius, n_bits), fingerprint(b, radius, n_bits)
    return 0.0 if fa is None or fb is None else float(DataStructs.TanimotoSimilarity(fa, fb))


def bulk_tanimoto(query: Chem.Mol | str, targets: Sequence[Chem.Mol | str], radius: int = 2,
                  n_bits: int = 2048) -> np.ndarray:
    """Similarity of `query` to each target, float64 array (len(targets),); 0.0 for invalid
    targets, all zeros if the query is invalid."""
    out = np.zeros(len(targets), dtype=np.float64)
    fq = fingerprint(query, radius, n_bits)
    if fq is None:
        return out
    fps = [fingerprint(t, radius, n_bits) for t in targets]
    ok = [i for i, fp in enumerate(fps) if fp is not None]
    if ok:
        out[ok] = DataStructs.BulkTanimotoSimilarity(fq, [fps[i] for i in ok])
    return out
