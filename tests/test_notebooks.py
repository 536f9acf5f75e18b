"""The example notebooks in notebooks/ execute top to bottom with tiny settings.

Each notebook is run by nbclient in a fresh kernel with MOLVAE_NOTEBOOK_FAST=1 (the notebooks'
parameter cell then picks small sizes), one CPU thread and a per-cell timeout. A cell that raises
fails the test. The kernel is this interpreter (`sys.executable`), whatever kernelspecs the
machine has: a kernelspec written to a temporary JUPYTER_PATH directory, which takes precedence
over the user's and the environment's. Notebooks are executed in a temporary working directory
and are never written back: the stored copies keep the outputs of a full-settings run by
scripts/run_notebooks.py, which the first test checks.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

try:  # the `notebooks` extra, installed by `bash scripts/setup.sh all` (what scripts/test.sh and CI run)
    import ipykernel  # noqa: F401  (the kernel the notebooks run in)
    import nbclient
    import nbformat
except ImportError as exc:  # a missing extra must fail CI, not skip silently
    raise ImportError(f"{exc}: the notebook tests need the notebooks extra; run `bash scripts/setup.sh all` "
                      "or `pip install -e '.[dev,notebooks]'`") from exc

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_quickstart.ipynb", "02_train_on_your_data.ipynb", "03_latent_space.ipynb", "04_optimize.ipynb"]
CELL_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


def _kernelspec(root: Path) -> Path:
    """A `python3` kernelspec running this interpreter, under `root` (a JUPYTER_PATH entry)."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (molvae tests)",
        "language": "python",
        "metadata": {"debugger": False},
    }))
    return root


