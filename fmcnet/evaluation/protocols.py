"""Evaluation runners: every setting of a `VIDataset` (SYSU-MM01, RegDB, LLCM).

Each image is extracted once per call: features are kept per image path, so SYSU's four
settings (which share the query set and draw their galleries from one pool) cost one
pass over the queries and one over the gallery pool. A trial only re-selects rows
(`EvalSplit.trial_rows(t)`: gallery rows, or query rows for LLCM "visible -> infrared"
under DEEN's rules) of a query x pool distance matrix computed once.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmcnet.data.base import EvalSplit, ImageSet, VIDataset, describe_samplers
from fmcnet.data.cache import load_images
from fmcnet.evaluation import diagnostics as diag
from fmcnet.evaluation.extract import extract_features
from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics
from fmcnet.evaluation.rerank import re_ranking
from fmcnet.utils import FMCNetError, atomic_write_bytes

METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


class _Rows:
    """A lazy row selection of an image array: slicing reads only the selected rows."""

    def __init__(self, images: np.ndarray, rows: np.ndarray) -> None:
        self.images, self.rows = images, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: slice) -> np.ndarray:
        return self.images[self.rows[item]]


class _FeatureStore:
    """Features by (modality, image path); extracts only images not seen before."""

    def __init__(self, extract) -> None:
        self._extract = extract  # (images, modality) -> [n, C] features
        self._rows: dict[tuple[str, str], int] = {}
        self._feats: list[torch.Tensor] = []
        self._sets: dict[tuple[str, tuple[str, ...]], torch.Tensor] = {}

    def features(self, images: ImageSet, load) -> torch.Tensor:
        key = (images.modality, tuple(images.paths))
        if key in self._sets:
            return self._sets[key]
        missing = [i for i, p in enumerate(images.paths) if (images.modality, p) not in self._rows]
        # an ImageSet may list a path twice: extract it once
        first: dict[str, int] = {}
        for i in missing:
            first.setdefault(images.paths[i], i)
        todo = np.asarray(list(first.values()), dtype=np.int64)
        if len(todo):
            pixels = load(images)
            source = pixels if len(todo) == len(images) else _Rows(pixels, todo)
            new = self._extract(source, images.modality)
            base = sum(len(f) for f in self._feats)
            self._feats.append(new)
            for j, i in enumerate(todo):
                self._rows[(images.modality, images.paths[i])] = base + j
        everything = torch.cat(self._feats) if len(self._feats) > 1 else self._feats[0]
        self._feats = [everything]
        index = torch.as_tensor([self._rows[(images.modality, p)] for p in images.paths])
        out = everything[index]
        self._sets[key] = out
        return out


def _select(images: ImageSet, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """pids, cams of the trial's rows of one side (all of them when `rows` is None)."""
    if rows is None:
        return images.pids, images.cams
    return images.pids[rows], images.cams[rows]


def _trial_metrics(
    d: torch.Tensor, split: EvalSplit, q_rows: np.ndarray | None, g_rows: np.ndarray | None,
    max_rank: int,
) -> dict:
    (q_pids, q_cams), (g_pids, g_cams) = _select(split.query, q_rows), _select(split.gallery, g_rows)
    m = rank_metrics(d, q_pids, g_pids, q_cams, g_cams, protocol=split.protocol, max_rank=max_rank)
    cmc = m["cmc"] * 100.0
    return {
        "R1": float(cmc[0]), "R5": float(cmc[4]), "R10": float(cmc[9]), "R20": float(cmc[19]),
        "mAP": m["mAP"] * 100.0, "mINP": m["mINP"] * 100.0, "cmc": cmc.tolist(),
    }


def _take(x: torch.Tensor, rows: np.ndarray | None) -> torch.Tensor:
    return x if rows is None else x[torch.as_tensor(rows, device=x.device)]


