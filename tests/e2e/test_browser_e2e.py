"""Real-browser check of the ranking browser: JupyterLab + Chromium, driven by Playwright.

Starts JupyterLab on 127.0.0.1 (free port, token, no browser) over a *copy* of
notebooks/08_browse_rankings.ipynb, opens it in Debian's Chromium, runs all cells from
the Run menu, waits for the widget, steps the query slider with the keyboard and checks
that the header and the gallery images changed. Saves figures/ranking_browser.png.

Run with `make test-e2e` (tests/e2e/run_e2e.sh installs Chromium and Playwright when
missing). Playwright's own browser download is never used: Chromium comes from Debian.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
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
SCREENSHOT = REPO / "figures" / "ranking_browser.png"


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


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server over a temporary copy of the notebook; yields (base_url, token, folder)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (make test-e2e does it)")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    shutil.copy(NOTEBOOK, nb_dir / NOTEBOOK.name)  # the lab autosaves outputs: never into the repo
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    # the "receive Jupyter news?" toast would cover the notebook
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), FMCNET_DATA=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               FMCNET_PROFILE=os.environ.get("FMCNET_PROFILE", "smoke"),
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


def test_ranking_browser_in_jupyterlab(lab):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    base, token, lab_dir = lab
    t0 = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
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
            # let the remaining cells (static export) finish, so the steps below time the
            # browser and not a kernel busy elsewhere
            page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
            first = page.locator("img.fmcnet-gallery-image").first
            before_text, before_src = header.inner_text(), first.get_attribute("src")
            assert "query 0 (1/" in before_text

            handle = page.locator(".fmcnet-query-slider .noUi-handle").first
            handle.focus()
            page.evaluate(STEP_CLOCK)
            steps = []
            for i in range(1, 6):
                old = header.inner_text()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(
                    "old => document.querySelector('.fmcnet-header').innerText !== old", arg=old,
                    timeout=15_000)
                assert f"({i + 1}/" in header.inner_text()
                # key down -> last gallery image replaced, timed inside the page
                page.wait_for_timeout(300)
                steps.append(page.evaluate("window.__fmcnetStep.last - window.__fmcnetStep.down"))
            after_text, after_src = header.inner_text(), first.get_attribute("src")
            assert after_text != before_text and after_src != before_src
            # the browser-side tiles carry green / red frames
            borders = page.eval_on_selector_all(
                ".fmcnet-gallery-image", "els => els.filter(e => e.offsetParent).map("
                "e => getComputedStyle(e.parentElement).borderTopColor)")
            assert borders and set(borders) <= {"rgb(44, 160, 44)", "rgb(214, 39, 40)"}

            page.locator(".fmcnet-ranking-browser").scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.locator(".fmcnet-ranking-browser").screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    print(f"\nnotebook open -> widget rendered: {t_render:.1f} s; "
          f"query step (key press -> last tile updated, in Chromium): median {statistics.median(steps):.0f} ms "
          f"(all: {', '.join(f'{x:.0f}' for x in steps)}); total {time.monotonic() - t0:.1f} s")
    assert SCREENSHOT.stat().st_size > 10_000
