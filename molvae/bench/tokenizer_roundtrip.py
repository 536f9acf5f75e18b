"""Tokenizer benchmark: round-trip rate, vocabulary size and token lengths, SMILES vs SELFIES.

Usage:
    python -m molvae.bench.tokenizer_roundtrip                       # embedded 20k MOSES subset
    python -m molvae.bench.tokenizer_roundtrip --data /path/to/moses/train.csv.gz --n-jobs 2 --json-out tokens.json

Round trip: SMILES, `detokenize(tokenize(s)) == s` exactly; SELFIES, RDKit-canonical SMILES
of the decoded string equals that of the input (the SELFIES tokenizer canonicalizes first).
Token lengths exclude <bos>/<eos>; vocabulary sizes are regular tokens, add 4 for the specials.
Prints a table and writes JSON (--json-out).
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import rdkit
import selfies as sf

from molvae import chem
from molvae.data import Tokenizer, Vocabulary, embedded_path
from molvae.data.tokens import SPECIALS, tokenize_smiles
from molvae.errors import TokenizationError
from molvae.parallel import pmap, resolve_jobs

__all__ = ["run", "table", "main"]

N_EXAMPLES = 20  # failure examples kept in the JSON


SMILES_TOKENIZER = Tokenizer("smiles")
TIMING_SAMPLE = 2000  # molecules timed in the main process, one core, for the us/mol column


def _round_trip(smiles: str, selfies_tok: Tokenizer) -> tuple:
    """Per-molecule work (runs in a worker process).

    Returns (smiles_ok, n_smiles_tokens, smiles_error,
             selfies_string | None, selfies_ok, n_selfies_tokens, selfies_error).
    """
    smiles_tok = SMILES_TOKENIZER
    try:
        toks = smiles_tok.tokenize(smiles)
        s_ok, s_n, s_err = smiles_tok.detokenize(toks) == smiles, len(toks), None
    except TokenizationError as exc:
        s_ok, s_n, s_err = False, 0, str(exc)
    encoded, f_ok, f_n, f_err = None, False, 0, None
    try:
        toks = selfies_tok.tokenize(smiles)
        encoded, f_n = "".join(toks), len(toks)
        back = selfies_tok.detokenize(toks)
        f_ok = chem.canonical(back) == chem.canonical(smiles)
        if not f_ok:
            f_err = f"decoded to {back!r}"
    except TokenizationError as exc:
        f_err = str(exc)
    return s_ok, s_n, s_err, encoded, f_ok, f_n, f_err


def _us_per_molecule(tok: Tokenizer, smiles: list[str]) -> float:
    """Wall time of tokenize + detokenize per molecule in this process (one core)."""
    start = time.perf_counter()
    for s in smiles:
        try:
            tok.detokenize(tok.tokenize(s))
        except TokenizationError:
            pass
    return 1e6 * (time.perf_counter() - start) / max(1, len(smiles))


def _summary(name: str, smiles: list[str], ok: np.ndarray, n_tok: np.ndarray, errors: list, us_per_mol: float,
             vocab: Vocabulary) -> dict:
    """Figures for one representation; lengths over the molecules that tokenized."""
    lengths = n_tok[n_tok > 0]
    failures = [(s, e) for s, good, e in zip(smiles, ok, errors) if not good]
    # Failure kinds with the quoted molecule removed, so equal reasons count together.
    kinds = Counter(re.sub(r"'[^']*'|\"[^\"]*\"", "...", e or "mismatch")[:120] for _, e in failures)
    return {
        "representation": name,
        "n_molecules": len(smiles),
        "n_round_trip_ok": int(ok.sum()),
        "round_trip_rate": float(ok.mean()) if len(ok) else float("nan"),
        "n_failures": len(failures),
        "failure_kinds": dict(kinds.most_common(10)),
        "failure_examples": [{"smiles": s, "reason": e} for s, e in failures[:N_EXAMPLES]],
        "vocab_size": len(vocab.tokens),
        "vocab_size_with_specials": len(vocab),
        "max_tokens": int(lengths.max()) if len(lengths) else 0,
        "mean_tokens": float(lengths.mean()) if len(lengths) else float("nan"),
        "p99_tokens": float(np.percentile(lengths, 99)) if len(lengths) else float("nan"),
        "us_per_molecule_1core": us_per_mol,
        "tokens": list(vocab.tokens),
    }


def run(data: Path, n_jobs: int, limit: int | None, constraints: str) -> dict[str, Any]:
    """Benchmark both tokenizers on the SMILES column of `data` (its first `limit` molecules): one dict per
    representation under "smiles" and "selfies" (rates in [0, 1], lengths in tokens, times in us)."""
    frame = pd.read_csv(data, usecols=["SMILES"], nrows=limit)
    smiles = frame["SMILES"].astype(str).tolist()
    selfies_tok = Tokenizer("selfies", constraints)
    start = time.perf_counter()
    rows = pmap(partial(_round_trip, selfies_tok=selfies_tok), smiles, n_jobs)
    s_ok, s_n, s_err, encoded, f_ok, f_n, f_err = zip(*rows) if rows else ([],) * 7
    parallel_s = time.perf_counter() - start
    # Vocabularies are built in this process from strings the workers already produced.
    smiles_vocab = Vocabulary.build(tokenize_smiles(s) for s, good in zip(smiles, s_ok) if good)
    selfies_vocab = Vocabulary.build(sf.split_selfies(e) for e in encoded if e is not None)
    wall_s = time.perf_counter() - start
    sample = smiles[:TIMING_SAMPLE]
    return {
        "data": str(data),
        "n_molecules": len(smiles),
        "n_jobs": resolve_jobs(n_jobs),
        "selfies_constraints": selfies_tok.to_dict(),
        "versions": {"python": platform.python_version(), "selfies": sf.__version__, "rdkit": rdkit.__version__},
        "machine": platform.processor() or platform.machine(),
        "wall_s": wall_s,
        "parallel_wall_s": parallel_s,
        "smiles": _summary("smiles", smiles, np.array(s_ok, bool), np.array(s_n), list(s_err),
                           _us_per_molecule(SMILES_TOKENIZER, sample),
                           smiles_vocab),
        "selfies": _summary("selfies", smiles, np.array(f_ok, bool), np.array(f_n), list(f_err),
                            _us_per_molecule(selfies_tok, sample),
                            selfies_vocab),
    }


def table(result: dict[str, Any]) -> str:
    """Plain-text table of the headline figures."""
    head = f"{'repr':8} {'molecules':>10} {'round-trip':>11} {'fail':>6} {'vocab':>6} {'max len':>8} " \
           f"{'mean len':>9} {'p99 len':>8} {'us/mol':>8}"
    lines = [f"data: {result['data']} ({result['n_molecules']:,} molecules, n_jobs={result['n_jobs']}, "
             f"wall {result['wall_s']:.1f} s)", head, "-" * len(head)]
    for key in ("smiles", "selfies"):
        r = result[key]
        lines.append(f"{key:8} {r['n_molecules']:>10,} {r['round_trip_rate']:>11.6f} {r['n_failures']:>6} "
                     f"{r['vocab_size']:>6} {r['max_tokens']:>8} {r['mean_tokens']:>9.2f} {r['p99_tokens']:>8.0f} "
                     f"{r['us_per_molecule_1core']:>8.0f}")
    lines.append(f"vocab = regular tokens (+{len(SPECIALS)} specials); lengths exclude <bos>/<eos>; "
                 f"us/mol = tokenize+detokenize wall time per molecule, one core, first {TIMING_SAMPLE:,} molecules "
                 "(SELFIES includes RDKit canonicalization).")
    for key in ("smiles", "selfies"):
        for ex in result[key]["failure_examples"][:5]:
            lines.append(f"  {key} failure: {ex['smiles']}  ->  {ex['reason']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark as the command line `argv` says; print the table, write --json-out; returns the result."""
    parser = argparse.ArgumentParser(prog="python -m molvae.bench.tokenizer_roundtrip",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=embedded_path("train"), help="CSV(.gz) with a SMILES column")
    parser.add_argument("--n-jobs", type=int, default=1, help="worker processes (<= 0: all cores)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N molecules")
    parser.add_argument("--selfies-constraints", default="default", help="selfies preset")
    parser.add_argument("--json-out", type=Path, default=None, help="write the full result here")
    args = parser.parse_args(argv)
    result = run(args.data, args.n_jobs, args.limit, args.selfies_constraints)
    print(table(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json_out}")
    return result


if __name__ == "__main__":
    main()
