"""molvae's exception types: each is also the built-in exception it stands for, and the CLI maps each to
its exit code (1 for bad data, checkpoints and runtime failures, 2 for usage errors)."""
from __future__ import annotations

from pathlib import Path

import pytest

from molvae import errors
from molvae.errors import (CheckpointError, DataError, MissingCheckpointError, MissingFileError, MolvaeError,
                           TokenizationError, UnknownTokenError, UsageError)

# type -> (built-in exceptions it must also be, CLI exit code)
EXPECTED = {
    DataError: ((ValueError,), 1),
    MissingFileError: ((DataError, ValueError, FileNotFoundError, OSError), 1),
    UsageError: ((ValueError,), 2),
    CheckpointError: ((ValueError,), 1),
    MissingCheckpointError: ((CheckpointError, ValueError, FileNotFoundError, OSError), 1),
    TokenizationError: ((ValueError,), 1),
    UnknownTokenError: ((TokenizationError, ValueError), 1),
}


def _make(cls: type[MolvaeError]) -> MolvaeError:
    return cls("[Se]") if cls is UnknownTokenError else cls("something is wrong")


def test_every_public_type_is_listed() -> None:
    assert set(errors.__all__) == {c.__name__ for c in EXPECTED} | {"MolvaeError"}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_type_is_also_its_builtin(cls: type[MolvaeError]) -> None:
    bases, code = EXPECTED[cls]
    exc = _make(cls)
    assert isinstance(exc, MolvaeError) and exc.exit_code == code
    for base in bases:
        assert isinstance(exc, base), base
    with pytest.raises(ValueError):  # what a notebook writes
        raise exc


def test_messages_and_attributes_survive_the_builtin_bases() -> None:
    missing = MissingFileError("x.csv: file not found")
    assert str(missing) == "x.csv: file not found" and missing.args == ("x.csv: file not found",)
    assert missing.errno is None and missing.filename is None  # OSError fields exist, unset
    unknown = UnknownTokenError("[Se]")
    assert unknown.token == "[Se]" and str(unknown) == "token '[Se]' is not in the vocabulary"
    assert str(UnknownTokenError("[Se]", "custom")) == "custom"


def test_the_package_raises_them_as_builtins(tmp_path: Path) -> None:
    import molvae

    with pytest.raises(ValueError):  # a usage error
        molvae.TrainConfig(epochs=0)
    with pytest.raises(ValueError):  # not a checkpoint
        molvae.load(tmp_path)
    with pytest.raises(ValueError):  # a missing file is bad data
        molvae.data.read_table(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        molvae.data.read_table(empty)


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_cli_exit_code_per_type(run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                cls: type[MolvaeError]) -> None:
    import molvae.train.loop as loop

    def fail(cfg):
        raise _make(cls)

    monkeypatch.setattr(loop, "fit", fail)
    code, out = run("train", "--out", tmp_path / "m")
    assert code == EXPECTED[cls][1], out
    assert "error:" in out and "Traceback" not in out


def test_cli_exit_codes_of_real_failures(run, tmp_path: Path) -> None:
    code, out = run("train", "--data", tmp_path / "missing.csv", "--out", tmp_path / "m")
    assert code == 1 and "not found" in out and "Traceback" not in out
    code, out = run("sample", "-n", 3, "--model", tmp_path / "nothing-here")
    assert code == 1 and "no model" in out and "Traceback" not in out
    code, out = run("train", "--epochs", "0")
    assert code == 2 and "Traceback" not in out
