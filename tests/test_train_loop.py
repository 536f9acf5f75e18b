"""Training loop, checkpoints, resume (after SIGKILL), DDP equivalence, divergence handling."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from molvae.model import checkpoint as ckpt
from molvae.train import state as trainer_state
from molvae.errors import CheckpointError, MolvaeError, UsageError
from molvae.model import VAE, ModelConfig
from molvae.train import TrainConfig, fit

DATA = Path(__file__).parent / "data"
TINY = str(DATA / "train_tiny.csv")  # 64 MOSES molecules: 56 train / 8 validation, 4 batches of 16 per epoch

BASE = TrainConfig(
    data=TINY, representation="smiles", properties=("logp", "qed"), epochs=2, batch_size=16,
    val_fraction=0.125, amp="off", threads=1, progress=False, val_recon_n=8, seed=3,
    model={"embed_dim": 16, "enc_hidden": 32, "latent_dim": 8, "dec_hidden": 32, "dec_layers": 2, "dropout": 0.1,
           "prop_hidden": 16},
)


@pytest.fixture(autouse=True)
def threads_restored():
    """`fit` sets `cfg.threads` for training only: every test checks the caller's count is back."""
    threads = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == threads


def _weights(path: Path, prefix: str = "model.") -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path / "trainer_state.safetensors")).items() if k.startswith(prefix)}


def test_fit_writes_a_complete_checkpoint(tmp_path):
    out = fit(BASE.replace(out=str(tmp_path / "run")))
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "history.csv", "train_hashes.npy",
            "trainer_state.safetensors", "trainer_state.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == ckpt.FORMAT_VERSION and config["representation"] == "smiles"
    assert config["train"]["device"] == "cpu" and config["train"]["amp"] == "off"  # resolved
    assert TrainConfig.from_dict(config["train"]).epochs == 2
    assert [p["name"] for p in config["properties"]] == ["logp", "qed"]
    assert config["versions"]["torch"] and len(config["data_hash"]) == 64

    model, meta = ckpt.load_checkpoint(out)
    assert isinstance(model, VAE) and not model.training
    assert meta.prop_names == ("logp", "qed") and meta.prop_stats["logp"][1] > 0
    assert meta.tokenizer.representation == "smiles" and len(meta.vocab) == model.cfg.vocab_size
    assert model.cfg.max_len == BASE.max_len + 2

    history = meta.history()
    assert list(history["epoch"]) == [1, 2]
    for col in ("train_loss", "train_recon", "train_kl", "train_prop", "val_loss", "val_token_acc",
                "val_recon_acc", "val_mae_logp", "val_mae_qed", "active_units", "kl_active_units", "beta", "lr"):
        assert col in history and history[col].notna().all(), col
    hashes = meta.train_hashes()
    assert hashes.dtype == np.uint64 and len(hashes) == 56 and np.all(np.diff(hashes) > 0)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 8


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    cfg = BASE.replace(epochs=3)
    straight = fit(cfg.replace(out=str(tmp_path / "straight")))

    # Kill -9 in the middle of epoch 2 (global step 6 of 12), in a separate process.
    killed = tmp_path / "killed"
    _killed_run(cfg, killed, kill_at_step=6)
    assert json.loads((killed / "trainer_state.json").read_text())["epoch"] == 1

    # Resume with only --resume given: the checkpoint's settings win over the new defaults.
    fit(TrainConfig(resume=str(killed), out=str(killed), progress=False, threads=1, amp="off"))
    _assert_same_run(straight, killed)
    best_a = load_file(str(straight / "model.safetensors"))
    best_b = load_file(str(killed / "model.safetensors"))
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_training_in_slices_with_stop_after_matches_one_run(tmp_path):
    straight = fit(BASE.replace(out=str(tmp_path / "straight")))
    sliced = tmp_path / "sliced"
    fit(BASE.replace(out=str(sliced), stop_after=1))
    assert json.loads((sliced / "trainer_state.json").read_text())["epoch"] == 1
    assert len(pd.read_csv(sliced / "history.csv")) == 1
    # The schedule spans all `epochs`, not the slice: epoch 1's learning rate is not the end of a decay.
    assert pd.read_csv(sliced / "history.csv")["lr"].iloc[0] == pd.read_csv(straight / "history.csv")["lr"].iloc[0]
    # A slice limit already reached trains nothing.
    fit(TrainConfig(resume=str(sliced), out=str(sliced), progress=False, threads=1, amp="off", stop_after=1))
    assert json.loads((sliced / "trainer_state.json").read_text())["epoch"] == 1
    fit(TrainConfig(resume=str(sliced), out=str(sliced), progress=False, threads=1, amp="off"))
    assert json.loads((sliced / "trainer_state.json").read_text())["epoch"] == 2
    a, b = _weights(straight), _weights(sliced)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UsageError, match="stop_after"):
        BASE.replace(stop_after=-1)