def _save_browsable(
    path: Path, split: EvalSplit, qf: torch.Tensor, gf: torch.Tensor, distmat0: torch.Tensor,
    n_trials: int, *, reranked: bool, parts: tuple[dict[str, int], torch.Tensor, torch.Tensor] | None,
) -> None:
    """One setting's `eval/<setting>.npz`, what the ranking browser reads (fmcnet.viz.rankings).

    Trial 0: `q_*` / `g_*` (retrieval features, ids, cameras, paths) and the scored
    distance matrix `distmat` (re-ranked when the evaluation was), so the browser ranks
    trial 0 exactly as the metric did. Every trial: `sampled` ("gallery" | "query") names
    the side the trials draw from; the other side is the trial-0 arrays whole. The union
    of the sampled rows of the `trials` trials is `pool_*` (pids, cams, paths, retrieval
    features) and trial t is `pool_*[trial_rows[trial_offsets[t]:trial_offsets[t + 1]]]`;
    `reranked` says that the browser must re-rank trials > 0. With `parts` (the main
    setting of an FMCNet, whose per-feature retrieval results.json reports): every part
    of `model.extract`, packed (`diagnostics.pack_parts`), for the fixed side
    (`parts_fixed`) and the pool (`parts_pool`), named `part_names` with widths
    `part_widths`, so each feature view can be browsed too. Features are float32, as
    scored (float16 reorders close distances, visibly so for a barely trained model): a
    trial or view ranks as the metric did up to the rounding of one matrix product. Size:
    SYSU-MM01 all-search at the paper's widths (4,096-d retrieval feature) is about 110 MB
    per single-shot setting and 280 MB more for the parts.
    """
    q, g = split.query, split.gallery
    q_rows, g_rows = split.trial_rows(0)
    (q_pids, q_cams), (g_pids, g_cams) = _select(q, q_rows), _select(g, g_rows)
    sampled_set, sampled_feats = (q, qf) if split.sampled == "query" else (g, gf)
    rows = [np.asarray(split.trials[t], dtype=np.int64) for t in range(n_trials)]
    pool, inverse = np.unique(np.concatenate(rows), return_inverse=True)

    def paths(images: ImageSet, rows: np.ndarray | None) -> np.ndarray:
        return np.asarray(images.paths if rows is None else [images.paths[i] for i in rows],
                          dtype=str)

    extra: dict[str, np.ndarray] = {}
    if parts is not None:
        widths, q_packed, g_packed = parts
        fixed, pooled = (g_packed, q_packed) if split.sampled == "query" else (q_packed, g_packed)
        extra = dict(part_names=np.asarray(list(widths), dtype=str),
                     part_widths=np.asarray(list(widths.values()), dtype=np.int64),
                     parts_fixed=fixed.float().cpu().numpy(),
                     parts_pool=_take(pooled, pool).float().cpu().numpy())
    buf = io.BytesIO()
    np.savez(
        buf,
        q_feats=_take(qf, q_rows).float().cpu().numpy(),
        g_feats=_take(gf, g_rows).float().cpu().numpy(),
        q_pids=q_pids.astype(np.int64), g_pids=g_pids.astype(np.int64),
        q_cams=q_cams.astype(np.int64), g_cams=g_cams.astype(np.int64),
        q_paths=paths(q, q_rows), g_paths=paths(g, g_rows),
        # stored: LLCM "visible_to_infrared" under DEEN's rules has infrared queries
        q_modality=np.asarray(q.modality), g_modality=np.asarray(g.modality),
        protocol=np.asarray(split.protocol), setting=np.asarray(split.name),
        distmat=distmat0.float().cpu().numpy(),
        sampled=np.asarray(split.sampled), reranked=np.asarray(bool(reranked)),
        pool_pids=sampled_set.pids[pool].astype(np.int64),
        pool_cams=sampled_set.cams[pool].astype(np.int64),
        pool_paths=paths(sampled_set, pool),
        pool_feats=_take(sampled_feats, pool).float().cpu().numpy(),
        trial_rows=inverse.astype(np.int64),
        trial_offsets=np.cumsum([0] + [len(r) for r in rows]).astype(np.int64),
        **extra,
    )
    atomic_write_bytes(path, buf.getvalue())


def _summary(per_trial: list[dict]) -> dict[str, Any]:
    table = np.asarray([[t[k] for k in METRICS] for t in per_trial], dtype=np.float64)
    out: dict[str, Any] = dict(zip(METRICS, table.mean(0).tolist()))
    # population std: 0 for a single trial rather than undefined
    out["std"] = dict(zip(METRICS, table.std(0).tolist()))
    out["cmc"] = np.mean([t["cmc"] for t in per_trial], axis=0).tolist()  # for CMC figures
    out["per_trial"] = per_trial
    return out


