"""Ranking browser at SYSU-MM01 size: key press -> tiles, and opening a comparison of two runs.

Two synthetic run folders as the evaluation writes them (`_save_browsable`): SYSU-MM01
all-search single-shot counts -- 96 test identities, 3,803 infrared queries from cams 3 /
6, a visible pool from cams 1, 2, 4, 5 with 301 (identity, camera) pairs, 10 gallery
trials of one image per pair (301 images each) -- with identity-structured features
(a centre per identity plus noise; run B less noisy) and JPEG images on disk. Run A is
a "Base" (its retrieval feature = the shared part), run B a "full model" whose parts
give every diagnostics view.

Timed in one process, alternating with the baseline (the browser as it was before
issue 26, read from git at commit BASELINE, one run, trial 0):

* opening: `RankingBrowser.from_runs` of both runs (read the files, rank trial 0 of
  each, build the widgets, draw the first query) vs the baseline's `from_run` of run A;
* a key press: the query slider one step on (what the slider's key press does in the
  kernel: rank lookups, thumbnails -- new queries' are encoded on the way --, the panel's
  HTML, the widget state) over consecutive queries, comparison view vs the baseline's
  single-run view; median ms;
* changing a filter, the order, the gallery trial (ranks two more lists) and a feature.

No front end is attached: the widget state is serialised but not sent. The real-browser
test (tests/e2e) times key press -> last tile in Chromium on the smoke run.

    python bench/browser_speed.py [--quick] [--tiny] [--json] [--steps N]
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import environment, finish, log, median, parser, rounded, setup
from PIL import Image

from fmcnet.data.base import EvalSplit, ImageSet
from fmcnet.evaluation.metrics import pairwise_distance
from fmcnet.evaluation.protocols import _save_browsable
from fmcnet.viz.browser import RankingBrowser
from fmcnet.viz.toy import toy_person

BASELINE = "27876f6"  # main before issue 26: one run, trial 0, the retrieval feature only
ROOT = Path(__file__).resolve().parents[1]
IDS, QUERIES, PAIRS, POOL, TRIALS = 96, 3803, 301, 6775, 10
GOALS = {"step_ms": 100.0, "open_s": 5.0}


def baseline_browser() -> Any:
    """The RankingBrowser module of commit BASELINE, loaded from git."""
    try:
        src = subprocess.run(["git", "show", f"{BASELINE}:fmcnet/viz/browser.py"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"browser_speed: cannot read the baseline browser from git ({BASELINE}): {exc}; "
                 "run it in a clone of the repository with its history")
    spec = importlib.util.spec_from_loader("baseline_browser", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["baseline_browser"] = module  # its dataclasses look their module up
    exec(compile(src, f"{BASELINE}:fmcnet/viz/browser.py", "exec"), module.__dict__)
    return module.RankingBrowser


def sysu_like(rng: np.random.Generator, scale: float) -> dict[str, Any]:
    """Ids and cameras with SYSU-MM01's all-search counts (x `scale`)."""
    ids = max(4, round(IDS * scale))
    n_q, n_pairs, n_pool = (max(2 * ids, round(x * scale)) for x in (QUERIES, PAIRS, POOL))
    pairs = rng.permutation([(p, c) for p in range(ids) for c in (1, 2, 4, 5)])[:n_pairs]
    pairs[:ids, 0] = np.arange(ids)  # every identity has a visible image
    per_pair = np.bincount(np.r_[np.arange(n_pairs), rng.integers(0, n_pairs, n_pool - n_pairs)],
                           minlength=n_pairs)
    pool_pair = np.repeat(np.arange(n_pairs), per_pair)
    q_pids = np.sort(rng.integers(0, ids, n_q))
    return {"q_pids": q_pids, "q_cams": rng.choice([3, 6], n_q),
            "g_pids": pairs[pool_pair, 0], "g_cams": pairs[pool_pair, 1],
            "pool_pair": pool_pair, "n_pairs": n_pairs, "ids": ids}


def write_images(folder: Path, pids: np.ndarray, infrared: bool, rng: np.random.Generator) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    colors = np.random.default_rng(1).uniform(0, 255, size=(int(pids.max()) + 1, 2, 3))
    paths = []
    for i, p in enumerate(pids.tolist()):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(toy_person(rng, *colors[p], infrared, h=128, w=64)).save(path, quality=90)
        paths.append(str(path))
    return paths


