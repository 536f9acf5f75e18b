"""What the benchmarks share around a run: torch threads held for the run and restored after, and the JSON
report written (atomically, its folder created) with a line saying where."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import torch

from molvae.files import atomic_write_text

__all__ = ["torch_threads", "write_json"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads; the caller's number is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def write_json(path: str | Path, report: Any, indent: int = 2) -> Path:
    """Write `report` as JSON to `path` (NaN kept as NaN, other values JSON cannot hold as strings) and print
    where; returns the path."""
    path = Path(path)
    atomic_write_text(path, json.dumps(report, indent=indent, default=str) + "\n")
    print(f"wrote {path}")
    return path
