"""Files out of the ranking browser: the query on screen as a PNG figure and as a
self-contained HTML page, and the static ranking pages (a PNG grid per setting, one HTML
page) for papermill runs and reports, where no widget can be shown.

The pictures are drawn from the same records the browser shows (tiles, strip items) and
the static pages from the metric's `Ranking` of trial 0 (`fmcnet.viz.rankings`); the CSV
of a view is `QueryTable.csv_text`. `RankingBrowser.export_view` / `export` call these.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fmcnet.utils import atomic_write_text
from fmcnet.viz.browser_html import REMOVED_COLOR, Thumbs, pct
from fmcnet.viz.figures import (
    MATCH_COLOR,
    MISS_COLOR,
    ImageSource,
    add_border,
    plot_ranking_grid,
    save_figure,
)
from fmcnet.viz.rankings import RETRIEVAL, Ranked, SettingData


def slug(name: str) -> str:
    """A setting's name as part of a file name (SYSU-MM01's "all/single" -> "all_single")."""
    return name.replace("/", "_")


# ---------------------------------------------------------------------------------------
# The query on screen
# ---------------------------------------------------------------------------------------
def paths_on_screen(setting: SettingData, a: Ranked, q: int, tiles_a: list[dict],
                    tiles_b: list[dict], strip: list[dict]) -> list[tuple[str, str]]:
    """(what, image path) of the query, each run's tiles and the strip's items shown."""
    s = setting
    out = [(f"query {q} (id {int(a.q_pids[q])})", s.query.paths[int(a.q_rows[q])])]
    for side, tiles in (("A", tiles_a), ("B", tiles_b)):
        out += [(f"{side} rank {t['rank']} (id {t['pid']}, cam{t['cam']})",
                 s.gallery.paths[int(a.g_rows[t["gallery_index"]])]) for t in tiles]
    out += [(("removed" if x["removed"] else "true match") + f" (id {x['pid']}, cam{x['cam']})",
             s.gallery.paths[int(a.g_rows[x["gallery_index"]])])
            for x in strip]
    return out


def view_page(summary_html: str, panel_html: str, paths: list[tuple[str, str]]) -> str:
    """The summary and the query panel as one HTML page, the images' paths written out."""
    items = "".join(f"<li>{name}: <code>{html.escape(p)}</code></li>" for name, p in paths)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>FMCNet ranking view"
            "</title><style>body{font-family:sans-serif}img{height:128px;display:block}"
            "</style></head><body>"
            f"<p>{summary_html}</p>{panel_html}"
            f"<h3>Images on screen</h3><ul>{items}</ul></body></html>")


def view_figure(setting: SettingData, a: Ranked, q: int,
                runs: list[tuple[str, str, Ranked, list[dict]]], strip: list[dict],
                title: str) -> Figure:
    """The query panel as a figure: a label column, the query, then each run's tiles
    (`runs`: side, label, ranking, tiles) and the ground-truth strip's items."""
    s = setting
    rows: list[tuple[str, list[tuple[int, str, str]]]] = []
    for side, name, r, tiles in runs:
        label = (f"{side}: {name}\nAP {pct(r.ap[q])}\nfirst true match\n"
                 f"at rank {int(r.first[q]) or 'none'}")
        rows.append((label, [(t["gallery_index"], t["border_color"],
                              f"{t['rank']}. id {t['pid']} cam{t['cam']}\nd={t['distance']:.2f}")
                             for t in tiles]))
    items = []
    for x in strip:
        if x["removed"]:
            where = f"removed: A pos {x['position_a']}" + (
                f", B {x['position_b']}" if x.get("position_b") is not None else "")
        else:
            where = f"A rank {x['rank_a']}" + (
                f", B {x['rank_b']}" if x.get("rank_b") is not None else "")
        items.append((x["gallery_index"], REMOVED_COLOR if x["removed"] else MATCH_COLOR,
                      f"{where}\nid {x['pid']} cam{x['cam']}"))
    if items:
        rows.append(("ground truth", items))
    cols = 2 + max(len(tiles) for _, tiles in rows)
    fig = Figure(figsize=(1.0 * cols + 0.8, 2.3 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()

    def show(ax, img: np.ndarray, color: str, title: str, size: int = 6) -> None:
        ax.imshow(add_border(img, color))
        ax.set_title(title, fontsize=size)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])

    show(axes[0, 1], s.query.images[int(a.q_rows[q])], "#000000",
         f"query {q}\nid {int(a.q_pids[q])} cam{int(a.q_cams[q])}", 7)
    for r, (label, tiles) in enumerate(rows):
        axes[r, 0].text(0.0, 0.5, label, ha="left", va="center", fontsize=7, wrap=True)
        for c, (g, color, caption) in enumerate(tiles):
            show(axes[r, c + 2], s.gallery.images[int(a.g_rows[g])], color, caption)
    fig.suptitle(title, fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------
# Static pages: one run's rankings without a widget
# ---------------------------------------------------------------------------------------
def spread_queries(r: Ranked, n: int = 8) -> np.ndarray:
    """`n` valid queries of `r` spread from the worst AP to the best."""
    valid = np.flatnonzero(~np.isnan(r.ap))
    ordered = valid[np.argsort(r.ap[valid], kind="stable")]
    if len(ordered) <= n:
        return ordered
    return ordered[np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))]


