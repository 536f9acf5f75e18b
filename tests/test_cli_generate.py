"""Generation commands, in-process: through `molvae.cli.main` (the exit codes users get) and
typer's CliRunner. The model is the tiny checkpoint of conftest.py (`gen_checkpoint`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from molvae.cli import app as cli
from molvae.cli.common import summary_line

TRAIN = pd.read_csv(Path(__file__).parent / "data" / "gen_train.csv")["smiles"].tolist()


pytestmark = pytest.mark.usefixtures("one_thread")




def test_sample_table_and_summary(gen_checkpoint: Path) -> None:
    result = CliRunner().invoke(cli.app, ["sample", "--n", "12", "--model", str(gen_checkpoint), "--seed", "0",
                                          "--device", "cpu"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "smiles" in out and "qed" in out and "12 molecules, valid" in out
    assert "molecules/s" in out and "seed 0" in out and "Traceback" not in out


def test_summary_line() -> None:
    df = pd.DataFrame({"smiles": ["CCO", "OCC", "C", "x"], "valid": [True, True, True, False],
                       "canonical": ["CCO", "CCO", "C", None], "novel": [True, True, False, False]})
    line = summary_line(df, 2.0, n_asked=5)
    assert line == "4 molecules (asked 5), valid 75.0%, unique 66.7%, novel 50.0%, 2.00 s, 2 molecules/s"


@pytest.mark.parametrize("ext", [".csv", ".smi", ".sdf", ".parquet"])
def test_sample_to_file(run, gen_checkpoint: Path, tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"s{ext}"
    code, text = run("sample", "-n", 20, "-m", gen_checkpoint, "--seed", 1, "-o", out, "--precision", "fp32")
    assert code == 0, text
    assert out.is_file() and "wrote" in text and "20 molecules" in text
    if ext == ".csv":
        df = pd.read_csv(out)
        assert len(df) == 20 and {"smiles", "valid", "canonical", "logp", "qed", "sa", "novel"} <= set(df.columns)
    record = json.loads(out.with_suffix(".config.json").read_text())
    assert record["command"] == "molvae sample" and record["seed"] == 1 and record["rows"] == 20
    assert record["settings"]["n"] == 20 and record["settings"]["temperature"] is None  # as given: the model's
    assert record["model"]["sampling"] == {"temperature": 1.0, "top_p": 1.0}
    assert record["model"]["path"] == str(gen_checkpoint) and record["model"]["representation"] == "smiles"
    assert record["model"]["precision"] == "fp32" and record["model"]["device"] == "cpu"
    assert record["versions"]["torch"] and "config.json" in text


def test_run_record_reproduces_the_file(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    """The settings and drawn seed in a record regenerate its file, for a run that picked a fresh seed."""
    code, text = run("sample", "-n", 15, "-m", gen_checkpoint, "-o", tmp_path / "a.csv", "--precision", "fp32")
    assert code == 0, text
    seed = json.loads((tmp_path / "a.config.json").read_text())["seed"]
    code, text = run("sample", "-n", 15, "-m", gen_checkpoint, "--seed", seed, "-o", tmp_path / "b.csv",
                     "--precision", "fp32")
    assert code == 0, text
    assert pd.read_csv(tmp_path / "a.csv")["smiles"].tolist() == pd.read_csv(tmp_path / "b.csv")["smiles"].tolist()


def test_sample_options(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    code, text = run("sample", "-n", 10, "-m", gen_checkpoint, "--seed", 2, "--method", "beam", "--beam-width", 2,
                     "--unique-valid", "--grid", grid, "--batch-size", 4, "--n-jobs", 1, "-p", "QED",
                     "-o", tmp_path / "u.csv")
    assert code == 0, text
    df = pd.read_csv(tmp_path / "u.csv")
    assert df["valid"].all() and df["canonical"].is_unique and "qed" in df and "logp" not in df
    assert grid.is_file() and grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,needle", [
    (["-n", "0"], "n must be a positive"),
    (["-n", "5", "--temperature", "0"], "temperature"),
    (["-n", "5", "--temperature", "50"], "temperature"),
    (["-n", "5", "--method", "nucleus"], "unknown method"),
    (["-n", "5", "-o", "out.xlsx"], "unknown extension"),
    (["-n", "5", "--grid", "g.jpg"], "PNG"),
    (["-n", "5", "-p", "colour"], "unknown property"),
    (["-n", "5", "--device", "tpu"], "device"),
])
def test_sample_usage_errors_exit_2(run, gen_checkpoint: Path, args: list[str], needle: str) -> None:
    code, text = run("sample", "-m", gen_checkpoint, *args)
    assert code == 2, text
    assert needle in text and "Traceback" not in text


def test_parser_errors_exit_2(gen_checkpoint: Path) -> None:
    result = CliRunner().invoke(cli.app, ["sample", "--n", "many", "--model", str(gen_checkpoint)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_missing_model_exits_1(run, tmp_path: Path) -> None:
    code, text = run("sample", "-n", 3, "--model", tmp_path / "nothing-here")
    assert code == 1 and "no model" in text and "Traceback" not in text
    code, text = run("sample", "-n", 3, "--model", tmp_path)
    assert code == 1 and "not a molvae checkpoint" in text and "Traceback" not in text


def test_encode_decode_round_trip(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    smi = tmp_path / "in.smi"
    smi.write_text("\n".join(TRAIN[:5]) + "\n")
    z = tmp_path / "z.npy"
    code, text = run("encode", smi, "CCO", "-m", gen_checkpoint, "-o", z)
    assert code == 0, text
    arr = np.load(z)
    assert arr.shape == (6, 16) and "6 molecules encoded" in text
    zc = tmp_path / "z.csv"
    code, text = run("encode", *TRAIN[:3], "-m", gen_checkpoint, "-o", zc)
    assert code == 0 and list(pd.read_csv(zc).columns[:2]) == ["smiles", "z0"]
    code, text = run("encode", "CCO", "-m", gen_checkpoint)  # table to the terminal
    assert code == 0 and "|z|" in text
    for source in (z, zc):
        out = tmp_path / f"dec_{source.suffix[1:]}.csv"
        code, text = run("decode", source, "-m", gen_checkpoint, "-o", out)
        assert code == 0, text
        assert len(pd.read_csv(out)) == (6 if source == z else 3)


def test_encode_bad_rows(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    code, text = run("encode", "CCO", "C[Se]C", "-m", gen_checkpoint)
    assert code == 1 and "row 1 'C[Se]C'" in text and "'[Se]'" in text and "Traceback" not in text
    code, text = run("encode", "CCO", "C[Se]C", "-m", gen_checkpoint, "--on-invalid", "skip", "-o", tmp_path / "z.npy")
    assert code == 0 and "1 skipped" in text and np.load(tmp_path / "z.npy").shape == (1, 16)
    code, text = run("encode", "missing.csv", "-m", gen_checkpoint)
    assert code == 1 and "not found" in text
    code, text = run("encode", "CCO", "-m", gen_checkpoint, "-o", tmp_path / "z.txt")
    assert code == 2 and ".npy" in text


def test_decode_bad_latents(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 5), dtype=np.float32))
    code, text = run("decode", wrong, "-m", gen_checkpoint)
    assert code == 2 and "16 dimensions" in text and "Traceback" not in text
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, text = run("decode", pickled, "-m", gen_checkpoint)
    assert code == 1 and "Traceback" not in text  # never unpickled


def test_reconstruct_interpolate_neighbors(run, gen_checkpoint: Path, tmp_path: Path) -> None:
    code, text = run("reconstruct", *TRAIN[:4], "-m", gen_checkpoint)
    assert code == 0 and "exact" in text and "input" in text
    code, text = run("reconstruct", "CCO", "xyz", "-m", gen_checkpoint, "--on-invalid", "skip",
                     "-o", tmp_path / "r.csv")
    assert code == 0 and "1 input skipped" in text
    assert pd.read_csv(tmp_path / "r.csv")["input"].tolist() == ["CCO"]
    code, text = run("interpolate", TRAIN[0], TRAIN[1], "--steps", 4, "--kind", "slerp", "-m", gen_checkpoint,
                     "-o", tmp_path / "i.sdf")
    assert code == 0 and (tmp_path / "i.sdf").is_file()
    code, text = run("interpolate", "CCO", "CCN", "--steps", 1, "-m", gen_checkpoint)
    assert code == 2 and "steps" in text
    code, text = run("neighbors", TRAIN[2], "-n", 6, "--radius", 0.4, "--seed", 0, "-m", gen_checkpoint)
    assert code == 0 and "similarity" in text and "6 molecules" in text
    code, text = run("neighbors", "C1CC", "-m", gen_checkpoint)
    assert code == 1 and "query molecule" in text and "Traceback" not in text


def test_sample_beyond_what_one_run_can_finish_is_refused_up_front(run, gen_checkpoint: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    import shutil

    code, text = run("sample", "--n", "99999999999999", "-o", tmp_path / "x.csv", "-m", gen_checkpoint)
    assert code == 2 and "100,000,000" in text and "--seed" in text and "Traceback" not in text
    assert not (tmp_path / "x.csv").exists()
    # A run that fits the bound but not the disk: refused before the model loads.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 1000, 1000))
    code, text = run("sample", "--n", "1000", "-o", tmp_path / "y.csv", "-m", gen_checkpoint)
    assert code == 2 and "GB" in text and "free" in text and not (tmp_path / "y.csv").exists()


@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_molecule_longer_than_the_model_is_a_bad_row(run, gen_checkpoint: Path, command: str) -> None:
    chain = "C" * 300  # spelled by the vocabulary, far longer than the decoder's 64 tokens
    code, text = run(command, "CCO", chain, "-m", gen_checkpoint)
    assert code == 1 and "Traceback" not in text
    assert "row 1" in text and "longer than the model's" in text and "(300 characters)" in text
    code, text = run(command, "CCO", chain, "-m", gen_checkpoint, "--on-invalid", "skip")
    assert code == 0 and "longer than the model's" in text
