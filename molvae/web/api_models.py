"""Request bodies of the JSON API (their schema is what the OpenAPI page at /docs shows).

Types are strict and unknown fields are refused, so a typo is an error rather than a silent default;
the limits are checked by `molvae.web.limits` when the job is made.
"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SampleBody", "SmilesBody", "AnalogsBody"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SampleBody(_Body):
    """POST /api/sample: `n` distinct valid molecules, under the condition `where` when given, analogs of `near`
    when given."""

    n: int = Field(24, description="Molecules wanted (at most the server's max_sample, 500 by default).")
    where: Optional[str] = Field(None, description="Property windows, e.g. 'logp>=2,logp<=3,mw<=350'.",
                                 examples=["logp>=2,logp<=3"])
    seed: Optional[int] = Field(None, description="Random seed (null: a fresh one, given back in the summary).")
    near: Optional[str] = Field(None, description="A SMILES: analogs of it instead (Tanimoto >= similarity to it, "
                                "meeting where), as MolVAE.sample(near=...).", examples=["CC(=O)Nc1ccc(O)cc1"])
    similarity: float = Field(0.4, description="With near: the Tanimoto floor (Morgan r=2, 2048 bits), in [0, 1].")


class SmilesBody(_Body):
    """POST /api/score and /api/predict: the molecules to score or predict."""

    smiles: list[str] = Field(..., description="SMILES strings (at most max_molecules, 1,000 by default).",
                              examples=[["CC(=O)Nc1ccc(O)cc1", "c1ccccc1O"]])
    names: Optional[list[str]] = Field(None, description="Optional names, one per SMILES (predict only).")


class AnalogsBody(_Body):
    """POST /api/jobs/analogs: molecules like `smiles` with a better `property`."""

    smiles: str = Field(..., examples=["CC(=O)Nc1ccc(O)cc1"])
    property: str = Field(..., description="A property the model's head predicts, e.g. qed or logp.",
                          examples=["qed"])
    direction: str = Field("max", description="max or min.")
    similarity: float = Field(0.4, description="Tanimoto floor to the molecule, in [0, 1].")
    n: int = Field(10, description="Result rows (at most max_analogs, 50 by default).")
    seed: Optional[int] = None
