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

This module holds the controls, their layout and what each change recomputes; the HTML
they show is drawn by `fmcnet.viz.browser_html`, the filters and orders are
`fmcnet.viz.query_table`'s, the files written by `fmcnet.viz.browser_export`, and the toy
task of `demo_browser` is `fmcnet.viz.toy`.

Speed: the whole query panel is one HTML widget (thumbnails inlined as cached base64
JPEGs), so a key press costs one message back; filters and orders are numpy over all
queries at once. `bench/browser_speed.py` times it at SYSU-MM01 size (BENCHMARKS.md).
The scatter's click handler is inline JavaScript that writes the query into a hidden text
widget: JupyterLab and Notebook 7 run it; a front end that strips it leaves the picture.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import os
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from fmcnet.utils import FMCNetError, atomic_write_text
from fmcnet.viz.browser_export import (
    paths_on_screen,
    ranking_pages,
    slug,
    spread_queries,
    view_figure,
    view_page,
)
from fmcnet.viz.browser_html import (
    REMOVED_COLOR,
    Thumbs,
    TrialImages,
    query_list_rows,
    query_panel,
    scatter_svg,
    summary_html,
)
from fmcnet.viz.figures import MISS_COLOR, save_figure
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
from fmcnet.viz.toy import toy_rankings, toy_run

__all__ = ["REMOVED_COLOR", "RankingBrowser", "Thumbs", "demo_browser", "export_rankings",
           "toy_rankings"]

NO_RUN = ""  # run B's "none": one run only
_ids = itertools.count()

