"""RankingBrowser: step through queries and see their ranked gallery, in a notebook.

The ranked lists, the protocol's removals and the green / red verdicts all come from
`fmcnet.evaluation.metrics.ranking`, the function `rank_metrics` scores: what the browser
shows is what the metric counted. Per-query AP is `figures.per_query_ap` on the same
`Ranking` (its mean over valid queries is the reported mAP).

Speed: thumbnails are encoded once (JPEG bytes) and cached; the widgets are built once
and only their values change, under `hold_sync`, so stepping to another query costs a
handful of small messages (well under 50 ms for k = 10 on a CPU).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from fmcnet.evaluation.metrics import Ranking, pairwise_distance, ranking
from fmcnet.utils import FMCNetError, atomic_write_text
from fmcnet.viz.figures import (
    MATCH_COLOR,
    MISS_COLOR,
    ImageSource,
    as_image_source,
    first_match_rank,
    kept_top_k,
    per_query_ap,
    plot_ranking_grid,
    save_figure,
)

SORT_INDEX, SORT_AP = "index", "ap"


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _thumbnail(img: np.ndarray, height: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(img)
    w = max(1, round(im.width * height / im.height))
    buf = io.BytesIO()
    im.resize((w, height), Image.BILINEAR).save(buf, format="JPEG", quality=88)
    return buf.getvalue()


@dataclass
class RankedSetting:
    """One evaluation setting (e.g. SYSU all-search, RegDB visible->infrared) ready to browse."""

    name: str
    protocol: str
    distmat: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_cams: np.ndarray
    g_cams: np.ndarray
    q_images: ImageSource
    g_images: ImageSource
    q_modality: str = "infrared"
    g_modality: str = "visible"
    thumb_height: int = 128
    _ranking: Ranking | None = field(default=None, repr=False)
    _thumbs: dict = field(default_factory=dict, repr=False)

    def _ensure(self) -> None:
        # lazily: a run with four SYSU settings ranks only those the user opens
        if self._ranking is None:
            self._ranking = ranking(self.distmat, self.q_pids, self.g_pids, self.q_cams,
                                    self.g_cams, protocol=self.protocol)
            self._ap = per_query_ap(self._ranking)
            self._first = first_match_rank(self._ranking)

    @property
    def ranking(self) -> Ranking:
        self._ensure()
        return self._ranking  # type: ignore[return-value]

    @property
    def ap(self) -> np.ndarray:
        """Per-query AP (NaN: no true match in the gallery, left out of the metrics)."""
        self._ensure()
        return self._ap

    @property
    def first_rank(self) -> np.ndarray:
        """1-based rank among kept items of each query's first true match (0: none)."""
        self._ensure()
        return self._first

    @property
    def failures(self) -> np.ndarray:
        """Valid queries whose rank-1 kept item is not a true match."""
        return self.first_rank > 1

    def thumb(self, side: str, i: int) -> bytes:
        key = (side, int(i))
        if key not in self._thumbs:
            src = self.q_images if side == "q" else self.g_images
            self._thumbs[key] = _thumbnail(src[int(i)], self.thumb_height)
        return self._thumbs[key]

    def view(self, sort: str, failures_only: bool) -> np.ndarray:
        """Query indices in browsing order: by index or by AP worst first (invalid last)."""
        qs = np.arange(len(self.q_pids))
        if failures_only:
            qs = qs[self.failures]
        if sort == SORT_AP:
            ap = np.where(np.isnan(self.ap[qs]), np.inf, self.ap[qs])
            qs = qs[np.argsort(ap, kind="stable")]
        return qs


def _modalities(setting: str, z: Any) -> tuple[str, str]:
    """Query / gallery modality of a saved setting: stored keys, else the setting's name."""
    if "q_modality" in z and "g_modality" in z:
        return str(z["q_modality"]), str(z["g_modality"])
    s = setting.lower()
    if s.startswith(("visible_to", "v2i", "v2t")) or "visible_to_infrared" in s:
        return "visible", "infrared"
    return "infrared", "visible"  # SYSU / LLCM default: the paper's infrared -> visible


