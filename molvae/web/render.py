"""What the pages show besides tables: structures drawn by RDKit as SVG, and the model's description
(its model card as HTML, training data, the properties it predicts)."""
from __future__ import annotations

import functools
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from molvae import MolVAE

__all__ = ["molecule_svg", "model_info", "card_html"]

_EMPTY_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
              '<rect width="100%" height="100%" fill="#fff"/><text x="50%" y="50%" text-anchor="middle" '
              'font-family="sans-serif" font-size="12" fill="#a00">{text}</text></svg>')


@functools.lru_cache(maxsize=4096)
def molecule_svg(smiles: str, width: int = 220, height: int = 160) -> str:
    """The 2D structure of `smiles` as an SVG document (RDKit's drawer), or a small placeholder naming the
    problem when RDKit cannot read it. Cached (4,096 drawings)."""
    from rdkit.Chem import rdDepictor
    from rdkit.Chem.Draw import rdMolDraw2D

    from molvae import chem

    with chem.rdkit_quiet():
        mol = chem.to_mol(smiles)
    if mol is None:
        return _EMPTY_SVG.format(w=width, h=height, text="not a molecule RDKit can read")
    rdDepictor.Compute2DCoords(mol)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = True
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def card_html(markdown_text: str) -> str:
    """Markdown (a model card) as HTML; raw HTML in the source is escaped, not rendered."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return md.render(markdown_text)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def model_info(model: MolVAE) -> dict[str, Any]:
    """What the Model page and GET /api/model show: name, representation, size, the properties the head
    predicts (with the training data's mean and std), training data, the domain's threshold and the model
    card (markdown and HTML; empty when the checkpoint has none)."""
    path = Path(model.path) if model.path is not None else None
    config = _read_json(path / "config.json") if path else {}
    domain = _read_json(path / "domain.json") if path else {}
    train = config.get("train", {}) if isinstance(config.get("train"), dict) else {}
    card_path = path / "MODEL_CARD.md" if path else None
    card = card_path.read_text(encoding="utf-8") if card_path is not None and card_path.is_file() else ""
    params = sum(p.numel() for p in model.model.parameters())
    return {
        "name": model.name,
        "description": repr(model),
        "representation": model.tokenizer.representation,
        "latent_dim": model.latent_dim,
        "max_len": model.max_len,
        "parameters": int(params),
        "vocabulary": len(model.vocab),
        "device": str(model.device),
        "properties": [{"name": name, "mean": float(mean), "std": float(std)}
                       for name, (mean, std) in model.prop_stats.items()],
        "training": {
            "data": train.get("data"), "epochs": train.get("epochs"), "data_hash": config.get("data_hash"),
            "versions": config.get("versions", {}),
        },
        "density": model.density is not None,
        "domain": {"threshold": domain.get("threshold"), "quantile": domain.get("quantile"),
                   "source": domain.get("source")} if model.domain is not None else None,
        "novelty_reference": model.train_hashes is not None,
        "card_markdown": card,
    }


def escape(text: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape("" if text is None else str(text))
