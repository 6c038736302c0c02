"""results.json documents and a Markdown table laid out like the paper's Table 1."""

from __future__ import annotations

from typing import Any

RESULT_METRICS = ("R1", "R10", "R20", "mAP", "mINP")

# FMCNet, CVPR 2022, Table 1 (R1, mAP in percent); docs/method.md, "The paper's numbers".
PAPER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "sysu": {
        "all/single": (66.34, 62.51),
        "all/multi": (73.44, 56.06),
        "indoor/single": (68.15, 74.09),
        "indoor/multi": (78.86, 63.82),
    },
    "regdb": {
        "visible_to_infrared": (89.12, 84.43),
        "infrared_to_visible": (88.38, 83.86),
    },
}

DATASET_TITLES = {"sysu": "SYSU-MM01", "regdb": "RegDB", "llcm": "LLCM",
                  "heldout": "held-out renderer's synthetic set (SYSU-MM01 layout) — NOT "
                             "SYSU-MM01; no paper numbers apply"}
SYNTHETIC_TITLE = (
    "built-in synthetic set (SYSU-MM01 layout) — NOT SYSU-MM01; "
    "the paper's numbers are shown for orientation only"
)
LLCM_NOTES = {
    "deen": (
        "LLCM protocol `deen`, as DEEN's code evaluates it: distinct-identity CMC, visible "
        "cams 1–9 and infrared cams 1, 2, 4–9, galleries drawn with random.seed(trial); its "
        "\"visible → infrared\" scores one sampled infrared image per (identity, camera) "
        "as queries against every visible image."
    ),
    "literal": (
        "LLCM protocol `literal`: the directions as named, every camera folder, "
        "image-level CMC; not comparable with DEEN-lineage papers beyond R1 / mAP / mINP."
    ),
}
SETTING_LABELS = {
    "all/single": "all-search, single-shot",
    "all/multi": "all-search, multi-shot",
    "indoor/single": "indoor-search, single-shot",
    "indoor/multi": "indoor-search, multi-shot",
    "val/all/single": "validation ids: all-search, single-shot",
    "visible_to_infrared": "visible → infrared",
    "infrared_to_visible": "infrared → visible",
}


def settings_to_results(settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """`evaluate_dataset(...)["settings"]` -> the results.json settings (percent, 4 d.p.)."""
    out = {}
    for name, values in settings.items():
        missing = [k for k in RESULT_METRICS if k not in values]
        if missing:
            raise ValueError(f"setting {name!r} lacks metric(s) {missing}")
        out[name] = {k: round(float(values[k]), 4) for k in RESULT_METRICS}
        if "cmc" in values:  # the mean CMC curve (percent), drawn by viz.figures.plot_cmc
            out[name]["cmc"] = [round(float(v), 4) for v in values["cmc"]]
    return out


def results_document(
    settings: dict[str, dict[str, Any]],
    *,
    dataset: str,
    profile: str,
    device: str,
    commit: str,
    sampler: str,
    trials: int,
    tta: bool,
    rerank: bool,
    selection: str,
    synthetic: bool,
    eval_precision: str,
    train_identities: int,
    validate: bool,
    pretrained: str,
    llcm_protocol: str | None = None,
    samplers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The results.json document. A synthetic run is recorded as dataset "synthetic".

    Besides the numbers it records how they were made: the gallery `sampler` (summary)
    and `samplers` (per setting), the LLCM protocol (None for other datasets), the
    precision of the test-time features, TTA, re-ranking, the number of training
    identities (SYSU-MM01: 395, or 296 with `validate`), and the pretrained source.
    """
    return {
        "dataset": "synthetic" if synthetic else dataset,
        "profile": profile,
        "device": device,
        "commit": commit,
        "sampler": sampler,
        "samplers": dict(samplers or {}),
        "llcm_protocol": llcm_protocol,
        "trials": int(trials),
        "selection": selection,
        "train_identities": int(train_identities),
        "validate": bool(validate),
        "pretrained": pretrained,
        "eval_precision": eval_precision,
        "tta": bool(tta),
        "rerank": bool(rerank),
        "settings": settings_to_results(settings),
    }


def _paper_layout(results: dict[str, Any]) -> str | None:
    """Which block of the paper's table applies: the dataset's own (LLCM: none); for the
    synthetic set, the block whose setting names it uses (it has the SYSU-MM01 layout)."""
    dataset = results.get("dataset")
    if dataset in PAPER_TABLE1:
        return dataset
    if dataset == "synthetic":
        names = set(results.get("settings", {}))
        for key, block in PAPER_TABLE1.items():
            if names & set(block):
                return key
    return None


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def table1_markdown(results: dict[str, Any]) -> str:
    """A Markdown table like the paper's Table 1, with the paper's R1 / mAP beside ours."""
    synthetic = results.get("dataset") == "synthetic"
    layout = _paper_layout(results)
    title = (
        SYNTHETIC_TITLE if synthetic
        else DATASET_TITLES.get(str(results.get("dataset")), str(results.get("dataset")))
    )
    paper = PAPER_TABLE1.get(layout or "", {})
    lines = [
        f"**{title}**",
        "",
        "| setting | R1 | R10 | R20 | mAP | mINP | paper R1 | paper mAP |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results.get("settings", {}).items():
        p_r1, p_map = paper.get(name, (None, None))
        cells = [_fmt(m.get(k)) for k in RESULT_METRICS] + [_fmt(p_r1), _fmt(p_map)]
        lines.append(f"| {SETTING_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    on_off = {True: "on", False: "off"}
    data = "synthetic (SYSU-MM01 layout, not SYSU-MM01)" if synthetic else title
    identities = results.get("train_identities", "?")
    if results.get("validate"):
        identities = f"{identities} (val ids held out)"
    llcm = results.get("llcm_protocol")
    lines += [
        "",
        (
            f"Dataset: {data} · gallery sampler: {results.get('sampler', '?')} · "
            + (f"LLCM protocol: {llcm} · " if llcm else "")
            + f"trials: {results.get('trials', '?')} · profile: {results.get('profile', '?')} · "
            f"model selection: {results.get('selection', '?')} · "
            f"training identities: {identities} · "
            f"pretrained: {results.get('pretrained', '?')} · "
            f"evaluation precision: {results.get('eval_precision', '?')} · "
            f"TTA: {on_off.get(results.get('tta'), '?')} · "
            f"re-ranking: {on_off.get(results.get('rerank'), '?')} · "
            f"device: {results.get('device', '?')} · "
            f"commit: {results.get('commit', '?')}. "
            "Values in percent; paper: FMCNet, CVPR 2022, Table 1."
        ),
    ]
    if llcm in LLCM_NOTES:
        lines += ["", LLCM_NOTES[llcm]]
    return "\n".join(lines) + "\n"