class RankingBrowser:
    """ipywidgets browser of ranked galleries; build it with `from_arrays` or `from_run`.

    Display it as the last expression of a cell (or `display(browser)`). For tests and
    scripts the state is exposed: `current_query`, `current_tiles()`, `header_text`, and
    the control widgets (`query_slider`, `identity`, `k_slider`, `sort`, `failures_only`,
    `direction`) whose `.value` can be set directly.
    """

    def __init__(self, settings: list[RankedSetting], *, k: int = 10, max_k: int = 20):
        if not settings:
            raise FMCNetError("RankingBrowser needs at least one evaluation setting")
        self.settings = {s.name: s for s in settings}
        self._setting = settings[0]
        self._view = np.zeros(0, np.int64)
        self._tiles_state: list[dict] = []
        self.header_text = ""
        self._syncing = False
        max_k = max(max_k, k)

        names = list(self.settings)
        self.direction = W.ToggleButtons(options=names, value=names[0], description="setting")
        if len(names) < 2:
            self.direction.layout.display = "none"
        self.sort = W.ToggleButtons(options=[("by index", SORT_INDEX), ("by AP, worst first", SORT_AP)],
                                    value=SORT_INDEX, description="order")
        self.failures_only = W.Checkbox(value=False, description="failures only (rank-1 wrong)",
                                        indent=False)
        self.query_slider = W.IntSlider(min=0, max=0, value=0, description="query",
                                        continuous_update=True, layout=W.Layout(width="480px"))
        self.identity = W.Dropdown(options=[], description="identity", layout=W.Layout(width="200px"))
        self.k_slider = W.IntSlider(min=1, max=max_k, value=k, description="top-k")
        self.header = W.HTML()
        self.query_slider.add_class("fmcnet-query-slider")
        self.k_slider.add_class("fmcnet-k-slider")
        self.header.add_class("fmcnet-header")

        self._q_image = W.Image(format="jpeg", layout=W.Layout(height="128px", object_fit="contain"))
        self._q_image.add_class("fmcnet-query-image")
        self._q_badge = W.HTML()
        q_box = W.VBox([self._q_image, self._q_badge],
                       layout=W.Layout(border="4px solid #333", padding="2px", margin="2px 16px 2px 2px",
                                       align_items="center"))
        self._tiles = []
        for _ in range(max_k):
            img = W.Image(format="jpeg", layout=W.Layout(height="128px"))
            img.add_class("fmcnet-gallery-image")
            cap = W.HTML()
            box = W.VBox([img, cap], layout=W.Layout(border=f"4px solid {MISS_COLOR}", padding="2px",
                                                     margin="2px", align_items="center"))
            self._tiles.append((box, img, cap))
        self.widget = W.VBox([
            W.HBox([self.direction]),
            W.HBox([self.sort, self.failures_only]),
            W.HBox([self.query_slider, self.identity, self.k_slider]),
            self.header,
            W.HBox([q_box, W.HBox([t[0] for t in self._tiles], layout=W.Layout(flex_flow="row wrap"))]),
        ])
        self.widget.add_class("fmcnet-ranking-browser")

        self.direction.observe(self._on_setting, "value")
        self.sort.observe(self._on_view, "value")
        self.failures_only.observe(self._on_view, "value")
        self.query_slider.observe(self._on_query, "value")
        self.identity.observe(self._on_identity, "value")
        self.k_slider.observe(self._on_query, "value")
        self._rebuild_view(keep_query=None)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, *, q_feats: Any = None, g_feats: Any = None, distmat: Any = None,
                    q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any, q_images: Any,
                    g_images: Any, protocol: str, q_modality: str = "infrared",
                    g_modality: str = "visible", directions: dict[str, dict] | None = None,
                    name: str = "ranking", k: int = 10, max_k: int = 20,
                    thumb_height: int = 128) -> RankingBrowser:
        """Browser over one setting from arrays; `directions` adds more settings by name.

        Give either `distmat` [Q, G] or `q_feats` / `g_feats` (distances then come from
        `pairwise_distance`, as in evaluation). Images: a uint8 [N, H, W, 3] array or a
        list of file paths. `directions` maps a setting name to a dict of the same
        keyword arguments (e.g. RegDB's infrared->visible beside visible->infrared).
        """
        first = _make_setting(name, q_feats=q_feats, g_feats=g_feats, distmat=distmat,
                              q_pids=q_pids, g_pids=g_pids, q_cams=q_cams, g_cams=g_cams,
                              q_images=q_images, g_images=g_images, protocol=protocol,
                              q_modality=q_modality, g_modality=g_modality,
                              thumb_height=thumb_height)
        more = [_make_setting(n, thumb_height=thumb_height, **kw) for n, kw in (directions or {}).items()]
        return cls([first, *more], k=k, max_k=max_k)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, *, k: int = 10, max_k: int = 20,
                 thumb_height: int = 128) -> RankingBrowser:
        """Browser over every `run_dir/eval/<setting>.npz` the evaluation wrote."""
        run_dir = Path(run_dir)
        files = sorted((run_dir / "eval").glob("*.npz"))
        if not files:
            raise FMCNetError(
                f"{run_dir} has no eval/*.npz files; evaluate the run first "
                f"(python -m fmcnet evaluate) so the browser has features to rank"
            )
        settings = []
        for f in files:
            with np.load(f, allow_pickle=False) as z:
                missing = {"q_pids", "g_pids", "q_cams", "g_cams", "q_paths", "g_paths"} - set(z.files)
                if missing or not ({"distmat"} <= set(z.files) or {"q_feats", "g_feats"} <= set(z.files)):
                    raise FMCNetError(f"{f} lacks {sorted(missing) or 'q_feats/g_feats'}; "
                                      "re-run the evaluation to rewrite it")
                setting = str(z["setting"]) if "setting" in z.files else f.stem
                protocol = str(z["protocol"]) if "protocol" in z.files else "sysu"
                q_mod, g_mod = _modalities(setting, z)
                dist = z["distmat"] if "distmat" in z.files else None
                settings.append(_make_setting(
                    setting, distmat=dist,
                    q_feats=None if dist is not None else z["q_feats"],
                    g_feats=None if dist is not None else z["g_feats"],
                    q_pids=z["q_pids"], g_pids=z["g_pids"], q_cams=z["q_cams"], g_cams=z["g_cams"],
                    q_images=ImageSource(list(z["q_paths"]), root=run_dir),
                    g_images=ImageSource(list(z["g_paths"]), root=run_dir),
                    protocol=protocol, q_modality=q_mod, g_modality=g_mod,
                    thumb_height=thumb_height))
        return cls(settings, k=k, max_k=max_k)

    # ------------------------------------------------------------------ state
    @property
    def setting(self) -> RankedSetting:
        return self._setting

    @property
    def current_query(self) -> int | None:
        """Index (into the setting's queries) of the query on screen; None if the view is empty."""
        if len(self._view) == 0:
            return None
        return int(self._view[self.query_slider.value])

    @property
    def view(self) -> np.ndarray:
        """Query indices in the current order and filter (what the slider walks)."""
        return self._view.copy()

    def current_tiles(self) -> list[dict]:
        """The visible gallery tiles: gallery_index, pid, cam, distance, is_match, border_color."""
        return [dict(t) for t in self._tiles_state]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ events
    def _on_setting(self, change: dict) -> None:
        self._setting = self.settings[change["new"]]
        self._rebuild_view(keep_query=None)

    def _on_view(self, change: dict) -> None:
        self._rebuild_view(keep_query=self.current_query)

    def _on_query(self, change: dict) -> None:
        if not self._syncing:
            self._render()

    def _on_identity(self, change: dict) -> None:
        if self._syncing or change["new"] is None or len(self._view) == 0:
            return
        hits = np.flatnonzero(self._setting.q_pids[self._view] == change["new"])
        if len(hits) and self._view[self.query_slider.value] not in self._view[hits]:
            self.query_slider.value = int(hits[0])  # renders through _on_query

    def _rebuild_view(self, keep_query: int | None) -> None:
        s = self._setting
        self._view = s.view(self.sort.value, self.failures_only.value)
        pos = 0
        if keep_query is not None and keep_query in self._view:
            pos = int(np.flatnonzero(self._view == keep_query)[0])
        pids = sorted(set(s.q_pids[self._view].tolist()))
        self._syncing = True  # one render at the end, not one per widget change
        try:
            with self.query_slider.hold_sync(), self.identity.hold_sync():
                self.query_slider.max = max(len(self._view) - 1, 0)
                self.query_slider.value = pos
                self.query_slider.disabled = len(self._view) == 0
                self.identity.options = [(f"id {p}", p) for p in pids]
        finally:
            self._syncing = False
        self._render()

    # ------------------------------------------------------------------ drawing
    def _header(self, q: int) -> tuple[str, str]:
        s = self._setting
        ap, first = s.ap[q], int(s.first_rank[q])
        where = f"{s.q_modality} cam{int(s.q_cams[q])}"
        if first == 0:
            verdict = "no true match in this gallery (left out of the metrics)"
            html_v = html.escape(verdict)
        else:
            verdict = f"AP {ap * 100:.1f}% · first true match at rank {first}"
            color = MATCH_COLOR if first == 1 else MISS_COLOR
            html_v = (f"AP <b>{ap * 100:.1f}%</b> · first true match at rank "
                      f"<b style='color:{color}'>{first}</b>")
        text = (f"{s.name}: query {q} ({self.query_slider.value + 1}/{len(self._view)}) · "
                f"id {int(s.q_pids[q])} · {where} · {verdict}")
        markup = (f"<div><b>{html.escape(s.name)}</b> · query {q} "
                  f"({self.query_slider.value + 1}/{len(self._view)}) · id {int(s.q_pids[q])} · "
                  f"{html.escape(where)} · {html_v}</div>")
        return text, markup

    def _render(self) -> None:
        s, q = self._setting, self.current_query
        widgets = [self.header, self._q_image, self._q_badge]
        for box, img, cap in self._tiles:
            widgets += [box.layout, img, cap]
        with contextlib.ExitStack() as stack:
            for w in widgets:
                stack.enter_context(w.hold_sync())
            if q is None:
                self.header_text = "no query matches the filter"
                self.header.value = f"<div>{self.header_text}</div>"
                self._tiles_state = []
                for box, _, _ in self._tiles:
                    box.layout.display = "none"
                return
            if not self._syncing:
                self._syncing = True
                try:
                    self.identity.value = int(s.q_pids[q])
                finally:
                    self._syncing = False
            self.header_text, self.header.value = self._header(q)
            self._q_image.value = s.thumb("q", q)
            self._q_badge.value = (f"<span style='background:#333;color:#fff;padding:1px 4px'>"
                                   f"{s.q_modality}</span> cam{int(s.q_cams[q])} · id {int(s.q_pids[q])}")
            idx, match = kept_top_k(s.ranking, q, self.k_slider.value)
            state = []
            for i, (box, img, cap) in enumerate(self._tiles):
                if i >= len(idx):
                    box.layout.display = "none"
                    continue
                g, m = int(idx[i]), bool(match[i])
                color = MATCH_COLOR if m else MISS_COLOR
                dist = float(s.distmat[q, g])
                img.value = s.thumb("g", g)
                cap.value = (f"<div style='font-size:11px;text-align:center'>{i + 1}. d={dist:.3f}"
                             f"<br>cam{int(s.g_cams[g])} · id {int(s.g_pids[g])}</div>")
                box.layout.border = f"4px solid {color}"
                box.layout.display = "flex"
                state.append({"gallery_index": g, "pid": int(s.g_pids[g]), "cam": int(s.g_cams[g]),
                              "distance": dist, "is_match": m, "border_color": color})
            self._tiles_state = state

    # ------------------------------------------------------------------ static export
    def default_queries(self, setting: str | None = None, n: int = 8) -> np.ndarray:
        """`n` valid queries spread from the worst AP to the best: failures and successes."""
        s = self.settings[setting] if setting else self._setting
        valid = np.flatnonzero(~np.isnan(s.ap))
        ordered = valid[np.argsort(s.ap[valid], kind="stable")]
        if len(ordered) <= n:
            return ordered
        return ordered[np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))]

    def export(self, out_dir: str | os.PathLike, queries: Any = None, k: int = 10, *,
               settings: list[str] | None = None) -> dict[str, Path]:
        """PNG ranking grids (one per setting) and one self-contained HTML page.

        For papermill runs and reports, where no widget can be shown. Writes
        `rankings_<setting>.png` (a "/" in the name becomes "_": `all/single` ->
        `rankings_all_single.png`) and `rankings.html` (images inlined as base64) into
        `out_dir`; returns {name: path}.
        """
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        sections = []
        for name in settings or list(self.settings):
            s = self.settings[name]
            qs = np.asarray(self.default_queries(name) if queries is None else queries, np.int64)
            fig = plot_ranking_grid(s.ranking, s.q_images, s.g_images, qs, k, distmat=s.distmat,
                                    q_pids=s.q_pids, g_cams=s.g_cams)
            file = out_dir / f"rankings_{name.replace('/', '_')}.png"  # one file, no sub-folder
            written[f"png/{name}"] = save_figure(fig, file)
            sections.append(self._html_section(s, qs, k))
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>FMCNet rankings</title>"
                "<style>body{font-family:sans-serif}img{height:128px;display:block}"
                ".row{display:flex;align-items:flex-start;margin:6px 0}"
                ".tile{margin:2px;padding:2px;font-size:11px;text-align:center}</style></head><body>"
                f"<h1>Ranked galleries</h1><p>Green: true match; red: any other kept item. Items "
                f"the protocol removes are not shown.</p>{''.join(sections)}</body></html>")
        atomic_write_text(out_dir / "rankings.html", page)
        written["html"] = out_dir / "rankings.html"
        return written

    @staticmethod
    def _html_section(s: RankedSetting, queries: np.ndarray, k: int) -> str:
        def img(side: str, i: int) -> str:
            return f"<img src='data:image/jpeg;base64,{base64.b64encode(s.thumb(side, i)).decode()}'>"

        rows = []
        for q in queries.tolist():
            idx, match = kept_top_k(s.ranking, q, k)
            ap = "n/a" if np.isnan(s.ap[q]) else f"{s.ap[q] * 100:.1f}%"
            tiles = [f"<div class='tile' style='border:4px solid #333'>{img('q', q)}query {q}<br>"
                     f"{s.q_modality} cam{int(s.q_cams[q])}<br>id {int(s.q_pids[q])}</div>"]
            for r, (g, m) in enumerate(zip(idx.tolist(), match.tolist()), 1):
                color = MATCH_COLOR if m else MISS_COLOR
                tiles.append(f"<div class='tile' style='border:4px solid {color}'>{img('g', g)}"
                             f"{r}. d={float(s.distmat[q, g]):.3f}<br>cam{int(s.g_cams[g])}</div>")
            rows.append(f"<p>query {q}: AP {ap}, first true match at rank "
                        f"{int(s.first_rank[q]) or 'none'}</p><div class='row'>{''.join(tiles)}</div>")
        return f"<h2>{html.escape(s.name)} ({html.escape(s.protocol)})</h2>{''.join(rows)}"


