"""Mechanism diagnostics: how well each of FMCNet's features retrieves on its own.

The question a reader of the paper asks first: does the fused feature beat the shared
one, are the specific features really modality-specific, does the generator's feature
land where the real one is? `feature_retrieval` answers it for the main evaluation
setting from the features the evaluation has already extracted (no second pass):
`evaluate_dataset` keeps every part of `FMCNet.extract` packed in one tensor per image
set (`pack_parts`), and the retrieval feature is read from it (`retrieval_part`).

Every view is L2-normalised and ranked by Euclidean distance, as the retrieval feature
is, under the same protocol and the same gallery trials as the main table (with TTA when
the evaluation uses it; never re-ranked, so with `rerank` "fused" differs from the main
table). The views
(docs/method_readings.md, "What each feature retrieves"), for a query of modality q and a
gallery of modality g:

* ``shared``   -- F_sh,q vs F_sh,g: the modality-shared feature alone (Table 2's Base).
* ``specific`` -- the specific part of the retrieval feature, like with like: F_fu =
  w1 * V-specific + w2 * I-specific (SFF) or Cat(V-specific, I-specific) (concat); each
  image has its own modality's real kind and the other's generated kind.
* ``fused``    -- the retrieval feature itself (F_fp for SFF): equals the main table.
* ``specific_real`` -- F_sp,q vs F_sp,g, real specific features of *different* kinds
  (V-specific against I-specific). Decomposition works when this is poor: a specific
  feature that matches across modalities carries shared information.
* ``generated`` -- the query's generated feature of the gallery's kind vs the gallery's
  real one (an infrared query's F'_sp,V = G_{I->V}(F_sh,I) vs F_sp,V): FMC's job.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fmcnet.data.base import EvalSplit, VIDataset
from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

PART_NAMES = ("shared", "specific", "generated", "fused")  # FMCNet.extract keys, packed order


def diagnosable(model: torch.nn.Module) -> bool:
    """Whether `model` is an FMCNet (has the parts the diagnostics read)."""
    from fmcnet.model import FMCNet

    return isinstance(model, FMCNet)


def part_widths(model: Any) -> dict[str, int]:
    """Width of each part `model.extract` returns, in packed order."""
    dim = model.sfd.dim
    widths = {"shared": dim}
    if model.sfd.specific:
        widths["specific"] = dim
    if model.fmc is not None:
        widths["generated"] = dim
    if model.fusion != "none":
        widths["fused"] = model.feature_dim
    return widths


def pack_parts(parts: dict[str, torch.Tensor], model: Any) -> torch.Tensor:
    """`model.extract` parts (not normalised) -> one [N, sum of widths] tensor."""
    return torch.cat([parts[k] for k in part_widths(model)], dim=1)


def unpack_parts(packed: torch.Tensor, model: Any) -> dict[str, torch.Tensor]:
    """The inverse of `pack_parts` (views, no copy)."""
    out, start = {}, 0
    for name, width in part_widths(model).items():
        out[name] = packed[:, start:start + width]
        start += width
    return out


def retrieval_part(packed: torch.Tensor, model: Any) -> torch.Tensor:
    """The L2-normalised retrieval feature (what `model.embed` gives) from packed parts."""
    parts = unpack_parts(packed, model)
    return F.normalize(parts["fused"] if "fused" in parts else parts["shared"], dim=1)


def main_setting(dataset: VIDataset) -> str:
    """The setting the diagnostics report: the first of the dataset's table (SYSU layout:
    all-search single-shot; RegDB: visible->infrared; LLCM: its first direction)."""
    return next(iter(dataset.splits))


def feature_views(q: dict[str, torch.Tensor], g: dict[str, torch.Tensor], model: Any
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{view: (query features, gallery features)} for the views the model has."""
    views = {"shared": (q["shared"], g["shared"])}
    if "fused" in q:
        dim = q["shared"].shape[1]
        views["specific"] = (q["fused"][:, dim:], g["fused"][:, dim:])
        views["fused"] = (q["fused"], g["fused"])
    if "specific" in q:
        views["specific_real"] = (q["specific"], g["specific"])
    if "generated" in q:
        views["generated"] = (q["generated"], g["specific"])
    return views


def view_distance(qf: torch.Tensor, gf: torch.Tensor,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Distances of one view, [Q, G]: its features L2-normalised, then `pairwise_distance`
    (what the diagnostics score and the ranking browser ranks)."""
    return pairwise_distance(F.normalize(qf.float(), dim=1).to(device),
                             F.normalize(gf.float(), dim=1).to(device))


def _retrieval(qf: torch.Tensor, gf: torch.Tensor, split: EvalSplit, trials: int,
               device: torch.device) -> dict[str, float]:
    d = view_distance(qf, gf, device)
    r1, m_ap = [], []
    for t in range(trials):
        q_rows, g_rows = split.trial_rows(t)  # one side sampled, the other whole
        q = slice(None) if q_rows is None else q_rows
        g = slice(None) if g_rows is None else g_rows
        d_t = d
        if q_rows is not None:
            d_t = d_t[torch.as_tensor(q_rows, device=device)]
        if g_rows is not None:
            d_t = d_t[:, torch.as_tensor(g_rows, device=device)]
        m = rank_metrics(d_t, split.query.pids[q], split.gallery.pids[g], split.query.cams[q],
                         split.gallery.cams[g], protocol=split.protocol, max_rank=1)
        r1.append(100.0 * float(m["cmc"][0]))
        m_ap.append(100.0 * float(m["mAP"]))
    return {"R1": round(float(np.mean(r1)), 4), "mAP": round(float(np.mean(m_ap)), 4)}


def feature_retrieval(q_packed: torch.Tensor, g_packed: torch.Tensor, split: EvalSplit,
                      model: Any, *, trials: int, device: torch.device | str = "cpu"
                      ) -> dict[str, dict[str, float]]:
    """{view: {"R1", "mAP"}} (percent, mean over the first `trials` gallery trials of
    `split`) for each view of the module docstring that the model has."""
    q, g = unpack_parts(q_packed, model), unpack_parts(g_packed, model)
    n = min(trials, len(split.trials))
    return {name: _retrieval(qf, gf, split, n, torch.device(device))
            for name, (qf, gf) in feature_views(q, g, model).items()}
