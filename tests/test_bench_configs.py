"""The training configurations of the shipped models (configs/*.json) are valid TrainConfigs and every
reference to one names a file that exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from molvae.train.config import train_config_from_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.json"))


def test_configs_folder_holds_the_shipped_configs() -> None:
    assert {p.name for p in CONFIGS} >= {"default.json", "default_long.json", "small.json"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_a_valid_train_config(path: Path) -> None:
    cfg = train_config_from_cli(str(path))  # raises on an unknown field or a bad value
    assert cfg.epochs >= 1 and cfg.batch_size >= 1


def test_references_to_configs_exist() -> None:
    texts = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("scripts/*"), *ROOT.glob("molvae/**/*.md")]
    named = {m for p in texts if p.is_file() for m in re.findall(r"configs/[\w.-]+\.json", p.read_text())}
    assert named, "no document names a config"
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert not missing, missing