def _make_setting(name: str, *, q_feats: Any = None, g_feats: Any = None, distmat: Any = None,
                  q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any, q_images: Any, g_images: Any,
                  protocol: str, q_modality: str = "infrared", g_modality: str = "visible",
                  thumb_height: int = 128) -> RankedSetting:
    if distmat is None:
        if q_feats is None or g_feats is None:
            raise FMCNetError("give either distmat or both q_feats and g_feats")
        distmat = pairwise_distance(q_feats, g_feats)
    distmat = _numpy(distmat).astype(np.float32, copy=False)
    q_pids, g_pids = _numpy(q_pids).astype(np.int64), _numpy(g_pids).astype(np.int64)
    q_cams, g_cams = _numpy(q_cams).astype(np.int64), _numpy(g_cams).astype(np.int64)
    qi, gi = as_image_source(q_images), as_image_source(g_images)
    if distmat.shape != (len(q_pids), len(g_pids)):
        raise FMCNetError(f"setting {name!r}: distances have shape {distmat.shape}, but there are "
                          f"{len(q_pids)} query and {len(g_pids)} gallery ids")
    if len(qi) != len(q_pids) or len(gi) != len(g_pids):
        raise FMCNetError(f"setting {name!r}: {len(qi)} query / {len(gi)} gallery images for "
                          f"{len(q_pids)} / {len(g_pids)} ids")
    return RankedSetting(name, protocol, distmat, q_pids, g_pids, q_cams, g_cams, qi, gi,
                         q_modality, g_modality, thumb_height)