def test_resume_into_new_directory_and_finished_run(tmp_path):
    first = fit(BASE.replace(epochs=1, out=str(tmp_path / "a")))
    # A finished run resumes as a no-op; a different --out receives a copy.
    out = fit(BASE.replace(epochs=1, resume=str(first), out=str(tmp_path / "b")))
    assert _weights(first).keys() == _weights(out).keys()
    assert all(torch.equal(_weights(first)[k], _weights(out)[k]) for k in _weights(first))
    ckpt.load_checkpoint(out)


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    fit(TrainConfig.from_dict(cfg_dict))


def test_ddp_two_processes_match_single_process(tmp_path):
    import torch.multiprocessing as mp

    cfg = BASE.replace(model={**BASE.model, "dropout": 0.0})  # dropout masks differ per process
    single = fit(cfg.replace(out=str(tmp_path / "single")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    multi = tmp_path / "multi"
    mp.spawn(_ddp_worker, args=(2, port, cfg.replace(out=str(multi)).to_dict()), nprocs=2, join=True)
    a, b = _weights(single), _weights(multi)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    ha, hb = pd.read_csv(single / "history.csv"), pd.read_csv(multi / "history.csv")
    for col in ("train_loss", "train_recon", "train_kl", "val_loss", "val_token_acc"):
        np.testing.assert_allclose(ha[col], hb[col], rtol=1e-5)


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import molvae.train.loop as train_mod

    orig = train_mod.kl_weight
    monkeypatch.setattr(train_mod, "kl_weight",
                        lambda step, *a, **k: float("nan") if step >= 5 else orig(step, *a, **k))
    out = tmp_path / "nan"
    with pytest.raises(MolvaeError, match=r"diverged.*epoch 2, step 6.*epoch 1"):
        fit(BASE.replace(epochs=3, out=str(out)))
    assert json.loads((out / "trainer_state.json").read_text())["epoch"] == 1
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1]
    model, _ = ckpt.load_checkpoint(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping(tmp_path):
    # lr so small that weights do not change in fp32: validation never improves after epoch 1.
    out = fit(BASE.replace(epochs=6, patience=2, lr=1e-12, lr_schedule="constant", out=str(tmp_path / "es")))
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["stopped"] and state["epoch"] == 3 and state["best_epoch"] == 1


def test_bad_resume_directories(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        fit(BASE.replace(resume=str(tmp_path / "missing"), out=str(tmp_path / "x")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        fit(BASE.replace(resume=str(tmp_path / "empty"), out=str(tmp_path / "x")))
    run = fit(BASE.replace(epochs=1, out=str(tmp_path / "run")))
    future = tmp_path / "future"
    shutil.copytree(run, future)
    config = json.loads((future / "config.json").read_text())
    config["format_version"] = 99
    (future / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format_version 99"):
        fit(BASE.replace(resume=str(future), out=str(tmp_path / "x")))
    model_only = tmp_path / "model_only"
    shutil.copytree(run, model_only)
    (model_only / "trainer_state.safetensors").unlink()
    with pytest.raises(CheckpointError, match="without trainer state"):
        fit(BASE.replace(resume=str(model_only), out=str(tmp_path / "x")))
    (model_only / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        ckpt.load_checkpoint(model_only)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    run = fit(BASE.replace(epochs=1, out=str(tmp_path / "run")))

    def forbidden(*a, **k):
        raise AssertionError("unpickling is not allowed when loading checkpoints")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    model, meta = ckpt.load_checkpoint(run)
    opt = torch.optim.Adam(model.parameters())
    state = trainer_state.load_trainer_state(run, model, opt)
    assert state["epoch"] == 1 and meta.train_hashes() is not None


def test_trainer_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VAE(ModelConfig(vocab_size=12, embed_dim=8, enc_hidden=8, latent_dim=4, dec_hidden=8, dec_layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 8, 9, 2]])
    for _ in range(3):
        opt.zero_grad()
        model(ids, torch.tensor([4, 5]))["loss"].backward()
        opt.step()
    from molvae.data.tokens import Tokenizer, Vocabulary

    vocab = Vocabulary([f"t{i}" for i in range(8)])
    ckpt.save_model(tmp_path, model, Tokenizer("smiles"), vocab)
    trainer_state.save_trainer_state(tmp_path, model, opt, {"epoch": 3, "note": "x"})
    expected_rng = torch.rand(3)
    model2 = VAE(model.cfg)
    opt2 = torch.optim.Adam(model2.parameters(), lr=5.0)
    state = trainer_state.load_trainer_state(tmp_path, model2, opt2)
    assert state["epoch"] == 3 and state["note"] == "x"
    assert torch.equal(torch.rand(3), expected_rng)  # torch RNG restored to the saved point
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for pid in s1["state"]:
        for key, value in s1["state"][pid].items():
            assert torch.equal(value, s2["state"][pid][key])


def test_token_reconstruction_rate_counts_exact_matches(monkeypatch):
    from molvae.data import EncodedData
    from molvae.train.epoch import token_reconstruction_rate

    ids = np.array([[1, 5, 6, 2, 0], [1, 7, 8, 9, 2], [1, 5, 2, 0, 0]], dtype=np.int16)
    enc = EncodedData(ids, np.array([4, 5, 3], dtype=np.int32), np.zeros((3, 0), dtype=np.float32))
    model = VAE(ModelConfig(vocab_size=12, embed_dim=4, enc_hidden=4, latent_dim=2, dec_hidden=4, dec_layers=1))
    rows = {}

    def fake_decode(mu, max_len=None, c=None):
        # Perfect for every molecule except the one starting with token 7, which gets an extra token.
        out = []
        for r in rows["ids"]:
            r = r[1:].tolist()
            out.append([7, 8, 9, 9, 2] if r[0] == 7 else r + [0])
        return torch.tensor(out)[:, : max_len - 1 if max_len else None]

    orig_encode = model.encode

    def spy_encode(ids, lengths, c=None):
        rows["ids"] = ids
        return orig_encode(ids, lengths, c)

    monkeypatch.setattr(model, "greedy_decode", fake_decode)
    monkeypatch.setattr(model, "encode", spy_encode)
    assert token_reconstruction_rate(model, enc, torch.device("cpu")) == pytest.approx(2 / 3)


class _Loss:
    last = 1.5

    def mean(self, key: str) -> float:
        return 1.25


@pytest.mark.parametrize("interval, steps_shown", [(0.0, [1, 2, 3]), (1e9, [3])])
def test_progress_lines_when_stderr_is_not_a_terminal(capsys, interval, steps_shown):
    from molvae.train.epoch import ProgressReporter

    with ProgressReporter(enabled=True, interval_s=interval) as rep:
        task = rep.start_epoch(1, 2, 3)
        for _ in range(3):
            rep.advance(task, _Loss(), 0.5, 1e-3)
    err = capsys.readouterr().err
    shown = [int(line.split("step ")[1].split("/")[0]) for line in err.splitlines() if "step " in line]
    assert shown == steps_shown
    assert "epoch 1/2 step 3/3  loss 1.250  beta 0.5" in err and "s left in this epoch" in err


def _killed_run(cfg: TrainConfig, out: Path, kill_at_step: int) -> None:
    """Run `cfg` into `out` in a subprocess that SIGKILLs itself as global step `kill_at_step` begins."""
    script = (
        "import os, signal, sys, json\n"
        "import molvae.train.loop as T\n"
        "orig = T.kl_weight\n"
        "def kw(step, *a, **k):\n"
        f"    if step == {kill_at_step}: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return orig(step, *a, **k)\n"
        "T.kl_weight = kw\n"
        "T.fit(T.TrainConfig.from_dict(json.loads(sys.argv[1])))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cfg.replace(out=str(out)).to_dict())],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _assert_same_run(a: Path, b: Path) -> None:
    for prefix in ("model.", "optim."):
        wa, wb = _weights(a, prefix), _weights(b, prefix)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), prefix
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    cols = [c for c in ha.columns if not c.endswith(("_per_s", "_time_s", "_cpu_s", "_mib"))]
    pd.testing.assert_frame_equal(ha[cols], hb[cols], check_exact=True)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_resume_from_a_mid_epoch_checkpoint_matches_uninterrupted_run(tmp_path, amp):
    # 4 steps an epoch; a checkpoint every 3 steps: the last one before the kill at step 7 is step 6,
    # two batches into epoch 2.
    cfg = BASE.replace(epochs=2, amp=amp, checkpoint_every="3")
    straight = fit(cfg.replace(out=str(tmp_path / "straight")))
    killed = tmp_path / "killed"
    _killed_run(cfg, killed, kill_at_step=7)
    state = json.loads((killed / "trainer_state.json").read_text())
    assert (state["epoch"], state["step"], state["epoch_pos"]) == (1, 6, 2) and len(state["epoch_sums"]) > 0
    fit(TrainConfig(resume=str(killed), out=str(killed), progress=False, threads=1, amp=amp))
    _assert_same_run(straight, killed)


def test_checkpoint_timing_does_not_change_the_run(tmp_path):
    every_step = fit(BASE.replace(checkpoint_every="1", out=str(tmp_path / "a")))
    never = fit(BASE.replace(checkpoint_every="0", out=str(tmp_path / "b")))
    _assert_same_run(every_step, never)


def test_resume_of_a_run_killed_before_any_checkpoint_starts_it_again(tmp_path, capsys):
    straight = fit(BASE.replace(out=str(tmp_path / "straight")))
    killed = tmp_path / "killed"
    _killed_run(BASE.replace(checkpoint_every="0"), killed, kill_at_step=2)
    assert json.loads((killed / "trainer_state.json").read_text())["step"] == 0  # written as the run began
    fit(TrainConfig(resume=str(killed), out=str(killed), progress=True, threads=1, amp="off"))
    assert "starting it again" in capsys.readouterr().err
    _assert_same_run(straight, killed)


@pytest.mark.parametrize("text, parsed", [("500", ("steps", 500.0)), ("10m", ("seconds", 600.0)),
                                          ("0", ("off", 0.0)), ("0.5M", ("seconds", 30.0)), ("-3", None),
                                          ("0m", None), ("often", None)])
def test_checkpoint_every_values(text, parsed):
    from molvae.train.config import checkpoint_interval

    assert checkpoint_interval(text) == parsed
    if parsed is None:
        with pytest.raises(UsageError, match="checkpoint_every"):
            BASE.replace(checkpoint_every=text)
