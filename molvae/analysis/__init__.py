"""Analysis: what a trained model says about given molecules, behind `MolVAE.predict`, `MolVAE.score` and
`MolVAE.calibrate_domain`: property-head predictions (`predict`), per-molecule scores (ELBO pieces, latent
log-density, nearest-neighbour similarity: `scores`) and the applicability domain built on them (`domain`).
Each function takes the model's `MoleculeCodec` (and its `LatentPrior` where the log-density is needed)."""
from molvae.analysis.domain import ANOMALY_TERMS, Domain, apply_domain, calibrate_domain, score_table
from molvae.analysis.predict import PREDICT_ON_INVALID, predict_table
from molvae.analysis.scores import FP_BITS, TERMS, elbo_terms, fingerprint_matrix, nearest_similarity, score_terms

__all__ = ["Domain", "ANOMALY_TERMS", "calibrate_domain", "apply_domain", "score_table", "predict_table",
           "PREDICT_ON_INVALID", "score_terms", "elbo_terms", "fingerprint_matrix", "nearest_similarity", "TERMS",
           "FP_BITS"]