def export_rankings(source: str | os.PathLike | RankingBrowser, out_dir: str | os.PathLike | None = None,
                    *, queries: Any = None, k: int = 10) -> dict[str, Path]:
    """Static ranking pictures of a run folder (into `<run>/figures`) or of a browser."""
    if isinstance(source, RankingBrowser):
        if out_dir is None:
            raise FMCNetError("export_rankings(browser, out_dir): say where to write the files")
        return source.export(out_dir, queries, k)
    run_dir = Path(source)
    return RankingBrowser.from_run(run_dir).export(out_dir or run_dir / "figures", queries, k)


# ---------------------------------------------------------------------------------------
# A toy example, for the notebook without a run and for tests
# ---------------------------------------------------------------------------------------
def _toy_person(rng: np.random.Generator, shirt: np.ndarray, trousers: np.ndarray,
                infrared: bool, h: int = 96, w: int = 48) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = rng.uniform(70, 190)  # grey background: never mistaken for a green / red frame
    cx = w // 2 + int(rng.integers(-4, 5))
    img[8:22, cx - 6 : cx + 6] = (224, 188, 160)  # head
    img[22:56, cx - 12 : cx + 12] = shirt
    img[56:90, cx - 10 : cx + 10] = trousers
    img += rng.normal(0, 10, img.shape)
    if infrared:  # three identical channels, as SYSU-MM01 / RegDB store thermal images
        img[:] = img.mean(-1, keepdims=True) * 0.6 + 50
    return img.clip(0, 255).astype(np.uint8)


