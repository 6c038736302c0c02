"""`python -m fmcnet dataset-info`: what a copy of a dataset holds, against the official counts.

`dataset_info` returns plain JSON-able counts; `format_dataset_info` prints them with a
WARNING per number that differs from the owners' release (an incomplete copy is the
usual cause of results that do not match the literature).
"""

from __future__ import annotations

import os
from typing import Any

from fmcnet.data import DATASETS, load_dataset
from fmcnet.data.base import TrainSet, VIDataset

# Official counts, by path into the `dataset_info` dict. Only numbers we are sure of.
OFFICIAL: dict[str, dict[tuple[str, ...], int]] = {
    "sysu": {
        ("train", "visible"): 22258,
        ("train", "infrared"): 11909,
        ("train", "identities"): 395,
        ("query", "all"): 3803,
        ("query", "indoor"): 3803,
        ("gallery", "all", "single"): 301,
        ("gallery", "indoor", "single"): 112,
    },
    "regdb": {
        ("train", "visible"): 2060,
        ("train", "infrared"): 2060,
        ("train", "identities"): 206,
        ("test", "visible"): 2060,
        ("test", "infrared"): 2060,
        ("test", "identities"): 206,
    },
    "llcm": {
        ("train", "identities"): 713,
        ("test", "identities"): 351,
    },
}

_LABELS = {
    "train": "training", "test": "test", "query": "queries", "gallery": "gallery",
    "visible": "visible images", "infrared": "infrared images", "identities": "identities",
    "all": "all-search", "indoor": "indoor-search", "single": "single-shot images",
    "multi": "multi-shot images",
}


def _train_counts(train: TrainSet) -> dict[str, int]:
    return {"visible": len(train.visible), "infrared": len(train.infrared),
            "identities": int(train.num_classes)}


def _info(ds: VIDataset, t: int) -> dict[str, Any]:
    train = _train_counts(ds.train)
    s = ds.splits
    if ds.name == "sysu":
        return {
            "dataset": "sysu", "sampler": ds.sampler, "train": train,
            "query": {"all": len(s["all/single"].query), "indoor": len(s["indoor/single"].query)},
            "gallery": {
                mode: {shot: len(s[f"{mode}/{shot}"].trials[t]) for shot in ("single", "multi")}
                for mode in ("all", "indoor")
            },
        }
    v2i = s["visible_to_infrared"]
    test_v, test_i = v2i.query, v2i.gallery
    test = {"visible": len(test_v), "infrared": len(test_i),
            "identities": len(set(test_v.pids.tolist()) | set(test_i.pids.tolist()))}
    if ds.name == "regdb":
        return {"dataset": "regdb", "trial": ds.trial, "train": train, "test": test}
    return {
        "dataset": "llcm", "train": train, "test": test,
        "gallery": {k: len(s[k].trials[t]) for k in ("visible_to_infrared", "infrared_to_visible")},
    }


def dataset_info(name: str, root: str | os.PathLike, trial: int | None = None) -> dict[str, Any]:
    """Counts of the copy at `root` (JSON shapes in docs/datasets.md).

    `trial` is the RegDB split (1..10, default 1); for SYSU-MM01 and LLCM it is the
    0-based gallery trial whose sizes are reported (default 0).
    """
    if name == "regdb":
        ds = load_dataset(name, root, trial=1 if trial is None else int(trial))
        return _info(ds, 0)
    t = 0 if trial is None else int(trial)
    if t < 0:
        raise ValueError(f"gallery trial must be >= 0, got {t}")
    return _info(load_dataset(name, root, trials=t + 1), t)


def _get(info: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        info = info[key]
    return info


def _label(path: tuple[str, ...]) -> str:
    return " ".join(_LABELS.get(p, p) for p in path)


def official_differences(info: dict[str, Any]) -> list[str]:
    """One line per count that differs from the owners' release ([] when all match)."""
    out = []
    for path, official in OFFICIAL.get(info["dataset"], {}).items():
        here = _get(info, path)
        if here != official:
            out.append(f"{_label(path)}: {here:,} here, official {official:,}")
    return out


def format_dataset_info(info: dict[str, Any], synthetic: bool = False) -> str:
    """A human summary of `dataset_info(...)`, with a WARNING line per official difference.

    `synthetic=True` (the built-in SYSU-layout set) replaces the warnings by a note.
    """
    name = info["dataset"]
    title = DATASETS[name][0]
    lines = [title + (f" (trial {info['trial']})" if "trial" in info else "")]

    def row(label: str, counts: dict) -> None:
        lines.append(f"  {label:<10}" + "   ".join(
            f"{_LABELS.get(k, k)} {v:,}" if not isinstance(v, dict) else
            f"{_LABELS.get(k, k)}: " + ", ".join(f"{_LABELS.get(a, a)} {b:,}" for a, b in v.items())
            for k, v in counts.items()
        ))

    row("training", info["train"])
    if name == "sysu":
        row("queries", info["query"])
        row("gallery", info["gallery"])
        if info["sampler"] == "owners":
            lines.append("  galleries drawn with the owners' exp/rand_perm_cam.mat")
        else:
            lines.append(
                "  galleries drawn with seeded sampling (trial t uses seed t): no "
                "exp/rand_perm_cam.mat, so numbers are not the owners' protocol exactly"
            )
    else:
        row("test", info["test"])
        if "gallery" in info:
            lines.append("  gallery   " + "   ".join(
                f"{k.replace('_', ' ')} {v:,} (1 per identity and camera)"
                for k, v in info["gallery"].items()
            ))
    diffs = official_differences(info)
    if synthetic:
        lines.append("  note: this is the built-in synthetic set (SYSU-MM01 layout); its counts "
                     "are not meant to match the official release")
    elif diffs:
        lines.extend(f"WARNING: {d} (incomplete copy?)" for d in diffs)
    elif OFFICIAL.get(name):
        lines.append("  all counts match the official release")
    return "\n".join(lines)
