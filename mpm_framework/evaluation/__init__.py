"""Per-language evaluation: metrics, readers for published sets, the alignment
probe, and :func:`evaluate` (what ``mpm compose ... eval`` runs).

Torch is imported only by the alignment probe and generation, not by the
metrics and readers.
"""

from .datasets import read_eval_set, read_maxm, read_xgqa, read_xm3600
from .metrics import bleu, chrf, cider, cider_d, exact_match, response_language_rate, vqa_accuracy
from .runner import evaluate

__all__ = [
    "bleu",
    "chrf",
    "cider",
    "cider_d",
    "evaluate",
    "exact_match",
    "read_eval_set",
    "read_maxm",
    "read_xgqa",
    "read_xm3600",
    "response_language_rate",
    "vqa_accuracy",
]
