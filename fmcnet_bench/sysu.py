"""SYSU-MM01 in numbers, for benchmarks at its size: the training set's counts, the test
split's queries and gallery pool, and its protocol (4 settings x trials) run on random
identity-structured features (what `evaluate_dataset` does after extraction).
"""

from __future__ import annotations

import numpy as np
import torch

# SYSU-MM01 (docs/protocols.md): training on train + val ids, the test split's query set.
SYSU_TRAIN_IDS, SYSU_TRAIN_VISIBLE, SYSU_TRAIN_INFRARED = 395, 22258, 11909
SYSU_TEST_IDS, SYSU_QUERIES, SYSU_GALLERY_POOL, SYSU_PAIRS = 96, 3803, 6775, 301
PAPER_EPOCHS = 80


def sysu_sized_lists(ids: int, visible: int, infrared: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cameras V, identities V, cameras I, identities I): `visible` and `infrared`
    images spread evenly over `ids` identities, each on a random camera of its modality."""
    rng = np.random.default_rng(seed)
    lists = []
    for total, cams in ((visible, (1, 2, 4, 5)), (infrared, (3, 6))):
        counts = np.full(ids, total // ids)
        counts[rng.permutation(ids)[: total % ids]] += 1
        ident = np.repeat(np.arange(ids), counts)
        lists += [rng.choice(cams, len(ident)), ident]
    return tuple(lists)


class SysuTest:
    """SYSU-MM01's test split in numbers: 96 ids; 3,803 infrared queries from cam3 / cam6;
    a visible gallery pool of 6,775 images over the 301 (id, camera) pairs present among
    cams 1/2/4/5, at least ten images each; `scale` < 1 shrinks every count."""

    def __init__(self, rng: np.random.Generator, scale: float = 1.0) -> None:
        ids, queries, pool, pairs = (max(int(round(n * scale)), 8) for n in (
            SYSU_TEST_IDS, SYSU_QUERIES, SYSU_GALLERY_POOL, SYSU_PAIRS))
        pairs = min(pairs, 4 * ids)
        pool = max(pool, 10 * pairs)
        self.q_pids = rng.integers(0, ids, queries)
        self.q_cams = rng.choice([3, 6], queries)
        all_pairs = np.array([(p, c) for p in range(ids) for c in (1, 2, 4, 5)])
        # every id keeps one pair (each has a gallery image), the rest drawn at random
        first = all_pairs[np.arange(ids) * 4 + rng.integers(0, 4, ids)]
        rest = np.array([p for p in all_pairs if not any((p == first).all(1))]).reshape(-1, 2)
        chosen = np.concatenate([first, rest[rng.permutation(len(rest))[:pairs - ids]]])
        pair_of = np.concatenate([np.repeat(np.arange(pairs), 10),
                                  rng.integers(0, pairs, pool - 10 * pairs)])
        self.ids, self.pair_of = ids, pair_of
        self.g_pids, self.g_cams = chosen[pair_of, 0], chosen[pair_of, 1]

    def trial(self, rng: np.random.Generator, shots: int, indoor: bool) -> np.ndarray:
        """Gallery-pool rows of one trial: `shots` images of every (id, camera) pair."""
        rows = []
        for pair in np.unique(self.pair_of):
            members = np.flatnonzero(self.pair_of == pair)
            if indoor and self.g_cams[members[0]] not in (1, 2):
                continue
            rows.append(rng.choice(members, shots, replace=False))
        return np.sort(np.concatenate(rows))


def identity_features(rng: np.random.Generator, pids: np.ndarray, dim: int,
                      centres: np.ndarray) -> torch.Tensor:
    """A centre per identity plus unit noise: metrics neither 0 nor 1."""
    return torch.from_numpy((centres[pids] + rng.standard_normal((len(pids), dim)))
                            .astype(np.float32))


class SysuProtocolRun:
    """What `evaluate_dataset` does after extraction, on random identity-structured
    features of SYSU-MM01's counts: one distance matrix per gallery pool (all / indoor),
    then `rank_metrics` for each of the 4 settings x `trials` trials."""

    SETTINGS = {f"{mode}/{shot}": (mode == "indoor", n)
                for mode in ("all", "indoor") for shot, n in (("single", 1), ("multi", 10))}

    def __init__(self, rng: np.random.Generator, dim: int, trials: int, scale: float = 1.0):
        self.sysu = sysu = SysuTest(rng, scale)
        # same-id / other-id separation independent of the width
        centres = rng.standard_normal((SYSU_TEST_IDS, dim)) * (0.35 * (64 / dim) ** 0.25)
        self.qf = identity_features(rng, sysu.q_pids, dim, centres)
        self.gf = identity_features(rng, sysu.g_pids, dim, centres)
        self.indoor_pool = np.flatnonzero(np.isin(sysu.g_cams, (1, 2)))
        self.plans = {name: [sysu.trial(rng, shots, indoor) for _ in range(trials)]
                      for name, (indoor, shots) in self.SETTINGS.items()}
        self.trials, self.dim = trials, dim

    def __call__(self, device: torch.device) -> dict[str, float]:
        """mAP per setting (mean over trials); host floats, so the device work is done."""
        from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

        s = self.sysu
        q = self.qf.to(device)
        pools = {"all": pairwise_distance(q, self.gf.to(device)),
                 "indoor": pairwise_distance(q, self.gf[torch.from_numpy(self.indoor_pool)]
                                             .to(device))}
        pool_index = {"all": np.arange(len(self.gf)), "indoor": self.indoor_pool}
        maps = {}
        for name, (indoor, _) in self.SETTINGS.items():
            pool = "indoor" if indoor else "all"
            values = []
            for rows in self.plans[name]:
                # trial rows index the full pool; the indoor matrix holds only cams 1 / 2
                position = torch.from_numpy(np.searchsorted(pool_index[pool], rows))
                m = rank_metrics(pools[pool][:, position.to(device)], s.q_pids, s.g_pids[rows],
                                 s.q_cams, s.g_cams[rows], protocol="sysu")
                values.append(m["mAP"])
            maps[name] = float(np.mean(values))
        return maps
