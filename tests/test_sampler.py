"""CrossModalitySampler: P x K structure, replacement rule, seeding, resume, ranks."""

from __future__ import annotations

import numpy as np
import pytest

from fmcnet.data.sampler import CrossModalitySampler
from fmcnet.utils import FMCNetError


def _labels(seed: int = 0):
    """40 identities, 1..12 visible and 1..6 infrared images each; ids 40, 41 in one
    modality only."""
    rng = np.random.default_rng(seed)
    lv = np.repeat(np.arange(40), rng.integers(1, 13, 40))
    li = np.repeat(np.arange(40), rng.integers(1, 7, 40))
    lv = rng.permutation(np.concatenate([lv, [40, 40]]))
    li = rng.permutation(np.concatenate([li, [41]]))
    return lv, li


def test_batch_structure():
    lv, li = _labels()
    s = CrossModalitySampler(lv, li, 4, 3, seed=1)
    assert len(s) == int(np.ceil(max(len(lv), len(li)) / 12))
    batches = list(s)
    assert len(batches) == len(s)
    for iv, ii in batches:
        assert iv.dtype == np.int64 and ii.dtype == np.int64 and iv.shape == ii.shape == (12,)
        yv, yi = s.labels_for(iv, ii)
        blocks_v, blocks_i = yv.reshape(4, 3), yi.reshape(4, 3)
        assert (blocks_v == blocks_v[:, :1]).all() and (blocks_i == blocks_i[:, :1]).all()
        assert np.array_equal(blocks_v[:, 0], blocks_i[:, 0])  # same identity order
        assert len(set(blocks_v[:, 0].tolist())) == 4  # P distinct identities
        assert not set(yv.tolist()) & {40, 41}  # only identities of both modalities
        counts_v, counts_i = np.bincount(lv), np.bincount(li, minlength=42)
        for j, pid in enumerate(blocks_v[:, 0]):
            for idx, counts in ((iv, counts_v), (ii, counts_i)):
                block = idx[j * 3:(j + 1) * 3]
                if counts[pid] >= 3:  # enough images: no repeats
                    assert len(set(block.tolist())) == 3
                else:
                    assert set(block.tolist()) <= set(np.flatnonzero(
                        (lv if idx is iv else li) == pid).tolist())


def test_draws_cover_images_uniformly():
    lv = np.repeat(np.arange(4), 6)
    li = np.repeat(np.arange(4), 2)  # fewer than K: drawn with replacement
    s = CrossModalitySampler(lv, li, 2, 3, seed=0, batches_per_epoch=600)
    iv = np.concatenate([b[0] for b in s])
    ii = np.concatenate([b[1] for b in s])
    hv, hi = np.bincount(iv, minlength=24), np.bincount(ii, minlength=8)
    assert hv.min() > 0.8 * hv.mean() and hi.min() > 0.8 * hi.mean()


def test_seeded_by_seed_and_epoch():
    lv, li = _labels()

    def epoch(seed, e):
        s = CrossModalitySampler(lv, li, 4, 2, seed=seed)
        s.set_epoch(e)
        return np.stack([np.concatenate(b) for b in s])

    assert np.array_equal(epoch(0, 3), epoch(0, 3))
    assert not np.array_equal(epoch(0, 3), epoch(0, 4))
    assert not np.array_equal(epoch(0, 3), epoch(1, 3))


def test_resume_continues_at_the_same_batch():
    lv, li = _labels()
    full = CrossModalitySampler(lv, li, 4, 2, seed=7)
    full.set_epoch(2)
    expected = [np.concatenate(b) for b in full]

    s = CrossModalitySampler(lv, li, 4, 2, seed=7)
    s.set_epoch(2)
    it = iter(s)
    head = [np.concatenate(next(it)) for _ in range(5)]
    state = s.state_dict()
    assert state == {"epoch": 2, "position": 5, "seed": 7}

    resumed = CrossModalitySampler(lv, li, 4, 2, seed=7)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the training loop calls this again: keeps the position
    rest = [np.concatenate(b) for b in resumed]
    assert len(head) + len(rest) == len(expected)
    for a, b in zip(head + rest, expected):
        assert np.array_equal(a, b)
    resumed.set_epoch(3)
    assert resumed.state_dict()["position"] == 0

    with pytest.raises(FMCNetError, match="seed"):
        CrossModalitySampler(lv, li, 4, 2, seed=8).load_state_dict(state)


def test_ranks_draw_disjoint_identities():
    lv, li = _labels()
    ws, p = 3, 4
    per_rank = []
    for rank in range(ws):
        s = CrossModalitySampler(lv, li, p, 2, seed=0, rank=rank, world_size=ws,
                                 batches_per_epoch=3)
        s.set_epoch(1)
        per_rank.append([set(s.labels_for(*b)[0].tolist()) for b in s])
    # 40 identities -> 3 groups of 4 per rank per permutation pass: the 3 batches of each
    # rank come from one pass, so no identity is shared between ranks.
    ids = [set().union(*batches) for batches in per_rank]
    for a in range(ws):
        for b in range(a + 1, ws):
            assert not ids[a] & ids[b]
        assert len(ids[a]) == 3 * p


def test_default_length_divides_among_ranks():
    lv, li = _labels()
    total = int(np.ceil(max(len(lv), len(li)) / 8))
    assert len(CrossModalitySampler(lv, li, 4, 2, rank=1, world_size=2)) == total // 2


def test_too_few_identities_is_explained():
    with pytest.raises(FMCNetError, match="at least P x world_size"):
        CrossModalitySampler(np.arange(3), np.arange(3), 4, 2)
