"""2-D maps of features (the paper's Figs. 4 and 5): PCA, then UMAP, reproducibly.

umap-learn imports numba, which takes seconds; it is imported inside the function so
that importing `fmcnet.viz` stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from fmcnet.utils import FMCNetError


def subsample_index(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `max_points` of `n` rows, drawn with a seeded generator."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def umap_embedding(
    features: np.ndarray,
    *,
    n_pca: int = 50,
    max_points: int | None = 5000,
    random_state: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    return_index: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """UMAP coordinates [n, 2] of (a seeded subsample of) `features` [N, D].

    PCA to `n_pca` dims first (denoises and makes UMAP's neighbour search cheap), at most
    `max_points` rows (seeded by `random_state`), UMAP with `random_state` and one thread
    so the same inputs give the same map. With `return_index=True` also returns the rows
    used, so callers can pick the matching labels.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) < 4:
        raise FMCNetError(f"umap_embedding needs features [N >= 4, D], got shape {x.shape}")
    index = subsample_index(len(x), max_points, random_state)
    x = x[index]
    n_comp = min(n_pca, x.shape[0] - 1, x.shape[1])
    if n_comp < x.shape[1]:
        from sklearn.decomposition import PCA

        x = PCA(n_components=n_comp, random_state=random_state).fit_transform(x)
    import umap  # lazy: numba start-up

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(n_neighbors, len(x) - 1)),
        min_dist=min_dist,
        random_state=random_state,
        n_jobs=1,
        # the spectral start needs a connected graph of reasonable size; tiny inputs start at random
        init="spectral" if len(x) > 50 else "random",
    )
    coords = reducer.fit_transform(x).astype(np.float32)
    return (coords, index) if return_index else coords


def _colors(labels: np.ndarray, cmap_name: str) -> tuple[np.ndarray, list]:
    import matplotlib

    uniq = list(dict.fromkeys(labels.tolist()))
    cmap = matplotlib.colormaps[cmap_name]
    n = getattr(cmap, "N", 256)
    lut = {u: cmap(i % n if n <= 20 else i / max(len(uniq) - 1, 1)) for i, u in enumerate(uniq)}
    return np.array([lut[v] for v in labels.tolist()]), uniq


def plot_feature_map(
    features_by_kind: Mapping[str, np.ndarray],
    pids: Sequence[int] | np.ndarray,
    modalities: Sequence[str] | np.ndarray,
    *,
    identities: Sequence[int] | None = None,
    max_points: int | None = 2000,
    random_state: int = 0,
    point_size: float = 6.0,
) -> Figure:
    """UMAP maps of each feature kind (shared / specific / generated / fused ...).

    Top row coloured by identity, bottom row by modality, one column per kind. All kinds
    use the same rows (same subsample), so columns are comparable. `identities` limits
    the map to a few ids, as the paper's figures do.
    """
    if not features_by_kind:
        raise FMCNetError("plot_feature_map needs at least one {kind: features} entry")
    pids = np.asarray(pids)
    mods = np.asarray([str(m) for m in modalities])
    n = len(pids)
    for kind, f in features_by_kind.items():
        if len(f) != n or len(mods) != n:
            raise FMCNetError(
                f"features {kind!r} have {len(f)} rows but {n} pids and {len(mods)} modalities"
            )
    rows = np.arange(n) if identities is None else np.flatnonzero(np.isin(pids, list(identities)))
    rows = rows[subsample_index(len(rows), max_points, random_state)]
    kinds = list(features_by_kind)
    fig = Figure(figsize=(3.4 * len(kinds), 6.4), layout="constrained")
    axes = fig.subplots(2, len(kinds), squeeze=False)
    id_colors, uniq_ids = _colors(pids[rows], "tab20")
    mod_colors, uniq_mods = _colors(mods[rows], "Set1")
    for c, kind in enumerate(kinds):
        xy = umap_embedding(np.asarray(features_by_kind[kind])[rows], max_points=None,
                            random_state=random_state)
        for r, colors in enumerate((id_colors, mod_colors)):
            ax = axes[r, c]
            ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=point_size, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, c].set_title(kind)
    axes[0, 0].set_ylabel(f"by identity ({len(uniq_ids)} ids)")
    axes[1, 0].set_ylabel("by modality")
    # modality legend: few entries, always readable
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=mod_colors[mods[rows] == m][0], label=m)
               for m in uniq_mods]
    axes[1, -1].legend(handles=handles, fontsize=8, loc="best")
    return fig
