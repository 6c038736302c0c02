"""Per-query reference loops: the AGW baseline's `eval_sysu` / `eval_regdb`, DEEN's `eval_llcm`.

These are slow on purpose. They re-state, one query at a time and in plain numpy, what
the community's evaluation code computes, so that the vectorised `rank_metrics` can be
checked against them (tests) and timed against them (benchmarks). They are not used
by the pipeline.

Differences from the AGW code, all deliberate and shared with `rank_metrics`:

* the ranking is ``np.argsort(kind="stable")``: equal distances keep gallery order, so
  both implementations agree on ties (numpy's default quicksort does not promise that);
* a CMC shorter than ``max_rank`` (a gallery holding fewer images or distinct
  identities) is padded with its last value, instead of AGW's shortening of
  ``max_rank`` to the gallery size (which breaks on ragged distinct-identity lists);
* sums run in float64 (AGW accumulates the CMC in float32; the difference is < 1e-7).

AGW's SYSU loop (and DEEN's LLCM loop) also appends the distinct-identity CMC of
queries without a true match before skipping them; such a curve is all zeros, so
leaving it out (as here) gives the same sums and the same division by the number of
valid queries.
"""

from __future__ import annotations

import numpy as np


def _pad(curve: np.ndarray, max_rank: int) -> np.ndarray:
    """First `max_rank` values of a cumulative curve, padded with its last value."""
    out = np.empty(max_rank, dtype=np.float64)
    n = min(len(curve), max_rank)
    out[:n] = curve[:n]
    out[n:] = curve[n - 1] if n else 0.0
    return out


def _image_level(raw: np.ndarray) -> tuple[float, float]:
    """AP and INP of one binary match list (1 = true match) in ranked order."""
    hits = raw.cumsum()
    num_rel = raw.sum()
    last = np.max(np.where(raw == 1)[0])
    inp = hits[last] / (last + 1.0)
    precision = np.asarray([x / (i + 1.0) for i, x in enumerate(hits)])
    ap = (precision * raw).sum() / num_rel
    return float(ap), float(inp)


def _loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int,
    removal: str,
    distinct_cmc: bool,
) -> tuple[np.ndarray, float, float]:
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    indices = np.argsort(distmat, axis=1, kind="stable")
    pred_label = g_pids[indices]
    matches = (pred_label == q_pids[:, None]).astype(np.int32)

    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = indices[q]
        if removal == "same_location":  # SYSU-MM01: cam3 (indoor IR) shares a room with cam2
            remove = (q_camids[q] == 3) & (g_camids[order] == 2)
        elif removal == "same_pid_cam":
            remove = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        else:
            remove = np.zeros(len(order), dtype=bool)
        keep = ~remove
        raw = matches[q][keep]
        if not np.any(raw):
            continue  # the identity is absent from this gallery: not a valid query

        if distinct_cmc:
            # the owners' CMC: the kept list reduced to distinct ids, in order of first appearance
            labels = pred_label[q][keep]
            first = np.unique(labels, return_index=True)[1]
            distinct = np.asarray([labels[i] for i in sorted(first)])
            cmc = (distinct == q_pids[q]).astype(np.int32).cumsum()
        else:
            cmc = raw.cumsum()
            cmc[cmc > 1] = 1
        all_cmc.append(_pad(cmc, max_rank))
        ap, inp = _image_level(raw)
        all_ap.append(ap)
        all_inp.append(inp)

    if not all_cmc:
        raise ValueError("no query has a true match in its gallery")
    return np.mean(all_cmc, axis=0), float(np.mean(all_ap)), float(np.mean(all_inp))


def eval_sysu_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """SYSU-MM01: cam3 queries ignore cam2; distinct-identity CMC; image-level mAP / mINP."""
    return _loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, "same_location", True)


def eval_regdb_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray | None = None,
    g_camids: np.ndarray | None = None,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """RegDB: no removal (AGW gives the two modalities different cameras); image-level CMC.

    The cameras are accepted only so that all three loops share one signature.
    """
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids = np.ones(len(q_pids), np.int64)
    g_camids = np.full(len(g_pids), 2, np.int64)
    return _loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, "none", False)


def eval_llcm_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """LLCM as DEEN's `eval_llcm` (ZYK100/LLCM, AGW/eval_metrics.py): same identity + same
    camera removed; distinct-identity CMC (it returns `new_all_cmc`); image-level mAP / mINP."""
    return _loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, "same_pid_cam", True)


def eval_llcm_literal_loop(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 20,
) -> tuple[np.ndarray, float, float]:
    """LLCM with `llcm_protocol=literal`: the same removal, standard image-level CMC."""
    return _loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank, "same_pid_cam", False)


def re_ranking_loop(
    q_feats: np.ndarray, g_feats: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR'17), one probe at a time, float64.

    The structure of the authors' numpy code (which stores V and the Jaccard distance in
    float16); used by the tests to check the vectorised `fmcnet.evaluation.re_ranking`.
    """
    feat = np.concatenate([q_feats, g_feats]).astype(np.float64)
    nq, n = len(q_feats), len(feat)
    sq = (feat**2).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * feat @ feat.T
    dist = np.maximum(dist, 0)
    dist = dist / dist.max(axis=1, keepdims=True)
    rank = np.argsort(dist, axis=1, kind="stable")

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        backward = rank[forward, : k + 1]
        return forward[np.where(backward == i)[0]]

    half = int(np.around(k1 / 2))
    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expansion = r
        for c in r:
            rc = reciprocal(int(c), half)
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expansion = np.append(expansion, rc)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        v[i, expansion] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    jaccard = np.zeros((nq, n))
    for i in range(nq):
        shared = np.minimum(v[i][None, :], v).sum(1)
        jaccard[i] = 1 - shared / (2 - shared)
    final = jaccard * (1 - lambda_value) + dist[:nq] * lambda_value
    return final[:, nq:]
