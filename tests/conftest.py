"""Shared fixtures. Each block names the test files that use it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# The suite runs on two pytest-xdist workers (scripts/test.sh). A session fixture is built once per worker that
# uses it, so the tests of an expensive one are kept on one worker: the conditional model trains once, not twice.
ONE_WORKER_FIXTURES = ("cond_checkpoint",)


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker, one torch/OpenMP thread: two workers on two cores, each with two threads, would make
    OpenMP wait for descheduled threads (the `one_thread` fixture says how slow that gets)."""
    import os
    import sys

    if os.environ.get("PYTEST_XDIST_WORKER"):
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # subprocesses too (CLI runs, notebook kernels, servers)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for name in ONE_WORKER_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))


# ------------------------------------------- generation (test_generate.py, test_cli_generate.py)
def train_tiny(out: Path, representation: str = "smiles") -> Path:
    """A tiny VAE (latent 16) with a logp/qed head, trained by `train.fit` on the 64 molecules of
    tests/data/gen_train.csv: 40 epochs of 4 batches, fp32, one thread, about 5-15 s. Deterministic (CPU
    training is a function of its config). The recipe of `gen_checkpoint` (SMILES) and of
    test_generation_selfies' model."""
    from molvae.train import TrainConfig, fit

    cfg = TrainConfig(
        data=str(DATA / "gen_train.csv"), representation=representation, properties=("logp", "qed"), max_len=62,
        epochs=40, batch_size=16, lr=5e-3, lr_schedule="constant", val_fraction=0.0, patience=0,
        beta_start=0.0, beta_end=0.1, kl_warmup_epochs=40, seed=0, amp="off", threads=1, progress=False,
        out=str(out),
        model={"embed_dim": 32, "enc_hidden": 64, "latent_dim": 16, "dec_hidden": 128, "dec_layers": 1,
               "prop_hidden": 32},
    )
    return fit(cfg)


@pytest.fixture(scope="session")
def gen_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SMILES VAE of `train_tiny`. It reconstructs about a third of its training molecules exactly, so
    tests see both exact and wrong outputs."""
    return train_tiny(tmp_path_factory.mktemp("gen") / "tiny")


# ------------------------------------------- conditional generation (test_generation_conditional.py, bench tests)
@pytest.fixture(scope="session")
def cond_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional SMILES VAE (latent 16), its decoder conditioned on logP, trained by `train.fit` on the
    first 5,000 embedded MOSES molecules (data/moses_train_20k.csv): 6 epochs at KL weight 1, fp32, one thread,
    about 30-40 s; its latent density (a posterior mixture of 2,000 training molecules, each with its c) is
    fitted at the end of training, as for any model."""
    import pandas as pd

    from molvae.train import TrainConfig, fit

    folder = tmp_path_factory.mktemp("cond")
    data = folder / "train.csv"
    pd.read_csv(DATA.parents[1] / "data" / "moses_train_20k.csv").head(5000).to_csv(data, index=False)
    cfg = TrainConfig(data=str(data), representation="smiles", properties=("logp",), conditions=("logp",),
                      max_len=60, epochs=6, batch_size=64, lr=3e-3, lr_schedule="constant", val_fraction=0.0,
                      patience=0, kl_schedule="constant", beta_start=1.0, beta_end=1.0, amp="off", threads=1,
                      progress=False, density_molecules=2000, seed=0, out=str(folder / "model"),
                      model={"embed_dim": 32, "enc_hidden": 64, "latent_dim": 16, "dec_hidden": 128,
                             "dec_layers": 1})
    return fit(cfg)


# ------------------------------------------- scripts (test_scripts_maintenance.py)
@pytest.fixture(scope="session")
def load_script():
    """A loader of scripts/NAME.py as a module (the scripts are not a package), for their unit tests."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


# ------------------------------------------- shared by the model-using test files
@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches gain nothing from threads, and on a shared, loaded machine OpenMP waiting for a
    descheduled second thread makes each step ~100x slower. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def vae(gen_checkpoint: Path):
    """The tiny generation checkpoint loaded as a MolVAE on CPU in fp32."""
    import molvae

    return molvae.load(gen_checkpoint, device="cpu", precision="fp32", n_jobs=1)


# ------------------------------------------- CLI (test_cli*.py, test_optimize.py)
def invoke_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str]:
    """Run `molvae ARGS` in-process through `molvae.cli.main`, so the exit-code mapping is what users
    get; returns (exit code, stdout + stderr)."""
    import sys

    from molvae.cli import app as cli

    monkeypatch.setattr(sys, "argv", ["molvae", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture()
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`run(*args) -> (exit code, stdout + stderr)`; see `invoke_cli`."""
    return lambda *args: invoke_cli(monkeypatch, capsys, *args)


# ------------------------------------------- the shipped default (generation, optimization, score/predict tests)
@pytest.fixture(scope="module")
def shipped():
    """The shipped default model on the CPU in fp32 (bf16 kernels differ between CPUs, and assertions must not
    depend on the machine), one RDKit process. Module-scoped: no test module sees what another did to it."""
    import molvae

    return molvae.load(device="cpu", precision="fp32", n_jobs=1)


# ------------------------------------------- anomaly scores (test_cli_score.py, test_cli_predict.py)
@pytest.fixture()
def model_without_domain(tmp_path: Path) -> Path:
    """The shipped default as a checkpoint directory without its calibrated domain (files linked, not copied)."""
    from molvae.model.checkpoint import pretrained_dir

    ckpt = tmp_path / "model"
    ckpt.mkdir()
    for f in pretrained_dir().joinpath("moses-smiles").iterdir():
        if not f.name.startswith("domain"):
            (ckpt / f.name).symlink_to(f)
    return ckpt


# ------------------------------------------- training configs (test_cli_app.py, test_train_config.py)
@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    """A --config file whose values all differ from the TrainConfig defaults."""
    file = tmp_path / "cfg.json"
    file.write_text(json.dumps({"epochs": 7, "batch_size": 128, "lr": 5e-4, "properties": ["qed"],
                                "model": {"dec_hidden": 256}}))
    return file
