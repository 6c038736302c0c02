"""The cross-modality P x K identity sampler (docs/method.md).

Each batch holds P identities, and for each of them K visible and K infrared images,
in the same identity order in both halves: ``idx_v[j*K:(j+1)*K]`` and
``idx_i[j*K:(j+1)*K]`` belong to the j-th identity. Only identities present in both
modalities are drawn. Images are drawn without replacement when an identity holds at
least K images of a modality, with replacement otherwise.

A whole epoch's plan is built at once, vectorised, from generators seeded by
``(seed, epoch)`` (identity order, shared by all ranks) and ``(seed, epoch, rank,
world_size)`` (image draws), so the batches of epoch e depend only on those four
numbers and a resumed run can skip the batches it already consumed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from fmcnet.utils import FMCNetError

# Rows x max-images elements of the uniform keys drawn at once (bounds memory).
_KEY_BUDGET = 1 << 22


class _Groups:
    """Image indices of one modality grouped by label (CSR layout)."""

    def __init__(self, labels: np.ndarray, ids: np.ndarray) -> None:
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        self.order = order
        self.starts = np.searchsorted(sorted_labels, ids, "left")
        self.counts = np.searchsorted(sorted_labels, ids, "right") - self.starts

    def draw(self, slots: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """K image indices for each slot (an index into `ids`); returns [len(slots), K].

        Without replacement: the K smallest of one uniform key per image of the identity
        (a uniformly random ordered K-subset). With replacement (fewer than K images):
        K uniform picks.
        """
        counts = self.counts[slots]
        out = np.empty((len(slots), k), dtype=np.int64)
        width = max(int(counts.max()), k)
        step = max(1, _KEY_BUDGET // width)
        for lo in range(0, len(slots), step):
            c = counts[lo:lo + step]
            keys = rng.random((len(c), width))
            keys[np.arange(width)[None, :] >= c[:, None]] = np.inf
            without = np.argsort(keys, axis=1)[:, :k]
            with_repl = np.floor(rng.random((len(c), k)) * c[:, None]).astype(np.int64)
            local = np.where((c >= k)[:, None], without, np.minimum(with_repl, c[:, None] - 1))
            out[lo:lo + step] = self.order[self.starts[slots[lo:lo + step], None] + local]
        return out


class CrossModalitySampler:
    """Yields ``(idx_v, idx_i)`` int64 arrays of P*K indices into the visible / infrared sets.

    labels_v, labels_i: training labels per image of each modality.
    num_identities (P), num_instances (K): identities per batch, images per identity and
    modality.
    batches_per_epoch: batches each rank yields per epoch; None gives the baselines' rule
    ceil(max(#V, #I) / (P*K)) // world_size (at least 1).
    rank, world_size: under distributed training each rank draws a disjoint identity
    stream: per epoch, seeded permutations of the identities are cut into groups of P and
    dealt round-robin to the ranks (a new permutation starts when one runs out).

    `set_epoch(e)` selects the epoch (starting it at batch 0 when e is a new epoch);
    iterating yields the remaining batches of the current epoch; `state_dict()` /
    `load_state_dict()` carry (epoch, position) so a resumed run continues at the same
    batch. Iterating an epoch that is already fully consumed replays it from batch 0.
    """

    def __init__(
        self,
        labels_v: np.ndarray,
        labels_i: np.ndarray,
        num_identities: int,
        num_instances: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batches_per_epoch: int | None = None,
    ) -> None:
        self.labels_v = np.asarray(labels_v, dtype=np.int64).reshape(-1)
        self.labels_i = np.asarray(labels_i, dtype=np.int64).reshape(-1)
        self.p, self.k = int(num_identities), int(num_instances)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        if self.p < 1 or self.k < 1:
            raise FMCNetError(
                f"num_identities and num_instances must be at least 1, got P={self.p}, K={self.k}"
            )
        if not 0 <= self.rank < self.world_size:
            raise FMCNetError(f"rank must be in 0..world_size-1, got rank={rank}, "
                              f"world_size={world_size}")
        self.ids = np.intersect1d(self.labels_v, self.labels_i)
        needed = self.p * self.world_size
        if len(self.ids) < needed:
            raise FMCNetError(
                f"the sampler needs at least P x world_size = {needed} identities with images in "
                f"both modalities, found {len(self.ids)}; lower num_identities or use more "
                "training identities"
            )
        self._groups_v = _Groups(self.labels_v, self.ids)
        self._groups_i = _Groups(self.labels_i, self.ids)
        if batches_per_epoch is None:
            total = math.ceil(max(len(self.labels_v), len(self.labels_i)) / (self.p * self.k))
            batches_per_epoch = max(1, total // self.world_size)
        if int(batches_per_epoch) < 1:
            raise FMCNetError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")
        self.batches_per_epoch = int(batches_per_epoch)
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def batch_size(self) -> int:
        """Images per modality in one batch (P x K)."""
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.epoch, self.position = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("seed", self.seed)) != self.seed:
            raise FMCNetError(
                f"the saved sampler state was made with seed={state['seed']}, this sampler has "
                f"seed={self.seed}; resume with the run's own configuration"
            )
        position = int(state["position"])
        if not 0 <= position <= len(self):
            raise FMCNetError(
                f"the saved sampler position {position} is outside this epoch's {len(self)} "
                "batches; was the run resumed with a different batch configuration?"
            )
        self.epoch, self.position = int(state["epoch"]), position

    def epoch_plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """All batches of `epoch` for this rank: (idx_v, idx_i), each [len, P*K] int64."""
        n_ids, p, ws = len(self.ids), self.p, self.world_size
        per_pass = n_ids // (p * ws)  # groups of P each rank gets from one permutation
        passes = math.ceil(len(self) / per_pass)
        order_rng = np.random.default_rng([self.seed, epoch])
        perms = np.argsort(order_rng.random((passes, n_ids)), axis=1)
        groups = perms[:, : per_pass * ws * p].reshape(passes, per_pass, ws, p)
        slots = groups[:, :, self.rank].reshape(-1, p)[: len(self)]  # [batches, P]
        draw_rng = np.random.default_rng([self.seed, epoch, self.rank, ws, 1])
        idx_v = self._groups_v.draw(slots.reshape(-1), self.k, draw_rng)
        idx_i = self._groups_i.draw(slots.reshape(-1), self.k, draw_rng)
        shape = (len(self), p * self.k)
        return idx_v.reshape(shape), idx_i.reshape(shape)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.position >= len(self):
            self.position = 0
        plan_v, plan_i = self.epoch_plan(self.epoch)
        while self.position < len(self):
            b = self.position
            self.position += 1  # counted before yielding: a checkpoint saved now skips it
            yield plan_v[b], plan_i[b]

    def labels_for(self, idx_v: np.ndarray, idx_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training labels of a batch's visible and infrared images."""
        return self.labels_v[idx_v], self.labels_i[idx_i]
