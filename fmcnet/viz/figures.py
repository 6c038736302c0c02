"""Figures for notebooks and run folders: CMC curves, training curves, sample and ranking grids.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot state, no backend
switch), so it works the same in a notebook, a papermill run or a headless test.

Ranking pictures take their ranked lists, removals and green / red verdicts from
`fmcnet.evaluation.metrics.ranking` -- the same `Ranking` that `rank_metrics` scores --
so a picture can never disagree with the number next to it. The small helpers that read
a `Ranking` (`per_query_ap`, `first_match_rank`, `kept_top_k`) live here and are shared
with the ranking browser.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fmcnet.evaluation.metrics import Ranking
from fmcnet.utils import FMCNetError, atomic_write_bytes

MATCH_COLOR = "#2ca02c"  # green: a true match that the protocol keeps
MISS_COLOR = "#d62728"  # red: any other kept gallery item
_RGB = {MATCH_COLOR: (44, 160, 44), MISS_COLOR: (214, 39, 40)}


# ---------------------------------------------------------------------------------------
# Reading a Ranking (shared with the browser)
# ---------------------------------------------------------------------------------------
def per_query_ap(ranking: Ranking, *, chunk: int = 1024) -> np.ndarray:
    """Average precision of every query, [Q] float64; NaN for a query with no true match.

    Same definition as `rank_metrics`: the mean over true matches of the precision at
    each hit, ranks counted among kept items. So the mean over the non-NaN entries equals
    `rank_metrics(...)["mAP"]` (tested). Vectorised in query blocks to bound memory.
    """
    n_q = ranking.order.shape[0]
    out = np.full(n_q, np.nan)
    for s in range(0, n_q, chunk):
        keep = ranking.keep[s : s + chunk]
        hit = ranking.matches[s : s + chunk] & keep
        pos = np.cumsum(keep, axis=1, dtype=np.int64)  # 1-based rank among kept items
        hits = np.cumsum(hit, axis=1, dtype=np.int64)
        prec = np.where(hit, hits / np.maximum(pos, 1), 0.0)
        n_rel = hit.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + chunk] = np.where(n_rel > 0, prec.sum(1) / n_rel, np.nan)
    return out


def first_match_rank(ranking: Ranking) -> np.ndarray:
    """1-based rank, among kept items, of each query's first true match; 0 when none."""
    hit = ranking.matches & ranking.keep
    first = hit.argmax(1)
    kept_before = np.cumsum(ranking.keep, axis=1, dtype=np.int32)[np.arange(len(first)), first]
    return np.where(hit.any(1), kept_before, 0).astype(np.int64)


