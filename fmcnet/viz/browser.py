"""RankingBrowser: filter, sort and step through queries, one run or two side by side.

A notebook widget over `fmcnet.viz.rankings`: every ranked list, removal, verdict, AP,
first-match rank and summary figure on screen comes from `fmcnet.evaluation.metrics.ranking`
of the (setting, gallery trial, feature) chosen -- the metric's own ranking, never a copy
of the protocol's rules.

What it shows for the query on screen: the query, run A's top-k kept gallery images
(green: true match, red: any other kept item) and, when comparing, run B's under them,
each row with its AP and first-true-match rank; the ground-truth strip (every true match
with its rank in each run, and on request the images of the query's identity that the
protocol removed); over the current filter a summary (R1, mAP, mINP, queries, failures
per run), a query list whose columns include the AP difference, and a scatter of AP(A)
against AP(B) whose points open their query.

Speed: the whole query panel is one HTML widget (thumbnails inlined as cached base64
JPEGs), so a key press costs one message back; filters and orders are numpy over all
queries at once. `bench/browser_speed.py` times it at SYSU-MM01 size (BENCHMARKS.md).
The scatter's click handler is inline JavaScript that writes the query into a hidden text
widget: JupyterLab and Notebook 7 run it; a front end that strips it leaves the picture.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import itertools
import os
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from fmcnet.utils import FMCNetError, atomic_write_text
from fmcnet.viz.figures import MATCH_COLOR, MISS_COLOR, ImageSource, add_border, save_figure
from fmcnet.viz.query_table import (
    FAIL_A,
    FAIL_A_NOT_B,
    FAIL_ALL,
    FAIL_B,
    FAIL_B_NOT_A,
    SORT_AP,
    SORT_DELTA,
    SORT_INDEX,
    SORT_RANK,
    QueryTable,
    query_table,
)
from fmcnet.viz.rankings import RETRIEVAL, Ranked, SettingData, load_run, setting_from_arrays

REMOVED_COLOR = "#7f7f7f"  # grey, dashed: an image the protocol removed
NO_RUN = ""  # run B's "none": one run only
_ids = itertools.count()


def _thumbnail(img: np.ndarray, height: int) -> bytes:
    from PIL import Image

    im = Image.fromarray(img)
    w = max(1, round(im.width * height / im.height))
    buf = io.BytesIO()
    im.resize((w, height), Image.BILINEAR).save(buf, format="JPEG", quality=88)
    return buf.getvalue()


class Thumbs:
    """JPEG thumbnails, encoded once and shared by every run (keyed by image path)."""

    def __init__(self, height: int = 128):
        self.height = height
        self._cache: dict[Any, str] = {}

    def b64(self, images: ImageSource, paths: list[str], i: int) -> str:
        key = paths[i] or (id(images), i)
        if key not in self._cache:
            self._cache[key] = base64.b64encode(_thumbnail(images[i], self.height)).decode()
        return self._cache[key]


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:.1f}%"


class RankingBrowser:
    """ipywidgets browser of ranked galleries; build it with `from_runs`, `from_run` or
    `from_arrays`, and show it as the last expression of a cell.

    For tests and scripts the state is exposed (`current_query`, `view`, `table`,
    `current_tiles()`, `tiles_b()`, `strip()`, `summary()`, `header_text`) and every
    control is an attribute whose `.value` can be set: `direction` (setting), `trial`,
    `run_a`, `feature_a`, `run_b`, `feature_b`, `camera`, `identity`, `failures`,
    `ap_range`, `sort`, `reverse`, `goto`, `query_slider`, `k_slider`, `show_removed`,
    `query_list`.
    """

    def __init__(self, runs: dict[str, dict[str, SettingData]], *, k: int = 10, max_k: int = 20,
                 compare: bool = True, export_dir: str | os.PathLike | None = None,
                 thumb_height: int = 128, max_strip: int = 20):
        if not runs or not all(runs.values()):
            raise FMCNetError("RankingBrowser needs at least one run with one evaluation setting")
        self.runs = runs
        self.thumbs = Thumbs(thumb_height)
        self.max_strip = max_strip
        self.export_dir = Path(export_dir) if export_dir else Path.cwd() / "browser_export"
        self.uid = f"fmcnet-b{next(_ids)}"
        self._view = np.zeros(0, np.int64)
        self._syncing = False
        self.a: Ranked | None = None
        self.b: Ranked | None = None
        self.table: QueryTable | None = None
        self.b_problem = ""  # why run B is not shown, when it was asked for
        self.header_text = ""
        self.status_text = ""
        self._tiles_a: list[dict] = []
        self._tiles_b: list[dict] = []
        self._strip: list[dict] = []
        labels = list(runs)
        first = runs[labels[0]]

        narrow = W.Layout(width="auto")
        auto = {"button_width": "auto"}  # whole labels on the toggle buttons
        self.direction = W.ToggleButtons(options=list(first), description="setting", style=auto)
        self.trial = W.Dropdown(description="gallery trial", layout=W.Layout(width="190px"))
        self.run_a = W.Dropdown(options=labels, value=labels[0], description="run A",
                                layout=W.Layout(width="300px"))
        self.feature_a = W.Dropdown(description="feature", layout=W.Layout(width="210px"))
        b_value = labels[1] if compare and len(labels) > 1 else NO_RUN
        self.run_b = W.Dropdown(options=[("none", NO_RUN), *[(x, x) for x in labels]],
                                value=b_value, description="run B", layout=W.Layout(width="300px"))
        self.feature_b = W.Dropdown(description="feature", layout=W.Layout(width="210px"))
        self.camera = W.ToggleButtons(description="query cam", style=auto)
        self.identity = W.Dropdown(description="identity", layout=W.Layout(width="200px"))
        self.failures = W.Dropdown(description="queries", layout=W.Layout(width="330px"))
        self.ap_range = W.FloatRangeSlider(value=(0.0, 100.0), min=0.0, max=100.0, step=1.0,
                                           description="AP of A (%)", continuous_update=False,
                                           readout_format=".0f", layout=W.Layout(width="360px"))
        self.sort = W.ToggleButtons(description="order", style=auto)
        self.reverse = W.Checkbox(value=False, description="reverse", indent=False, layout=narrow)
        self.goto = W.IntText(value=0, description="go to query", continuous_update=False,
                              layout=W.Layout(width="170px"))
        self.query_slider = W.IntSlider(min=0, max=0, value=0, description="query",
                                        continuous_update=True, layout=W.Layout(width="480px"))
        self.k_slider = W.IntSlider(min=1, max=max(max_k, k), value=k, description="top-k")
        self.show_removed = W.Checkbox(value=False, indent=False, layout=narrow,
                                       description="show the images the protocol removed")
        self.summary_html = W.HTML()
        self.panel = W.HTML()
        self.query_list = W.Select(rows=10, layout=W.Layout(width="640px"))
        self.scatter = W.HTML()
        self._pick = W.Text(value="", continuous_update=True, layout=W.Layout(display="none"))
        self.export_button = W.Button(description="export view", icon="download",
                                      tooltip="CSV of the filtered queries, PNG and HTML of this view")
        self.status = W.HTML()
        for w, cls in ((self.query_slider, "fmcnet-query-slider"), (self.k_slider, "fmcnet-k-slider"),
                       (self.summary_html, "fmcnet-summary"), (self.panel, "fmcnet-panel-widget"),
                       (self.query_list, "fmcnet-query-list"), (self.scatter, "fmcnet-scatter"),
                       (self._pick, "fmcnet-scatter-pick"), (self.goto, "fmcnet-goto"),
                       (self.ap_range, "fmcnet-ap-range"), (self.status, "fmcnet-status"),
                       (self.export_button, "fmcnet-export"), (self.direction, "fmcnet-setting"),
                       (self.trial, "fmcnet-trial"), (self.run_a, "fmcnet-run-a"),
                       (self.feature_a, "fmcnet-feature-a"), (self.run_b, "fmcnet-run-b"),
                       (self.feature_b, "fmcnet-feature-b"), (self.camera, "fmcnet-camera"),
                       (self.identity, "fmcnet-identity"), (self.failures, "fmcnet-failures"),
                       (self.sort, "fmcnet-sort"), (self.reverse, "fmcnet-reverse"),
                       (self.show_removed, "fmcnet-show-removed")):
            w.add_class(cls)
        self._side = W.VBox([self.scatter, self._pick])  # the scatter: comparing only
        controls = W.VBox([
            W.HBox([self.direction, self.trial]),
            W.HBox([self.run_a, self.feature_a, self.run_b, self.feature_b]),
            W.HBox([self.camera, self.identity]),
            W.HBox([self.failures, self.ap_range]),
            W.HBox([self.sort, self.reverse]),
            W.HBox([self.query_slider, self.goto, self.k_slider, self.show_removed]),
        ])
        style = W.HTML("<style>.fmcnet-query-list select{font-family:monospace;font-size:12px}"
                       "</style>")
        self.widget = W.VBox([
            style, W.HBox([controls, self._side]), self.summary_html, self.panel,
            W.HBox([self.query_list, W.VBox([self.export_button, self.status])]),
        ])
        self.widget.add_class("fmcnet-ranking-browser")
        self.widget.add_class(self.uid)

        for w in (self.direction, self.run_a, self.run_b):
            w.observe(self._on_source, "value")
        for w in (self.trial, self.feature_a, self.feature_b):
            w.observe(self._on_ranking, "value")
        for w in (self.camera, self.identity, self.failures, self.ap_range, self.sort, self.reverse):
            w.observe(self._on_view, "value")
        self.query_slider.observe(self._on_query, "value")
        self.k_slider.observe(self._on_query, "value")
        self.show_removed.observe(self._on_query, "value")
        self.query_list.observe(self._on_list, "index")
        self.goto.observe(self._on_goto, "value")
        self._pick.observe(self._on_pick, "value")
        self.export_button.on_click(lambda _: self._on_export())
        self._on_source(None)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_runs(cls, runs: dict[str, str | os.PathLike], **kwargs: Any) -> RankingBrowser:
        """Browser over run folders by label (`{"Base": "runs/base", "full": ...}`); the
        first two are compared, run A on top."""
        if not runs:
            raise FMCNetError("from_runs needs at least one run folder")
        loaded, by_path = {}, {}  # the same folder twice (two features of a run): read once
        for label, path in runs.items():
            key = Path(path).resolve()
            if key not in by_path:
                by_path[key] = load_run(path)
            loaded[label] = by_path[key]
        kwargs.setdefault("export_dir", Path(next(iter(runs.values()))) / "figures")
        return cls(loaded, **kwargs)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, *, label: str = "", **kwargs: Any) -> RankingBrowser:
        """Browser over every `run_dir/eval/<setting>.npz` of one run."""
        return cls.from_runs({label or Path(run_dir).name or "run": run_dir}, **kwargs)

    @classmethod
    def from_arrays(cls, *, name: str = "ranking", directions: dict[str, dict] | None = None,
                    label: str = "run", k: int = 10, max_k: int = 20, thumb_height: int = 128,
                    **arrays: Any) -> RankingBrowser:
        """Browser over one run from arrays: `q_feats` / `g_feats` or `distmat`, ids,
        cameras, images, `protocol` (see `rankings.setting_from_arrays`); `directions`
        maps more setting names to the same keyword arguments."""
        settings = [setting_from_arrays(name, **arrays)]
        settings += [setting_from_arrays(n, **kw) for n, kw in (directions or {}).items()]
        return cls({label: {s.name: s for s in settings}}, k=k, max_k=max_k,
                   thumb_height=thumb_height)

    # ------------------------------------------------------------------ state
    @property
    def settings(self) -> dict[str, SettingData]:
        """Run A's settings by name."""
        return self.runs[self.run_a.value]

    @property
    def setting(self) -> SettingData:
        """Run A's data for the setting on screen."""
        return self.runs[self.run_a.value][self.direction.value]

    @property
    def comparing(self) -> bool:
        return self.b is not None

    @property
    def current_query(self) -> int | None:
        """Query on screen (its number in this trial's query list); None for an empty view."""
        if len(self._view) == 0:
            return None
        return int(self._view[self.query_slider.value])

    @property
    def view(self) -> np.ndarray:
        """Query numbers in the current filter and order (what the slider walks)."""
        return self._view.copy()

    def current_tiles(self) -> list[dict]:
        """Run A's tiles: gallery_index, rank, pid, cam, distance, is_match, border_color."""
        return [dict(t) for t in self._tiles_a]

    def tiles_b(self) -> list[dict]:
        """Run B's tiles (empty when not comparing)."""
        return [dict(t) for t in self._tiles_b]

    def strip(self) -> list[dict]:
        """The ground-truth strip: every true match (rank_a, rank_b) and, with
        `show_removed`, the removed images of the query's identity (removed=True)."""
        return [dict(t) for t in self._strip]

    def summary(self) -> dict[str, Any]:
        """{"A": {R1, mAP, mINP, queries, valid, failures}, "B": ...} over the view."""
        out = {"A": self.a.summary(self._view)} if self.a is not None else {}
        if self.b is not None:
            out["B"] = self.b.summary(self._view)
        return out

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _label(self, side: str) -> str:
        run, feat = ((self.run_a.value, self.feature_a.value) if side == "A"
                     else (self.run_b.value, self.feature_b.value))
        return f"{run} · {feat}"

    # ------------------------------------------------------------------ events
    @contextlib.contextmanager
    def _quiet(self):
        """Change several controls with one render at the end."""
        was, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = was

    def _on_source(self, change: dict | None) -> None:
        """Setting or run changed: the trial and feature choices of the runs."""
        if self._syncing:
            return
        with self._quiet():
            settings = list(self.runs[self.run_a.value])
            if list(self.direction.options) != settings:
                self.direction.options = settings
            self.direction.layout.display = "none" if len(settings) < 2 else ""
            s = self.setting
            trial = self.trial.value if self.trial.value is not None else 0
            self.trial.options = [(f"{t} of {s.n_trials}", t) for t in range(s.n_trials)]
            self.trial.value = min(trial, s.n_trials - 1)
            self._set_features(self.feature_a, s)
            sb = self.runs.get(self.run_b.value, {}).get(self.direction.value)
            self.feature_b.layout.display = "none" if sb is None else ""
            if sb is not None:
                self._set_features(self.feature_b, sb, prefer=self.feature_a.value)
        keep = self.current_query if change is not None and change["owner"] is not self.direction else None
        self._on_ranking(None, keep=keep)

    @staticmethod
    def _set_features(dropdown: W.Dropdown, s: SettingData, prefer: str = RETRIEVAL) -> None:
        feats = s.features
        old = dropdown.value
        dropdown.options = feats
        dropdown.value = old if old in feats else (prefer if prefer in feats else feats[0])

    def _on_ranking(self, change: dict | None, keep: int | None = None) -> None:
        """Trial or feature changed: rank (cached), rebuild the table and the filters."""
        if self._syncing:
            return
        if change is not None:
            keep = self.current_query
        s, t = self.setting, int(self.trial.value)
        old_rows = self.a.q_rows if self.a is not None else None
        self.a = s.ranked(self.feature_a.value, t)
        self.b, self.b_problem = None, ""
        sb = self.runs.get(self.run_b.value, {}).get(self.direction.value)
        if self.run_b.value != NO_RUN:
            problem = (f"run B has no setting {self.direction.value!r}" if sb is None
                       else s.same_images(sb, t))
            if problem:
                self.b_problem = f"run B is not shown: {problem}"
            else:
                self.b = sb.ranked(self.feature_b.value, t)
        self.table = query_table(s, self.a, self.b)
        if old_rows is None or not np.array_equal(old_rows, self.a.q_rows):
            keep = None  # other queries (LLCM query-sampled trials): start again
        with self._quiet():
            cams = sorted(set(self.table.cams.tolist()))
            self.camera.options = [("all", 0)] + [(f"cam{c}", c) for c in cams]
            if self.camera.value not in [0, *cams]:
                self.camera.value = 0
            self.camera.layout.display = "none" if len(cams) < 2 else ""
            pids = sorted(set(self.table.pids.tolist()))
            ident = self.identity.value
            self.identity.options = [("all", -1)] + [(f"id {p}", p) for p in pids]
            self.identity.value = ident if ident in pids else -1
            fail = self.failures.value
            opts = [("all queries", FAIL_ALL), ("failures of A (rank-1 wrong)", FAIL_A)]
            if self.b is not None:
                opts += [("failures of B", FAIL_B), ("A fails, B right at rank 1", FAIL_A_NOT_B),
                         ("B fails, A right at rank 1", FAIL_B_NOT_A)]
            self.failures.options = opts
            self.failures.value = fail if fail in [v for _, v in opts] else FAIL_ALL
            order = self.sort.value
            sorts = [("by index", SORT_INDEX), ("by AP, worst first", SORT_AP),
                     ("by first-match rank, worst first", SORT_RANK)]
            if self.b is not None:
                sorts.append(("by AP(B) − AP(A), B's losses first", SORT_DELTA))
            self.sort.options = sorts
            self.sort.value = order if order in [v for _, v in sorts] else SORT_INDEX
        self._side.layout.display = "" if self.b is not None else "none"
        self._rebuild_view(keep)

    def _on_view(self, change: dict) -> None:
        if not self._syncing:
            self._rebuild_view(self.current_query)

    def _on_query(self, change: dict) -> None:
        if not self._syncing:
            self._render()

    def _on_list(self, change: dict) -> None:
        if not self._syncing and change["new"] is not None:
            self.query_slider.value = int(change["new"])

    def _jump(self, q: int, how: str) -> None:
        pos = np.flatnonzero(self._view == q)
        if len(pos):
            self.status_text = ""
            if self.query_slider.value == int(pos[0]):
                self._render()
            else:
                self.query_slider.value = int(pos[0])
        else:
            n = len(self.table.pids) if self.table is not None else 0
            self.status_text = (f"query {q} ({how}) is not in the current filter" if 0 <= q < n
                                else f"there is no query {q}: this trial has queries 0..{n - 1}")
        self.status.value = f"<span>{html.escape(self.status_text)}</span>"

    def _on_goto(self, change: dict) -> None:
        if not self._syncing:
            self._jump(int(change["new"]), "typed")

    def _on_pick(self, change: dict) -> None:
        if self._syncing or not change["new"]:
            return
        try:
            q = int(change["new"])
        except ValueError:
            return
        with self._quiet():
            self._pick.value = ""
        self._jump(q, "clicked")

    def _filters(self) -> dict[str, Any]:
        lo, hi = self.ap_range.value
        return {"cams": (self.camera.value,) if self.camera.value else (),
                "identity": None if self.identity.value in (None, -1) else self.identity.value,
                "failures": self.failures.value or FAIL_ALL, "ap_range": (lo / 100.0, hi / 100.0)}

    def _rebuild_view(self, keep: int | None) -> None:
        table = self.table
        assert table is not None
        mask = table.select(**self._filters())
        self._view = table.order(mask, self.sort.value or SORT_INDEX, self.reverse.value)
        pos = 0
        if keep is not None and keep in self._view:
            pos = int(np.flatnonzero(self._view == keep)[0])
        with self._quiet():
            with self.query_slider.hold_sync(), self.query_list.hold_sync():
                self.query_slider.max = max(len(self._view) - 1, 0)
                self.query_slider.value = pos
                self.query_slider.disabled = len(self._view) == 0
                self.query_list.options = self._list_rows()
                self.query_list.index = pos if len(self._view) else None
        self.summary_html.value = self._summary_html()
        if self.b is not None:
            self.scatter.value = self._scatter_svg(mask)
        self._render()

    # ------------------------------------------------------------------ drawing
    def _list_rows(self) -> list[tuple[str, int]]:
        t, qs = self.table, self._view
        assert t is not None
        cols = [np.char.mod("q %5d", qs), np.char.mod("cam%d", t.cams[qs]),
                np.char.mod("id %4d", t.pids[qs])]

        def ap(x: np.ndarray) -> np.ndarray:
            return np.where(np.isnan(x), "   n/a", np.char.mod("%5.1f%%", 100 * np.nan_to_num(x)))

        cols += [np.char.add("A ", ap(t.a.ap[qs])), np.char.mod("r%-3d", t.a.first[qs])]
        if t.b is not None:
            delta = t.delta[qs]
            cols += [np.char.add("B ", ap(t.b.ap[qs])), np.char.mod("r%-3d", t.b.first[qs]),
                     np.where(np.isnan(delta), "Δ   n/a",
                              np.char.mod("Δ%+6.1f", 100 * np.nan_to_num(delta)))]
        labels = cols[0]
        for c in cols[1:]:
            labels = np.char.add(np.char.add(labels, " · "), c)
        return list(zip(labels.tolist(), range(len(qs))))

    def _summary_html(self) -> str:
        s = self.setting
        parts = [f"<b>{html.escape(s.name)}</b> · gallery trial {int(self.trial.value)} of "
                 f"{s.n_trials} saved · {len(self._view)} of {len(self.table.pids)} queries in view"]
        for side, r in (("A", self.a), ("B", self.b)):
            if r is None:
                continue
            m = r.summary(self._view)
            figures = ("no query with a true match in view" if m["valid"] == 0 else
                       f"R1 {100 * m['R1']:.2f}% · mAP {100 * m['mAP']:.2f}% · "
                       f"mINP {100 * m['mINP']:.2f}%")
            parts.append(f"<span class='fmcnet-summary-{side.lower()}'><b>{side}</b> "
                         f"({html.escape(self._label(side))}): {figures} · {m['valid']} with a "
                         f"true match · {m['failures']} failures</span>")
        if self.b_problem:
            parts.append(f"<span style='color:{MISS_COLOR}'>{html.escape(self.b_problem)}</span>")
        if s.reranked:
            parts.append("<i>re-ranked distances (k-reciprocal), as the run was scored</i>")
        return "<div style='line-height:1.6'>" + "<br>".join(parts) + "</div>"

    def _scatter_svg(self, mask: np.ndarray, size: int = 240, pad: int = 28) -> str:
        """AP(A) against AP(B), one point per query with a true match; points in the view
        are blue and open their query on a click (through the hidden text widget)."""
        a, b = self.a, self.b
        assert a is not None and b is not None
        ok = ~np.isnan(a.ap) & ~np.isnan(b.ap)
        span = size - 2 * pad
        x = pad + a.ap * span
        y = size - pad - b.ap * span

        def dots(sel: np.ndarray, cls: str) -> str:
            qs = np.flatnonzero(sel)
            out = np.char.add(f'<circle class="{cls}" data-q="', qs.astype(str))
            for text, col in (('" cx="', np.char.mod("%.1f", x[qs])),
                              ('" cy="', np.char.mod("%.1f", y[qs]))):
                out = np.char.add(np.char.add(out, text), col)
            return "".join(np.char.add(out, '" r="3"/>').tolist())

        pick = ("const q=event.target.getAttribute('data-q');if(q===null)return;"
                "const i=this.closest('.fmcnet-ranking-browser').querySelector("
                "'.fmcnet-scatter-pick input');i.value=q;"
                "i.dispatchEvent(new Event('input',{bubbles:true}));")
        return (f'<svg width="{size}" height="{size}" onclick="{pick}" style="font:10px sans-serif">'
                "<style>circle.o{fill:#ccc;pointer-events:none}"
                "circle.v{fill:#1f77b4;fill-opacity:.6;cursor:pointer}</style>"
                f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>'
                f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#999" '
                'stroke-dasharray="3,3"/>'
                f"{dots(ok & ~mask, 'o')}{dots(ok & mask, 'v')}"
                f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">AP of A '
                f"({html.escape(self._label('A'))})</text>"
                f'<text x="10" y="{size / 2}" text-anchor="middle" '
                f'transform="rotate(-90 10 {size / 2})">AP of B ({html.escape(self._label("B"))})</text>'
                f'<text x="{pad}" y="{size - pad + 12}" text-anchor="middle">0</text>'
                f'<text x="{size - pad}" y="{size - pad + 12}" text-anchor="middle">100%</text>'
                "</svg><div style='font-size:11px'>above the diagonal: B better; click a blue "
                "point to open its query</div>")

    def _img(self, side: str, i: int, cls: str) -> str:
        s = self.setting
        src = s.query if side == "q" else s.gallery
        return (f"<img class='{cls}' title='{html.escape(src.paths[i])}' "
                f"src='data:image/jpeg;base64,{self.thumbs.b64(src.images, src.paths, i)}'>")

    @staticmethod
    def _tile(body: str, color: str, caption: str, data: str, dashed: bool = False) -> str:
        style = "dashed" if dashed else "solid"
        return (f"<div class='fmcnet-tile' {data} style='border:4px {style} {color};padding:2px;"
                f"margin:2px;text-align:center;font-size:11px'>{body}"
                f"<div class='fmcnet-caption'>{caption}</div></div>")

    def _row(self, side: str, r: Ranked, q: int, k: int) -> tuple[str, list[dict]]:
        tiles, state = [], []
        for t in r.tiles(q, k):
            color = MATCH_COLOR if t["match"] else MISS_COLOR
            g_side = int(self.a.g_rows[t["gallery"]])  # B's trial gallery is A's (checked)
            tiles.append(self._tile(
                self._img("g", g_side, "fmcnet-gallery-image"), color,
                f"{t['rank']}. d={t['distance']:.3f}<br>cam{t['cam']} · id {t['pid']}",
                f"data-gallery='{t['gallery']}'"))
            state.append({"gallery_index": t["gallery"], "rank": t["rank"], "pid": t["pid"],
                          "cam": t["cam"], "distance": t["distance"], "is_match": t["match"],
                          "border_color": color})
        first = int(r.first[q])
        verdict = ("no true match in this gallery (left out of the metrics)" if first == 0 else
                   f"AP <b>{_pct(r.ap[q])}</b> · first true match at rank "
                   f"<b style='color:{MATCH_COLOR if first == 1 else MISS_COLOR}'>{first}</b>")
        label = (f"<div class='fmcnet-row-label' style='width:170px;font-size:12px'><b>{side}</b> "
                 f"{html.escape(self._label(side))}<br>{verdict}</div>")
        return (f"<div class='fmcnet-row' data-run='{side}' style='display:flex;flex-wrap:wrap;"
                f"align-items:flex-start'>{label}{''.join(tiles)}</div>", state)

    def _strip_html(self, q: int) -> tuple[str, list[dict]]:
        a, b = self.a, self.b
        assert a is not None
        ranks_b = {m["gallery"]: m["rank"] for m in b.true_matches(q)} if b is not None else {}
        items = [{"gallery_index": m["gallery"], "rank_a": m["rank"],
                  "rank_b": ranks_b.get(m["gallery"]), "removed": False}
                 for m in a.true_matches(q)]
        if self.show_removed.value:
            pos_b = {m["gallery"]: m["position"] for m in b.removed_matches(q)} if b is not None else {}
            items += [{"gallery_index": m["gallery"], "position_a": m["position"],
                       "position_b": pos_b.get(m["gallery"]), "removed": True}
                      for m in a.removed_matches(q)]
        tiles = []
        for it in items[: self.max_strip]:
            g = it["gallery_index"]
            cam, pid = int(a.g_cams[g]), int(a.g_pids[g])
            if it["removed"]:
                where = f"A pos {it['position_a']}" + (
                    f" · B pos {it['position_b']}" if b is not None else "")
                cap, color = f"removed<br>{where}<br>cam{cam} · id {pid}", REMOVED_COLOR
            else:
                where = f"A rank {it['rank_a']}" + (
                    f" · B rank {it['rank_b']}" if b is not None else "")
                cap, color = f"{where}<br>cam{cam} · id {pid}", MATCH_COLOR
            it.update(cam=cam, pid=pid)
            tiles.append(self._tile(self._img("g", int(a.g_rows[g]), "fmcnet-strip-image"), color,
                                    cap, f"data-gallery='{g}'", dashed=it["removed"]))
        more = ""
        if len(items) > self.max_strip:
            rest = items[self.max_strip:]
            more = (f"<div class='fmcnet-strip-more' style='font-size:11px'>+{len(rest)} more: " +
                    ", ".join(f"rank {x.get('rank_a') or 'removed'}" for x in rest) + "</div>")
        n_true = sum(not x["removed"] for x in items)
        title = (f"<div style='font-size:12px'><b>ground truth</b>: {n_true} true match(es) kept"
                 + (f", {len(items) - n_true} removed by the protocol" if self.show_removed.value
                    else "") + "</div>")
        return (f"<div class='fmcnet-strip'>{title}<div style='display:flex;flex-wrap:wrap'>"
                f"{''.join(tiles)}</div>{more}</div>", items)

    def _header(self, q: int) -> str:
        s, t = self.setting, self.table
        assert t is not None
        i = int(self.a.q_rows[q]) if self.a is not None else q
        path = s.query.paths[i]
        return (f"{s.name} · query {q} ({self.query_slider.value + 1}/{len(self._view)}) · "
                f"id {int(t.pids[q])} · {s.q_modality} cam{int(t.cams[q])}"
                + (f" · {path}" if path else ""))

    def _header_html(self, q: int) -> str:
        """The header with the query's path shortened to its last three parts (the whole
        path on hover, and written out in the exported HTML)."""
        path = self.setting.query.paths[int(self.a.q_rows[q])] if self.a is not None else ""
        text = self.header_text
        if not path:
            return html.escape(text)
        short = "…/" + "/".join(Path(path).parts[-3:])
        return (html.escape(text[: len(text) - len(path)])
                + f"<span title='{html.escape(path)}'>{html.escape(short)}</span>")

    def _render(self) -> None:
        q = self.current_query
        if q is None:
            self.header_text = "no query matches the filter"
            self._tiles_a, self._tiles_b, self._strip = [], [], []
            self.panel.value = (f"<div class='fmcnet-panel'><div class='fmcnet-header'>"
                                f"{self.header_text}</div></div>")
            return
        a, b = self.a, self.b
        assert a is not None and self.table is not None
        k = self.k_slider.value
        self.header_text = self._header(q)
        row_a, self._tiles_a = self._row("A", a, q, k)
        row_b, self._tiles_b = self._row("B", b, q, k) if b is not None else ("", [])
        strip, self._strip = self._strip_html(q)
        s = self.setting
        qi = int(a.q_rows[q])
        query = self._tile(self._img("q", qi, "fmcnet-query-image"), "#333",
                           f"{s.q_modality} cam{int(self.table.cams[q])} · id {int(self.table.pids[q])}",
                           f"data-query='{q}'")
        marker = (f"<style>.{self.uid} .fmcnet-scatter circle[data-q='{q}']"
                  "{r:6px;fill:#ff7f0e;fill-opacity:1;stroke:#000}</style>")
        self.panel.value = (
            f"<div class='fmcnet-panel' data-query='{q}'>{marker}"
            f"<div class='fmcnet-header'>{self._header_html(q)}</div>"
            f"<div style='display:flex;align-items:flex-start'>{query}<div>{row_a}{row_b}</div></div>"
            f"{strip}</div>")
        with self._quiet():  # the list and the number box follow the query on screen
            self.query_list.index = self.query_slider.value
            self.goto.value = q

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | os.PathLike | None = None) -> Path:
        """The filtered queries in browsing order, both runs when comparing, as CSV."""
        s, t = self.setting, int(self.trial.value)
        path = Path(path) if path else self.export_dir / f"queries_{_slug(s.name)}_trial{t}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.table is not None
        atomic_write_text(path, self.table.csv_text(
            self._view, setting=s.name, trial=t, label_a=self._label("A"),
            label_b=self._label("B") if self.b is not None else ""))
        return path

    def export_view(self, out_dir: str | os.PathLike | None = None) -> dict[str, Path]:
        """What is on screen: the CSV of the filter, and the query panel as PNG and as a
        self-contained HTML page (identities and image paths written out)."""
        out = Path(out_dir) if out_dir else self.export_dir
        out.mkdir(parents=True, exist_ok=True)
        written = {"csv": self.export_csv(out / f"queries_{_slug(self.setting.name)}_trial"
                                          f"{int(self.trial.value)}.csv")}
        q = self.current_query
        if q is None:
            return written
        stem = f"view_{_slug(self.setting.name)}_trial{int(self.trial.value)}_q{q}"
        paths = "".join(
            f"<li>{name}: <code>{html.escape(p)}</code></li>" for name, p in self._paths_on_screen(q))
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>FMCNet ranking view"
                "</title><style>body{font-family:sans-serif}img{height:128px;display:block}"
                "</style></head><body>"
                f"<p>{self.summary_html.value}</p>{self.panel.value}"
                f"<h3>Images on screen</h3><ul>{paths}</ul></body></html>")
        written["html"] = out / f"{stem}.html"
        atomic_write_text(written["html"], page)
        written["png"] = save_figure(self._view_figure(q), out / f"{stem}.png")
        return written

    def _paths_on_screen(self, q: int) -> list[tuple[str, str]]:
        s, a = self.setting, self.a
        assert a is not None
        out = [(f"query {q} (id {int(a.q_pids[q])})", s.query.paths[int(a.q_rows[q])])]
        for side, tiles in (("A", self._tiles_a), ("B", self._tiles_b)):
            out += [(f"{side} rank {t['rank']} (id {t['pid']}, cam{t['cam']})",
                     s.gallery.paths[int(a.g_rows[t["gallery_index"]])]) for t in tiles]
        out += [(("removed" if x["removed"] else "true match") + f" (id {x['pid']}, cam{x['cam']})",
                 s.gallery.paths[int(a.g_rows[x["gallery_index"]])])
                for x in self._strip[: self.max_strip]]
        return out

    def _view_figure(self, q: int):
        """The query panel as a figure: a label column, the query, then each row's tiles."""
        from matplotlib.figure import Figure

        s, a = self.setting, self.a
        assert a is not None
        rows: list[tuple[str, list[tuple[int, str, str]]]] = []
        for side, r, tiles in (("A", a, self._tiles_a), ("B", self.b, self._tiles_b)):
            if r is None:
                continue
            label = (f"{side}: {self._label(side)}\nAP {_pct(r.ap[q])}\nfirst true match\n"
                     f"at rank {int(r.first[q]) or 'none'}")
            rows.append((label, [(t["gallery_index"], t["border_color"],
                                  f"{t['rank']}. id {t['pid']} cam{t['cam']}\nd={t['distance']:.2f}")
                                 for t in tiles]))
        strip = []
        for x in self._strip[: self.max_strip]:
            if x["removed"]:
                where = f"removed: A pos {x['position_a']}" + (
                    f", B {x['position_b']}" if x.get("position_b") is not None else "")
            else:
                where = f"A rank {x['rank_a']}" + (
                    f", B {x['rank_b']}" if x.get("rank_b") is not None else "")
            strip.append((x["gallery_index"], REMOVED_COLOR if x["removed"] else MATCH_COLOR,
                          f"{where}\nid {x['pid']} cam{x['cam']}"))
        if strip:
            rows.append(("ground truth", strip))
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
            for c, (g, color, title) in enumerate(tiles):
                show(axes[r, c + 2], s.gallery.images[int(a.g_rows[g])], color, title)
        fig.suptitle(self.header_text, fontsize=8)
        return fig

    def _on_export(self) -> None:
        try:
            written = self.export_view()
        except (OSError, FMCNetError) as exc:
            self.status.value = f"<span style='color:{MISS_COLOR}'>export failed: {html.escape(str(exc))}</span>"
            return
        self.status_text = "written: " + ", ".join(str(p) for p in written.values())
        self.status.value = f"<span>{html.escape(self.status_text)}</span>"

    # ------------------------------------------------------------------ static pages
    def default_queries(self, setting: str | None = None, n: int = 8) -> np.ndarray:
        """`n` valid queries of run A spread from the worst AP to the best."""
        r = self.runs[self.run_a.value][setting or self.direction.value].ranked(RETRIEVAL, 0)
        valid = np.flatnonzero(~np.isnan(r.ap))
        ordered = valid[np.argsort(r.ap[valid], kind="stable")]
        if len(ordered) <= n:
            return ordered
        return ordered[np.unique(np.linspace(0, len(ordered) - 1, n).round().astype(int))]

    def export(self, out_dir: str | os.PathLike, queries: Any = None, k: int = 10, *,
               settings: list[str] | None = None) -> dict[str, Path]:
        """Run A's rankings (gallery trial 0, retrieval feature) as PNG grids, one per
        setting, and one self-contained HTML page with identities and image paths.

        For papermill runs and reports, where no widget can be shown. Writes
        `rankings_<setting>.png` ("/" -> "_") and `rankings.html` into `out_dir`.
        """
        from fmcnet.viz.figures import plot_ranking_grid

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        sections = []
        run = self.runs[self.run_a.value]
        for name in settings or list(run):
            s = run[name]
            r = s.ranked(RETRIEVAL, 0)
            qs = np.asarray(self.default_queries(name) if queries is None else queries, np.int64)
            fig = plot_ranking_grid(r.ranking, _Rows(s.query, r.q_rows), _Rows(s.gallery, r.g_rows),
                                    qs, k, distmat=r.distmat, q_pids=r.q_pids, g_cams=r.g_cams)
            written[f"png/{name}"] = save_figure(fig, out_dir / f"rankings_{_slug(name)}.png")
            sections.append(self._html_section(s, r, qs, k))
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>FMCNet rankings</title>"
                "<style>body{font-family:sans-serif}img{height:128px;display:block}"
                ".row{display:flex;align-items:flex-start;margin:6px 0}"
                ".tile{margin:2px;padding:2px;font-size:11px;text-align:center;max-width:150px;"
                "overflow-wrap:anywhere}</style></head><body>"
                f"<h1>Ranked galleries: {html.escape(self.run_a.value)}, gallery trial 0</h1>"
                "<p>Green: true match; red: any other kept item. Items the protocol removes are "
                f"not shown.</p>{''.join(sections)}</body></html>")
        atomic_write_text(out_dir / "rankings.html", page)
        written["html"] = out_dir / "rankings.html"
        return written

    def _html_section(self, s: SettingData, r: Ranked, queries: np.ndarray, k: int) -> str:
        def img(src, i: int) -> str:
            return (f"<img src='data:image/jpeg;base64,{self.thumbs.b64(src.images, src.paths, i)}'>"
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
            rows.append(f"<p>query {q}: AP {_pct(r.ap[q])}, first true match at rank "
                        f"{int(r.first[q]) or 'none'}</p><div class='row'>{''.join(tiles)}</div>")
        return f"<h2>{html.escape(s.name)} ({html.escape(s.protocol)})</h2>{''.join(rows)}"


class _Rows(ImageSource):
    """The images of one trial's list: position i -> the side's image `rows[i]`."""

    def __init__(self, side: Any, rows: np.ndarray):  # no ImageSource.__init__: no own images
        self._side, self._rows = side, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._side.images[int(self._rows[int(i)])]


def _slug(name: str) -> str:
    return name.replace("/", "_")


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
# A toy example, for tests and for trying the browser without a run
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
    queries ignore cam2 gallery images. The images and identities depend only on `seed`;
    `noise` changes the features alone (a second toy "model" on the same task).
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, dim))
    colors = rng.uniform(0, 255, size=(identities, 2, 3))
    pids = np.arange(1, identities + 1)
    feat_rng = np.random.default_rng([seed, int(noise * 1000)])

    def part(cams: tuple[int, ...], per: int, infrared: bool):
        pid = np.repeat(pids, len(cams) * per)
        cam = np.tile(np.repeat(cams, per), identities)
        imgs = np.stack([_toy_person(rng, *colors[p - 1], infrared) for p in pid])
        feats = centres[pid - 1] + noise * feat_rng.normal(size=(len(pid), dim))
        return feats.astype(np.float32), pid, cam, imgs

    qf, qp, qc, qi = part((3, 6), 2, True)
    gf, gp, gc, gi = part((1, 2, 4, 5), 1, False)
    return dict(q_feats=qf, g_feats=gf, q_pids=qp, g_pids=gp, q_cams=qc, g_cams=gc,
                q_images=qi, g_images=gi, protocol="sysu", q_modality="infrared",
                g_modality="visible")


def _toy_run(seed: int, noise: float) -> dict[str, SettingData]:
    t = toy_rankings(seed, noise=noise)
    reverse = dict(q_feats=t["g_feats"], g_feats=t["q_feats"], q_pids=t["g_pids"], g_pids=t["q_pids"],
                   q_cams=t["g_cams"], g_cams=t["q_cams"], q_images=t["g_images"],
                   g_images=t["q_images"], protocol="sysu", q_modality="visible",
                   g_modality="infrared")
    settings = [setting_from_arrays("infrared_to_visible", **t),
                setting_from_arrays("visible_to_infrared", **reverse)]
    return {s.name: s for s in settings}


def demo_browser(seed: int = 0, *, compare: bool = False, **kwargs: Any) -> RankingBrowser:
    """A browser over `toy_rankings(seed)` (both directions); with `compare`, beside a
    second toy model with less noise on the same images ("toy, less noise")."""
    runs = {"toy": _toy_run(seed, 1.6)}
    if compare:
        runs["toy, less noise"] = _toy_run(seed, 1.0)
    return RankingBrowser(runs, compare=compare, **kwargs)
