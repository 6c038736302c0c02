"""rank_metrics / ranking against the per-query reference loops; re-ranking."""

import numpy as np
import pytest
import torch

from fmcnet.evaluation import pairwise_distance, rank_metrics, ranking, re_ranking
from fmcnet.evaluation.reference import (
    eval_llcm_literal_loop,
    eval_llcm_loop,
    eval_regdb_loop,
    eval_sysu_loop,
    re_ranking_loop,
)
from fmcnet.utils import FMCNetError

LOOPS = {"sysu": eval_sysu_loop, "regdb": eval_regdb_loop, "llcm": eval_llcm_loop,
         "llcm_literal": eval_llcm_literal_loop}


def _case(rng, n_q, n_g, n_ids, levels=None, shots=None, protocol="sysu"):
    """Random ids / cams / distances; `levels` quantises distances (ties), `shots`
    builds a multi-shot gallery with that many images per identity. LLCM cases share
    cameras between query and gallery, so that its same-identity-and-camera rule bites."""
    q_pids = rng.integers(0, n_ids + 2, n_q)  # some query ids absent from the gallery
    g_pids = np.repeat(np.arange(n_ids), shots)[:n_g] if shots else rng.integers(0, n_ids, n_g)
    n_g = len(g_pids)
    llcm = protocol.startswith("llcm")
    q_cams = rng.choice([1, 2, 3] if llcm else [3, 6], n_q)
    g_cams = rng.choice([1, 2, 3] if llcm else [1, 2, 4, 5], n_g)
    d = rng.random((n_q, n_g)).astype(np.float32)
    if levels:
        d = np.floor(d * levels).astype(np.float32)
    return d, q_pids, g_pids, q_cams, g_cams


def _assert_equal(m, ref):
    cmc, mAP, mINP = ref
    assert m["cmc"].shape == cmc.shape
    np.testing.assert_allclose(m["cmc"], cmc, atol=1e-6, rtol=0)
    assert m["mAP"] == pytest.approx(mAP, abs=1e-6)
    assert m["mINP"] == pytest.approx(mINP, abs=1e-6)


@pytest.mark.parametrize("protocol", list(LOOPS))
def test_equals_reference_loops_on_random_inputs(protocol):
    checked = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n_q, n_g = int(rng.integers(1, 30)), int(rng.integers(1, 70))
        n_ids = int(rng.integers(1, 30))
        levels = [None, 3, 8][seed % 3]  # float distances, then heavy ties
        shots = [None, 1, 4][seed % 3 if seed % 2 else 0]
        args = _case(rng, n_q, n_g, n_ids, levels, shots, protocol)
        try:
            ref = LOOPS[protocol](*args, max_rank=20)
        except ValueError:  # no valid query at all
            with pytest.raises(FMCNetError):
                rank_metrics(*args, protocol=protocol)
            continue
        _assert_equal(rank_metrics(*args, protocol=protocol), ref)
        checked += 1
    assert checked > 25


@pytest.mark.parametrize("protocol", list(LOOPS))
def test_larger_multishot_with_ties_and_chunks(protocol):
    rng = np.random.default_rng(7)
    args = _case(rng, 300, 240, 30, levels=20, shots=8, protocol=protocol)
    ref = LOOPS[protocol](*args, max_rank=20)
    _assert_equal(rank_metrics(*args, protocol=protocol), ref)
    _assert_equal(rank_metrics(*args, protocol=protocol, chunk=7), ref)


def test_small_gallery_pads_cmc_with_last_value():
    rng = np.random.default_rng(3)
    args = _case(rng, 25, 12, 4, shots=3)  # 4 distinct ids, 12 images, max_rank 20
    for protocol, loop in LOOPS.items():
        m = rank_metrics(*args, protocol=protocol, max_rank=20)
        _assert_equal(m, loop(*args, max_rank=20))
        assert len(m["cmc"]) == 20
        assert m["cmc"][-1] == pytest.approx(1.0)
    sysu = rank_metrics(*args, protocol="sysu")["cmc"]
    assert sysu[3] == pytest.approx(1.0)  # 4 distinct identities: always found by rank 4


def test_numpy_and_torch_inputs_agree():
    rng = np.random.default_rng(11)
    args = _case(rng, 40, 50, 10, levels=5)
    a = rank_metrics(*args, protocol="sysu")
    b = rank_metrics(*(torch.from_numpy(np.asarray(x)) for x in args), protocol="sysu")
    np.testing.assert_array_equal(a["cmc"], b["cmc"])
    assert a["mAP"] == b["mAP"] and a["mINP"] == b["mINP"]