def kept_top_k(ranking: Ranking, q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Gallery indices and true-match flags of query q's first k kept items."""
    idx, match = ranking.kept(int(q))
    return idx[:k], match[:k]


# ---------------------------------------------------------------------------------------
# Images: a list of paths or a uint8 NHWC array, read the same way everywhere
# ---------------------------------------------------------------------------------------
class ImageSource:
    """Indexable images from a uint8 NHWC array or a sequence of file paths.

    Paths are read lazily with PIL. A missing file (a run folder moved to another machine)
    becomes a grey placeholder with one warning, so browsing still works.
    """

    def __init__(self, images: np.ndarray | Sequence[str | os.PathLike], *, root: Path | None = None):
        if isinstance(images, np.ndarray) and images.dtype.kind not in "US":
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise FMCNetError(
                    f"images must be a uint8 array [N, H, W, 3] or a list of file paths; got "
                    f"{images.dtype} array of shape {images.shape}"
                )
            self._array: np.ndarray | None = images
            self._paths: list[str] = []
        else:
            self._array = None
            self._paths = [str(p) for p in images]
        self._root = root
        self._warned = False

    def __len__(self) -> int:
        return len(self._array) if self._array is not None else len(self._paths)

    @property
    def paths(self) -> list[str]:
        """The file paths (empty for images given as an array)."""
        return list(self._paths)

    def _resolve(self, p: str) -> Path:
        path = Path(p)
        if not path.is_absolute() and not path.exists() and self._root is not None:
            path = self._root / path
        return path

    def __getitem__(self, i: int) -> np.ndarray:
        if self._array is not None:
            return self._array[int(i)]
        from PIL import Image

        path = self._resolve(self._paths[int(i)])
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError:
            if not self._warned:
                warnings.warn(
                    f"image {path} cannot be read (moved run folder or dataset root?); "
                    "showing grey placeholders for unreadable images",
                    stacklevel=2,
                )
                self._warned = True
            return np.full((128, 64, 3), 128, np.uint8)


def as_image_source(images: Any, *, root: Path | None = None) -> ImageSource:
    return images if isinstance(images, ImageSource) else ImageSource(images, root=root)


def add_border(img: np.ndarray, color: str, width: int = 4) -> np.ndarray:
    """The image with a solid `width`-pixel frame in `color` (MATCH_COLOR / MISS_COLOR / hex)."""
    rgb = _RGB.get(color) or tuple(int(color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    out = np.empty((img.shape[0] + 2 * width, img.shape[1] + 2 * width, 3), np.uint8)
    out[:] = rgb
    out[width : width + img.shape[0], width : width + img.shape[1]] = img
    return out


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------
def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write `fig` as a PNG atomically (a reader never sees a half-written file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _new_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _cmc_curves(obj: Any, label: str = "") -> dict[str, np.ndarray]:
    """Flatten the shapes a CMC arrives in into {label: curve}."""
    if isinstance(obj, Mapping):
        if "cmc" in obj:
            return {label or "cmc": np.asarray(obj["cmc"], float)}
        if "settings" in obj and isinstance(obj["settings"], Mapping):
            return _cmc_curves(obj["settings"], label)
        curves: dict[str, np.ndarray] = {}
        for key, val in obj.items():
            sub = f"{label}/{key}" if label else str(key)
            if isinstance(val, Mapping) or hasattr(val, "cmc"):
                curves.update(_cmc_curves(val, sub))
            elif isinstance(val, (np.ndarray, list, tuple)):
                curves[sub] = np.asarray(val, float)
        return curves
    if hasattr(obj, "cmc"):
        return {label or "cmc": np.asarray(obj.cmc, float)}
    return {label or "cmc": np.asarray(obj, float)}


def plot_cmc(results_or_cmc_dict: Any, ax: Any = None, *, max_rank: int | None = None,
             title: str = "CMC") -> Figure:
    """One CMC line per setting, in percent.

    Accepts `{name: curve}`, `{name: {"cmc": curve, ...}}` (e.g. `rank_metrics` outputs),
    a results dict with a `settings` mapping, or a single curve. Curves in [0, 1] are
    shown as percentages.
    """
    curves = _cmc_curves(results_or_cmc_dict)
    if not curves:
        raise FMCNetError("plot_cmc found no CMC curve in its input (expected {name: cmc})")
    fig, ax = _new_axes(ax, (5.0, 3.6))
    longest = 1
    for name, curve in curves.items():
        curve = curve[:max_rank] if max_rank else curve
        pct = curve * 100.0 if curve.max(initial=0.0) <= 1.0 else curve
        ax.plot(np.arange(1, len(pct) + 1), pct, marker="o", markersize=3, label=name)
        longest = max(longest, len(pct))
    ax.set_xlim(0.5, longest + 0.5)
    ax.set_xlabel("rank")
    # ranks are whole numbers: rank 1, then every fifth (every rank on a short curve)
    step = 1 if longest < 10 else 5 if longest <= 50 else 10 * -(-longest // 100)
    ax.set_xticks(sorted({1, *range(step, longest + 1, step)}))
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def _read_records(src: str | os.PathLike | Iterable[Mapping[str, Any]]) -> list[dict]:
    if isinstance(src, (str, os.PathLike)):
        from fmcnet.run_files import read_jsonl

        path = Path(src)
        if not path.exists():
            raise FMCNetError(f"no training log at {path}; a run folder keeps it as metrics.jsonl")
        return read_jsonl(path)  # a damaged line: RunFileError naming it
    return [dict(r) for r in src]


# The training log by module: (title, left-axis keys, right-axis keys, right-axis label).
# Keys absent from a log are simply not drawn; a panel with none of its keys is left out.
_MODULE_PANELS: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = [
    ("SFD: identity and MD losses", ("loss/id", "loss/shs", "loss/dc", "loss/sps"), (), ""),
    ("FMC: adversarial and consistency losses", ("loss/gan_g", "loss/gan_d", "loss/ic", "loss/fc"),
     ("disc_acc",), "D accuracy (dashed; 0.5: fooled)"),
    ("SFF: fusion losses and ω", ("loss/mc", "loss/fid"), ("omega/v_specific", "omega/i_specific"),
     "ω (dashed)"),
]
# What each key is called in a legend (the paper's names); other keys keep their own.
CURVE_LABELS = {
    "loss/id": "L_ID", "loss/shs": "L_shs", "loss/dc": "L_dc", "loss/sps": "L_sps",
    "loss/gan_g": "L_GAN, generators", "loss/gan_d": "L_GAN, discriminators",
    "loss/ic": "L_IC", "loss/fc": "L_FC", "loss/mc": "L_MC", "loss/fid": "L_FID",
    "loss/total": "total", "disc_acc": "D accuracy",
    "omega/v_specific": "ω1 (V-specific)", "omega/i_specific": "ω2 (I-specific)",
}
# Distinct colours within a panel, left-axis curves first (tab10 without its grey).
PANEL_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#bcbd22", "#17becf")
# The other panels: title -> predicate on the record key.
_OTHER_PANELS: list[tuple[str, Any]] = [
    ("total loss", lambda k: k == "loss" or k.startswith("loss/")),  # and losses of no module
    ("learning rate", lambda k: k == "lr" or k.startswith("lr/")),
    ("throughput (images/s)", lambda k: k == "images_per_s"),
    ("evaluation", lambda k: k.startswith(("eval/", "val/")) or k == "val_mAP"),
]


def _curve_label(key: str) -> str:
    return CURVE_LABELS.get(key, key.split("/", 1)[-1] if "/" in key else key)


def training_panels(keys: Iterable[str]) -> list[tuple[str, list[str], list[str], str]]:
    """The panels `plot_training_curves` draws for a log with these numeric keys:
    (title, left-axis keys, right-axis keys, right-axis label), in drawing order."""
    keys = sorted(set(keys))
    panels, used = [], set()
    for title, left, right, right_label in _MODULE_PANELS:
        ls, rs = [k for k in left if k in keys], [k for k in right if k in keys]
        if ls:
            panels.append((title, ls, rs, right_label))
            used.update(ls + rs)
    for title, pred in _OTHER_PANELS:
        ks = [k for k in keys if pred(k) and k not in used]
        if ks:
            panels.append((title, ks, [], ""))
            used.update(ks)
    return panels


def plot_training_curves(metrics_jsonl_path_or_records: Any, *, x: str = "global_step",
                         columns: int = 3) -> Figure:
    """Training curves from `metrics.jsonl`, the losses grouped by module.

    Panels (each only when the log has its keys): SFD (L_ID, L_shs, L_dc, L_sps); FMC
    (both sides of L_GAN, L_IC, L_FC, and the discriminators' accuracy on a right axis);
    SFF (L_MC, L_FID, and ω on a right axis); the total loss with any loss of no module;
    the learning rate; images/s; `eval/*` / `val/*` numbers. Each panel's curves have
    distinct colours and its legend sits under it, outside the plot. Records without
    `x` use their position in the log.
    """
    records = _read_records(metrics_jsonl_path_or_records)
    keys = {k for r in records for k, v in r.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    panels = training_panels(keys)
    if not panels:
        fig = Figure(figsize=(5, 2), layout="constrained")
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no training records yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    cols = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()

    def series(k: str) -> tuple[list[Any], list[float]]:
        pts = [(r.get(x, i), r[k]) for i, r in enumerate(records)
               if isinstance(r.get(k), (int, float))]
        xs, ys = zip(*pts)
        return list(xs), list(ys)

    for ax, (title, left, right, right_label) in zip(axes, panels):
        colours = iter(PANEL_COLOURS)
        handles = [ax.plot(*series(k), label=_curve_label(k), color=next(colours),
                           linewidth=1.2)[0] for k in left]
        if right:
            twin = ax.twinx()
            handles += [twin.plot(*series(k), label=_curve_label(k), color=next(colours),
                                  linewidth=1.2, linestyle="--")[0] for k in right]
            twin.set_ylabel(right_label, fontsize=7)
            twin.tick_params(labelsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(x.replace("_", " "), fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(handles) > 1 or right:
            ax.legend(handles=handles, fontsize=7, loc="upper center",
                      bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return fig


def plot_sample_grid(images_by_group: Mapping[str, np.ndarray], *, n: int = 8,
                     titles: Mapping[str, Sequence[str]] | None = None) -> Figure:
    """One row per group (e.g. "visible", "infrared", "augmented"), up to `n` images each."""
    if not images_by_group:
        raise FMCNetError("plot_sample_grid needs at least one group of images")
    cols = max(1, min(n, max(len(v) for v in images_by_group.values())))
    rows = len(images_by_group)
    fig = Figure(figsize=(1.1 * cols + 1.0, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, (group, imgs) in enumerate(images_by_group.items()):
        src = as_image_source(imgs)
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(src):
                ax.imshow(src[c])
                if titles and group in titles and c < len(titles[group]):
                    ax.set_title(titles[group][c], fontsize=7)
            else:
                ax.set_axis_off()
        axes[r, 0].set_ylabel(group)
    return fig


def plot_ranking_grid(ranking: Ranking, q_images: Any, g_images: Any, queries: Sequence[int],
                      k: int = 10, *, distmat: np.ndarray | None = None,
                      q_pids: np.ndarray | None = None, g_cams: np.ndarray | None = None,
                      border: int = 4) -> Figure:
    """Each query then its top-k *kept* gallery items, framed green (true match) / red.

    Items the protocol removes (SYSU: cam2 for a cam3 query; LLCM: same id + camera)
    never appear, exactly as `rank_metrics` ignores them. Captions show the distance
    and camera when `distmat` / `g_cams` are given.
    """
    qs, gs = as_image_source(q_images), as_image_source(g_images)
    queries = [int(q) for q in queries]
    if not queries:
        raise FMCNetError("plot_ranking_grid needs at least one query index")
    fig = Figure(figsize=(1.0 * (k + 1) + 0.6, 2.0 * len(queries)), layout="constrained")
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    for r, q in enumerate(queries):
        ax = axes[r, 0]
        ax.imshow(add_border(qs[q], "#000000", border))
        ax.set_title(f"query {q}" + (f"\nid {int(q_pids[q])}" if q_pids is not None else ""), fontsize=7)
        idx, match = kept_top_k(ranking, q, k)
        for c in range(k):
            ax = axes[r, c + 1]
            if c >= len(idx):
                ax.set_axis_off()
                continue
            g = int(idx[c])
            ax.imshow(add_border(gs[g], MATCH_COLOR if match[c] else MISS_COLOR, border))
            cap = [f"{c + 1}"]
            if distmat is not None:
                cap.append(f"d={float(distmat[q, g]):.2f}")
            if g_cams is not None:
                cap.append(f"cam{int(g_cams[g])}")
            ax.set_title(" ".join(cap), fontsize=6)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
