"""Evaluating a run: the validation mAP during training, the full evaluation of a
finished model (results.json, results.md, eval/*.npz), the folder a later evaluation
writes to, and the mean over RegDB's per-trial models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmcnet.config import Config
from fmcnet.data.base import VIDataset
from fmcnet.model import FMCNet
from fmcnet.model.backbone import weights_source
from fmcnet.utils import atomic_write_json, atomic_write_text, git_commit


def validation_map(model: FMCNet, dataset: VIDataset, cfg: Config, device: torch.device) -> float:
    """mAP (percent) of infrared->visible retrieval among the held-out val identities."""
    from fmcnet.data.cache import load_images
    from fmcnet.evaluation.extract import extract_features
    from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics

    size = (cfg.height, cfg.width)
    feats = {}
    for name, images in (("q", dataset.val.infrared), ("g", dataset.val.visible)):
        feats[name] = extract_features(
            model, load_images(images, size, progress=False), images.modality, device=device,
            batch_size=cfg.eval_batch_size, amp=cfg.eval_amp, cpu_amp=cfg.cpu_amp,
        )
    q, g = dataset.val.infrared, dataset.val.visible
    dist_qg = pairwise_distance(feats["q"], feats["g"])
    metrics = rank_metrics(dist_qg, q.pids, g.pids, q.cams, g.cams, protocol="sysu",
                           max_rank=cfg.max_rank)
    model.train()
    return 100.0 * metrics["mAP"]


def evaluate_run(
    model: FMCNet, dataset: VIDataset, cfg: Config, run_dir: Path, *, device: torch.device,
    selection: str, tta: bool | None = None, rerank: bool | None = None,
    settings: list[str] | None = None, trials: int | None = None, commit: str | None = None,
) -> dict[str, Any]:
    """Evaluate every protocol of the dataset and write results.json and eval/*.npz.

    `run_dir` is the folder the results go to: the run folder for training's own
    evaluation, an evaluation folder of its own otherwise (`evaluation_folder`).
    `commit`: the code's commit for results.json (training passes the one it started
    with); by default the working tree's now.
    """
    from fmcnet.evaluation.protocols import evaluate_dataset
    from fmcnet.evaluation.report import results_document, table1_markdown
    from fmcnet.utils import describe_device

    tta = cfg.tta if tta is None else tta
    rerank = cfg.rerank if rerank is None else rerank
    evaluation = evaluate_dataset(
        model, dataset, cfg, device=device, settings=settings, trials=trials, tta=tta,
        rerank=rerank, save_dir=run_dir / "eval", progress=cfg.progress,
    )
    document = results_document(
        evaluation["settings"],
        dataset=cfg.dataset,
        profile=cfg.profile,
        device=describe_device(device),
        commit=commit or git_commit(),
        sampler=evaluation["sampler"],
        samplers=evaluation["samplers"],
        llcm_protocol=dataset.llcm_protocol,
        trials=evaluation["trials"],
        tta=tta,
        rerank=rerank,
        selection=selection,
        synthetic=cfg.dataset == "synthetic",
        eval_precision=evaluation["precision"],
        train_identities=dataset.train.num_classes,
        validate=dataset.val is not None,  # val ids held out of training (SYSU-MM01 only)
        pretrained=getattr(model, "pretrained_source", "unknown"),
    )
    # the RegDB split the scores belong to (None for the other datasets)
    results = {"dataset": document.pop("dataset"), "trial": dataset.trial, **document}
    results["pretrained"] = weights_source(cfg.backbone, pretrained=cfg.pretrained,
                                           pretrained_path=cfg.weights_path)
    if "features" in evaluation:  # fmcnet.evaluation.diagnostics
        results["features_setting"] = evaluation["features_setting"]
        results["features"] = evaluation["features"]
    atomic_write_json(run_dir / "results.json", results)
    atomic_write_text(run_dir / "results.md", table1_markdown(results) + "\n")
    return results


def evaluation_folder(base: str | os.PathLike, dataset: VIDataset, *, settings: list[str] | None,
                      trials: int, tta: bool, rerank: bool) -> Path:
    """`<base>/evaluations/<name>`: one folder per evaluation, named by its settings, so an
    evaluation never writes over a run's own results or another evaluation's."""
    parts = [dataset.name + (f"-trial{dataset.trial}" if dataset.trial else "")]
    if settings is not None:
        parts.append("+".join(s.replace("/", "-") for s in settings))
    # the trials evaluation will use: a split has at most len(split.trials) galleries
    names = list(dataset.splits) if settings is None else settings
    used = min(trials, max((len(dataset.splits[n].trials) for n in names if n in dataset.splits),
                           default=trials))
    parts.append(f"{used}trials")
    parts += [flag for flag, on in (("tta", tta), ("rerank", rerank)) if on]
    return Path(base) / "evaluations" / "_".join(parts)


def aggregate_trials(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over per-trial results (RegDB: one model per trial)."""
    first = results[0]
    settings: dict[str, Any] = {}
    for name in first["settings"]:
        settings[name] = {}
        for metric in first["settings"][name]:
            vals = [r["settings"][name][metric] for r in results]
            if not all(isinstance(v, (int, float)) for v in vals):
                continue
            settings[name][metric] = float(np.mean(vals))
            settings[name][f"{metric}_std"] = float(np.std(vals))
    return {**first, "trials": len(results), "settings": settings,
            "per_trial_models": [r.get("trial") for r in results]}
