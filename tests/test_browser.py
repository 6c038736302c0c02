"""Headless RankingBrowser tests: set widget values, compare with `ranking()` itself."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest
from PIL import Image

from fmcnet.evaluation.metrics import pairwise_distance, ranking
from fmcnet.utils import FMCNetError
from fmcnet.viz.browser import RankingBrowser, demo_browser, export_rankings, toy_rankings
from fmcnet.viz.figures import MATCH_COLOR, MISS_COLOR, per_query_ap


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
        assert all(x["border_color"] == (MATCH_COLOR if x["is_match"] else MISS_COLOR) for x in tiles)
        assert all(x["distance"] == pytest.approx(dist[q, x["gallery_index"]]) for x in tiles)
        assert all(x["pid"] == t["g_pids"][x["gallery_index"]] for x in tiles)
        first = int(np.flatnonzero(match)[0]) + 1
        assert f"AP {ap[q] * 100:.1f}%" in browser.header_text
        assert f"first true match at rank {first}" in browser.header_text
        assert f"cam{t['q_cams'][q]}" in browser.header_text


def test_sysu_cam3_query_never_shows_cam2(browser, toy):
    t, _, rk = toy
    q = int(np.flatnonzero(t["q_cams"] == 3)[0])
    assert (t["g_cams"][rk.order[q][:48]] == 2).any()  # unfiltered list does hold cam2 items
    browser.k_slider.value = 48
    _goto(browser, q)
    tiles = browser.current_tiles()
    assert len(tiles) == int(rk.keep[q].sum()) == 36  # 48 gallery - 12 cam2
    assert all(x["cam"] != 2 for x in tiles)
    q6 = int(np.flatnonzero(t["q_cams"] == 6)[0])  # a cam6 query keeps cam2 items
    _goto(browser, q6)
    assert any(x["cam"] == 2 for x in browser.current_tiles())


def test_top_k_changes_tile_count(browser):
    for k in (1, 3, 15):
        browser.k_slider.value = k
        assert len(browser.current_tiles()) == k
    assert sum(box.layout.display != "none" for box, _, _ in browser._tiles) == 15


def test_sort_by_ap_worst_first(browser, toy):
    ap = per_query_ap(toy[2])
    browser.sort.value = "ap"
    seen = []
    for pos in range(len(browser.view)):
        browser.query_slider.value = pos
        seen.append(ap[browser.current_query])
    assert seen == sorted(seen) and seen[0] < seen[-1]
    assert sorted(browser.view.tolist()) == list(range(len(ap)))
    browser.sort.value = "index"
    assert browser.view.tolist() == list(range(len(ap)))


def test_failures_only(browser, toy):
    rk = toy[2]
    wrong = [q for q in range(rk.order.shape[0]) if not rk.kept(q)[1][0]]
    assert 0 < len(wrong) < rk.order.shape[0]
    browser.failures_only.value = True
    assert browser.view.tolist() == wrong
    for pos in range(len(wrong)):
        browser.query_slider.value = pos
        assert browser.current_tiles()[0]["is_match"] is False
    browser.failures_only.value = False
    assert len(browser.view) == rk.order.shape[0]


def test_identity_dropdown_jumps(browser, toy):
    t = toy[0]
    for pid in (7, 3, 12):
        browser.identity.value = pid
        q = browser.current_query
        assert t["q_pids"][q] == pid and q == int(np.flatnonzero(t["q_pids"] == pid)[0])
    browser.query_slider.value = 0  # the dropdown follows the slider
    assert browser.identity.value == t["q_pids"][browser.current_query]


def test_direction_toggle_and_empty_view():
    b = demo_browser(0)
    assert list(b.settings) == ["infrared_to_visible", "visible_to_infrared"]
    assert b.direction.layout.display != "none"
    b.direction.value = "visible_to_infrared"
    s = b.setting
    assert s.q_modality == "visible" and "visible cam" in b.header_text
    rk = ranking(s.distmat, s.q_pids, s.g_pids, s.q_cams, s.g_cams, protocol=s.protocol)
    assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(0)[0][:10].tolist()
    s.ap[:] = 1.0  # pretend every query succeeds, then the failure filter is empty
    s._first[:] = 1
    b.failures_only.value = True
    assert b.current_query is None and b.current_tiles() == []
    assert "no query" in b.header_text


def test_thumbnails_are_encoded_once(browser, monkeypatch):
    import fmcnet.viz.browser as browser_mod

    browser.k_slider.value = 10
    n = len(browser.view)
    for pos in range(n):  # cold pass: encodes and caches thumbnails
        browser.query_slider.value = pos
    encoded = []
    real = browser_mod._thumbnail
    monkeypatch.setattr(browser_mod, "_thumbnail", lambda *a: encoded.append(1) or real(*a))
    t0 = time.perf_counter()
    for pos in range(n):
        browser.query_slider.value = (pos + 1) % n
    ms = (time.perf_counter() - t0) / n * 1000
    assert not encoded, "stepping through seen queries re-encoded thumbnails"
    print(f"\nquery step, k=10, cached thumbnails (no frontend attached): {ms:.2f} ms")


def _write_run(tmp_path, t):
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


def test_from_run_and_export(tmp_path, toy):
    t = toy[0]
    run = _write_run(tmp_path / "run", t)
    b = RankingBrowser.from_run(run)
    assert sorted(b.settings) == ["infrared_to_visible", "visible_to_infrared"]
    b.direction.value = "visible_to_infrared"
    s = b.setting
    assert (s.q_modality, s.g_modality) == ("visible", "infrared")
    rk = ranking(pairwise_distance(t["g_feats"], t["q_feats"]), t["g_pids"], t["q_pids"],
                 t["g_cams"], t["q_cams"], protocol="regdb")
    assert [x["gallery_index"] for x in b.current_tiles()] == rk.kept(0)[0][:10].tolist()
    thumb = b._tiles[0][1].value  # the widget holds JPEG bytes decoded from the PNG on disk
    assert thumb[:2] == b"\xff\xd8"

    written = export_rankings(run, queries=[0, 1, 2], k=4)
    html = written["html"].read_text()
    assert written["html"].parent == run / "figures"
    assert html.count("data:image/jpeg;base64,") == 2 * 3 * (1 + 4)
    wanted = sum(int(rk.kept(q)[1][:4].sum()) for q in (0, 1, 2))
    rk2 = ranking(pairwise_distance(t["q_feats"], t["g_feats"]), t["q_pids"], t["g_pids"],
                  t["q_cams"], t["g_cams"], protocol="regdb")
    wanted += sum(int(rk2.kept(q)[1][:4].sum()) for q in (0, 1, 2))
    assert html.count(f"border:4px solid {MATCH_COLOR}") == wanted
    for name in ("infrared_to_visible", "visible_to_infrared"):
        png = written[f"png/{name}"]
        assert png.read_bytes()[:4] == b"\x89PNG"
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
