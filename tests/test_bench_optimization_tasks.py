"""molvae.bench.optimization_tasks: the top-3 tasks, the heavy-atom variant among them, and where failed starts'
decodes went."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from molvae import chem


@pytest.fixture(scope="module")
def bench():
    from molvae.bench import optimization_tasks

    return optimization_tasks


def test_top3_tasks_name_their_objective_and_heavy_atom_bound(bench) -> None:
    assert bench.TOP3_TASKS["plogp_ha38"] == ("plogp", 38)
    assert bench.TOP3_TASKS["plogp"] == ("plogp", None) and bench.TOP3_TASKS["qed"] == ("qed", None)


def test_heavy_atom_variant_reports_only_molecules_within_the_bound(bench, shipped) -> None:
    # Long steps make unconstrained plogp report an oversized chain; the same run under the bound must not
    kw = dict(budget=60, n_starts=6, every=10, seed=0, gradient_args={"lr": 4.0})
    free = bench.top3(shipped, "plogp", "gradient", **kw)
    assert chem.properties(free["smiles"], ["heavy_atoms"])["heavy_atoms"].max() > 38
    r = bench.top3(shipped, "plogp_ha38", "gradient", **kw)
    assert r["n_decoded"] == 60 and len(r["values"]) == len(r["smiles"]) >= 1
    heavy = chem.properties(r["smiles"], ["heavy_atoms"])["heavy_atoms"].to_numpy()
    assert (heavy <= 38).all()
    assert r["values"] == sorted(r["values"], reverse=True)


def test_where_decodes_go_counts_only_the_failed_starts(bench) -> None:
    obs = pd.DataFrame({
        "start_id": [0, 0, 0, 0, 1],
        "valid": [False, True, True, True, True],
        "ok": [False, True, False, True, True],
        "result": [False, False, False, True, True],
        "rejected": ["invalid", "", "similarity", "", ""],
    })
    st = pd.DataFrame({"start_id": [0, 1]})
    out = bench.where_decodes_go(obs, st, np.array([False, True]))
    assert out == {"starts": 1, "decodes": 4, "invalid": 1, "start_itself": 1, "below_floor": 1, "lower_plogp": 1}
