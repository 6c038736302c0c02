"""Pictures of runs: figures (CMC, training curves, sample and ranking grids), UMAP
feature maps and the interactive ranking browser.

Submodules are imported on first use, so `import fmcnet.viz` does not pull in
ipywidgets or umap-learn (numba) until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "plot_cmc": "figures",
    "plot_training_curves": "figures",
    "plot_sample_grid": "figures",
    "plot_ranking_grid": "figures",
    "save_figure": "figures",
    "per_query_ap": "figures",
    "umap_embedding": "embedding",
    "plot_feature_map": "embedding",
    "RankingBrowser": "browser",
    "export_rankings": "browser",
    "toy_rankings": "toy",
    "demo_browser": "browser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"fmcnet.viz.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fmcnet.viz' has no attribute {name!r}")