# the CSS class of each widget attribute: what the real-browser test (tests/e2e) finds
CSS_CLASSES = {
    "query_slider": "fmcnet-query-slider", "k_slider": "fmcnet-k-slider",
    "summary_html": "fmcnet-summary", "panel": "fmcnet-panel-widget",
    "query_list": "fmcnet-query-list", "scatter": "fmcnet-scatter",
    "_pick": "fmcnet-scatter-pick", "goto": "fmcnet-goto", "ap_range": "fmcnet-ap-range",
    "status": "fmcnet-status", "export_button": "fmcnet-export", "direction": "fmcnet-setting",
    "trial": "fmcnet-trial", "run_a": "fmcnet-run-a", "feature_a": "fmcnet-feature-a",
    "run_b": "fmcnet-run-b", "feature_b": "fmcnet-feature-b", "camera": "fmcnet-camera",
    "identity": "fmcnet-identity", "failures": "fmcnet-failures", "sort": "fmcnet-sort",
    "reverse": "fmcnet-reverse", "show_removed": "fmcnet-show-removed",
}


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
        self._make_controls(list(runs), compare, k, max_k)
        self.widget = self._lay_out()
        self._observe()
        self._on_source(None)

    def _make_controls(self, labels: list[str], compare: bool, k: int, max_k: int) -> None:
        first = self.runs[labels[0]]
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
        for name, cls in CSS_CLASSES.items():
            getattr(self, name).add_class(cls)

    def _lay_out(self) -> W.VBox:
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
        widget = W.VBox([
            style, W.HBox([controls, self._side]), self.summary_html, self.panel,
            W.HBox([self.query_list, W.VBox([self.export_button, self.status])]),
        ])
        widget.add_class("fmcnet-ranking-browser")
        widget.add_class(self.uid)
        return widget

    def _observe(self) -> None:
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
                self.query_list.options = query_list_rows(table, self._view)
                self.query_list.index = pos if len(self._view) else None
        labels = self._labels()
        self.summary_html.value = summary_html(self.setting, int(self.trial.value), table,
                                               self._view, labels, self.b_problem)
        if self.b is not None:
            self.scatter.value = scatter_svg(table, mask, labels)
        self._render()

    # ------------------------------------------------------------------ drawing
    def _labels(self) -> dict[str, str]:
        return {"A": self._label("A"), "B": self._label("B")}

    def _render(self) -> None:
        q = self.current_query
        if q is None:
            self.header_text = "no query matches the filter"
            self._tiles_a, self._tiles_b, self._strip = [], [], []
            self.panel.value = (f"<div class='fmcnet-panel'><div class='fmcnet-header'>"
                                f"{self.header_text}</div></div>")
            return
        assert self.a is not None and self.table is not None
        p = query_panel(q, self.table, TrialImages(self.setting, self.a, self.thumbs),
                        self._labels(), k=self.k_slider.value, position=self.query_slider.value,
                        n_view=len(self._view), show_removed=self.show_removed.value,
                        max_strip=self.max_strip, uid=self.uid)
        self.header_text, self._tiles_a, self._tiles_b, self._strip = (
            p.header, p.tiles_a, p.tiles_b, p.strip)
        self.panel.value = p.html
        with self._quiet():  # the list and the number box follow the query on screen
            self.query_list.index = self.query_slider.value
            self.goto.value = q

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | os.PathLike | None = None) -> Path:
        """The filtered queries in browsing order, both runs when comparing, as CSV."""
        s, t = self.setting, int(self.trial.value)
        path = Path(path) if path else self.export_dir / f"queries_{slug(s.name)}_trial{t}.csv"
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
        written = {"csv": self.export_csv(out / f"queries_{slug(self.setting.name)}_trial"
                                          f"{int(self.trial.value)}.csv")}
        q = self.current_query
        if q is None:
            return written
        assert self.a is not None
        stem = f"view_{slug(self.setting.name)}_trial{int(self.trial.value)}_q{q}"
        strip = self._strip[: self.max_strip]
        paths = paths_on_screen(self.setting, self.a, q, self._tiles_a, self._tiles_b, strip)
        written["html"] = out / f"{stem}.html"
        atomic_write_text(written["html"], view_page(self.summary_html.value, self.panel.value, paths))
        runs = [(side, self._label(side), r, tiles) for side, r, tiles in
                (("A", self.a, self._tiles_a), ("B", self.b, self._tiles_b)) if r is not None]
        fig = view_figure(self.setting, self.a, q, runs, strip, self.header_text)
        written["png"] = save_figure(fig, out / f"{stem}.png")
        return written

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
        return spread_queries(
            self.runs[self.run_a.value][setting or self.direction.value].ranked(RETRIEVAL, 0), n)

    def export(self, out_dir: str | os.PathLike, queries: Any = None, k: int = 10, *,
               settings: list[str] | None = None) -> dict[str, Path]:
        """Run A's rankings (gallery trial 0, retrieval feature) as PNG grids, one per
        setting, and one self-contained HTML page with identities and image paths.

        For papermill runs and reports, where no widget can be shown. Writes
        `rankings_<setting>.png` ("/" -> "_") and `rankings.html` into `out_dir`.
        """
        return ranking_pages(self.runs[self.run_a.value], self.run_a.value, out_dir, queries, k,
                             settings=settings, thumbs=self.thumbs)


def export_rankings(source: str | os.PathLike | RankingBrowser, out_dir: str | os.PathLike | None = None,
                    *, queries: Any = None, k: int = 10) -> dict[str, Path]:
    """Static ranking pictures of a run folder (into `<run>/figures`) or of a browser."""
    if isinstance(source, RankingBrowser):
        if out_dir is None:
            raise FMCNetError("export_rankings(browser, out_dir): say where to write the files")
        return source.export(out_dir, queries, k)
    run_dir = Path(source)
    return RankingBrowser.from_run(run_dir).export(out_dir or run_dir / "figures", queries, k)


def demo_browser(seed: int = 0, *, compare: bool = False, **kwargs: Any) -> RankingBrowser:
    """A browser over `toy_rankings(seed)` (both directions); with `compare`, beside a
    second toy model with less noise on the same images ("toy, less noise")."""
    runs = {"toy": toy_run(seed, 1.6)}
    if compare:
        runs["toy, less noise"] = toy_run(seed, 1.0)
    return RankingBrowser(runs, compare=compare, **kwargs)
