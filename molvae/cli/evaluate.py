"""`molvae evaluate`: MOSES metrics of a file of molecules, and model metrics with --model."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

from molvae.errors import UsageError
from molvae.files import atomic_write_text, json_text

__all__ = ["register"]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item"):  # numpy scalars; np.float32 is no float subclass, so check the result again
        return _jsonable(obj.item())
    return obj


def evaluate(
    file: Optional[Path] = typer.Argument(None, help="Generated molecules: CSV (smiles column), SMI or SDF."),
    reference: str = typer.Option("moses", help="'moses' (MOSES test sets, fetched once), 'embedded' (the shipped 2,000 test molecules) or a file of test molecules."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Also evaluate a model: reconstruction, "
                                        "property head, and samples for each --seed."),
    smiles_col: Optional[str] = typer.Option(None, help="SMILES column of FILE (default: detected)."),
    n_samples: int = typer.Option(30_000, min=1, help="Samples per seed with --model."),
    seed: list[int] = typer.Option([0, 1, 2], "--seed", help="Sampling seeds with --model (repeat)."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Also write the JSON results here."),
    n_jobs: int = typer.Option(0, help="Processes for RDKit work (0: all cores)."),
    device: str = typer.Option("cpu", help="Device for ChemNet (FCD) and similarity matrices."),
) -> None:
    """MOSES metrics (Valid, Unique, FCD, SNN, Frag, Scaf, IntDiv, Filters, Novelty, ...) beside published rows."""
    from molvae.data.read import read_table
    from molvae.evaluation.moses import evaluate as evaluate_smiles
    from molvae.evaluation.table import format_table

    if file is None and model is None:
        raise UsageError("give a FILE of generated molecules, or --model to sample from a model (or both).")
    jobs = n_jobs if n_jobs > 0 else None
    results: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if file is not None:
        df, col = read_table(file, smiles_col)
        res = evaluate_smiles(df[col].tolist(), reference=reference, n_jobs=jobs, device=device)
        results["file"] = res
        tables[file.name] = res
    if model is not None:
        import molvae
        from molvae.data.datasets import dataset_path
        from molvae.evaluation.model_metrics import evaluate_model

        vae = molvae.load(model, n_jobs=jobs)
        test_df, test_col = read_table(dataset_path(reference, "test"))
        res = evaluate_model(vae, test_df[test_col].tolist(), n_samples=n_samples, seeds=tuple(seed),
                             reference=reference, n_jobs=jobs, device=device)
        results["model"] = res
        tables[f"{model or 'default'} ({len(seed)} seeds)"] = res["samples"]
    if json_out:
        typer.echo(json_text(_jsonable(results)), nl=False)
    else:
        typer.echo(format_table(tables))
        if "model" in results:
            for key, value in {**results["model"]["reconstruction"], **results["model"]["property_head"]}.items():
                typer.echo(f"{key:<22} {value:.4f}" if isinstance(value, float) else f"{key:<22} {value}")
    if output is not None:
        atomic_write_text(output, json_text(_jsonable(results)))


def register(app: typer.Typer) -> None:
    """Add the `evaluate` command to `app`."""
    app.command("evaluate")(evaluate)
