"""The maintenance tools that stay in scripts/ (they write package files; benchmarks are molvae.bench):
scripts/ship_default.py ships the tiny generation checkpoint into a temporary directory in fp16, loadable;
scripts/build_reference_stats.py --limit builds shipped statistics that survive the lookup round trip;
scripts/build_moses_properties.py builds the property table of a small file, run as a command.
(scripts/run_notebooks.py is checked by tests/test_notebooks.py; scripts/save_cycle.py by test_scripts_save_cycle.)"""
from __future__ import annotations

from pathlib import Path

import pytest

MOSES = Path.home() / ".cache" / "molvae" / "moses"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_ship_default(load_script, gen_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch
    from safetensors.torch import load_file

    import molvae

    target = load_script("ship_default").main([str(gen_checkpoint), "--name", "tiny", "--into", str(tmp_path)])
    assert target == tmp_path / "tiny" and f"-> {target}" in capsys.readouterr().out
    assert {p.name for p in target.iterdir()} >= {"model.safetensors", "config.json", "vocab.json", "history.csv"}
    weights = load_file(target / "model.safetensors")
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    shipped = molvae.load(target, device="cpu", precision="fp32", n_jobs=1)
    original = molvae.load(gen_checkpoint, device="cpu", precision="fp32", n_jobs=1)
    assert (shipped.encode(["CCO"]) - original.encode(["CCO"])).max() < 1e-2
    assert shipped.sampling == {"temperature": 1.0, "top_p": 1.0}  # no setting recorded: plain sampling


def test_ship_default_records_the_sampling_setting(load_script, gen_checkpoint: Path, tmp_path: Path) -> None:
    import json

    import molvae
    from molvae.errors import CheckpointError

    ship = load_script("ship_default").main
    target = ship([str(gen_checkpoint), "--name", "tiny", "--into", str(tmp_path), "--temperature", "1.2"])
    vae = molvae.load(target, device="cpu", precision="fp32", n_jobs=1)
    assert vae.sampling == {"temperature": 1.2, "top_p": 1.0}
    df = vae.sample(20, seed=0)
    assert df.attrs["temperature"] == 1.2 and df.attrs["top_p"] == 1.0
    assert df["smiles"].tolist() == vae.sample(20, seed=0, temperature=1.2)["smiles"].tolist()
    assert vae.sample(5, seed=0, temperature=0.8).attrs["temperature"] == 0.8  # a given value wins
    with pytest.raises(SystemExit):
        ship([str(gen_checkpoint), "--into", str(tmp_path), "--top-p", "x"])
    config = json.loads((target / "config.json").read_text())
    for bad in ({"temperature": 0}, {"top_p": 1.5}, {"beam": 3}):
        (target / "config.json").write_text(json.dumps({**config, "sampling": bad}))
        with pytest.raises(CheckpointError, match="sampling"):
            molvae.load(target, device="cpu")


def test_ship_default_replaces_the_density_and_drops_the_old_domain(load_script, gen_checkpoint: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    import json
    import shutil

    target = tmp_path / "tiny"
    target.mkdir()
    for name in ("density.safetensors", "density.json", "domain.json", "domain_reference.json"):
        (target / name).write_text("of the model shipped before")
    ship = load_script("ship_default").main
    assert ship([str(gen_checkpoint), "--name", "tiny", "--into", str(tmp_path)]) == target
    assert f"molvae domain --model {target} --data embedded" in capsys.readouterr().out
    assert not (target / "domain.json").exists() and not (target / "domain_reference.json").exists()
    for name in ("density.safetensors", "density.json"):  # the checkpoint's own, fitted at the end of training
        assert (target / name).read_bytes() == (gen_checkpoint / name).read_bytes()

    selfies = tmp_path / "selfies"  # a SELFIES checkpoint must be named: moses-selfies is retired
    shutil.copytree(gen_checkpoint, selfies)
    config = json.loads((selfies / "config.json").read_text())
    (selfies / "config.json").write_text(json.dumps({**config, "representation": "selfies"}))
    with pytest.raises(SystemExit) as exc:
        ship([str(selfies), "--into", str(tmp_path)])
    assert exc.value.code == 2 and "give --name" in capsys.readouterr().err
    assert not (tmp_path / "moses-selfies").exists()


@pytest.mark.skipif(not (MOSES / "test_scaffolds.csv.gz").exists(), reason="MOSES is not in the molvae cache")
def test_build_reference_stats(load_script, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from molvae.evaluation import shipped

    before = shipped.SHIPPED_DIR
    written = load_script("build_reference_stats").main(["--out", str(tmp_path), "--limit", "12", "--n-jobs", "1"])
    assert shipped.SHIPPED_DIR == before
    assert set(written) == set(shipped.SHIPPED_FILES)
    for split, path in written.items():
        assert path == tmp_path / shipped.SHIPPED_FILES[split] and path.stat().st_size > 0
    assert "12 SMILES" in capsys.readouterr().out


def test_build_moses_properties(tmp_path: Path) -> None:
    import subprocess
    import sys

    import numpy as np

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "props.npz"
    proc = subprocess.run([sys.executable, str(root / "scripts" / "build_moses_properties.py"), "--data",
                           str(root / "tests" / "data" / "gen_train.csv"), "--out", str(out), "--n-jobs", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "64 molecules ->" in proc.stdout and out.exists()
    assert len(np.load(out)["values.logp"]) == 64 and int(np.load(out)["n"]) == 64
