"""scripts/build_moses_properties.py: the table it writes is found again for the list it was built from."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from molvae import chem
from molvae.data import validation
from molvae.data.moses_properties import shipped_properties
from molvae.data.tokens import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "train_tiny.csv"


def test_table_of_a_small_file(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("build_moses_properties", ROOT / "scripts" / "build_moses_properties.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "table.npz"
    module.main(["--data", str(TINY), "--n-jobs", "1", "--out", str(out)])
    df, _ = validation.load_molecules(str(TINY), properties=(), tokenizer=Tokenizer("smiles"), max_len=120,
                                      rejected_path=None)
    names = ["logp", "qed", "sa", "mw", "tpsa"]
    found = shipped_properties(df["smiles"].tolist(), names, out)
    expected = chem.properties(df["smiles"].tolist(), names)
    # float16 keeps about 3 significant digits: a MW of 500 is stored within 0.25 Da
    for name, atol in zip(names, (4e-3, 4e-3, 4e-3, 0.25, 0.1)):
        np.testing.assert_allclose(found[name], expected[name], atol=atol)
    assert "largest float16 error" in capsys.readouterr().out
    module.main(["--data", str(TINY), "--n-jobs", "1", "--out", str(out), "--names", "logp"])
    assert set(shipped_properties(df["smiles"].tolist(), names, out)) == {"logp"}
