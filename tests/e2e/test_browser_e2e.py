"""Real-browser check of the ranking browser: JupyterLab + Chromium, driven by Playwright.

Makes sure the reference run of the profile exists (`FMCNET_PROFILE`, smoke by default:
`runs/demo-smoke`, which the nbval pass of `make test` has trained already), starts
JupyterLab on 127.0.0.1 (free port, token, no browser) over a *copy* of
notebooks/08_browse_rankings.ipynb (up to the widget: the static export after it is
nbval's to test), opens it in Debian's Chromium and runs all cells from the Run menu. Then it moves the controls as a user would -- the query slider by keyboard,
the order buttons, the failures-only box, the top-k slider, the setting buttons -- and
after each move checks every tile on screen (rank, distance, camera, identity, green or
red frame) against `fmcnet.evaluation.metrics.ranking` on the run's saved distances: the
metric's own ranking, not the browser's code.

`make test` runs it (tests/e2e/run_e2e.sh installs Chromium and Playwright when missing);
Playwright's own browser download is never used: Chromium comes from Debian. With
`FMCNET_E2E_SCREENSHOT=path` it saves a picture of the widget there (`make figures`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "08_browse_rankings.ipynb"
CHROMIUM = os.environ.get("FMCNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# every code cell shows an execution count: "[n]:", none "[*]:" or "[ ]:"
ALL_CELLS_RAN = """() => {
  const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
  return p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t));
}"""
# in-page clock: the key press and the last change of any gallery <img> src after it
STEP_CLOCK = """() => {
  const c = window.__fmcnetStep = {down: 0, last: 0};
  document.addEventListener('keydown', () => { c.down = performance.now(); c.last = c.down; }, true);
  const root = document.querySelector('.fmcnet-ranking-browser');
  new MutationObserver(() => { c.last = performance.now(); })
    .observe(root, {subtree: true, attributes: true, attributeFilter: ['src'], childList: true,
                    characterData: true});
}"""
SCREENSHOT = os.environ.get("FMCNET_E2E_SCREENSHOT", "")
PROFILE = os.environ.get("FMCNET_PROFILE", "smoke")
GREEN, RED = "rgb(44, 160, 44)", "rgb(214, 39, 40)"  # fmcnet.viz.figures MATCH / MISS_COLOR
# the tiles on screen: caption text and frame colour of each visible gallery tile
TILES = """() => [...document.querySelectorAll('img.fmcnet-gallery-image')]
  .filter(e => e.offsetParent)
  .map(e => ({text: e.parentElement.innerText, border: getComputedStyle(e.parentElement).borderTopColor}))"""
HEADER_CHANGED = "old => document.querySelector('.fmcnet-header').innerText !== old"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text().splitlines()[-15:])
            raise RuntimeError(f"JupyterLab exited early with code {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def reference_run() -> Path:
    """The run notebook 08 browses by default, trained here only when it is missing."""
    from fmcnet import analysis

    run = analysis.reference_run_dir(PROFILE)
    if not any((run / "eval").glob("*.npz")):
        analysis.reference_run(PROFILE)
    return run


class MetricRanking:
    """What the tiles must show, from the metric's ranking of the run's saved distances."""

    def __init__(self, run: Path):
        import numpy as np

        from fmcnet.evaluation.metrics import ranking

        self.settings = {}
        for f in sorted((run / "eval").glob("*.npz")):
            with np.load(f) as z:
                name = str(z["setting"])
                dist = z["distmat"]
                r = ranking(dist, z["q_pids"], z["g_pids"], z["q_cams"], z["g_cams"],
                            protocol=str(z["protocol"]))
                self.settings[name] = (r, dist, z["g_pids"], z["g_cams"])

    def tiles(self, setting: str, q: int, k: int) -> list[dict]:
        r, dist, g_pids, g_cams = self.settings[setting]
        kept, matches = r.order[q][r.keep[q]][:k], r.matches[q][r.keep[q]][:k]
        return [{"text": f"{i + 1}. d={dist[q, g]:.3f}\ncam{int(g_cams[g])} · id {int(g_pids[g])}",
                 "border": GREEN if m else RED} for i, (g, m) in enumerate(zip(kept, matches))]

    def ap(self, setting: str) -> dict[int, float]:
        """Per-query AP of the queries with a true match (the metric's definition)."""
        r = self.settings[setting][0]
        out = {}
        for q in range(len(r.order)):
            hits = (r.matches[q][r.keep[q]]).nonzero()[0] + 1
            if len(hits):
                out[q] = float(sum((i + 1) / rank for i, rank in enumerate(hits)) / len(hits))
        return out

    def first_rank(self, setting: str, q: int) -> int:
        r = self.settings[setting][0]
        hits = (r.matches[q][r.keep[q]]).nonzero()[0]
        return int(hits[0]) + 1 if len(hits) else 0

    def ap_key(self, setting: str) -> dict[int, float]:
        """The browsing order's key: AP, and infinity for a query without a true match."""
        ap = self.ap(setting)
        return {q: ap.get(q, float("inf")) for q in range(len(self.settings[setting][0].order))}

    def view(self, setting: str, *, by_ap: bool = False, failures: bool = False) -> list[int]:
        """The queries in browsing order: by index or worst AP first, optionally failures only."""
        key = self.ap_key(setting)
        qs = [q for q in key if not failures or self.first_rank(setting, q) > 1]
        return sorted(qs, key=key.get) if by_ap else qs


@pytest.fixture()
def lab(tmp_path, reference_run):
    """A JupyterLab server over a temporary copy of the notebook; yields (base_url, token, folder)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (make test-e2e does it)")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    # a copy (the lab autosaves outputs: never into the repo) that ends with the widget: the
    # static export after it is nbval's to test, and would hold the kernel for tens of seconds
    nb = json.loads(NOTEBOOK.read_text())
    shown = next(i for i, c in enumerate(nb["cells"])
                 if c["cell_type"] == "code" and "".join(c["source"]).strip() == "browser")
    nb["cells"] = nb["cells"][: shown + 1]
    (nb_dir / NOTEBOOK.name).write_text(json.dumps(nb))
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # the "receive Jupyter news?" toast would cover the notebook
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               FMCNET_PROFILE=PROFILE,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    port, token = _free_port(), secrets.token_hex(16)
    log_path = tmp_path / "jupyterlab.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    # CI and this machine run as root, which JupyterLab refuses without being told
    root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.open_browser=False",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb_dir}",
         "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", *root],
        cwd=nb_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kernels go down with it
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={token}", proc, log_path)
        yield base, token, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _shown(page) -> tuple[str, int, int, int]:
    """(setting, query, position, view length) from the header "<setting> · query <q> (<i>/<n>) · ..."."""
    text = page.locator(".fmcnet-header").inner_text()
    m = re.match(r"\s*(.+?) · query (\d+) \((\d+)/(\d+)\)", text)
    if m is None:
        raise ValueError(f"header {text!r} names no query")
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def _same(a: float, b: float) -> bool:
    return a == b or abs(a - b) < 1e-9


def _tiles_match(page, metric: MetricRanking, k: int, setting: str, view: list[int],
                 query: int | None = None, timeout: float = 15.0) -> int:
    """Wait until the header shows `query` (default: the view's first) of `view` in `setting`,
    at its place in the view, and every tile is the metric's; returns the query shown.

    Queries of equal AP may be ordered either way (float rounding): the place is checked
    by the ordering key, not by index.
    """
    key = metric.ap_key(setting)
    deadline = time.monotonic() + timeout
    while True:
        try:
            shown, q, pos, n = _shown(page)
            assert (shown, n) == (setting, len(view)), f"shows {shown} of {n}, expected {setting}"
            if query is not None:
                assert q == query, f"shows query {q}, expected {query}"
            assert _same(key[q], key[view[0]] if query is None else key[query]), (q, pos)
            assert _same(key[view[pos - 1]], key[q]), f"query {q} at the wrong place {pos}"
            tiles = page.evaluate(TILES)
            want = metric.tiles(setting, q, k)
            assert [x["text"].strip() for x in tiles] == [x["text"] for x in want], (setting, q)
            assert [x["border"] for x in tiles] == [x["border"] for x in want], (setting, q)
            return q
        except (AssertionError, ValueError, IndexError):
            if time.monotonic() > deadline:
                raise
            page.wait_for_timeout(100)


def test_ranking_browser_in_jupyterlab(lab, reference_run):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    base, token, lab_dir = lab
    metric = MetricRanking(reference_run)
    names = list(metric.settings)
    k = 10  # the notebook's default
    t0 = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1000})  # ten tiles in a row
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            # a kernel still connecting can drop the request: wait until it is idle
            page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=120_000)
            # Run > Run All Cells, as a user would
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            header = page.locator(".fmcnet-header")
            try:
                header.wait_for(state="visible", timeout=180_000)
            except sync_api.TimeoutError:
                shot = lab_dir / "failure.png"
                page.screenshot(path=str(shot), full_page=True)
                raise AssertionError(f"the widget never rendered; page at {shot}") from None
            page.wait_for_function(
                "() => (document.querySelector('.fmcnet-header')||{}).innerText?.includes('AP')",
                timeout=60_000)
            t_render = time.monotonic() - t0
            # every cell has finished: the steps below time the browser, not a busy kernel
            page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
            t_cells = time.monotonic() - t0
            assert "TOY" not in page.locator(".jp-NotebookPanel").first.inner_text()
            by_index = metric.view(names[0])
            _tiles_match(page, metric, k, names[0], by_index, query=0)

            # the query slider, by keyboard; each step timed inside the page
            page.locator(".fmcnet-query-slider .noUi-handle").first.focus()
            page.evaluate(STEP_CLOCK)
            steps = []
            for q in range(1, 4):
                old = header.inner_text()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(HEADER_CHANGED, arg=old, timeout=15_000)
                _tiles_match(page, metric, k, names[0], by_index, query=q)
                steps.append(page.evaluate("window.__fmcnetStep.last - window.__fmcnetStep.down"))

            # order by AP, worst first: the query on screen stays, at its place in that order
            page.get_by_role("button", name="by AP, worst first").click()
            _tiles_match(page, metric, k, names[0], metric.view(names[0], by_ap=True), query=3)

            # failures only: the query stays when its rank-1 item is wrong, else the worst
            # failure comes first
            failures = metric.view(names[0], by_ap=True, failures=True)
            box = page.get_by_text("failures only (rank-1 wrong)")
            box.click()
            current = None  # an empty view: all queries again start from the first
            if failures:
                current = _tiles_match(page, metric, k, names[0], failures,
                                       query=3 if 3 in failures else None)
            else:
                page.wait_for_function(
                    "() => document.querySelector('.fmcnet-header').innerText.includes('no query')",
                    timeout=15_000)
            box.click()  # all queries again, the one on screen stays

            # top-k: one tile fewer
            page.locator(".fmcnet-k-slider .noUi-handle").first.focus()
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"() => ({TILES})().length <= {k - 1}", timeout=15_000)
            _tiles_match(page, metric, k - 1, names[0], metric.view(names[0], by_ap=True),
                         query=current)

            # another setting: its own ranking, from its worst-AP query
            page.get_by_role("button", name=names[1], exact=True).click()
            _tiles_match(page, metric, k - 1, names[1], metric.view(names[1], by_ap=True))

            if SCREENSHOT:
                # the README's picture: the paper's main setting, in index order, top-10,
                # from its first query (a change of setting starts at the view's first)
                shown = "all/single" if "all/single" in names else names[0]
                page.get_by_role("button", name="by index", exact=True).click()
                page.locator(".fmcnet-k-slider .noUi-handle").first.focus()
                page.keyboard.press("ArrowRight")
                other = next(n for n in names if n != shown)
                page.get_by_role("button", name=other, exact=True).click()
                _tiles_match(page, metric, k, other, metric.view(other), query=0)
                page.get_by_role("button", name=shown, exact=True).click()
                _tiles_match(page, metric, k, shown, metric.view(shown), query=0)
                page.locator(".fmcnet-ranking-browser").scroll_into_view_if_needed()
                Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
                page.locator(".fmcnet-ranking-browser").screenshot(path=SCREENSHOT)
                assert Path(SCREENSHOT).stat().st_size > 10_000
        finally:
            browser.close()
    print(f"\nnotebook open -> widget rendered: {t_render:.1f} s, all cells ran: {t_cells:.1f} s; "
          f"query step (key press -> last tile updated, in Chromium): median {statistics.median(steps):.0f} ms "
          f"(all: {', '.join(f'{x:.0f}' for x in steps)}); total {time.monotonic() - t0:.1f} s")
