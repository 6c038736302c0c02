"""`python -m fmcnet ...`: the commands users type, their output and their errors."""

import json

import pytest

from fmcnet.cli import main
from fmcnet.train import train


def test_dataset_info_json_and_human_report(tmp_path, capsys):
    from fixtures import make_sysu_tree

    root = make_sysu_tree(tmp_path / "SYSU-MM01", train_ids=[1, 2], val_ids=[3], test_ids=[4, 5])
    assert main(["dataset-info", "sysu", "--root", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == "sysu" and info["train"]["identities"] == 3
    assert set(info["gallery"]) == {"all", "indoor"}
    assert main(["dataset-info", "sysu", "--root", str(root)]) == 0
    assert "WARNING" in capsys.readouterr().out  # a 5-id tree is far from the official counts


def test_missing_root_is_one_clear_message(tmp_path, capsys):
    assert main(["dataset-info", "regdb", "--root", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere" in err and "Traceback" not in err


def test_unknown_override_key_lists_the_valid_ones(tmp_path, capsys):
    code = main(["train", "--profile", "smoke", "--out", str(tmp_path / "r"), "epochz=1"])
    assert code == 1 and "valid keys" in capsys.readouterr().err


def test_evaluate_a_run_and_refuse_a_mismatched_dataset(tmp_path, capsys, synthetic_root,
                                                       synthetic_dataset):
    from fmcnet.config import make_config

    cfg = make_config("smoke", dataset="sysu", data_root=str(synthetic_root), epochs=1,
                      steps_per_epoch=1, trials=2)
    run = tmp_path / "run"
    train(cfg, run, dataset=synthetic_dataset, evaluate=False)
    assert main(["evaluate", "--run", str(run), "--mode", "all", "--shots", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(results["settings"]) == ["all/single"] and results["trials"] == 2
    assert "checkpoint" in results["selection"]
    assert (run / "results.json").exists() and (run / "eval" / "all_single.npz").exists()

    from fixtures import make_regdb_tree

    regdb = make_regdb_tree(tmp_path / "RegDB", num_ids=4, images_per_id=2)
    code = main(["evaluate", "--run", str(run), "--dataset", "regdb", "--root", str(regdb)])
    err = capsys.readouterr().err
    assert code == 1 and "does not match" in err and "num_classes" in err


@pytest.mark.parametrize("argv", [["evaluate"], ["evaluate", "--run", "/nonexistent/run"]])
def test_evaluate_without_a_checkpoint(argv, capsys):
    assert main(argv) == 1
    assert "error:" in capsys.readouterr().err
