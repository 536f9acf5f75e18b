"""Where molecule data sets live: the embedded MOSES subsets in `data/` and the full MOSES splits.

The names ``embedded`` and ``moses`` are resolved to files here and nowhere else (`dataset_path`); the
caller says which split it means (training reads ``train``, evaluation and plots read ``test``).

The full splits ship inside the `molsets` 0.3.1 wheel on PyPI. We download the wheel with pip (no install,
no import: its pinned dependencies no longer install), check its sha256, and copy the three csv.gz files
out of it into the cache (`$MOLVAE_DATA` or `~/.cache/molvae/moses`). A second call only checks the files.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from molvae.errors import DataError

__all__ = ["cache_dir", "embedded_path", "fetch_moses", "dataset_path", "is_dataset_name", "DATASETS",
           "MOSES_SPLITS", "MOSES_COUNTS", "find_moses_wheel"]

MOLSETS_VERSION = "0.3.1"
MOLSETS_WHEEL = f"molsets-{MOLSETS_VERSION}-py3-none-any.whl"
MOLSETS_SHA256 = "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34"
MOSES_SPLITS = {
    "train": "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
    "test": "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
    "test_scaffolds": "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde",
}
MOSES_COUNTS = {"train": 1_584_663, "test": 176_074, "test_scaffolds": 176_225}
EMBEDDED = {"train": "moses_train_20k.csv", "test": "moses_test_2k.csv"}
DATASETS: dict[str, tuple[str, ...]] = {"embedded": tuple(EMBEDDED), "moses": tuple(MOSES_SPLITS)}  # name -> splits


def cache_dir() -> Path:
    """The data cache: `$MOLVAE_DATA`, else `~/.cache/molvae`."""
    return Path(os.environ.get("MOLVAE_DATA") or Path.home() / ".cache" / "molvae")


def embedded_path(split: str = "train") -> Path:
    """Path of an embedded MOSES subset ("train": 20,000 molecules, "test": 2,000), shipped in `data/`."""
    if split not in EMBEDDED:
        raise ValueError(f"embedded split must be one of {sorted(EMBEDDED)}")
    path = Path(__file__).resolve().parents[2] / "data" / EMBEDDED[split]
    if not path.exists():
        raise DataError(
            f"the embedded data file {path} is missing; molvae must be installed from a checkout "
            "(pip install -e .) for the embedded data to be found."
        )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_moses_wheel(directory: Path | None = None) -> Path:
    """Return a verified molsets wheel in `directory` (default: the cache), downloading it with pip if absent."""
    directory = Path(directory or cache_dir() / "wheels")
    wheel = directory / MOLSETS_WHEEL
    if not wheel.exists():
        directory.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"molsets=={MOLSETS_VERSION}",
               "-d", str(directory)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.exists():
            raise DataError(
                f"could not download the molsets {MOLSETS_VERSION} wheel that carries the MOSES data "
                f"(pip said: {proc.stderr.strip()[-300:] or 'nothing'}). Check that PyPI is reachable, or place "
                f"{MOLSETS_WHEEL} in {directory}."
            )
    digest = _sha256(wheel)
    if digest != MOLSETS_SHA256:
        raise DataError(f"{wheel}: sha256 {digest} does not match the published {MOLSETS_SHA256}; delete it and retry.")
    return wheel


def fetch_moses(directory: str | Path | None = None) -> dict[str, Path]:
    """Fetch (once) and verify the MOSES splits; returns {"train", "test", "test_scaffolds"} -> csv.gz path."""
    target = Path(directory) if directory else cache_dir() / "moses"
    paths = {split: target / f"{split}.csv.gz" for split in MOSES_SPLITS}
    if all(p.exists() for p in paths.values()):
        bad = [s for s, p in paths.items() if _sha256(p) != MOSES_SPLITS[s]]
        if not bad:
            return paths
    target.mkdir(parents=True, exist_ok=True)
    wheel = find_moses_wheel()
    with zipfile.ZipFile(wheel) as zf:
        for split, path in paths.items():
            member = f"moses/dataset/data/{split}.csv.gz"
            with zf.open(member) as src, tempfile.NamedTemporaryFile(dir=target, delete=False) as tmp:
                shutil.copyfileobj(src, tmp)
            if _sha256(Path(tmp.name)) != MOSES_SPLITS[split]:
                os.unlink(tmp.name)
                raise DataError(f"{member} in {wheel} does not match its expected sha256.")
            os.replace(tmp.name, path)
    return paths


def is_dataset_name(source: object) -> bool:
    """True when `source` names a data set molvae knows (`DATASETS`, case-insensitive) rather than a file."""
    return isinstance(source, (str, os.PathLike)) and str(source).lower() in DATASETS


def dataset_path(source: str | os.PathLike[str], split: str) -> Path:
    """The file `source` stands for: split `split` of a named data set (``embedded``: the subsets in
    `data/`; ``moses``: fetched once, see `fetch_moses`), or `source` itself as a path.

    Raises DataError when the named set has no such split (e.g. ``embedded`` has no ``test_scaffolds``).
    """
    if not is_dataset_name(source):
        return Path(source)
    name = str(source).lower()
    if split not in DATASETS[name]:
        raise DataError(f"the {name!r} data set has no {split!r} split; it has {', '.join(DATASETS[name])}")
    return embedded_path(split) if name == "embedded" else fetch_moses()[split]
