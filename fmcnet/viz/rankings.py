"""What the ranking browser shows, without widgets: runs, trials, features, per-query numbers.

One source for rankings: every list, removal and verdict is
`fmcnet.evaluation.metrics.ranking` of one (setting, gallery trial, feature) of a run --
the function `rank_metrics` scores -- and the per-query numbers are read from that
`Ranking` with the definitions `rank_metrics` uses (AP: `figures.per_query_ap`; INP:
true matches / rank of the last one; R1: the first kept item is a true match, which under
the distinct-identity CMC of SYSU-MM01 / LLCM is the same event). Nothing here filters
the gallery by the protocol's rules itself.

Inputs (`SettingData`): a run folder's `eval/<setting>.npz` (what
`fmcnet.evaluation.protocols._save_browsable` writes) or arrays. Trial 0 of the retrieval
feature ranks the scored distance matrix; other trials and the feature views (the
diagnostics' `shared`, `specific`, `specific_real`, `generated`, from the saved parts)
rank `pairwise_distance` of the saved float16 features, re-ranked with
`fmcnet.evaluation.rerank.re_ranking` when the run was evaluated so.

Everything on the per-query path is vectorised over queries (numpy on the `Ranking`'s
[Q, G] arrays); the per-query functions (`tiles`, `true_matches`) touch one row. The
per-query table that filters, orders and exports them is `fmcnet.viz.query_table`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmcnet.evaluation import diagnostics as diag
from fmcnet.evaluation.metrics import Ranking, pairwise_distance, ranking
from fmcnet.run_files import read_eval, read_eval_array, read_results
from fmcnet.utils import FMCNetError
from fmcnet.viz.figures import ImageSource, as_image_source, first_match_rank, per_query_ap

RETRIEVAL = "retrieval"  # the feature the run is scored on (F_fp for the full model)
# diagnostics views offered besides the retrieval feature ("fused" *is* the retrieval one)
VIEWS = ("shared", "specific", "specific_real", "generated")


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def per_query_inp(rk: Ranking, *, chunk: int = 1024) -> np.ndarray:
    """INP of every query (true matches / 1-based kept rank of the last one); NaN if none.

    The mean over the non-NaN entries is `rank_metrics(...)["mINP"]` (tested).
    """
    n_q, n_g = rk.order.shape
    out = np.full(n_q, np.nan)
    for s in range(0, n_q, chunk):
        keep, hit = rk.keep[s:s + chunk], rk.matches[s:s + chunk] & rk.keep[s:s + chunk]
        n_rel = hit.sum(1)
        last = n_g - 1 - hit[:, ::-1].argmax(1)
        pos = np.cumsum(keep, axis=1, dtype=np.int64)[np.arange(len(last)), last]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + chunk] = np.where(n_rel > 0, n_rel / np.maximum(pos, 1), np.nan)
    return out


class Side:
    """The images one side of a setting can draw from: ids, cameras, images, features.

    Features (`feats`, the retrieval feature) and packed parts (`parts`) are arrays, or
    read from `source` (an npz file and the two keys) on first use: opening a run reads
    ids, paths and trial 0's distances only.
    """

    def __init__(self, pids: np.ndarray, cams: np.ndarray, images: ImageSource, paths: list[str],
                 feats: np.ndarray | None = None, parts: np.ndarray | None = None, *,
                 source: tuple[Path, str, str] | None = None):
        self.pids, self.cams, self.images, self.paths = pids, cams, images, paths
        self._arrays = {"feats": feats, "parts": parts}
        self._source = source

    def _get(self, what: str) -> np.ndarray | None:
        if self._arrays[what] is None and self._source is not None:
            path, *keys = self._source
            key = keys[0] if what == "feats" else keys[1]
            if key:
                self._arrays[what] = read_eval_array(path, key)
        return self._arrays[what]

    @property
    def feats(self) -> np.ndarray | None:
        return self._get("feats")

    @property
    def parts(self) -> np.ndarray | None:
        return self._get("parts")

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.pids[rows], self.cams[rows]


@dataclass
class Ranked:
    """One (setting, trial, feature) of a run: the metric's ranking and per-query numbers.

    Query / gallery numbers are positions in this trial's lists; `q_rows` / `g_rows`
    map them to the setting's `query` / `gallery` sides (images, paths).
    """

    ranking: Ranking
    distmat: np.ndarray
    q_rows: np.ndarray
    g_rows: np.ndarray
    q_pids: np.ndarray
    q_cams: np.ndarray
    g_pids: np.ndarray
    g_cams: np.ndarray
    protocol: str
    ap: np.ndarray = field(init=False)  # NaN: no true match kept (left out of the metrics)
    first: np.ndarray = field(init=False)  # 1-based kept rank of the first true match; 0: none
    inp: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.ap = per_query_ap(self.ranking)
        self.first = first_match_rank(self.ranking)
        self.inp = per_query_inp(self.ranking)

    @property
    def valid(self) -> np.ndarray:
        return self.first > 0

    @property
    def failures(self) -> np.ndarray:
        """Valid queries whose rank-1 kept item is not a true match."""
        return self.first > 1

    def summary(self, queries: np.ndarray) -> dict[str, Any]:
        """R1, mAP, mINP (fractions; NaN without a valid query) over `queries`, with counts.

        Equal to `rank_metrics` on those queries' rows (tested): the means run over the
        queries with a true match, as the metric's do.
        """
        qs = np.asarray(queries, np.int64)
        valid = qs[self.valid[qs]]
        n = len(valid)
        mean = (lambda x: float(np.mean(x)) if n else float("nan"))  # noqa: E731
        return {"queries": int(len(qs)), "valid": n, "failures": int(self.failures[qs].sum()),
                "R1": mean(self.first[valid] == 1), "mAP": mean(self.ap[valid]),
                "mINP": mean(self.inp[valid])}

    def tiles(self, q: int, k: int) -> list[dict[str, Any]]:
        """Query q's first k kept gallery items: gallery, rank, distance, pid, cam, match."""
        keep = self.ranking.keep[q]
        idx, match = self.ranking.order[q][keep][:k], self.ranking.matches[q][keep][:k]
        return [{"gallery": int(g), "rank": r + 1, "distance": float(self.distmat[q, g]),
                 "pid": int(self.g_pids[g]), "cam": int(self.g_cams[g]), "match": bool(m)}
                for r, (g, m) in enumerate(zip(idx.tolist(), match.tolist()))]

    def true_matches(self, q: int) -> list[dict[str, Any]]:
        """Every kept true match of query q, in ranked order, with its kept rank."""
        keep, hit = self.ranking.keep[q], self.ranking.matches[q]
        pos = np.cumsum(keep)
        cols = np.flatnonzero(hit & keep)
        return [{"gallery": int(self.ranking.order[q, c]), "rank": int(pos[c]),
                 "distance": float(self.distmat[q, self.ranking.order[q, c]])}
                for c in cols.tolist()]

    def removed_matches(self, q: int) -> list[dict[str, Any]]:
        """Gallery images of query q's identity that the protocol removed (SYSU-MM01: cam2
        for a cam3 query; LLCM: same camera), with their place in the unfiltered list."""
        order = self.ranking.order[q]
        cols = np.flatnonzero(~self.ranking.keep[q] & (self.g_pids[order] == self.q_pids[q]))
        return [{"gallery": int(order[c]), "position": int(c) + 1,
                 "distance": float(self.distmat[q, order[c]])} for c in cols.tolist()]


