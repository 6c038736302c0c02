"""results.json documents and the Table-1 Markdown."""

import json

import pytest

from fmcnet.evaluation import results_document, settings_to_results, table1_markdown


def _settings(names):
    out = {}
    for i, name in enumerate(names):
        m = {"R1": 50.0 + i, "R5": 60.0, "R10": 70.0 + i, "R20": 80.0, "mAP": 40.123456,
             "mINP": 20.0}
        out[name] = {**m, "std": dict.fromkeys(m, 0.0), "per_trial": [m]}
    return out


SYSU = ["all/single", "all/multi", "indoor/single", "indoor/multi"]
PROVENANCE = dict(profile="paper", device="NVIDIA H100", commit="abc1234", sampler="owners",
                  trials=10, tta=False, rerank=True, selection="last epoch")


def test_results_document_shape():
    doc = results_document(_settings(SYSU), dataset="sysu", synthetic=False, **PROVENANCE)
    assert list(doc) == ["dataset", "profile", "device", "commit", "sampler", "trials",
                         "selection", "tta", "rerank", "settings"]
    assert doc["dataset"] == "sysu" and doc["trials"] == 10 and doc["rerank"] is True
    assert doc["settings"]["all/single"] == {"R1": 50.0, "R10": 70.0, "R20": 80.0,
                                             "mAP": 40.1235, "mINP": 20.0}
    assert json.loads(json.dumps(doc)) == doc
    with pytest.raises(ValueError, match="lacks metric"):
        settings_to_results({"all/single": {"R1": 1.0}})


def test_table1_sysu_has_paper_numbers_and_provenance():
    doc = results_document(_settings(SYSU), dataset="sysu", synthetic=False, **PROVENANCE)
    md = table1_markdown(doc)
    assert "**SYSU-MM01**" in md
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "66.34" in rows["all-search, single-shot"] and "62.51" in rows["all-search, single-shot"]
    assert "78.86" in rows["indoor-search, multi-shot"] and "63.82" in rows["indoor-search, multi-shot"]
    assert "| 50.00 | 70.00 | 80.00 | 40.12 | 20.00 |" in rows["all-search, single-shot"]
    for text in ("sampler: owners", "trials: 10", "profile: paper", "NVIDIA H100", "TTA: off",
                 "re-ranking: on", "commit: abc1234", "last epoch"):
        assert text in md


def test_table1_regdb_and_llcm():
    names = ["visible_to_infrared", "infrared_to_visible"]
    md = table1_markdown(results_document(_settings(names), dataset="regdb", synthetic=False,
                                          **PROVENANCE))
    assert "89.12" in md and "84.43" in md and "88.38" in md and "83.86" in md
    assert "visible → infrared" in md and "**RegDB**" in md
    md = table1_markdown(results_document(_settings(names), dataset="llcm", synthetic=False,
                                          **PROVENANCE))
    assert "89.12" not in md and "| — | — |" in md and "**LLCM**" in md


def test_synthetic_is_labelled_and_never_called_sysu():
    doc = results_document(_settings(SYSU), dataset="sysu", synthetic=True, **PROVENANCE)
    assert doc["dataset"] == "synthetic"
    md = table1_markdown(doc)
    assert "NOT SYSU-MM01" in md and "synthetic" in md.splitlines()[0]
    assert "**SYSU-MM01**" not in md and "Dataset: SYSU-MM01" not in md
    assert "66.34" in md  # the paper's numbers stay, for orientation