def test_cam3_ignores_cam2_gallery():
    # gallery: [id 1 cam2, id 0 cam1, id 1 cam4]; query id 1 at distances 0.1, 0.2, 0.3
    d = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], dtype=np.float32)
    q_pids, g_pids = np.array([1, 1]), np.array([1, 0, 1])
    g_cams = np.array([2, 1, 4])
    from_cam6 = rank_metrics(d[:1], q_pids[:1], g_pids, [6], g_cams, protocol="sysu")
    from_cam3 = rank_metrics(d[1:], q_pids[1:], g_pids, [3], g_cams, protocol="sysu")
    assert from_cam6["cmc"][0] == 1.0 and from_cam6["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    # cam2 image removed: the kept list is [id 0, id 1] -> R1 miss, AP = 1/2, INP = 1/2
    assert from_cam3["cmc"][0] == 0.0 and from_cam3["cmc"][1] == 1.0
    assert from_cam3["mAP"] == pytest.approx(0.5) and from_cam3["mINP"] == pytest.approx(0.5)
    # the same lists under RegDB (no removal) keep the cam2 image
    assert rank_metrics(d[1:], q_pids[1:], g_pids, [3], g_cams, protocol="regdb")["cmc"][0] == 1


def test_query_without_match_is_left_out_of_every_mean():
    d = np.array([[0.1, 0.2], [0.1, 0.2]], dtype=np.float32)
    # query 1 (id 9) has no match; query 0 hits at rank 2
    m = rank_metrics(d, [0, 9], [5, 0], [6, 6], [1, 1], protocol="sysu")
    assert m["cmc"][0] == 0.0 and m["cmc"][1] == 1.0
    assert m["mAP"] == pytest.approx(0.5) and m["mINP"] == pytest.approx(0.5)
    # llcm: a match only in the query's own camera is removed -> no valid query at all
    with pytest.raises(FMCNetError, match="no query has a true match"):
        rank_metrics(d[:1], [0], [5, 0], [1], [1, 1], protocol="llcm")


def test_distinct_identity_cmc_differs_from_image_level():
    # ranked: id 5, id 5, id 5, id 0 -> image rank 4, distinct-identity rank 2
    d = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    args = (d, [0], [5, 5, 5, 0], [6], [1, 1, 1, 1])
    sysu, regdb = rank_metrics(*args, protocol="sysu"), rank_metrics(*args, protocol="regdb")
    assert sysu["cmc"][1] == 1.0 and regdb["cmc"][1] == 0.0 and regdb["cmc"][3] == 1.0
    assert sysu["mAP"] == regdb["mAP"] == pytest.approx(0.25)


def test_llcm_counts_distinct_identities_as_deen_and_literal_counts_images():
    # query id 0 from cam 1; ranked gallery: id 5 cam 2, id 5 cam 3, id 0 cam 1 (same id and
    # camera: removed), id 7 cam 2, id 0 cam 4. Kept: 5, 5, 7, 0 -> image rank 4, and
    # distinct-identity rank 3 (5, 7, 0), DEEN's `eval_llcm` CMC.
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    args = (d, [0], [5, 5, 0, 7, 0], [1], [2, 3, 1, 2, 4])
    deen = rank_metrics(*args, protocol="llcm")
    literal = rank_metrics(*args, protocol="llcm_literal")
    assert deen["cmc"][:4].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert literal["cmc"][:4].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert deen["mAP"] == literal["mAP"] == pytest.approx(0.25)  # the removed hit never counts
    assert deen["mINP"] == literal["mINP"] == pytest.approx(0.25)
    _assert_equal(deen, eval_llcm_loop(*args))
    _assert_equal(literal, eval_llcm_literal_loop(*args))


def test_llcm_and_literal_share_r1_map_minp_and_literal_is_never_higher():
    rng = np.random.default_rng(4)
    args = _case(rng, 80, 120, 15, levels=12, shots=6, protocol="llcm")
    deen, literal = rank_metrics(*args, protocol="llcm"), rank_metrics(*args, protocol="llcm_literal")
    assert deen["cmc"][0] == literal["cmc"][0]
    assert deen["mAP"] == literal["mAP"] and deen["mINP"] == literal["mINP"]
    assert (literal["cmc"] <= deen["cmc"] + 1e-12).all() and (literal["cmc"] < deen["cmc"]).any()


def test_ties_are_broken_by_gallery_index():
    d = np.zeros((1, 3), dtype=np.float32)
    first = rank_metrics(d, [1], [1, 0, 0], [1], [2, 2, 2], protocol="regdb")
    last = rank_metrics(d, [1], [0, 0, 1], [1], [2, 2, 2], protocol="regdb")
    assert first["mAP"] == 1.0 and last["mAP"] == pytest.approx(1 / 3)
    assert ranking(d, [1], [0, 0, 1], [1], [2, 2, 2], protocol="regdb").order.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("protocol", list(LOOPS))
def test_ranking_agrees_with_rank_metrics(protocol):
    rng = np.random.default_rng(5)
    args = _case(rng, 60, 80, 12, levels=10, shots=None, protocol=protocol)
    r = ranking(*args, protocol=protocol)
    m = rank_metrics(*args, protocol=protocol)
    assert r.order.dtype == np.int64 and r.order.shape == (60, 80)
    assert not (r.matches & ~r.keep).any()
    np.testing.assert_array_equal(np.sort(r.order, 1), np.tile(np.arange(80), (60, 1)))
    assert (np.diff(np.take_along_axis(args[0], r.order, 1), axis=1) >= 0).all()
    r1, aps = [], []
    for q in range(60):
        _, hit = r.kept(q)
        if hit.any():
            r1.append(hit[0])
            ranks = np.flatnonzero(hit) + 1
            aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    assert m["cmc"][0] == pytest.approx(np.mean(r1), abs=1e-9)
    assert m["mAP"] == pytest.approx(np.mean(aps), abs=1e-9)


def test_pairwise_distance_is_scale_invariant_euclidean():
    rng = np.random.default_rng(0)
    q, g = torch.randn(5, 8), torch.randn(7, 8)
    d = pairwise_distance(q, g * 3.0)
    qn, gn = q / q.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    torch.testing.assert_close(d, torch.cdist(qn, gn), atol=1e-5, rtol=0)
    assert pairwise_distance(q, q).diagonal().abs().max() < 1e-3
    assert pairwise_distance(rng.random((2, 3)), rng.random((4, 3))).shape == (2, 4)


def _clusters(seed, n_q=12, n_g=40, noise=0.4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(5, 16))
    q_pids, g_pids = rng.integers(0, 5, n_q), rng.integers(0, 5, n_g)
    q = centers[q_pids] + noise * rng.normal(size=(n_q, 16))
    g = centers[g_pids] + noise * rng.normal(size=(n_g, 16))
    return q.astype(np.float32), g.astype(np.float32), q_pids, g_pids


def test_re_ranking_matches_the_per_probe_loop():
    q, g, _, _ = _clusters(1)
    for k1, k2 in [(20, 6), (5, 3), (4, 1)]:
        fast = re_ranking(torch.from_numpy(q), torch.from_numpy(g), k1, k2, 0.3)
        assert fast.shape == (12, 40)
        np.testing.assert_allclose(fast.numpy(), re_ranking_loop(q, g, k1, k2, 0.3), atol=1e-5)


def test_re_ranking_does_not_lower_map_on_separated_clusters():
    q, g, q_pids, g_pids = _clusters(2, n_q=30, n_g=80, noise=0.9)
    cams = (np.full(30, 1), np.full(80, 2))
    base = rank_metrics(pairwise_distance(q, g), q_pids, g_pids, *cams, protocol="regdb")
    rr = rank_metrics(re_ranking(q, g), q_pids, g_pids, *cams, protocol="regdb")
    assert rr["mAP"] >= base["mAP"] - 1e-9
    assert rr["mAP"] > 0.95 and base["mAP"] < 0.9  # a case where re-ranking matters


def test_stable_order_equals_torch_stable_sort_with_ties_zeros_infs_and_nans():
    from fmcnet.evaluation.metrics import stable_order

    rng = np.random.default_rng(0)
    for _ in range(30):
        q, g = rng.integers(1, 30), rng.integers(1, 200)
        d = rng.normal(size=(q, g)).astype(np.float32)
        for value, share in ((0.5, 0.3), (-0.0, 0.05), (0.0, 0.05), (np.inf, 0.03),
                             (-np.inf, 0.03), (np.nan, 0.03)):
            d[rng.random((q, g)) < share] = value
        t = torch.from_numpy(d)
        assert torch.equal(stable_order(t), torch.sort(t, dim=1, stable=True).indices)
