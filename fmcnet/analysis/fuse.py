"""Notebook 03 -- SFF: the fusion weights omega (Eq. 15) and what fusion does to retrieval."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.config import Config
from fmcnet.data.base import EvalSplit, VIDataset
from fmcnet.utils import FMCNetError

if TYPE_CHECKING:
    import pandas as pd


def omega_history(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The SFF weights over training: columns "w1 (V)", "w2 (V)", "w1 (I)", "w2 (I)"."""
    import pandas as pd

    rows = []
    for r in records:
        row = {"step": r.get("global_step")}
        for k, v in r.items():
            if k.startswith("omega/"):
                parts = k.split("/")  # omega/sff/omega_v/1
                m = "V" if parts[-2].endswith("_v") else "I"
                row[f"w{parts[-1]} ({m})"] = v
        if len(row) > 1:
            rows.append(row)
    if not rows:
        raise FMCNetError("no omega values in these records: was the run trained with fusion=sff?")
    return pd.DataFrame(rows).set_index("step")


def feature_variants(parts: Mapping[str, torch.Tensor | np.ndarray]) -> dict[str, torch.Tensor]:
    """Retrieval features one can build from `model.extract` parts of one image batch.

    F_sh (Base), F_sp, Cat(F_sh, F_sp) (no compensation), Cat(F_sh, F_sp, F'_sp) (Table 2's
    plain concatenation), F_fu = w1 F_sp + w2 F'_sp and F_fp = Cat(F_sh, F_fu) (SFF).
    """
    p = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v).float()
         for k, v in parts.items()}
    out = {"F_sh": p["shared"]}
    if "specific" in p:
        out["F_sp"] = p["specific"]
        out["Cat(F_sh, F_sp)"] = torch.cat([p["shared"], p["specific"]], 1)
    if "generated" in p:
        out["Cat(F_sh, F_sp, F'_sp)"] = torch.cat([p["shared"], p["specific"], p["generated"]], 1)
    if "fused" in p and p["fused"].shape[1] == 2 * p["shared"].shape[1]:
        out["F_fu = w1 F_sp + w2 F'_sp"] = p["fused"][:, p["shared"].shape[1]:]
        out["F_fp = Cat(F_sh, F_fu)"] = p["fused"]
    return out


def retrieval_table(q_parts: Mapping[str, Any], g_parts: Mapping[str, Any], split: EvalSplit,
                    *, trials: int | None = None, max_rank: int = 20) -> pd.DataFrame:
    """R1 / R10 / mAP / mINP (percent, mean over trials) of each feature variant on `split`.

    `q_parts` / `g_parts`: `model.extract` parts of the split's queries and whole gallery
    pool; each trial selects its rows (`EvalSplit.trial_rows`), as `evaluate_dataset` does.
    """
    import pandas as pd

    from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

    qv, gv = feature_variants(q_parts), feature_variants(g_parts)
    n = len(split.trials) if trials is None else min(trials, len(split.trials))
    q, g = split.query, split.gallery
    rows = {}
    for name in qv:
        d = pairwise_distance(qv[name], gv[name])
        per = []
        for t in range(n):
            qr, gr = (np.arange(len(x)) if r is None else r
                      for x, r in zip((q, g), split.trial_rows(t)))
            m = rank_metrics(d[torch.as_tensor(qr)][:, torch.as_tensor(gr)], q.pids[qr],
                             g.pids[gr], q.cams[qr], g.cams[gr], protocol=split.protocol,
                             max_rank=max_rank)
            per.append([m["cmc"][0], m["cmc"][min(9, max_rank - 1)], m["mAP"], m["mINP"]])
        rows[name] = dict(zip(("R1", "R10", "mAP", "mINP"), (100 * np.mean(per, 0)).tolist()))
    return pd.DataFrame(rows).T


def fusion_retrieval(model: torch.nn.Module, dataset: VIDataset, cfg: Config, *,
                     setting: str | None = None, trials: int | None = None
                     ) -> pd.DataFrame:
    """`retrieval_table` for a trained model on one evaluation setting (default: the first)."""
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.utils import pick_device

    name = setting or next(iter(dataset.splits))
    split = dataset.splits[name]
    device = pick_device(cfg.device)
    parts = [
        extract_features(model, load_images(s, cfg.image_size, progress=False), s.modality,
                         device=device, batch_size=cfg.eval_batch_size, amp=cfg.eval_amp,
                         parts=True)
        for s in (split.query, split.gallery)
    ]
    return retrieval_table(parts[0], parts[1], split, trials=trials or cfg.trials,
                           max_rank=max(cfg.max_rank, 20))
