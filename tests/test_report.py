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
                  trials=10, tta=False, rerank=True, selection="last epoch",
                  eval_precision="fp32", train_identities=395, validate=False,
                  pretrained="imagenet:IMAGENET1K_V2")


def test_results_document_shape():
    doc = results_document(_settings(SYSU), dataset="sysu", synthetic=False, **PROVENANCE)
    assert list(doc) == ["dataset", "profile", "device", "commit", "sampler", "samplers",
                         "llcm_protocol", "trials", "selection", "train_identities", "validate",
                         "pretrained", "eval_precision", "tta", "rerank", "settings"]
    assert doc["eval_precision"] == "fp32" and doc["train_identities"] == 395
    assert doc["llcm_protocol"] is None and doc["pretrained"] == "imagenet:IMAGENET1K_V2"
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
    for text in ("gallery sampler: owners", "trials: 10", "profile: paper", "NVIDIA H100",
                 "TTA: off", "re-ranking: on", "commit: abc1234", "last epoch",
                 "evaluation precision: fp32", "training identities: 395 ·",
                 "pretrained: imagenet:IMAGENET1K_V2"):
        assert text in md
    assert "LLCM protocol" not in md


def test_provenance_names_every_choice_behind_a_number():
    doc = results_document(
        _settings(["all/single", "all/multi"]), dataset="sysu", synthetic=False,
        **{**PROVENANCE, "sampler": "agw: all/single; seeded: all/multi",
           "samplers": {"all/single": "agw", "all/multi": "seeded"}, "eval_precision": "bf16",
           "train_identities": 296, "validate": True, "pretrained": "random", "tta": True},
    )
    assert doc["samplers"] == {"all/single": "agw", "all/multi": "seeded"}
    line = table1_markdown(doc).strip().splitlines()[-1]
    for text in ("gallery sampler: agw: all/single; seeded: all/multi",
                 "evaluation precision: bf16", "TTA: on", "re-ranking: on",
                 "training identities: 296 (val ids held out", "pretrained: random"):
        assert text in line
    names = ["visible_to_infrared", "infrared_to_visible"]
    for protocol, words in (("deen", "sampled infrared image"), ("literal", "as named")):
        md = table1_markdown(results_document(
            _settings(names), dataset="llcm", synthetic=False,
            **{**PROVENANCE, "sampler": "deen", "llcm_protocol": protocol}))
        assert f"LLCM protocol: {protocol} ·" in md and words in md


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


def test_evaluate_json_and_results_files_say_how_the_numbers_were_made(
        tmp_path, capsys, synthetic_root, synthetic_dataset):
    from fmcnet.cli import main
    from fmcnet.config import make_config
    from fmcnet.train import train

    cfg = make_config("smoke", dataset="sysu", data_root=str(synthetic_root), epochs=1,
                      steps_per_epoch=1, trials=2)
    run = tmp_path / "run"
    train(cfg, run, dataset=synthetic_dataset, evaluate=False)
    assert main(["evaluate", "--run", str(run), "--mode", "all", "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # no rand_perm_cam.mat in the synthetic set: AGW's single-shot draw, seeded multi-shot
    assert results["samplers"] == {"all/single": "agw", "all/multi": "seeded"}
    assert results["sampler"] == "agw: all/single; seeded: all/multi"
    assert results["eval_precision"] == "fp32" and results["llcm_protocol"] is None
    assert results["train_identities"] == synthetic_dataset.train.num_classes
    assert results["validate"] is False
    assert results["pretrained"] == "random"  # recorded at training time in the checkpoint
    # an evaluation writes its own folder (docs/reliability.md), never the run's results
    (folder,) = (run / "evaluations").iterdir()
    assert folder.name == "sysu_all-single+all-multi_2trials_step1"
    assert json.loads((folder / "results.json").read_text()) == results
    md = (folder / "results.md").read_text()
    assert "gallery sampler: agw: all/single; seeded: all/multi" in md
    assert "evaluation precision: fp32" in md and "pretrained: random" in md

    assert main(["evaluate", "--run", str(run), "--mode", "all", "--shots", "1", "--json",
                 "gallery_sampler=seeded"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["samplers"] == {"all/single": "seeded"} and results["sampler"] == "seeded"