class TrialRows(ImageSource):
    """The images of one trial's list: position i -> the side's image `rows[i]`."""

    def __init__(self, side: Any, rows: np.ndarray):  # no ImageSource.__init__: no own images
        self._side, self._rows = side, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._side.images[int(self._rows[int(i)])]


def ranking_pages(run: dict[str, SettingData], label: str, out_dir: str | os.PathLike,
                  queries: Any = None, k: int = 10, *, settings: list[str] | None = None,
                  thumbs: Thumbs | None = None) -> dict[str, Path]:
    """A run's rankings (gallery trial 0, retrieval feature) as PNG grids, one per
    setting (`rankings_<setting>.png`, "/" -> "_"), and one self-contained HTML page with
    identities and image paths (`rankings.html`), written into `out_dir`. `queries`:
    the same query numbers in every setting; None: `spread_queries` of each."""
    thumbs = thumbs or Thumbs()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    sections = []
    for name in settings or list(run):
        s = run[name]
        r = s.ranked(RETRIEVAL, 0)
        qs = np.asarray(spread_queries(r) if queries is None else queries, np.int64)
        fig = plot_ranking_grid(r.ranking, TrialRows(s.query, r.q_rows), TrialRows(s.gallery, r.g_rows),
                                qs, k, distmat=r.distmat, q_pids=r.q_pids, g_cams=r.g_cams)
        written[f"png/{name}"] = save_figure(fig, out_dir / f"rankings_{slug(name)}.png")
        sections.append(_html_section(s, r, qs, k, thumbs))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>FMCNet rankings</title>"
            "<style>body{font-family:sans-serif}img{height:128px;display:block}"
            ".row{display:flex;align-items:flex-start;margin:6px 0}"
            ".tile{margin:2px;padding:2px;font-size:11px;text-align:center;max-width:150px;"
            "overflow-wrap:anywhere}</style></head><body>"
            f"<h1>Ranked galleries: {html.escape(label)}, gallery trial 0</h1>"
            "<p>Green: true match; red: any other kept item. Items the protocol removes are "
            f"not shown.</p>{''.join(sections)}</body></html>")
    atomic_write_text(out_dir / "rankings.html", page)
    written["html"] = out_dir / "rankings.html"
    return written


def _html_section(s: SettingData, r: Ranked, queries: np.ndarray, k: int, thumbs: Thumbs) -> str:
    def img(src, i: int) -> str:
        return (f"<img src='data:image/jpeg;base64,{thumbs.b64(src.images, src.paths, i)}'>"
                f"<code>{html.escape(src.paths[i])}</code>")

    rows = []
    for q in queries.tolist():
        tiles = [f"<div class='tile' style='border:4px solid #333'>{img(s.query, int(r.q_rows[q]))}"
                 f"query {q}<br>{s.q_modality} cam{int(r.q_cams[q])}<br>id {int(r.q_pids[q])}</div>"]
        for t in r.tiles(q, k):
            color = MATCH_COLOR if t["match"] else MISS_COLOR
            tiles.append(f"<div class='tile' style='border:4px solid {color}'>"
                         f"{img(s.gallery, int(r.g_rows[t['gallery']]))}{t['rank']}. "
                         f"d={t['distance']:.3f}<br>cam{t['cam']} · id {t['pid']}</div>")
        rows.append(f"<p>query {q}: AP {pct(r.ap[q])}, first true match at rank "
                    f"{int(r.first[q]) or 'none'}</p><div class='row'>{''.join(tiles)}</div>")
    return f"<h2>{html.escape(s.name)} ({html.escape(s.protocol)})</h2>{''.join(rows)}"
