"""Process-parallel map for RDKit work over long lists of molecules."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["pmap", "resolve_jobs"]

# Below this many items a process pool costs more (fork, pickling) than it saves.
_MIN_PARALLEL = 2000


def resolve_jobs(n_jobs: int | None) -> int:
    """`n_jobs` of None or <= 0 means all cores; otherwise at least 1."""
    if n_jobs is None or n_jobs <= 0:
        return max(1, os.cpu_count() or 1)
    return n_jobs


def pmap(fn: Callable[[T], R], items: Sequence[T], n_jobs: int | None = 1, chunksize: int | None = None) -> list[R]:
    """`[fn(x) for x in items]`, spread over `n_jobs` processes for long lists.

    `fn` must be a module-level function (it is pickled by reference). Order is kept.
    """
    jobs = resolve_jobs(n_jobs)
    if jobs == 1 or len(items) < _MIN_PARALLEL:
        return [fn(x) for x in items]
    chunksize = chunksize or max(64, len(items) // (jobs * 8))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))
