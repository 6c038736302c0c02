"""Evaluation: vectorised metrics, feature extraction, re-ranking, protocol runners, reports.

`extract_features` and `evaluate_dataset` are imported on first use, so that the
metrics (used by the ranking browser and the figures) load without the data stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fmcnet.evaluation.metrics import Ranking, pairwise_distance, rank_metrics, ranking
from fmcnet.evaluation.report import results_document, settings_to_results, table1_markdown
from fmcnet.evaluation.rerank import re_ranking

if TYPE_CHECKING:
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.evaluation.protocols import evaluate_dataset

__all__ = [
    "Ranking",
    "evaluate_dataset",
    "extract_features",
    "pairwise_distance",
    "rank_metrics",
    "ranking",
    "re_ranking",
    "results_document",
    "settings_to_results",
    "table1_markdown",
]

_LAZY = {
    "extract_features": "fmcnet.evaluation.extract",
    "evaluate_dataset": "fmcnet.evaluation.protocols",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmcnet.evaluation' has no attribute {name!r}")