def toy_rankings(seed: int = 0, *, identities: int = 12, dim: int = 32, noise: float = 1.6) -> dict:
    """Keyword arguments for `RankingBrowser.from_arrays`: a tiny SYSU-like retrieval task.

    Infrared queries from cams 3 and 6 (two per identity and camera), a single-shot
    visible gallery from cams 1, 2, 4, 5, features = identity centre + noise (noisy
    enough that some queries fail), drawn figures as images. SYSU protocol, so cam3
    queries ignore cam2 gallery images.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim))
    colors = rng.uniform(0, 255, size=(identities, 2, 3))
    pids = np.arange(1, identities + 1)

    def part(cams: tuple[int, ...], per: int, infrared: bool):
        pid = np.repeat(pids, len(cams) * per)
        cam = np.tile(np.repeat(cams, per), identities)
        feats = centres[pid - 1] + noise * rng.normal(size=(len(pid), dim))
        imgs = np.stack([_toy_person(rng, *colors[p - 1], infrared) for p in pid])
        return feats.astype(np.float32), pid, cam, imgs

    qf, qp, qc, qi = part((3, 6), 2, True)
    gf, gp, gc, gi = part((1, 2, 4, 5), 1, False)
    return dict(q_feats=qf, g_feats=gf, q_pids=qp, g_pids=gp, q_cams=qc, g_cams=gc,
                q_images=qi, g_images=gi, protocol="sysu", q_modality="infrared",
                g_modality="visible")


def demo_browser(seed: int = 0, **kwargs: Any) -> RankingBrowser:
    """A browser over `toy_rankings(seed)`, with the reverse direction as a second setting."""
    t = toy_rankings(seed)
    reverse = dict(q_feats=t["g_feats"], g_feats=t["q_feats"], q_pids=t["g_pids"], g_pids=t["q_pids"],
                   q_cams=t["g_cams"], g_cams=t["q_cams"], q_images=t["g_images"],
                   g_images=t["q_images"], protocol="sysu", q_modality="visible",
                   g_modality="infrared")
    return RankingBrowser.from_arrays(**t, name="infrared_to_visible",
                                      directions={"visible_to_infrared": reverse}, **kwargs)
