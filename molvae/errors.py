"""Exception types. User-facing errors carry a one-paragraph message; the CLI
prints it and exits with `exit_code` instead of showing a traceback.

Each type also derives from the built-in exception it stands for, so code that
knows nothing of molvae catches them the usual way (`except ValueError` in a
notebook catches a bad molecule, a bad argument or a bad checkpoint;
`except FileNotFoundError` a missing file or model):

    type                    also a                                   exit code
    MolvaeError             Exception                                1
    DataError               ValueError                               1
    MissingFileError        DataError and FileNotFoundError          1
    UsageError              ValueError                               2
    CheckpointError         ValueError                               1
    MissingCheckpointError  CheckpointError and FileNotFoundError    1
    TokenizationError       ValueError                               1
    UnknownTokenError       TokenizationError                        1
"""
from __future__ import annotations

__all__ = ["MolvaeError", "DataError", "MissingFileError", "UsageError", "CheckpointError",
           "MissingCheckpointError", "TokenizationError", "UnknownTokenError"]


class MolvaeError(Exception):
    """Base class for errors caused by user input or environment (exit code 1)."""

    exit_code = 1


class DataError(MolvaeError, ValueError):
    """Input data cannot be used (empty file, no SMILES column, nothing valid...)."""


class MissingFileError(DataError, FileNotFoundError):
    """A file named as input does not exist (also a DataError, so `except DataError` still catches it)."""


class UsageError(MolvaeError, ValueError):
    """Arguments are inconsistent or out of range (exit code 2)."""

    exit_code = 2


class CheckpointError(MolvaeError, ValueError):
    """A directory is not a molvae checkpoint or has an incompatible format version."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """No model by that name or path: neither a directory nor a shipped model."""


class TokenizationError(MolvaeError, ValueError):
    """A molecule cannot be turned into tokens (SELFIES encoder failure, empty string...)."""


class UnknownTokenError(TokenizationError):
    """A token is not in the model's vocabulary."""

    def __init__(self, token: str, message: str | None = None):
        self.token = token
        super().__init__(message or f"token {token!r} is not in the vocabulary")
