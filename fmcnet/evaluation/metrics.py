"""Retrieval metrics (CMC, mAP, mINP) for SYSU-MM01, RegDB and LLCM, vectorised.

One source of truth for "which gallery items count": `ranking` sorts each query's
gallery, applies the protocol's removal rule and marks the true matches; `rank_metrics`,
the ranking browser and the ranking figures all use it.

Protocols (docs/protocols.md):

* ``sysu``  -- a query from cam3 ignores every gallery image from cam2 (same room);
  the CMC is the owners' one: the kept list is reduced to its distinct identities in
  order of first appearance. mAP / mINP on the image-level kept list.
* ``regdb`` -- nothing removed; image-level CMC.
* ``llcm``  -- as DEEN's ``eval_llcm`` (ZYK100/LLCM): gallery images of the query's
  identity *and* camera removed; distinct-identity CMC (as ``sysu``); image-level
  mAP / mINP.
* ``llcm_literal`` -- the same removal with an image-level CMC (``llcm_protocol=literal``).
  Rank-1, mAP and mINP equal ``llcm``'s; Rank-k > 1 come out lower or equal.

The numbers equal the per-query loops in `fmcnet.evaluation.reference` (the AGW
baseline's `eval_sysu` / `eval_regdb`, DEEN's `eval_llcm`) to float rounding, with one
documented choice: equal distances are ranked by gallery index (a stable sort), in both.
A query without a true match among its kept gallery items is left out of every mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fmcnet.utils import FMCNetError

PROTOCOLS = ("sysu", "regdb", "llcm", "llcm_literal")
# protocols whose CMC counts distinct identities (the SYSU-MM01 owners' rule)
DISTINCT_CMC = frozenset({"sysu", "llcm"})

ArrayLike = np.ndarray | torch.Tensor


def _tensor(x: ArrayLike, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.to(device=device, dtype=dtype or t.dtype)


def pairwise_distance(qf: ArrayLike, gf: ArrayLike) -> torch.Tensor:
    """Euclidean distance between L2-normalised features, [Q, G], on the inputs' device.

    Monotone in the negative cosine similarity the baselines rank by, so rankings agree.
    """
    qf = torch.as_tensor(qf).float()
    gf = torch.as_tensor(gf).to(qf.device).float()
    qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
    # 2 - 2cos can dip below 0 by rounding for identical vectors
    return (2.0 - 2.0 * (qf @ gf.T)).clamp_min_(0.0).sqrt_()


@dataclass
class Ranking:
    """Each query's gallery in ranked order (numpy arrays, [Q, G]).

    `order[q, r]` is the gallery index at rank r (stable: ties by gallery index);
    `keep[q, r]` is False for items the protocol removes; `matches[q, r]` is True for a
    kept item of the query's identity. Ranks counted by the metrics are positions among
    the kept items.
    """

    order: np.ndarray
    keep: np.ndarray
    matches: np.ndarray
    protocol: str

    def kept(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """Gallery indices and true-match flags of query q's kept items, in ranked order."""
        k = self.keep[q]
        return self.order[q][k], self.matches[q][k]


