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
        modes, shots = ("all", "indoor"), ("single", "multi")
        return {
            "dataset": "sysu", "sampler": ds.sampler,
            "samplers": {m: {k: s[f"{m}/{k}"].sampler for k in shots} for m in modes},
            "train": train,
            "query": {"all": len(s["all/single"].query), "indoor": len(s["indoor/single"].query)},
            "gallery": {m: {k: len(s[f"{m}/{k}"].trials[t]) for k in shots} for m in modes},
            "notes": list(ds.notes),
        }
    # infrared -> visible has infrared queries and a visible pool under every protocol
    i2v = s["infrared_to_visible"]
    test_v, test_i = i2v.gallery, i2v.query
    test = {"visible": len(test_v), "infrared": len(test_i),
            "identities": len(set(test_v.pids.tolist()) | set(test_i.pids.tolist()))}
    if ds.name == "regdb":
        return {"dataset": "regdb", "trial": ds.trial, "train": train, "test": test}
    names = ("visible_to_infrared", "infrared_to_visible")
    sizes = {}
    for name in names:
        q_rows, g_rows = s[name].trial_rows(t)
        sizes[name] = (len(s[name].query) if q_rows is None else len(q_rows),
                       len(s[name].gallery) if g_rows is None else len(g_rows))
    return {
        "dataset": "llcm", "protocol": ds.llcm_protocol, "sampler": ds.sampler,
        "cameras": {"visible": sorted(set(test_v.cams.tolist())),
                    "infrared": sorted(set(test_i.cams.tolist()))},
        "train": train, "test": test,
        "query": {n: sizes[n][0] for n in names},
        "gallery": {n: sizes[n][1] for n in names},
        "notes": list(ds.notes),
    }


def dataset_info(
    name: str,
    root: str | os.PathLike,
    trial: int | None = None,
    *,
    gallery_sampler: str = "auto",
    llcm_protocol: str = "deen",
) -> dict[str, Any]:
    """Counts of the copy at `root` (JSON shapes in docs/datasets.md).

    `trial` is the RegDB split (1..10, default 1); for SYSU-MM01 and LLCM it is the
    0-based gallery trial whose sizes are reported (default 0). `gallery_sampler`
    (SYSU-MM01) and `llcm_protocol` (LLCM) as in `fmcnet.data.load_dataset`; the JSON
    names the sampler and protocol used, and `notes` holds the loader's warnings.
    """
    if name == "regdb":
        ds = load_dataset(name, root, trial=1 if trial is None else int(trial))
        return _info(ds, 0)
    t = 0 if trial is None else int(trial)
    if t < 0:
        raise ValueError(f"gallery trial must be >= 0, got {t}")
    ds = load_dataset(name, root, trials=t + 1, gallery_sampler=gallery_sampler,
                      llcm_protocol=llcm_protocol)
    return _info(ds, t)


_SAMPLER_TEXT = {
    "owners": "the owners' exp/rand_perm_cam.mat (the official MATLAB protocol)",
    "agw": "as AGW-lineage papers draw them (random.seed(trial) + random.choice; sampler agw)",
    "seeded": "with this repo's seeded draw (trial t uses numpy seed t; sampler seeded), "
              "not any published protocol",
}
_LLCM_PROTOCOL_LINES = {
    "deen": "protocol deen: as DEEN's code evaluates LLCM (its cameras, random.seed(trial) "
            "galleries, distinct-identity CMC; 'visible to infrared' = sampled infrared "
            "queries against every visible image)",
    "literal": "protocol literal: the directions as named, every camera folder, seeded "
               "galleries, image-level CMC (not DEEN's numbers beyond R1 / mAP / mINP)",
}


def _cams(cams: list[int]) -> str:
    return ", ".join(map(str, cams)) or "none"


def _sysu_sampler_lines(samplers: dict[str, dict[str, str]]) -> list[str]:
    """One line per gallery sampler in use, naming the settings it draws."""
    used: dict[str, list[str]] = {}
    for mode, shots in samplers.items():
        for shot, sampler in shots.items():
            used.setdefault(sampler, []).append(f"{mode}-search {shot}-shot")
    return [f"galleries {', '.join(where)}: drawn {_SAMPLER_TEXT.get(s, s)}"
            for s, where in used.items()]


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
        lines.extend("  " + line for line in _sysu_sampler_lines(info.get("samplers", {})))
    else:
        row("test", info["test"])
        if "gallery" in info:
            protocol = info.get("protocol")
            lines.append(f"  cameras   visible {_cams(info['cameras']['visible'])}   infrared "
                         f"{_cams(info['cameras']['infrared'])}")
            for key in ("visible_to_infrared", "infrared_to_visible"):
                lines.append(f"  {key.replace('_', ' ')}: {info['query'][key]:,} queries, "
                             f"{info['gallery'][key]:,} gallery images")
            lines.append("  " + _LLCM_PROTOCOL_LINES.get(protocol, f"protocol {protocol}"))
    lines.extend(f"WARNING: {note}" for note in info.get("notes", []))
    diffs = official_differences(info)
    if synthetic:
        lines.append("  note: this is the built-in synthetic set (SYSU-MM01 layout); its counts "
                     "are not meant to match the official release")
    elif diffs:
        lines.extend(f"WARNING: {d} (incomplete copy?)" for d in diffs)
    elif OFFICIAL.get(name):
        lines.append("  all counts match the official release")
    return "\n".join(lines)
