"""molvae.bench.learning_curve: the power-law fit of excess FCD, its extrapolation and the command line."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def curve():
    from molvae.bench import learning_curve

    return learning_curve


def _eval(path: Path, fcd: float, n: int = 100) -> Path:
    sample = {"FCD/Test": fcd, "Valid": 0.9, "Novelty": 0.8, "n_input": n}
    path.write_text(json.dumps({"m": {"samples": [sample], "reconstruction": {"recon_acc": 0.6}}}))
    return path


def test_fit_recovers_a_power_law_and_solves_for_the_goal(curve) -> None:
    epochs = [1.0, 2.0, 4.0]
    a, b = curve.fit_power_law(epochs, [0.4 * e ** -0.5 for e in epochs])
    assert math.isclose(math.exp(a), 0.4, rel_tol=1e-9) and math.isclose(b, -0.5, rel_tol=1e-9)
    assert math.isclose(curve.epochs_to_reach(a, b, 0.1), 16.0, rel_tol=1e-9)
    assert curve.epochs_to_reach(0.0, 0.2, 0.1) == math.inf  # a curve that rises never gets there


def test_parse_point(curve) -> None:
    assert curve.parse_point("a:2.5:x/y.json") == ("a", 2.5, [Path("x/y.json")])
    assert curve.parse_point("a:2.5:x.json,y.json")[2] == [Path("x.json"), Path("y.json")]
    for bad in ("a:2.5", "a:0:x.json", "a:two:x.json"):
        with pytest.raises(ValueError):
            curve.parse_point(bad)


def test_read_eval_averages_the_seeds_of_every_file(curve, tmp_path: Path) -> None:
    row = curve.read_eval([_eval(tmp_path / "a.json", 0.3), _eval(tmp_path / "b.json", 0.5)])
    assert math.isclose(row["FCD/Test"], 0.4) and row["seeds"] == 2 and row["recon"] == 0.6
    assert math.isclose(row["FCD_std"], math.sqrt(0.02))
    with pytest.raises(ValueError, match="different sizes"):
        curve.read_eval([tmp_path / "a.json", _eval(tmp_path / "c.json", 0.3, n=50)])


def test_main_extrapolates_with_a_cached_floor(curve, tmp_path: Path, capsys) -> None:
    floor = 0.1
    out = tmp_path / "curve.json"
    out.write_text(json.dumps({"floor": floor, "floor_n": 100}))
    goal_excess = curve.GOAL_FCD - curve.GOAL_FLOOR
    # excess = 0.4 * (epochs / 2)^-1: the goal excess .051 falls at 2 * 0.4 / .051 epochs
    points = [f"e{e}:{e}:{_eval(tmp_path / f'{e}.json', floor + 0.4 * 2 / e)}" for e in (2, 3, 4)]
    argv = [arg for p in points for arg in ("--point", p)]
    curve.main(argv + ["--hours-per-epoch", "2", "--floor-n", "100", "--json", str(out)])
    result = json.loads(out.read_text())
    assert math.isclose(result["epochs_needed"], 0.8 / goal_excess, rel_tol=1e-6)
    assert math.isclose(result["more_hours"], 2 * (0.8 / goal_excess - 4), rel_tol=1e-6)
    assert "goal reached at about 15.7 epochs" in capsys.readouterr().out


def test_main_refuses_mismatched_sizes_and_unknown_fit_labels(curve, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curve.json"
    out.write_text(json.dumps({"floor": 0.1, "floor_n": 100}))
    a, b = _eval(tmp_path / "a.json", 0.5, n=200), _eval(tmp_path / "b.json", 0.4, n=200)
    base = ["--point", f"a:2:{a}", "--point", f"b:3:{b}", "--hours-per-epoch", "1", "--floor-n", "100",
            "--json", str(out)]
    for extra, message in (([], "the points have [200] samples"), (["--fit", "a,c"], "--fit names no --point: c")):
        with pytest.raises(SystemExit) as exc:
            curve.main(base + extra)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