def write_runs(root: Path, scale: float, dim: int) -> tuple[Path, Path, dict[str, Any]]:
    """Run folders `base` and `full` over the same queries, pool and trials."""
    rng = np.random.default_rng(0)
    s = sysu_like(rng, scale)
    trials = [np.array([rng.choice(np.flatnonzero(s["pool_pair"] == k)) for k in range(s["n_pairs"])])
              for _ in range(TRIALS)]
    used = np.unique(np.concatenate(trials))
    log(f"  writing {len(s['q_pids'])} query and {len(used)} gallery JPEGs")
    q_paths = write_images(root / "images" / "query", s["q_pids"], True, rng)
    g_paths = [""] * len(s["g_pids"])  # only the trials' images are ever shown
    for i, path in zip(used.tolist(), write_images(root / "images" / "pool", s["g_pids"][used],
                                                    False, rng)):
        g_paths[i] = path
    query = ImageSet(q_paths, s["q_pids"], s["q_cams"], "infrared")
    pool = ImageSet(g_paths, s["g_pids"], s["g_cams"], "visible")
    split = EvalSplit("all/single", "sysu", query, pool, trials, sampler="seeded")
    centres = torch.from_numpy(rng.standard_normal((s["ids"], dim)).astype(np.float32)) * 0.35
    runs = []
    for name, noise, parts in (("base", 1.0, ("shared",)),
                               ("full", 0.7, ("shared", "specific", "generated", "fused"))):
        widths = {p: (2 * dim if p == "fused" else dim) for p in parts}

        def feats(pids: np.ndarray, noise: float = noise, widths: dict = widths) -> torch.Tensor:
            parts = [centres[torch.from_numpy(pids)].repeat(1, w // dim)
                     + noise * torch.randn(len(pids), w) for w in widths.values()]
            return torch.cat(parts, 1)

        qp, gp = feats(s["q_pids"]), feats(s["g_pids"])
        # the retrieval feature: the fused part (the last) when there is one, else F_sh
        width = widths.get("fused", dim)
        qf = torch.nn.functional.normalize(qp[:, -width:] if "fused" in widths else qp, dim=1)
        gf = torch.nn.functional.normalize(gp[:, -width:] if "fused" in widths else gp, dim=1)
        d0 = pairwise_distance(qf, gf[torch.from_numpy(trials[0])])
        folder = root / name
        (folder / "eval").mkdir(parents=True)
        _save_browsable(folder / "eval" / "all_single.npz", split, qf, gf, d0, TRIALS,
                        reranked=False, parts=(widths, qp, gp))
        runs.append(folder)
    return runs[0], runs[1], {"queries": len(s["q_pids"]), "gallery": s["n_pairs"],
                              "pool": len(s["g_pids"]), "trials": TRIALS, "dim": dim}


def step_times(browsers: dict[str, Any], steps: int) -> dict[str, list[float]]:
    """ms per query step of each browser, alternating which goes first (ABBA...)."""
    out: dict[str, list[float]] = {name: [] for name in browsers}
    names = list(browsers)
    for i in range(steps):
        for name in names if i % 2 == 0 else names[::-1]:
            b = browsers[name]
            start = time.perf_counter()
            b.query_slider.value = i + 1
            out[name].append((time.perf_counter() - start) * 1000)
    return out


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="query steps timed (default 200)")
    args = p.parse_args()
    started = time.perf_counter()
    device = setup(args)
    result: dict[str, Any] = {"benchmark": "browser_speed", **environment(device)}
    scale = 0.05 if args.tiny else 1.0
    steps = args.steps or (20 if args.tiny else (100 if args.quick else 200))
    repeats = args.repeats or (1 if args.tiny else (2 if args.quick else 3))
    dim = 64 if args.tiny else 512
    Baseline = baseline_browser()
    with tempfile.TemporaryDirectory() as tmp:
        base, full, sizes = write_runs(Path(tmp), scale, dim)
        result["sizes"] = sizes
        log(f"browser_speed: {sizes}")
        open_ours, open_base = [], []
        for r in range(repeats):  # alternate: the page cache warms both alike
            for name in ("ours", "baseline") if r % 2 == 0 else ("baseline", "ours"):
                if name == "ours":
                    open_ours.append(timed(lambda: RankingBrowser.from_runs({"Base": base, "full": full})))
                else:
                    open_base.append(timed(lambda: Baseline.from_run(base)))
        ours = RankingBrowser.from_runs({"Base": base, "full": full})
        baseline = Baseline.from_run(base)
        assert ours.comparing and ours.setting.n_trials == TRIALS
        times = step_times({"ours": ours, "baseline": baseline}, steps)
        # the same query on both screens: run A's tiles are the baseline's
        assert [t["gallery_index"] for t in ours.current_tiles()] == \
            [t["gallery_index"] for t in baseline.current_tiles()]
        changes = {
            "failures filter (B fails, A right)": lambda: setattr(ours.failures, "value", "b_not_a"),
            "all queries again": lambda: setattr(ours.failures, "value", "all"),
            "order by AP(B) - AP(A)": lambda: setattr(ours.sort, "value", "delta"),
            "gallery trial 3 (ranks both runs)": lambda: setattr(ours.trial, "value", 3),
            "feature of B: shared": lambda: setattr(ours.feature_b, "value", "shared"),
            "query camera 6": lambda: setattr(ours.camera, "value", 6),
        }
        change_ms = {name: rounded(timed(fn) * 1000) for name, fn in changes.items()}
        trial_steps = step_times({"ours": ours}, min(steps, 50))["ours"]
    step_ours, step_base = median(times["ours"]), median(times["baseline"])
    result.update({
        "open_s": {"ours (two runs, comparison)": rounded(median(open_ours)),
                   "baseline (one run)": rounded(median(open_base))},
        "step_ms": {"ours (comparison, k=10, strip)": rounded(step_ours),
                    "baseline (one run, k=10)": rounded(step_base),
                    "ours p90": rounded(float(np.percentile(times["ours"], 90))),
                    "ours after the trial / feature / camera changes": rounded(median(trial_steps))},
        "step_ratio": rounded(step_ours / step_base),
        "open_ratio": rounded(median(open_ours) / median(open_base)),
        "change_ms": change_ms,
        "goals": {"step <= 100 ms": step_ours <= GOALS["step_ms"],
                  "open <= 5 s": median(open_ours) <= GOALS["open_s"]},
        "notes": [f"ratio = ours / baseline time (< 1: ours faster); baseline = fmcnet/viz/"
                  f"browser.py at {BASELINE}", f"{steps} consecutive query steps each, "
                  "alternating; thumbnails of new images are encoded during the steps",
                  "kernel side only: widget state serialised, no front end attached"],
    })
    finish(result, args, started)


if __name__ == "__main__":
    main()
