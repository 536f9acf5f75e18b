"""Exception types. User-facing errors carry a one-paragraph message; the CLI
prints it and exits with `exit_code` instead of showing a traceback."""
from __future__ import annotations

__all__ = ["MolvaeError", "DataError", "UsageError", "CheckpointError", "TokenizationError", "UnknownTokenError"]


class MolvaeError(Exception):
    """Base class for errors caused by user input or environment (exit code 1)."""

    exit_code = 1


class DataError(MolvaeError):
    """Input data cannot be used (empty file, no SMILES column, nothing valid...)."""


class UsageError(MolvaeError):
    """Arguments are inconsistent or out of range (exit code 2)."""

    exit_code = 2


class CheckpointError(MolvaeError):
    """A directory is not a molvae checkpoint or has an incompatible format version."""


class TokenizationError(MolvaeError):
    """A molecule cannot be turned into tokens (SELFIES encoder failure, empty string...)."""


class UnknownTokenError(TokenizationError):
    """A token is not in the model's vocabulary."""

    def __init__(self, token: str, message: str | None = None):
        self.token = token
        super().__init__(message or f"token {token!r} is not in the vocabulary")