@pytest.fixture()
def notebook_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment the kernel inherits; returns the working directory for the kernel."""
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))
    monkeypatch.setenv("MOLVAE_NOTEBOOK_FAST", "1")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    # Figures must come back as image/png: use the inline backend whatever the caller set.
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning on stderr
    work = tmp_path / "work"
    work.mkdir()
    return work


def _outputs(nb, output_type: str | None = None) -> list:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if output_type is None or o.get("output_type") == output_type]


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def _html_tables(nb) -> int:
    return sum("<table" in str(o.get("data", {}).get("text/html", "")) for o in _outputs(nb))


MAX_NOTEBOOK_BYTES = 3_000_000  # a stored notebook, outputs included
MAX_OUTPUT_BYTES = 400_000  # one output (an image, a table, a stream)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_executed_at_full_settings(name: str) -> None:
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and any("MOLVAE_NOTEBOOK_FAST" in c.source for c in code[:2]), \
        f"{name}: no FAST parameter cell at the top"
    rerun = f"{name}: re-execute it with `python scripts/run_notebooks.py {name}`"
    assert nb.metadata.get("molvae", {}).get("fast") is False, f"{rerun} (no record of a full-settings run)"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{rerun} (not run top to bottom)"
    assert not _outputs(nb, "error"), f"{rerun} (error outputs)"
    assert _images(nb) >= 1 and _html_tables(nb) >= 1, f"{rerun} (no figures or tables)"
    assert path.stat().st_size <= MAX_NOTEBOOK_BYTES, f"{name}: {path.stat().st_size} bytes stored"
    for output in _outputs(nb):
        size = len(json.dumps(output))
        assert size <= MAX_OUTPUT_BYTES, f"{name}: an output of {size} bytes (lower the dpi or the output)"


# Per notebook: a cell appended after the last one, printing "RESULT <json>" from the kernel's
# variables, and the checks on that JSON. They assert what the notebook computed, not just that it ran.
PROBES = {
    "01_quickstart.ipynb": (
        "f = fractions(samples)\n"
        "print('RESULT', json.dumps({'n': len(samples), 'columns': list(samples.columns), 'valid': f['valid'], "
        "'unique': f['unique'], 'novel': f['novel'], 'temperatures': len(by_temperature)}))",
        lambda r: (r["n"] == 64  # N_SAMPLES under FAST
                   and {"smiles", "valid", "canonical", "logp", "qed", "sa", "novel"} <= set(r["columns"])
                   and all(0.0 <= r[k] <= 1.0 for k in ("valid", "unique", "novel"))
                   and r["valid"] > 0.5 and r["temperatures"] == 3),
    ),
    "02_train_on_your_data.ipynb": (
        "print('RESULT', json.dumps({'rejected': len(report.rejected), 'kept': len(clean), 'mae': float(mae), "
        "'predicted': len(pred), 'props': list(vae.prop_names), 'epochs': len(history), "
        "'workdir_left': WORKDIR.exists()}))",
        lambda r: (r["rejected"] == 3 and r["kept"] == 301 and r["predicted"] == 100
                   and r["mae"] == r["mae"] and r["props"] == ["pic50_demo", "logp", "qed"] and r["epochs"] == 2
                   and not r["workdir_left"]),
    ),
    "03_latent_space.ipynb": (
        "print('RESULT', json.dumps({'map': len(coords), 'path': len(path), 'slerp': len(slerp), "
        "'neighbour_rows': len(hood), 'sim_a0': float(path['sim_a'].iloc[0]), 'z': list(z.shape), "
        "'scored': len(scores), 'ood_in_domain': int(scores['in_domain'].iloc[4:].sum()), 'predicted': len(pred), "
        "'hits': len(hits), 'hits_in_window': bool(hits['logp'].between(3.6, 5).all()), "
        "'walk': walk['logP step'].tolist(), 'walk_decodes': walk['decodes'].tolist(), "
        "'walkers': walk['model'].unique().tolist(), "
        "'best': [[int(b['step'].iloc[0]), float(b['logp'].iloc[0]) - START_LOGP, float(b['similarity'].iloc[0])] "
        "for b in best], 'start_logp': START_LOGP}))",
        lambda r: (0 < r["map"] <= 300 and r["path"] == 6 and r["slerp"] == 6 and r["neighbour_rows"] == 3
                   and r["z"][0] == r["map"] and 0.0 <= r["sim_a0"] <= 1.0
                   and r["scored"] == r["predicted"] == 10 and r["ood_in_domain"] == 0  # the six out-of-domain rows
                   and r["hits"] > 0 and r["hits_in_window"]
                   # the logP walk: four steps, each within its decode budget; every analog shown is in its
                   # step's window (+-0.25 around start + step, rounded to 2 decimals) and similar enough
                   and r["walkers"] == ["default", "3-cond"]  # the conditional cycle's weights are in cycles/
                   and r["walk"] == [-2, -1, 1, 2] * 2 and all(0 < d <= 32 for d in r["walk_decodes"])
                   and 1.5 <= r["start_logp"] <= 2.5
                   and all(abs(shift - step) <= 0.26 and sim >= 0.4 for step, shift, sim in r["best"])),
    ),
    "04_optimize.ipynb": (
        "print('RESULT', json.dumps({'decoded': {k: int(v.attrs['n_decoded']) for k, v in runs.items()}, "
        "'budget': int(budget), 'lead_runs': len(lead_runs), 'own_scored_by': sorted({str(x) for r in "
        "own_runs.values() for x in r['scored_by']}), 'similarity_ok': bool((lead_runs['gradient, similarity "
        ">= 0.4']['similarity'] >= 0.4).all()), 'workdir_left': WORKDIR.exists()}))",
        lambda r: (set(r["decoded"]) == {"gradient", "random", "bo"}
                   and all(v == r["budget"] == 24 for v in r["decoded"].values())  # same budget for all methods
                   and r["lead_runs"] == 3 and r["similarity_ok"] and not r["workdir_left"]
                   and all("head" in s for s in r["own_scored_by"])),
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name: str, notebook_env: Path) -> None:
    source = NOTEBOOKS / name
    stored = source.read_text(encoding="utf-8")
    nb = nbformat.reads(stored, as_version=4)
    for cell in nb.cells:  # drop the stored full-settings outputs: every output checked below is this run's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    n_cells = len(nb.cells)
    probe, check = PROBES[name]
    nb.cells.append(nbformat.v4.new_code_cell("import json\n" + probe))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, startup_timeout=120, allow_errors=False,
        resources={"metadata": {"path": str(notebook_env)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the message holds the cell and its traceback
        pytest.fail(f"{name}: a cell raised:\n{exc}")
    print(f"{name}: executed in {time.perf_counter() - t0:.1f} s")

    assert not _outputs(nb, "error"), f"{name}: error outputs"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"{name}: some code cells did not run"
    notebook = nbformat.v4.new_notebook(cells=nb.cells[:n_cells])
    assert _images(notebook) >= 1, f"{name}: no image/png output (figures or molecule grids)"
    assert _html_tables(notebook) >= 1, f"{name}: no DataFrame (HTML table) output"
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    assert "RESULT" in text, f"{name}: the probe printed nothing: {nb.cells[-1].outputs}"
    result = json.loads(text.split("RESULT", 1)[1])
    assert check(result), f"{name}: unexpected results {result}"
    assert source.read_text(encoding="utf-8") == stored, f"{name}: the stored notebook was modified"
    assert not any(notebook_env.iterdir()), f"{name}: wrote files into its working directory"
