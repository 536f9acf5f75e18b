"""Evaluation: the MOSES distribution-learning metrics (FCD included), their reference statistics, and
metrics of a trained model (reconstruction, property head)."""
from molvae.evaluation.model_metrics import evaluate_model
from molvae.evaluation.moses import evaluate
from molvae.evaluation.table import METRIC_ORDER, MOSES_BASELINES, format_table

__all__ = ["evaluate", "format_table", "evaluate_model", "METRIC_ORDER", "MOSES_BASELINES"]
