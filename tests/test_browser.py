"""Headless RankingBrowser tests: set widget values, compare with `ranking()` / `rank_metrics`.

Every expectation is computed here from the metric's own functions on the same inputs
(distances from the features with `pairwise_distance`), never from the browser's code.
"""

from __future__ import annotations

import base64
import csv
import time

import numpy as np
import pytest
from PIL import Image

from fmcnet.data.base import EvalSplit, ImageSet
from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics, ranking
from fmcnet.evaluation.protocols import _save_browsable
from fmcnet.utils import FMCNetError
from fmcnet.viz.browser import RankingBrowser, demo_browser, export_rankings, toy_rankings
from fmcnet.viz.figures import MATCH_COLOR, MISS_COLOR, per_query_ap
from fmcnet.viz.rankings import load_run, per_query_inp


@pytest.fixture(scope="module")
def toy():
    t = toy_rankings(0)
    dist = pairwise_distance(t["q_feats"], t["g_feats"]).numpy()
    rk = ranking(dist, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"], protocol="sysu")
    return t, dist, rk


@pytest.fixture()
def browser(toy):
    return RankingBrowser.from_arrays(**toy[0], k=10, max_k=48)


def _goto(b: RankingBrowser, q: int) -> None:
    b.query_slider.value = int(np.flatnonzero(b.view == q)[0])


def _first(rk, q: int) -> int:
    hits = np.flatnonzero(rk.matches[q][rk.keep[q]])
    return int(hits[0]) + 1 if len(hits) else 0


def _metrics(dist, t, qs, protocol="sysu"):
    m = rank_metrics(dist[qs], t["q_pids"][qs], t["g_pids"], t["q_cams"][qs], t["g_cams"],
                     protocol=protocol)
    return m["cmc"][0], m["mAP"], m["mINP"]


def test_tiles_and_header_follow_ranking(browser, toy):
    t, dist, rk = toy
    ap = per_query_ap(rk)
    for q in range(len(t["q_pids"])):
        _goto(browser, q)
        assert browser.current_query == q
        idx, match = rk.kept(q)
        tiles = browser.current_tiles()
        assert [x["gallery_index"] for x in tiles] == idx[:10].tolist()
        assert [x["is_match"] for x in tiles] == match[:10].tolist()
        assert [x["rank"] for x in tiles] == list(range(1, len(tiles) + 1))
        assert all(x["border_color"] == (MATCH_COLOR if x["is_match"] else MISS_COLOR) for x in tiles)
        assert all(x["distance"] == pytest.approx(dist[q, x["gallery_index"]]) for x in tiles)
        assert all(x["pid"] == t["g_pids"][x["gallery_index"]] for x in tiles)
        html = browser.panel.value
        assert f"AP <b>{ap[q] * 100:.1f}%</b>" in html
        assert f"first true match at rank <b style='color:{MATCH_COLOR if _first(rk, q) == 1 else MISS_COLOR}'>" \
               f"{_first(rk, q)}</b>" in html
        assert f"query {q} (" in browser.header_text and f"cam{t['q_cams'][q]}" in browser.header_text
        assert html.count("fmcnet-gallery-image") == len(tiles)
    assert browser.tiles_b() == [] and not browser.comparing


def test_strip_has_every_true_match_and_the_removed_images(browser, toy):
    t, dist, rk = toy
    q = int(np.flatnonzero(t["q_cams"] == 3)[0])  # SYSU: cam2 removed for a cam3 query
    _goto(browser, q)
    kept_idx, kept_match = rk.kept(q)
    want = [(int(g), r + 1) for r, (g, m) in enumerate(zip(kept_idx, kept_match)) if m]
    assert [(x["gallery_index"], x["rank_a"]) for x in browser.strip()] == want
    assert not any(x["removed"] for x in browser.strip())
    browser.show_removed.value = True
    removed = [x for x in browser.strip() if x["removed"]]
    same_id = [(int(g), p + 1) for p, g in enumerate(rk.order[q])
               if not rk.keep[q, p] and t["g_pids"][g] == t["q_pids"][q]]
    assert same_id and [(x["gallery_index"], x["position_a"]) for x in removed] == same_id
    assert all(t["g_cams"][x["gallery_index"]] == 2 for x in removed)
    assert "removed" in browser.panel.value and "dashed" in browser.panel.value
    q6 = int(np.flatnonzero(t["q_cams"] == 6)[0])  # a cam6 query keeps its cam2 images
    _goto(browser, q6)
    assert not any(x["removed"] for x in browser.strip())


def test_sysu_cam3_query_never_shows_cam2(browser, toy):
    t, _, rk = toy
    q = int(np.flatnonzero(t["q_cams"] == 3)[0])
    assert (t["g_cams"][rk.order[q][:48]] == 2).any()  # unfiltered list does hold cam2 items
    browser.k_slider.value = 48
    _goto(browser, q)
    tiles = browser.current_tiles()
    assert len(tiles) == int(rk.keep[q].sum()) == 36  # 48 gallery - 12 cam2
    assert all(x["cam"] != 2 for x in tiles)


def test_top_k_changes_tile_count(browser):
    for k in (1, 3, 15):
        browser.k_slider.value = k
        assert len(browser.current_tiles()) == k
        assert browser.panel.value.count("fmcnet-gallery-image") == k


def test_orders(browser, toy):
    rk = toy[2]
    ap = per_query_ap(rk)
    first = np.array([_first(rk, q) for q in range(len(ap))])
    browser.sort.value = "ap"
    seen = []
    for pos in range(len(browser.view)):
        browser.query_slider.value = pos
        seen.append(ap[browser.current_query])
    assert seen == sorted(seen) and seen[0] < seen[-1]
    browser.reverse.value = True
    assert ap[browser.view].tolist() == sorted(ap, reverse=True)
    browser.reverse.value = False
    browser.sort.value = "rank"
    assert first[browser.view].tolist() == sorted(first, reverse=True)
    browser.sort.value = "index"
    assert browser.view.tolist() == list(range(len(ap)))
    assert [v for _, v in browser.sort.options] == ["index", "ap", "rank"]  # no B: no delta


def test_filters_and_summary_equal_rank_metrics(browser, toy):
    t, dist, rk = toy
    ap = per_query_ap(rk)
    first = np.array([_first(rk, q) for q in range(len(ap))])

    def check(want: np.ndarray) -> None:
        assert browser.view.tolist() == want.tolist()
        got = browser.summary()["A"]
        r1, m_ap, m_inp = _metrics(dist, t, want)
        assert got["R1"] == pytest.approx(r1) and got["mAP"] == pytest.approx(m_ap)
        assert got["mINP"] == pytest.approx(m_inp)
        assert got["queries"] == len(want) and got["failures"] == int((first[want] > 1).sum())
        assert f"R1 {100 * r1:.2f}% · mAP {100 * m_ap:.2f}% · mINP {100 * m_inp:.2f}%" in \
            browser.summary_html.value

    check(np.arange(len(ap)))
    browser.camera.value = 6
    check(np.flatnonzero(t["q_cams"] == 6))
    browser.identity.value = 5
    check(np.flatnonzero((t["q_cams"] == 6) & (t["q_pids"] == 5)))
    browser.identity.value = -1
    browser.camera.value = 0
    browser.failures.value = "a"
    wrong = np.flatnonzero(first > 1)
    assert 0 < len(wrong) < len(ap)
    assert browser.view.tolist() == wrong.tolist()
    assert browser.summary()["A"]["R1"] == 0.0
    browser.failures.value = "all"
    browser.ap_range.value = (20.0, 60.0)
    check(np.flatnonzero((ap >= 0.2) & (ap <= 0.6)))


def test_typed_query_number(browser, toy):
    browser.goto.value = 17
    assert browser.current_query == 17
    browser.camera.value = 3
    q6 = int(np.flatnonzero(toy[0]["q_cams"] == 6)[0])
    browser.goto.value = q6
    assert browser.current_query != q6 and "not in the current filter" in browser.status_text
    browser.goto.value = 10_000
    assert "there is no query 10000" in browser.status_text


def test_two_runs_side_by_side():
    b = demo_browser(0, compare=True)
    assert b.comparing and b.run_b.value == "toy, less noise"
    out = {}
    for label, noise in (("A", 1.6), ("B", 1.0)):
        t = toy_rankings(0, noise=noise)
        d = pairwise_distance(t["q_feats"], t["g_feats"]).numpy()
        out[label] = (t, d, ranking(d, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"],
                                    protocol="sysu"))
    ap = {k: per_query_ap(v[2]) for k, v in out.items()}
    for q in (0, 5, 31):
        b.goto.value = q
        for tiles, (_, _, rk) in ((b.current_tiles(), out["A"]), (b.tiles_b(), out["B"])):
            idx, match = rk.kept(q)
            assert [x["gallery_index"] for x in tiles] == idx[:10].tolist()
            assert [x["is_match"] for x in tiles] == match[:10].tolist()
        ranks_b = {int(g): r + 1 for r, g in enumerate(out["B"][2].kept(q)[0])}
        assert [x["rank_b"] for x in b.strip()] == [ranks_b[x["gallery_index"]] for x in b.strip()]
        assert b.panel.value.count("fmcnet-row'") == 2
    delta = ap["B"] - ap["A"]
    b.sort.value = "delta"
    assert np.all(np.diff(delta[b.view]) >= 0)  # B's losses first
    assert np.allclose(b.table.delta, delta)
    fa = np.array([_first(out["A"][2], q) > 1 for q in range(len(delta))])
    fb = np.array([_first(out["B"][2], q) > 1 for q in range(len(delta))])
    for mode, keep in (("b_not_a", fb & ~fa), ("a_not_b", fa & ~fb), ("b", fb), ("a", fa)):
        b.failures.value = mode
        assert sorted(b.view.tolist()) == np.flatnonzero(keep).tolist(), mode
    b.failures.value = "all"
    t, d, _ = out["B"]
    got = b.summary()["B"]
    assert got["mAP"] == pytest.approx(_metrics(d, t, b.view)[1])
    # the scatter: one point per query, AP(A) across, AP(B) up; a click opens the query
    svg = b.scatter.value
    assert svg.count("<circle") == len(delta) and svg.count('class="v"') == len(b.view)
    b.camera.value = 3
    assert b.scatter.value.count('class="v"') == int((t["q_cams"] == 3).sum())
    q = int(np.flatnonzero(t["q_cams"] == 3)[-1])
    b._pick.value = str(q)  # what the SVG's click handler writes
    assert b.current_query == q and b._pick.value == ""
    assert f"circle[data-q='{q}']" in b.panel.value  # the point on screen is marked
    # the query list shows the AP difference column, in browsing order
    label, pos = b.query_list.options[b.query_list.index]
    assert label.startswith(f"q {q:5d}") and f"Δ{100 * delta[q]:+6.1f}" in label
    b.query_list.index = 0
    assert b.current_query == b.view[0]


def test_runs_on_other_galleries_are_not_compared(toy):
    t = toy[0]
    other = dict(t, g_pids=t["g_pids"][::-1].copy())
    a = RankingBrowser.from_arrays(**t)
    b = RankingBrowser.from_arrays(**other, label="other")
    both = RankingBrowser({"run": a.settings, "other": b.settings})
    assert not both.comparing and "other identities" in both.b_problem
    assert "run B is not shown" in both.summary_html.value


def _save_run(folder, t, noise_seed: int, *, trials: int = 3, parts: bool = False,
              reranked: bool = False) -> np.ndarray:
    """A run folder as `evaluate_dataset` writes it: the toy's queries against a pool of
    two gallery images per (identity, camera), `trials` trials of one each."""
    rng = np.random.default_rng(noise_seed)
    img_dir = folder.parent / "images"
    img_dir.mkdir(parents=True, exist_ok=True)

    def files(prefix, images):
        out = []
        for i, arr in enumerate(images):
            p = img_dir / f"{prefix}{i}.png"
            if not p.exists():
                Image.fromarray(arr).save(p)
            out.append(str(p))
        return out

    gp = np.concatenate([t["g_pids"], t["g_pids"]])
    gc = np.concatenate([t["g_cams"], t["g_cams"]])
    pool = ImageSet(files("g", np.concatenate([t["g_images"], t["g_images"]])), gp, gc, "visible")
    query = ImageSet(files("q", t["q_images"]), t["q_pids"], t["q_cams"], "infrared")
    n = len(t["g_pids"])
    trial_rows = [np.arange(n) + n * np.random.default_rng(s).integers(0, 2, n) for s in range(trials)]
    split = EvalSplit("all/single", "sysu", query, pool, trial_rows, sampler="seeded")
    gf = np.concatenate([t["g_feats"], t["g_feats"] + rng.normal(0, 0.8, t["g_feats"].shape)])
    qf = t["q_feats"] + rng.normal(0, 0.5, t["q_feats"].shape)
    import torch

    qf, gf = torch.as_tensor(qf, dtype=torch.float32), torch.as_tensor(gf, dtype=torch.float32)
    d0 = pairwise_distance(qf, gf[trial_rows[0]])
    if reranked:
        from fmcnet.evaluation.rerank import re_ranking

        d0 = re_ranking(qf, gf[trial_rows[0]])
    packed = None
    if parts:  # "shared" and "fused" parts (a fused width twice the shared)
        widths = {"shared": qf.shape[1], "fused": 2 * qf.shape[1]}
        packed = (widths, torch.cat([qf, qf, -qf], 1), torch.cat([gf, gf, gf.flip(1)], 1))
    (folder / "eval").mkdir(parents=True)
    _save_browsable(folder / "eval" / "all_single.npz", split, qf, gf, d0, trials,
                    reranked=reranked, parts=packed)
    return np.stack(trial_rows)


def test_saved_trials_and_features_are_browsable(tmp_path, toy):
    t = toy[0]
    rows = _save_run(tmp_path / "a", t, 1, parts=True)
    _save_run(tmp_path / "b", t, 2)
    b = RankingBrowser.from_runs({"a": tmp_path / "a", "b": tmp_path / "b"})
    assert [v for _, v in b.trial.options] == [0, 1, 2]
    # a fused part gives the "specific" view too (its second half), as the diagnostics do
    assert b.feature_a.options == ("retrieval", "shared", "specific")
    assert b.feature_b.options == ("retrieval",)
    with np.load(tmp_path / "a" / "eval" / "all_single.npz") as z:
        qf, gf = z["q_feats"], z["pool_feats"]
        pool_paths = z["pool_paths"]
        parts_q, parts_g = z["parts_fixed"], z["parts_pool"]
    assert len(pool_paths) == len(np.unique(rows))  # each pool image once
    assert load_run(tmp_path / "b")["all/single"].n_trials == 3
    for trial in (2, 1):
        b.trial.value = trial
        g = rows[trial]
        pos = np.searchsorted(np.unique(rows), g)  # the pool holds the union, sorted
        d = pairwise_distance(qf, gf[pos]).numpy()
        rk = ranking(d, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"], protocol="sysu")
        for q in (0, 9):
            b.goto.value = q
            assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(q)[0][:10].tolist()
            assert [x["distance"] for x in b.current_tiles()] == pytest.approx(
                d[q, rk.kept(q)[0][:10]].tolist(), abs=1e-6)
        m = rank_metrics(d, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"], protocol="sysu")
        assert b.summary()["A"]["mAP"] == pytest.approx(m["mAP"])
        assert f"gallery trial {trial} of 3" in b.summary_html.value
    b.feature_a.value = "shared"
    width = qf.shape[1]
    d = pairwise_distance(parts_q[:, :width], parts_g[pos, :width]).numpy()
    rk = ranking(d, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"], protocol="sysu")
    assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(b.current_query)[0][:10].tolist()
    assert "a · shared" in b.summary_html.value


def test_a_reranked_run_is_re_ranked_in_every_trial(tmp_path, toy):
    from fmcnet.evaluation.rerank import re_ranking

    rows = _save_run(tmp_path / "r", toy[0], 1, reranked=True)
    s = load_run(tmp_path / "r")["all/single"]
    assert s.reranked
    with np.load(tmp_path / "r" / "eval" / "all_single.npz") as z:
        qf, gf, d0 = z["q_feats"], z["pool_feats"], z["distmat"]
    assert np.array_equal(s.distances("retrieval", 0), d0)  # the scored matrix itself
    pos = np.searchsorted(np.unique(rows), rows[1])
    want = re_ranking(qf, gf[pos]).numpy()
    assert np.allclose(s.distances("retrieval", 1), want)
    assert not np.allclose(want, pairwise_distance(qf, gf[pos]).numpy(), atol=1e-3)
    b = RankingBrowser.from_run(tmp_path / "r")
    assert "re-ranked distances" in b.summary_html.value


def test_inp_and_ap_per_query_average_to_the_metric(toy):
    t, dist, rk = toy
    m = rank_metrics(dist, t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"], protocol="sysu")
    assert np.nanmean(per_query_inp(rk)) == pytest.approx(m["mINP"])
    assert np.nanmean(per_query_ap(rk)) == pytest.approx(m["mAP"])


def test_export_csv_and_view(tmp_path):
    b = demo_browser(0, compare=True)
    b.camera.value = 6
    b.sort.value = "delta"
    b.goto.value = int(b.view[2])
    written = b.export_view(tmp_path)
    rows = list(csv.DictReader(written["csv"].open()))
    assert [int(r["query"]) for r in rows] == b.view.tolist()
    ap_a, ap_b, first_a = b.a.ap, b.b.ap, b.a.first
    for r in rows:
        q = int(r["query"])
        assert r["camera"] == "6" and int(r["identity"]) == int(b.table.pids[q])
        assert float(r["ap_a"]) == pytest.approx(100 * ap_a[q], abs=1e-4)
        assert float(r["ap_b"]) == pytest.approx(100 * ap_b[q], abs=1e-4)
        assert float(r["delta_ap"]) == pytest.approx(100 * (ap_b[q] - ap_a[q]), abs=1e-4)
        assert int(r["first_match_rank_a"]) == int(first_a[q])
    page = written["html"].read_text()
    assert page.count("fmcnet-gallery-image") == 20 and "id " in page and "true match" in page
    assert written["png"].read_bytes()[:4] == b"\x89PNG"
    assert written["html"].name == f"view_infrared_to_visible_trial0_q{b.current_query}.html"
    b.export_dir = tmp_path / "button"
    b.export_button.click()
    assert "written:" in b.status_text and (tmp_path / "button").is_dir()


def test_thumbnails_are_encoded_once(browser, monkeypatch):
    import fmcnet.viz.browser_html as html_mod  # where the browser's thumbnails are encoded

    browser.k_slider.value = 10
    n = len(browser.view)
    for pos in range(n):  # cold pass: encodes and caches thumbnails
        browser.query_slider.value = pos
    encoded = []
    real = html_mod._thumbnail
    monkeypatch.setattr(html_mod, "_thumbnail", lambda *a: encoded.append(1) or real(*a))
    t0 = time.perf_counter()
    for pos in range(n):
        browser.query_slider.value = (pos + 1) % n
    ms = (time.perf_counter() - t0) / n * 1000
    assert not encoded, "stepping through seen queries re-encoded thumbnails"
    print(f"\nquery step, k=10, cached thumbnails (no frontend attached): {ms:.2f} ms")


def test_direction_toggle():
    b = demo_browser(0)
    assert list(b.settings) == ["infrared_to_visible", "visible_to_infrared"]
    assert b.direction.layout.display != "none"
    b.direction.value = "visible_to_infrared"
    s = b.setting
    assert s.q_modality == "visible" and "visible cam" in b.header_text
    r = s.ranked("retrieval", 0)
    rk = ranking(s.distances("retrieval", 0), r.q_pids, r.g_pids, r.q_cams, r.g_cams, protocol="sysu")
    assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(0)[0][:10].tolist()
    assert b.camera.options == (("all", 0), ("cam1", 1), ("cam2", 2), ("cam4", 4), ("cam5", 5))


def test_empty_view():
    b = demo_browser(0, compare=True)
    b.failures.value = "a_not_b"
    b.ap_range.value = (99.0, 100.0)  # A right at rank 1 nowhere with AP near 1 and a failure
    assert b.current_query is None and b.current_tiles() == [] and b.strip() == []
    assert "no query" in b.header_text


def _write_old_run(tmp_path, t):
    """Run folders written before every trial was saved: trial 0 only, float16 features."""
    img_dir = tmp_path / "images"
    img_dir.mkdir(parents=True)
    paths = {}
    for side in ("q", "g"):
        paths[side] = []
        for i, arr in enumerate(t[f"{side}_images"]):
            p = img_dir / f"{side}{i}.png"
            Image.fromarray(arr).save(p)
            paths[side].append(str(p))
    (tmp_path / "eval").mkdir()
    common = dict(protocol="regdb")
    np.savez(tmp_path / "eval" / "visible_to_infrared.npz", setting="visible_to_infrared",
             q_feats=t["g_feats"], g_feats=t["q_feats"], q_pids=t["g_pids"], g_pids=t["q_pids"],
             q_cams=t["g_cams"], g_cams=t["q_cams"], q_paths=np.array(paths["g"]),
             g_paths=np.array(paths["q"]), **common)
    np.savez(tmp_path / "eval" / "infrared_to_visible.npz", setting="infrared_to_visible",
             q_feats=t["q_feats"], g_feats=t["g_feats"], q_pids=t["q_pids"], g_pids=t["g_pids"],
             q_cams=t["q_cams"], g_cams=t["g_cams"], q_paths=np.array(paths["q"]),
             g_paths=np.array(paths["g"]), **common)
    return tmp_path


def test_from_an_old_run_folder_and_static_export(tmp_path, toy):
    t = toy[0]
    run = _write_old_run(tmp_path / "run", t)
    b = RankingBrowser.from_run(run)
    assert sorted(b.settings) == ["infrared_to_visible", "visible_to_infrared"]
    assert b.setting.n_trials == 1 and b.setting.features == ["retrieval"]
    b.direction.value = "visible_to_infrared"
    s = b.setting
    assert (s.q_modality, s.g_modality) == ("visible", "infrared")
    rk = ranking(pairwise_distance(t["g_feats"], t["q_feats"]), t["g_pids"], t["q_pids"],
                 t["g_cams"], t["q_cams"], protocol="regdb")
    assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(0)[0][:10].tolist()
    assert s.query.paths[0] in b.header_text  # the image path is on screen

    written = export_rankings(run, queries=[0, 1, 2], k=4)
    html = written["html"].read_text()
    assert written["html"].parent == run / "figures"
    assert html.count("data:image/jpeg;base64,") == 2 * 3 * (1 + 4)
    assert html.count("<code>") == 2 * 3 * (1 + 4) and "id " in html  # paths and identities
    wanted = sum(int(rk.kept(q)[1][:4].sum()) for q in (0, 1, 2))
    rk2 = ranking(pairwise_distance(t["q_feats"], t["g_feats"]), t["q_pids"], t["g_pids"],
                  t["q_cams"], t["g_cams"], protocol="regdb")
    wanted += sum(int(rk2.kept(q)[1][:4].sum()) for q in (0, 1, 2))
    assert html.count(f"border:4px solid {MATCH_COLOR}") == wanted
    for name in ("infrared_to_visible", "visible_to_infrared"):
        assert written[f"png/{name}"].read_bytes()[:4] == b"\x89PNG"
    img = html.split("data:image/jpeg;base64,")[1].split("'")[0]
    assert base64.b64decode(img)[:2] == b"\xff\xd8"


def test_export_of_a_sysu_setting_name_is_one_file(tmp_path):
    b = RankingBrowser.from_arrays(**toy_rankings(0), name="all/single")
    written = b.export(tmp_path, queries=[0], k=3)
    assert written["png/all/single"] == tmp_path / "rankings_all_single.png"
    assert written["png/all/single"].read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rankings.html", "rankings_all_single.png"]


def test_user_errors(tmp_path, toy):
    with pytest.raises(FMCNetError, match="no eval"):
        RankingBrowser.from_run(tmp_path)
    t = dict(toy[0])
    t["q_images"] = t["q_images"].astype(np.float32)
    with pytest.raises(FMCNetError, match="uint8"):
        RankingBrowser.from_arrays(**t)
    t = dict(toy[0], q_feats=None)
    with pytest.raises(FMCNetError, match="distmat"):
        RankingBrowser.from_arrays(**t)
    s = demo_browser(0).setting
    with pytest.raises(FMCNetError, match="1 saved trial"):
        s.ranked("retrieval", 3)
    with pytest.raises(FMCNetError, match="no saved feature 'shared'"):
        s.distances("shared", 0)