def evaluate_dataset(
    model: torch.nn.Module,
    dataset: VIDataset,
    cfg,
    *,
    device: torch.device | str | None = None,
    settings: Sequence[str] | None = None,
    trials: int | None = None,
    tta: bool | None = None,
    rerank: bool | None = None,
    save_dir: str | Path | None = None,
    progress: bool = True,
    diagnostics: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on every setting (or the named `settings`) of `dataset`.

    Returns ``{"settings": {name: {R1, R5, R10, R20, mAP, mINP (percent, mean over
    trials), "std": {...}, "per_trial": [...]}}, "trials": n, "tta", "rerank",
    "sampler", "samplers": {name: sampler}, "precision": "fp32" | "bf16"}``. `trials`,
    `tta`, `rerank` default to the config; features are fp32 unless ``cfg.eval_amp``
    (bf16 autocast, CUDA only). `device` defaults to the model's; a given device moves
    the model there. With `save_dir`, each setting is written to
    ``save_dir/<setting with '/' -> '_'>.npz`` for the ranking browser: trial 0's scored
    distances, the features of every trial's images and, for the main setting of an
    FMCNet, every feature part (`_save_browsable`). With
    `diagnostics` and an FMCNet, the result also holds "features": the retrieval of each
    feature on its own in the main setting (`features_setting`), from the same
    extraction (`fmcnet.evaluation.diagnostics`).
    """
    trials = cfg.trials if trials is None else int(trials)
    tta = cfg.tta if tta is None else bool(tta)
    rerank = cfg.rerank if rerank is None else bool(rerank)
    max_rank = max(int(getattr(cfg, "max_rank", 20)), 20)  # R20 is always reported
    if trials < 1:
        raise FMCNetError(f"trials must be at least 1, got {trials}")
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    else:
        device = torch.device(device)
        model.to(device)
    eval_amp = bool(cfg.eval_amp)
    cpu_amp = bool(getattr(cfg, "cpu_amp", False))
    bf16 = eval_amp and (device.type == "cuda" or (device.type == "cpu" and cpu_amp))
    precision = "bf16" if bf16 else "fp32"  # autocast: CUDA, or the CPU with cpu_amp

    names = list(dataset.splits) if settings is None else list(settings)
    unknown = [n for n in names if n not in dataset.splits]
    if unknown:
        raise FMCNetError(
            f"{dataset.name} has no evaluation setting(s) {unknown}; "
            f"available: {sorted(dataset.splits)}"
        )

    # Diagnostics need every part of FMCNet.extract: the store then keeps them packed in
    # one tensor per image (diagnostics.pack_parts) and the retrieval feature is read from it.
    parts = diagnostics and diag.diagnosable(model)

    def extract(images, modality: str) -> torch.Tensor:
        out = extract_features(
            model, images, modality, device=device, batch_size=cfg.eval_batch_size, tta=tta,
            amp=eval_amp, cpu_amp=cpu_amp, channels_last=cfg.channels_last,
            progress=progress, parts=parts,
        )
        return diag.pack_parts(out, model) if parts else out

    def load(images: ImageSet) -> np.ndarray:
        return load_images(images, (cfg.height, cfg.width), progress=progress)

    store = _FeatureStore(extract)
    distances: dict[tuple[int, int], torch.Tensor] = {}
    results: dict[str, Any] = {}
    features: dict[str, Any] = {}
    used = 0
    for name in names:
        split = dataset.splits[name]
        qf, gf = store.features(split.query, load), store.features(split.gallery, load)
        key = (id(qf), id(gf))  # the store returns one tensor per distinct image set
        saved_parts = None  # the packed parts the browser gets, main setting only
        if parts:
            if name == diag.main_setting(dataset):
                features = diag.feature_retrieval(qf, gf, split, model, trials=trials,
                                                  device=device)
                saved_parts = (diag.part_widths(model), qf, gf)
            qf, gf = diag.retrieval_part(qf, model), diag.retrieval_part(gf, model)
        n = min(trials, len(split.trials))
        if n == 0:
            raise FMCNetError(f"setting {name!r} of {dataset.name} has no gallery trials")
        used = max(used, n)
        if not rerank and key not in distances:
            distances[key] = pairwise_distance(qf.to(device), gf.to(device))
        per_trial = []
        for t in range(n):
            q_rows, g_rows = split.trial_rows(t)
            if rerank:  # re-ranking depends on the whole gallery: recomputed per trial
                d = re_ranking(_take(qf, q_rows).to(device), _take(gf, g_rows).to(device))
            else:
                d = _take(distances[key], q_rows)
                if g_rows is not None:
                    d = d[:, torch.as_tensor(g_rows, device=d.device)]
            per_trial.append(_trial_metrics(d, split, q_rows, g_rows, max_rank))
            if t == 0 and save_dir is not None:
                path = Path(save_dir) / f"{name.replace('/', '_')}.npz"
                _save_browsable(path, split, qf, gf, d, n, reranked=rerank, parts=saved_parts)
        results[name] = _summary(per_trial)
    samplers = {name: dataset.splits[name].sampler for name in names}
    out = {
        "settings": results, "trials": used, "tta": tta, "rerank": rerank,
        "sampler": describe_samplers({n: dataset.splits[n] for n in names}),
        "samplers": samplers, "precision": precision,
    }
    if features:
        out["features"], out["features_setting"] = features, diag.main_setting(dataset)
    return out
