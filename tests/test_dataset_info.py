"""`dataset_info` JSON shapes and the official-count comparison."""

from __future__ import annotations

import copy
import json

import pytest
from fixtures import make_llcm_tree, make_regdb_tree, make_sysu_tree

from fmcnet.data.base import DatasetError
from fmcnet.data.info import dataset_info, format_dataset_info, official_differences

THREE = {"visible": int, "infrared": int, "identities": int}


def _shape(obj):
    """The key structure of a JSON object with leaf types."""
    return {k: _shape(v) for k, v in obj.items()} if isinstance(obj, dict) else type(obj)


def test_sysu_info(tmp_path):
    root = make_sysu_tree(tmp_path, train_ids=(1, 2), val_ids=(3,), test_ids=(4, 5),
                          images_per_cam={(4, 1): 12}, missing=[(5, 4)])
    info = dataset_info("sysu", root)
    assert _shape(info) == {
        "dataset": str, "sampler": str,
        "samplers": {"all": {"single": str, "multi": str}, "indoor": {"single": str, "multi": str}},
        "train": THREE, "query": {"all": int, "indoor": int},
        "gallery": {"all": {"single": int, "multi": int}, "indoor": {"single": int, "multi": int}},
        "notes": list,
    }
    assert info["dataset"] == "sysu" and info["notes"] == []
    assert info["samplers"] == {"all": {"single": "agw", "multi": "seeded"},
                                "indoor": {"single": "agw", "multi": "seeded"}}
    assert info["train"] == {"visible": 3 * 4 * 3, "infrared": 3 * 2 * 3, "identities": 3}
    assert info["query"] == {"all": 12, "indoor": 12}
    assert info["gallery"] == {"all": {"single": 7, "multi": 10 + 6 * 3},
                               "indoor": {"single": 4, "multi": 10 + 3 * 3}}
    assert dataset_info("sysu", root, trial=3)["gallery"] == info["gallery"]
    json.dumps(info)

    text = format_dataset_info(info)
    assert "WARNING: training visible images: 36 here, official 22,258 (incomplete copy?)" in text
    assert text.count("WARNING") == len(official_differences(info)) == 7
    assert "galleries all-search single-shot, indoor-search single-shot: drawn as AGW" in text
    assert "multi-shot, indoor-search multi-shot: drawn with this repo's seeded draw" in text
    synthetic = format_dataset_info(info, synthetic=True)
    assert "WARNING" not in synthetic and "synthetic" in synthetic
    seeded = dataset_info("sysu", root, gallery_sampler="seeded")
    assert seeded["sampler"] == "seeded" and seeded["gallery"] == info["gallery"]
    assert "agw" not in format_dataset_info(seeded)


def test_official_counts_match():
    info = {"dataset": "sysu", "sampler": "owners",
            "samplers": {m: {"single": "owners", "multi": "owners"} for m in ("all", "indoor")},
            "train": {"visible": 22258, "infrared": 11909, "identities": 395},
            "query": {"all": 3803, "indoor": 3803},
            "gallery": {"all": {"single": 301, "multi": 3010},
                        "indoor": {"single": 112, "multi": 1120}}}
    assert official_differences(info) == []
    assert "WARNING" not in format_dataset_info(info)
    assert "owners' exp/rand_perm_cam.mat (the official MATLAB protocol)" in format_dataset_info(info)
    short = copy.deepcopy(info)
    short["query"]["all"] = 3800
    assert official_differences(short) == ["queries all-search: 3,800 here, official 3,803"]


def test_regdb_info(tmp_path):
    root = make_regdb_tree(tmp_path, num_ids=6, images_per_id=2, trials=(1, 4))
    info = dataset_info("regdb", root, trial=4)
    assert _shape(info) == {"dataset": str, "trial": int, "train": THREE, "test": THREE}
    assert info == {"dataset": "regdb", "trial": 4,
                    "train": {"visible": 6, "infrared": 6, "identities": 3},
                    "test": {"visible": 6, "infrared": 6, "identities": 3}}
    assert dataset_info("regdb", root)["trial"] == 1
    assert format_dataset_info(info).count("WARNING") == 6
    with pytest.raises(DatasetError, match=r"idx/train_visible_2\.txt"):
        dataset_info("regdb", root, trial=2)


def test_llcm_info(tmp_path):
    root = make_llcm_tree(tmp_path, train_ids=(1, 2), test_ids=(3, 4), vis_cams=(1, 2),
                          nir_cams=(1, 2, 3), images_per_cam=2, missing=[(4, 3)])
    with pytest.warns(UserWarning, match="test_nir/cam3 is left out"):
        info = dataset_info("llcm", root)
    names = {"visible_to_infrared": int, "infrared_to_visible": int}
    assert _shape(info) == {
        "dataset": str, "protocol": str, "sampler": str,
        "cameras": {"visible": list, "infrared": list}, "train": THREE, "test": THREE,
        "query": names, "gallery": names, "notes": list,
    }
    assert (info["protocol"], info["sampler"]) == ("deen", "deen")
    assert info["cameras"] == {"visible": [1, 2], "infrared": [1, 2]}
    assert info["train"] == {"visible": 8, "infrared": 12, "identities": 2}
    # DEEN reads no test_nir/cam3: 2 ids x 2 cams x 2 images per modality
    assert info["test"] == {"visible": 8, "infrared": 8, "identities": 2}
    # "visible to infrared" as DEEN scores it: 4 sampled infrared queries, all 8 visible
    assert info["query"] == {"visible_to_infrared": 4, "infrared_to_visible": 8}
    assert info["gallery"] == {"visible_to_infrared": 8, "infrared_to_visible": 4}
    text = format_dataset_info(info)
    assert "visible to infrared: 4 queries, 8 gallery images" in text
    assert "protocol deen" in text and "WARNING: LLCM: " in text and "test_nir/cam3" in text
    json.dumps(info)

    literal = dataset_info("llcm", root, llcm_protocol="literal")
    assert (literal["protocol"], literal["sampler"], literal["notes"]) == ("literal", "seeded", [])
    assert literal["cameras"]["infrared"] == [1, 2, 3]
    assert literal["test"] == {"visible": 8, "infrared": 10, "identities": 2}
    assert literal["query"] == {"visible_to_infrared": 8, "infrared_to_visible": 10}
    assert literal["gallery"] == {"visible_to_infrared": 5, "infrared_to_visible": 4}
    assert "protocol literal" in format_dataset_info(literal)


def test_dataset_info_cli_names_sampler_and_protocol(tmp_path, capsys):
    from fmcnet.cli import main

    sysu = make_sysu_tree(tmp_path / "sysu", train_ids=(1,), val_ids=(2,), test_ids=(3, 4))
    assert main(["dataset-info", "sysu", "--root", str(sysu), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["samplers"]["all"] == {"single": "agw", "multi": "seeded"}
    assert main(["dataset-info", "sysu", "--root", str(sysu), "--json",
                 "--gallery-sampler", "seeded"]) == 0
    assert json.loads(capsys.readouterr().out)["sampler"] == "seeded"

    llcm = make_llcm_tree(tmp_path / "llcm", nir_cams=(1, 3))
    assert main(["dataset-info", "llcm", "--root", str(llcm), "--json"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["protocol"] == "deen" and "test_nir/cam3" in info["notes"][0]
    assert "UserWarning" not in captured.err  # the warning is reported once, in the output
    assert main(["dataset-info", "llcm", "--root", str(llcm), "--llcm-protocol", "literal"]) == 0
    assert "protocol literal" in capsys.readouterr().out