@dataclass
class SettingData:
    """One evaluation setting of one run, every saved trial and feature of it.

    The `sampled` side ("gallery", or "query" for LLCM visible->infrared under DEEN's
    rules) draws trial t's rows `trials[t]` from its `Side`; the other side is used whole.
    """

    name: str
    protocol: str
    query: Side
    gallery: Side
    trials: list[np.ndarray]
    sampled: str = "gallery"
    distmat0: np.ndarray | None = None  # trial 0's scored distances (retrieval feature)
    reranked: bool = False
    part_widths: dict[str, int] | None = None
    q_modality: str = "infrared"
    g_modality: str = "visible"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def features(self) -> list[str]:
        """The retrieval feature, then each diagnostics view the saved parts give."""
        if not self.part_widths:
            return [RETRIEVAL]
        probe = diag.feature_views(*(self._unpack(s, None) for s in (self.query, self.gallery)),
                                   None)
        return [RETRIEVAL] + [v for v in VIEWS if v in probe]

    def rows(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(query rows, gallery rows) of trial t into the two sides."""
        if not 0 <= t < self.n_trials:
            raise FMCNetError(f"setting {self.name!r} has {self.n_trials} saved trial(s) "
                              f"(0..{self.n_trials - 1}); trial {t} does not exist")
        sampled = np.asarray(self.trials[t], np.int64)
        if self.sampled == "query":
            return sampled, np.arange(len(self.gallery.pids))
        return np.arange(len(self.query.pids)), sampled

    def _unpack(self, side: Side, rows: np.ndarray | None) -> dict[str, torch.Tensor]:
        """Parts by name of `rows` of `side` (None: an empty batch, for the names only)."""
        assert self.part_widths
        if rows is None:
            packed = torch.zeros(0, sum(self.part_widths.values()))
        else:
            assert side.parts is not None
            packed = torch.from_numpy(side.parts[rows].astype(np.float32))
        out, start = {}, 0
        for name, width in self.part_widths.items():
            out[name] = packed[:, start:start + width]
            start += width
        return out

    def distances(self, feature: str, t: int) -> np.ndarray:
        """The [Q_t, G_t] distances that `ranked(feature, t)` ranks (float32)."""
        q_rows, g_rows = self.rows(t)
        if feature == RETRIEVAL:
            if t == 0 and self.distmat0 is not None:
                return self.distmat0
            if self.query.feats is None or self.gallery.feats is None:
                raise FMCNetError(f"setting {self.name!r}: no saved features for trial {t}; "
                                  "re-run the evaluation to save every trial")
            qf = torch.from_numpy(self.query.feats[q_rows].astype(np.float32))
            gf = torch.from_numpy(self.gallery.feats[g_rows].astype(np.float32))
            if self.reranked:  # the evaluation scored re-ranked distances: so does this
                from fmcnet.evaluation.rerank import re_ranking

                return _numpy(re_ranking(qf, gf)).astype(np.float32)
            return pairwise_distance(qf, gf).numpy()
        if feature not in self.features:
            raise FMCNetError(f"setting {self.name!r} has no saved feature {feature!r}; "
                              f"saved: {self.features}")
        q, g = self._unpack(self.query, q_rows), self._unpack(self.gallery, g_rows)
        qf, gf = diag.feature_views(q, g, None)[feature]
        return diag.view_distance(qf, gf).numpy()

    def ranked(self, feature: str, t: int) -> Ranked:
        """The metric's ranking of (feature, trial t), computed once."""
        key = (feature, int(t))
        if key not in self._cache:
            q_rows, g_rows = self.rows(t)
            d = self.distances(feature, t)
            (qp, qc), (gp, gc) = self.query.take(q_rows), self.gallery.take(g_rows)
            rk = ranking(d, qp, gp, qc, gc, protocol=self.protocol)
            self._cache[key] = Ranked(rk, d, q_rows, g_rows, qp, qc, gp, gc, self.protocol)
        return self._cache[key]

    def same_images(self, other: SettingData, t: int) -> str:
        """"" when `other` ranks the same queries against the same gallery in trial t,
        else what differs (for the comparison view)."""
        if other.n_trials <= t:
            return f"it has {other.n_trials} saved trial(s), not trial {t}"
        for side in ("query", "gallery"):
            mine, theirs = getattr(self, side), getattr(other, side)
            r_m = self.rows(t)[side == "gallery"]
            r_t = other.rows(t)[side == "gallery"]
            if len(r_m) != len(r_t):
                return f"its trial {t} has {len(r_t)} {side} images, not {len(r_m)}"
            pm, pt = np.asarray(mine.paths)[r_m], np.asarray(theirs.paths)[r_t]
            if (pm != "").all() and (pt != "").all() and not np.array_equal(pm, pt):
                return f"its trial-{t} {side} holds other images"
            if not (np.array_equal(mine.pids[r_m], theirs.pids[r_t])
                    and np.array_equal(mine.cams[r_m], theirs.cams[r_t])):
                return f"its trial-{t} {side} holds other identities or cameras"
        return ""


# ---------------------------------------------------------------------------------------
# Building settings
# ---------------------------------------------------------------------------------------
def _modalities(setting: str, z: Any) -> tuple[str, str]:
    """Query / gallery modality of a saved setting: stored keys, else the setting's name."""
    if "q_modality" in z and "g_modality" in z:
        return str(z["q_modality"]), str(z["g_modality"])
    s = setting.lower()
    if s.startswith(("visible_to", "v2i", "v2t")) or "visible_to_infrared" in s:
        return "visible", "infrared"
    return "infrared", "visible"  # SYSU / LLCM default: the paper's infrared -> visible


REQUIRED = ("q_pids", "g_pids", "q_cams", "g_cams", "q_paths", "g_paths")


def load_setting(path: str | os.PathLike, run_dir: str | os.PathLike) -> SettingData:
    """A run's `eval/<setting>.npz` (any version: one saved before trials and parts were
    saved browses trial 0 of the retrieval feature)."""
    path, run_dir = Path(path), Path(run_dir)
    big = ("q_feats", "g_feats", "pool_feats", "parts_fixed", "parts_pool")
    # ids, paths, trial rows and trial 0's distances now; features on first use
    z, files = read_eval(path, skip=big)
    missing = [k for k in REQUIRED if k not in z]
    if missing or not ("distmat" in z or {"q_feats", "g_feats"} <= files):
        raise FMCNetError(f"{path} lacks {missing or 'distmat or q_feats/g_feats'}; re-run the "
                          "evaluation (python -m fmcnet evaluate) to rewrite it")
    setting = str(z["setting"]) if "setting" in z else path.stem
    q_mod, g_mod = _modalities(setting, z)
    sampled = str(z.get("sampled", "gallery"))
    has_parts = "part_names" in z

    def side(prefix: str, feats: str, parts: str) -> Side:
        paths = [str(p) for p in z[f"{prefix}_paths"]]
        return Side(z[f"{prefix}_pids"].astype(np.int64), z[f"{prefix}_cams"].astype(np.int64),
                    ImageSource(paths, root=run_dir), paths,
                    source=(path, feats if feats in files else "", parts if has_parts else ""))

    fixed_prefix, sampled_prefix = ("g", "q") if sampled == "query" else ("q", "g")
    fixed = side(fixed_prefix, f"{fixed_prefix}_feats", "parts_fixed")
    if "pool_pids" in z:
        pool = side("pool", "pool_feats", "parts_pool")
        off = z["trial_offsets"]
        trials = [z["trial_rows"][off[t]:off[t + 1]] for t in range(len(off) - 1)]
    else:  # saved before every trial was: trial 0 only
        pool = side(sampled_prefix, f"{sampled_prefix}_feats", "")
        trials = [np.arange(len(pool.pids))]
    widths = None
    if has_parts:
        widths = dict(zip([str(n) for n in z["part_names"]], z["part_widths"].tolist()))
    query, gallery = (pool, fixed) if sampled == "query" else (fixed, pool)
    dist = z.get("distmat")
    if dist is None:  # very old files: features only
        assert query.feats is not None and gallery.feats is not None
        dist = pairwise_distance(query.feats.astype(np.float32),
                                 gallery.feats.astype(np.float32)).numpy()
    return SettingData(setting, str(z.get("protocol", "sysu")), query, gallery, trials, sampled,
                       dist.astype(np.float32, copy=False), bool(z.get("reranked", False)),
                       widths, q_mod, g_mod)


def load_run(run_dir: str | os.PathLike) -> dict[str, SettingData]:
    """{setting: SettingData} of every `run_dir/eval/*.npz` the evaluation wrote."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / "eval").glob("*.npz"))
    if not files:
        raise FMCNetError(f"{run_dir} has no eval/*.npz files; evaluate the run first "
                          f"(python -m fmcnet evaluate) so the browser has rankings to show")
    settings = {s.name: s for s in (load_setting(f, run_dir) for f in files)}
    # the evaluation's order (the main setting first), not the files' names
    order = list((read_results(run_dir, missing_ok=True) or {}).get("settings") or [])
    first = [n for n in order if n in settings]
    return {n: settings[n] for n in first + [n for n in settings if n not in first]}


def setting_from_arrays(name: str, *, q_feats: Any = None, g_feats: Any = None,
                        distmat: Any = None, q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any,
                        q_images: Any, g_images: Any, protocol: str,
                        q_modality: str = "infrared", g_modality: str = "visible") -> SettingData:
    """One setting, one trial, the retrieval feature: from distances or features and images
    (a uint8 [N, H, W, 3] array or a list of file paths per side)."""
    if distmat is None:
        if q_feats is None or g_feats is None:
            raise FMCNetError("give either distmat or both q_feats and g_feats")
        distmat = pairwise_distance(q_feats, g_feats)
    distmat = _numpy(distmat).astype(np.float32, copy=False)
    q_pids, g_pids = _numpy(q_pids).astype(np.int64), _numpy(g_pids).astype(np.int64)
    q_cams, g_cams = _numpy(q_cams).astype(np.int64), _numpy(g_cams).astype(np.int64)
    qi, gi = as_image_source(q_images), as_image_source(g_images)
    if distmat.shape != (len(q_pids), len(g_pids)):
        raise FMCNetError(f"setting {name!r}: distances have shape {distmat.shape}, but there are "
                          f"{len(q_pids)} query and {len(g_pids)} gallery ids")
    if len(qi) != len(q_pids) or len(gi) != len(g_pids):
        raise FMCNetError(f"setting {name!r}: {len(qi)} query / {len(gi)} gallery images for "
                          f"{len(q_pids)} / {len(g_pids)} ids")

    def side(pids, cams, images: ImageSource, feats) -> Side:
        return Side(pids, cams, images, images.paths or [""] * len(pids),
                    None if feats is None else _numpy(feats))

    return SettingData(name, protocol, side(q_pids, q_cams, qi, q_feats),
                       side(g_pids, g_cams, gi, g_feats), [np.arange(len(g_pids))],
                       distmat0=distmat, q_modality=q_modality, g_modality=g_modality)