def _check(distmat: torch.Tensor, n_q: int, n_g: int, protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise FMCNetError(f"unknown evaluation protocol {protocol!r}; choose one of {PROTOCOLS}")
    if distmat.dim() != 2 or tuple(distmat.shape) != (n_q, n_g):
        raise FMCNetError(
            f"distance matrix has shape {tuple(distmat.shape)}, expected (queries, gallery) = "
            f"({n_q}, {n_g}) from the id arrays"
        )


def stable_order(dist: torch.Tensor) -> torch.Tensor:
    """Row-wise argsort of distances, ties broken by gallery index.

    On the CPU with float32 distances this is one unstable numpy sort of unique int64
    keys -- the distance's order-preserving integer bits in the high half, the column in
    the low half -- which gives exactly the stable order ~2-4x faster than a stable sort
    (BENCHMARKS.md). Elsewhere it is `torch.sort(stable=True)`.
    """
    if dist.device.type != "cpu" or dist.dtype != torch.float32 or dist.shape[1] >= 2**31:
        return torch.sort(dist, dim=1, stable=True).indices
    d = dist.numpy() + np.float32(0)  # -0.0 -> +0.0: equal distances get equal keys
    bits = d.view(np.int32)
    bits = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # negative floats: reverse their bit order
    bits[np.isnan(d)] = np.iinfo(np.int32).max  # NaN last, as torch.sort puts it
    key = (bits.astype(np.int64) << 32) | np.arange(d.shape[1], dtype=np.int64)
    key.sort(axis=1)
    return torch.from_numpy(key & 0xFFFFFFFF)


def _rank_chunk(
    dist: torch.Tensor,
    q_pids: torch.Tensor,
    g_pids: torch.Tensor,
    q_cams: torch.Tensor,
    g_cams: torch.Tensor,
    protocol: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """order, keep, matches for a block of query rows (all on one device)."""
    order = stable_order(dist)
    ranked_pids = g_pids[order]
    same_pid = ranked_pids == q_pids[:, None]
    if protocol == "sysu":
        keep = ~((q_cams == 3)[:, None] & (g_cams[order] == 2))
    elif protocol in ("llcm", "llcm_literal"):
        keep = ~(same_pid & (g_cams[order] == q_cams[:, None]))
    else:
        keep = torch.ones_like(same_pid)
    return order, keep, same_pid & keep


def _blocks(n_q: int, n_g: int, chunk: int | None) -> list[slice]:
    """Query-row blocks; about 2^22 [Q, G] cells a block keeps the int64 temporaries small."""
    step = chunk or max(1, min(4096, (1 << 22) // max(n_g, 1)))
    return [slice(s, s + step) for s in range(0, n_q, step)]


def _inputs(distmat, q_pids, g_pids, q_cams, g_cams, protocol, device):
    d = distmat if isinstance(distmat, torch.Tensor) else torch.from_numpy(np.asarray(distmat))
    dev = torch.device(device) if device is not None else d.device
    d = d.to(dev)
    q_pids, g_pids = _tensor(q_pids, dev, torch.int64), _tensor(g_pids, dev, torch.int64)
    q_cams, g_cams = _tensor(q_cams, dev, torch.int64), _tensor(g_cams, dev, torch.int64)
    _check(d, len(q_pids), len(g_pids), protocol)
    return d, q_pids, g_pids, q_cams, g_cams


def ranking(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_cams: ArrayLike,
    g_cams: ArrayLike,
    *,
    protocol: str,
    device: torch.device | str | None = None,
) -> Ranking:
    """Ranked order, keep mask and match mask of every query (see `Ranking`)."""
    d, qp, gp, qc, gc = _inputs(distmat, q_pids, g_pids, q_cams, g_cams, protocol, device)
    parts = [
        _rank_chunk(d[b], qp[b], gp, qc[b], gc, protocol) for b in _blocks(len(qp), len(gp), None)
    ]
    if not parts:  # no queries
        empty = np.zeros((0, len(gp)), dtype=np.int64)
        return Ranking(empty, empty.astype(bool), empty.astype(bool), protocol)
    order, keep, matches = (torch.cat([p[i] for p in parts]).cpu().numpy() for i in range(3))
    return Ranking(order, keep, matches, protocol)


def _chunk_metrics(
    order: torch.Tensor,
    keep: torch.Tensor,
    matches: torch.Tensor,
    g_labels: torch.Tensor,
    n_labels: int,
    protocol: str,
    max_rank: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-query CMC hits [q, max_rank], AP, INP and validity for one block."""
    n_q, n_g = order.shape
    dev = order.device
    # True matches are few per row: work on their (row, ranked column) list, which
    # nonzero() returns row-major, so each row's matches are contiguous and in rank order.
    rows, cols = matches.nonzero(as_tuple=True)
    num_rel = matches.sum(1)
    valid = num_rel > 0
    if len(rows) == 0:
        zeros = torch.zeros(n_q, dtype=torch.float64, device=dev)
        return torch.zeros(n_q, max_rank, dtype=torch.bool, device=dev), zeros, zeros, valid
    if protocol == "regdb":
        pos = cols + 1  # nothing removed: 1-based rank is the ranked column
    else:
        # 1-based position among the kept items (removed items never count)
        pos = keep.cumsum(1, dtype=torch.int32)[rows, cols].long()
    start = num_rel.cumsum(0) - num_rel  # offset of each row's first match in the list
    hit_no = torch.arange(len(rows), device=dev) - start[rows] + 1  # 1..num_rel per row
    ap = torch.zeros(n_q, dtype=torch.float64, device=dev)
    ap.index_add_(0, rows, hit_no.double() / pos.double())
    ap = ap / num_rel.clamp_min(1).double()
    first = start.clamp_max(len(rows) - 1)
    last = (start + num_rel - 1).clamp(0, len(rows) - 1)
    inp = num_rel.double() / pos[last].double()

    if protocol in DISTINCT_CMC:
        # owners' CMC: rank among distinct identities in order of first appearance.
        # The true identity first appears at the first hit, so its distinct rank is the
        # number of identities whose first kept appearance is at or before it.
        ranked = torch.where(keep, g_labels[order], n_labels)  # removed -> a dummy label
        positions = torch.arange(n_g, device=dev).expand(n_q, n_g)
        first_seen = torch.full((n_q, n_labels + 1), n_g, dtype=torch.int64, device=dev)
        first_seen.scatter_reduce_(1, ranked, positions, reduce="amin")
        rank = (first_seen[:, :n_labels] <= cols[first][:, None]).sum(1)
    else:
        rank = pos[first]
    # ranks beyond the gallery fall out naturally: the curve is 1 there (= padding)
    cmc = rank[:, None] <= torch.arange(1, max_rank + 1, device=dev)[None, :]
    return cmc, ap, inp, valid


def rank_metrics(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_cams: ArrayLike,
    g_cams: ArrayLike,
    *,
    protocol: str = "sysu",
    max_rank: int = 20,
    device: torch.device | str | None = None,
    chunk: int | None = None,
) -> dict:
    """CMC (fractions, length `max_rank`), mAP and mINP under a dataset's protocol.

    `distmat` is [Q, G] (smaller = closer), numpy or torch; work runs on its device
    unless `device` is given, in blocks of at most `chunk` queries (no per-query loop).
    Fractions in [0, 1]. mINP is (#true matches) / (1-based rank of the last one);
    AP is the mean over true matches of the precision at each hit.
    """
    d, qp, gp, qc, gc = _inputs(distmat, q_pids, g_pids, q_cams, g_cams, protocol, device)
    if max_rank < 1:
        raise FMCNetError(f"max_rank must be at least 1, got {max_rank}")
    uniq, g_labels = torch.unique(gp, return_inverse=True)
    cmc_sum = torch.zeros(max_rank, dtype=torch.float64, device=d.device)
    ap_sum = inp_sum = torch.zeros((), dtype=torch.float64, device=d.device)
    n_valid = torch.zeros((), dtype=torch.int64, device=d.device)
    for b in _blocks(len(qp), len(gp), chunk):
        order, keep, matches = _rank_chunk(d[b], qp[b], gp, qc[b], gc, protocol)
        cmc, ap, inp, valid = _chunk_metrics(
            order, keep, matches, g_labels, len(uniq), protocol, max_rank
        )
        cmc_sum += cmc[valid].sum(0, dtype=torch.float64)
        ap_sum = ap_sum + ap[valid].sum()
        inp_sum = inp_sum + inp[valid].sum()
        n_valid += valid.sum()
    n = int(n_valid)
    if n == 0:
        raise FMCNetError(
            "no query has a true match in its gallery: check that query and gallery "
            "identities overlap (and the camera ids, for the protocol's removal rule)"
        )
    return {
        "cmc": (cmc_sum / n).cpu().numpy(),
        "mAP": float(ap_sum / n),
        "mINP": float(inp_sum / n),
    }
