"""`python -m fmcnet ...`: the commands users type, their output and their errors."""

import json

import pytest

from fmcnet.checkpoints import load_checkpoint
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


def _smoke_run(run, root, dataset, *, evaluate):
    from fmcnet.config import make_config

    cfg = make_config("smoke", dataset="sysu", data_root=str(root), epochs=1,
                      steps_per_epoch=1, trials=2)
    train(cfg, run, dataset=dataset, evaluate=evaluate)


def test_evaluate_writes_its_own_folder_never_over_the_run(tmp_path, capsys, monkeypatch,
                                                           synthetic_root, synthetic_dataset):
    run = tmp_path / "run"
    _smoke_run(run, synthetic_root, synthetic_dataset, evaluate=True)
    before = {p: p.read_bytes() for p in [run / "results.json", run / "results.md",
                                           *sorted((run / "eval").iterdir())]}
    argv = ["evaluate", "--run", str(run), "--mode", "indoor", "--shots", "1", "--trials", "1",
            "--json"]
    assert main(argv) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(results["settings"]) == ["indoor/single"] and results["trials"] == 1
    assert results["trial"] is None and "checkpoint" in results["selection"]
    # the training results are untouched, byte for byte, and no file was added among them
    assert {p: p.read_bytes() for p in before} == before
    assert sorted((run / "eval").iterdir()) == sorted(p for p in before if p.parent.name == "eval")
    out = run / "evaluations" / "sysu_indoor-single_1trials_step1"
    assert json.loads((out / "results.json").read_text()) == results
    assert [p.name for p in (out / "eval").iterdir()] == ["indoor_single.npz"]
    # the same evaluation again: refused, the first one stays
    assert main(argv) == 1
    assert "already holds results.json, eval" in capsys.readouterr().err
    # --checkpoint without --out: under the current directory's runs/, not beside the file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ckpt_files = sorted((run / "checkpoints").iterdir())
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--mode", "all",
                 "--shots", "1", "--trials", "1", "--json"]) == 0
    assert (elsewhere / "runs" / "evaluations" / "run-last_sysu_all-single_1trials_step1"
            / "results.json").is_file()
    assert sorted((run / "checkpoints").iterdir()) == ckpt_files
    # --out into a training run folder is refused
    assert main(["evaluate", "--run", str(run), "--out", str(run), "--json"]) == 1
    assert "already holds config.yaml" in capsys.readouterr().err

    from fixtures import make_regdb_tree

    regdb = make_regdb_tree(tmp_path / "RegDB", num_ids=4, images_per_id=2)
    code = main(["evaluate", "--run", str(run), "--dataset", "regdb", "--root", str(regdb)])
    err = capsys.readouterr().err
    assert code == 1 and "does not match" in err and "num_classes" in err


def test_regdb_evaluation_is_trial_safe(tmp_path, capsys):
    from fixtures import make_regdb_tree

    from fmcnet.config import make_config
    from fmcnet.data import load_regdb

    root = make_regdb_tree(tmp_path / "RegDB", num_ids=8, images_per_id=2, trials=(1, 2))
    run = tmp_path / "run"
    cfg = make_config("smoke", dataset="regdb", data_root=str(root), trial=1, epochs=1,
                      steps_per_epoch=1)
    train(cfg, run, evaluate=False)
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["trial"] == 1 and set(results["settings"]) == {
        "visible_to_infrared", "infrared_to_visible"}
    # trial 2's test identities include some that trial 1 trained on: refused, named
    trained = set(load_regdb(root, trial=1).train.visible.pids.tolist())
    tested = set(load_regdb(root, trial=2).splits["visible_to_infrared"].query.pids.tolist())
    assert trained & tested
    assert main(["evaluate", "--run", str(run), "trial=2"]) == 1
    err = capsys.readouterr().err
    assert "trained on regdb trial 1" in err and "leak test identities" in err
    assert f"{len(trained & tested)} of its" in err and "Traceback" not in err
    assert [p.name for p in (run / "evaluations").iterdir()] == ["regdb-trial1_1trials_step1"]
    # options that do not apply to RegDB are an error, not ignored
    assert main(["evaluate", "--run", str(run), "--mode", "indoor"]) == 1
    assert "--mode/--shots select SYSU-MM01 settings" in capsys.readouterr().err
    # another profile than the checkpoint's is refused, not dropped
    assert main(["evaluate", "--run", str(run), "profile=quick"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: evaluate uses the profile the checkpoint was trained under ('smoke': its model "
        "and data settings); drop profile=quick")


def test_regdb_lists_numbered_from_zero_are_evaluated_and_a_real_leak_is_refused(tmp_path,
                                                                                 capsys):
    """The owners' RegDB (and LLCM) lists number each list's identities from 0: training
    labels 0..3 and test labels 0..3 are eight different people, yet evaluation compared
    labels and refused every real copy. It compares people, by identity folder, now."""
    from pathlib import Path

    from fixtures import make_regdb_tree

    from fmcnet.config import make_config
    from fmcnet.data import load_regdb

    root = make_regdb_tree(tmp_path / "RegDB", num_ids=8, images_per_id=2, trials=(1, 2),
                           labels_from_zero=True)
    trial1, trial2 = load_regdb(root, trial=1), load_regdb(root, trial=2)
    labels = set(trial1.train.visible.pids.tolist())
    assert labels == set(trial1.splits["visible_to_infrared"].query.pids.tolist()) == {0, 1, 2, 3}
    run = tmp_path / "run"
    train(make_config("smoke", dataset="regdb", data_root=str(root), trial=1, epochs=1,
                      steps_per_epoch=1), run, evaluate=False)
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["trial"] == 1
    # trial 2 tests people trial 1 trained on: refused, the people named by their folders
    trained = {Path(p).parent.name for p in trial1.train.visible.paths}
    tested = {Path(p).parent.name for p in trial2.splits["visible_to_infrared"].query.paths}
    shared = sorted(trained & tested, key=int)
    assert shared
    assert main(["evaluate", "--run", str(run), "trial=2"]) == 1
    err = capsys.readouterr().err
    assert (f"would leak test identities: {len(shared)} of its 4 test identities "
            f"({', '.join(shared)}) are among the identities it trained on") in err


def test_evaluate_run_refuses_a_checkpoint_that_is_not_the_runs(tmp_path, capsys,
                                                                 synthetic_root,
                                                                 synthetic_dataset):
    """`evaluate --run R` with another run's checkpoint in R (trained on another data set)
    evaluated it and filed the result under R."""
    from fixtures import make_regdb_tree

    from fmcnet.config import make_config

    run, other = tmp_path / "run", tmp_path / "other"
    _smoke_run(run, synthetic_root, synthetic_dataset, evaluate=False)
    root = make_regdb_tree(tmp_path / "RegDB", num_ids=8, images_per_id=2)
    train(make_config("smoke", dataset="regdb", data_root=str(root), trial=1, epochs=1,
                      steps_per_epoch=1, trials=2), other, evaluate=False)
    last = run / "checkpoints" / "last.pt"
    last.write_bytes((other / "checkpoints" / "last.pt").read_bytes())
    assert main(["evaluate", "--run", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: checkpoint {last} is not run {run}'s: it does not match "
                          f"{run / 'config.yaml'}:\n  - dataset: checkpoint has 'regdb', "
                          "config.yaml has 'sysu'\n")
    assert "evaluate it with --checkpoint" in err and "Traceback" not in err
    assert not (run / "evaluations").exists()
    # a run without config.yaml: nothing says whose checkpoint it holds
    (run / "config.yaml").unlink()
    assert main(["evaluate", "--run", str(run)]) == 1
    assert capsys.readouterr().err == (
        f"error: {run} has a checkpoint {last} but no config.yaml, so nothing says the "
        "checkpoint is this run's: evaluate it with --checkpoint (its results go to "
        "runs/evaluations/), not --run\n")
    assert not (run / "evaluations").exists()


def test_regdb_trial_all_resumes_after_an_interruption(tmp_path, capsys, monkeypatch):
    """Three trials stand for the ten (cli.REGDB_TRIALS): interrupted in trial 2, then
    `--resume` keeps trial 1, resumes trial 2, trains trial 3 and writes the combined
    results."""
    import signal

    from fixtures import make_regdb_tree

    import fmcnet.cli as cli
    import fmcnet.step as step_mod

    monkeypatch.setattr(cli, "REGDB_TRIALS", (1, 2, 3))
    root = make_regdb_tree(tmp_path / "RegDB", num_ids=8, images_per_id=2, trials=(1, 2, 3))
    out = tmp_path / "sweep"
    argv = ["train", "--dataset", "regdb", "--root", str(root), "--trial", "all", "--profile",
            "smoke", "--out", str(out), "epochs=1", "steps_per_epoch=2"]
    real_loss, calls = step_mod.fmcnet_loss, {"n": 0}

    def ctrl_c_in_trial_2(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # trial 1 took two steps; this is trial 2's first
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kw)

    monkeypatch.setattr(step_mod, "fmcnet_loss", ctrl_c_in_trial_2)
    assert main(argv) == 130
    assert (out / "trial_01" / "results.json").is_file()
    assert load_checkpoint(out / "trial_02" / "checkpoints" / "last.pt")["global_step"] == 1
    assert not (out / "trial_03").exists() and not (out / "results.json").exists()
    monkeypatch.setattr(step_mod, "fmcnet_loss", real_loss)
    # without --resume the sweep is refused; with it, it finishes
    assert main(argv) == 1 and "pass --resume" in capsys.readouterr().err
    kept = (out / "trial_01" / "results.json").read_bytes()
    assert main(argv + ["--resume"]) == 0
    assert "trial 1: finished earlier, results kept" in capsys.readouterr().out
    assert (out / "trial_01" / "results.json").read_bytes() == kept
    assert load_checkpoint(out / "trial_02" / "checkpoints" / "last.pt")["global_step"] == 2
    summary = json.loads((out / "results.json").read_text())
    assert summary["trials"] == 3 and summary["per_trial_models"] == [1, 2, 3]
    # a damaged results file of a finished trial: named, no traceback; moved aside, that
    # trial resumes from its last checkpoint (evaluated again)
    damaged = out / "trial_01" / "results.json"
    damaged.write_text("[1, 2]")
    assert main(argv + ["--resume"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {damaged} holds a list, not the results mapping: trial 1's results "
                   "file is damaged; move it aside and run again with --resume (the trial "
                   "resumes from its last checkpoint)\n")
    damaged.write_text("{not json")
    assert main(argv + ["--resume"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {damaged} is not JSON (Expecting")
    damaged.rename(damaged.with_suffix(".json.bad"))
    assert main(argv + ["--resume"]) == 0
    assert json.loads(damaged.read_bytes())["settings"] == json.loads(kept)["settings"]
    # a finished trial without its config.yaml: the advice names what to move, and works
    (out / "trial_01" / "config.yaml").unlink()
    assert main(argv + ["--resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'trial_01' / 'config.yaml'} does not exist: trial 1 "
                          "finished, but without its configuration") and f"and {damaged} aside" in err
    damaged.rename(damaged.with_suffix(".json.bad2"))
    assert main(argv + ["--resume"]) == 0
    assert (out / "trial_01" / "config.yaml").is_file() and damaged.is_file()
    # a finished trial made with other settings is not silently combined
    (out / "results.json").unlink()
    assert main(argv + ["lambda1=0.7", "--resume"]) == 1
    assert "lambda1" in capsys.readouterr().err
    # --trial all is a RegDB option
    assert main(["train", "--trial", "all", "--profile", "smoke", "--out", str(tmp_path / "x")]) == 1
    assert "needs --dataset regdb" in capsys.readouterr().err


def test_train_refuses_a_run_whose_checkpoints_were_deleted(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "metrics.jsonl", "results.json"):
        (run / name).write_text("x")
    assert main(["train", "--profile", "smoke", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert "already holds a run (config.yaml, metrics.jsonl, results.json)" in err
    assert all((run / n).read_text() == "x" for n in ("config.yaml", "metrics.jsonl",
                                                     "results.json"))


@pytest.mark.parametrize("argv, message", [
    (["train", "--profile", "smoke", "--out", "r", "lr=-1"], "lr must be > 0, got -1.0"),
    (["train", "--profile", "smoke", "--out", "r", "device=bogus"], "device must be auto"),
    (["train", "--profile", "smoke", "--out", "r", "erase_area=[0.5]"], "erase_area expects 2"),
    (["train", "--profile", "smoke", "--out", "r", "checkpoint_every=0"],
     "checkpoint_every must be >= 1"),
    (["train", "--profile", "smoke", "--out", "r", "epochs=0"], "epochs must be >= 1"),
    (["train", "--profile", "smoke", "--out", "r", "trials=0"], "trials must be in [1, 100]"),
    (["train", "--profile", "smoke", "--out", "r", "height=7"], "height must be in [8, 1024]"),
    (["train", "--profile", "smoke", "--out", "r", "--root", "/data"], "dataset=synthetic"),
    (["train", "--profile", "smoke", "--out", "r", "--trial", "3"], "selects a RegDB split"),
])
def test_bad_configuration_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, argv,
                                                       message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, message", [
    # the override was dropped without a word
    (["train", "--profile", "smoke", "--out", "r", "profile=quick"],
     "error: profile 'quick' from the key=value overrides conflicts with profile 'smoke' from "
     "--profile: a profile sets the defaults every other key starts from, so a configuration "
     "has one; choose it with --profile alone (--profile quick or --profile smoke) and drop "
     "profile=quick from the key=value overrides"),
    (["train", "--profile", "smoke", "--out", "r", "--config", "twice.yaml"],
     "error: configuration file twice.yaml names 'lr' twice in one mapping (lines 1 and 3); "
     "YAML would keep the second without a word. Keep one of them"),
    (["train", "--profile", "smoke", "--out", "r", "--config", "quick.yaml"],
     "error: profile 'quick' from configuration file quick.yaml conflicts with profile 'smoke' "
     "from --profile"),
    (["train", "--profile", "smoke", "--out", "r", "height=100000"],
     "error: height must be in [8, 1024] (at least 8"),
    (["train", "--profile", "smoke", "--out", "r", "trials=100000"],
     "error: trials must be in [1, 100] (each trial"),
    (["train", "--profile", "smoke", "--out", "r", "num_instances=2000"],
     "error: num_instances must be in [1, 1024] (a step holds P x K images"),
    # it skipped every section and exited 0
    (["gpu-check", "--out", "r", "--device", "cpu", "--tiny", "--budget-s", "-1"],
     "error: --budget-s must be a positive number of seconds (the time all sections share; "
     "default 400), got -1: with no time left every section would be skipped and nothing "
     "checked"),
    (["gpu-check", "--out", "r", "--device", "cpu", "--tiny", "--budget-s", "0"],
     "error: --budget-s must be a positive number"),
    (["synthesize", "--out", "r", "--identities", "100000"],
     "error: --identities: synthetic_identities must be in [3, 10000]"),
], ids=["profile-override-conflicts", "yaml-key-twice", "yaml-profile-conflicts", "height-huge",
        "trials-huge", "batch-huge", "budget-negative", "budget-zero", "synthesize-huge"])
def test_conflicting_or_unrunnable_input_is_one_line_before_any_work(tmp_path, monkeypatch,
                                                                    capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "twice.yaml").write_text("lr: 0.01\nepochs: 3\nlr: 0.1\n")
    (tmp_path / "quick.yaml").write_text("profile: quick\n")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_profile_named_by_a_config_file_applies_without_profile(tmp_path):
    """`train --config f.yaml` with `profile: smoke` in the file: the file's profile (the
    command line's default `paper` used to win without a word); `profile=` alone too."""
    from fmcnet.cli import _config, build_parser

    (tmp_path / "smoke.yaml").write_text("profile: smoke\nepochs: 3\n")
    parse = build_parser().parse_args
    cfg = _config(parse(["train", "--out", "r", "--config", str(tmp_path / "smoke.yaml")]))
    assert (cfg.profile, cfg.height, cfg.epochs) == ("smoke", 32, 3)
    assert _config(parse(["train", "--out", "r", "profile=quick"])).profile == "quick"
    assert _config(parse(["train", "--out", "r", "--profile", "quick", "profile=quick"])
                   ).profile == "quick"
    assert _config(parse(["train", "--out", "r"])).profile == "paper"


def test_synthesize_overwrites_only_its_own_set(tmp_path, capsys):
    """The error advised an --overwrite flag the command did not have; it has it now, and
    it replaces only a folder that holds a synthetic set."""
    out = tmp_path / "set"
    argv = ["synthesize", "--out", str(out), "--identities", "3", "--images-per-camera", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {out} already holds a synthetic set; pass --overwrite to replace it, or "
        "choose another --out")
    assert main([*argv, "--overwrite", "--seed", "1"]) == 0
    assert '"seed": 1' in (out / "synthetic.json").read_text()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    assert main(["synthesize", "--out", str(mine), "--identities", "3", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {mine} already exists and holds no synthetic set (no "
                           "synthetic.json); synthesize replaces only a set it wrote, so nothing "
                           "of yours is deleted: choose another --out")
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_os_errors_are_one_line_naming_the_path(monkeypatch, capsys):
    import fmcnet.data.info

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/data/SYSU-MM01/cam3")

    monkeypatch.setattr(fmcnet.data.info, "dataset_info", unreadable)
    assert main(["dataset-info", "sysu", "--root", "/data/SYSU-MM01"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Permission denied (/data/SYSU-MM01/cam3)")
    assert len(err.strip().splitlines()) == 1


def test_a_full_disk_the_code_did_not_explain_gets_true_advice(monkeypatch, capsys):
    """An OSError without a file name (a write's ENOSPC) said "check that it exists and that
    you may read it": the advice now fits a full disk."""
    import errno

    import fmcnet.data.info

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fmcnet.data.info, "dataset_info", full)
    assert main(["dataset-info", "sysu", "--root", "/data/SYSU-MM01"]) == 1
    assert capsys.readouterr().err == (
        "error: No space left on device (the system did not name the file): the disk (or your "
        "quota) is full; free space, or write elsewhere (--out for runs, FMCNET_DATA for data and "
        "caches), and run again\n")


@pytest.mark.parametrize("argv", [["evaluate"], ["evaluate", "--run", "/nonexistent/run"]])
def test_evaluate_without_a_checkpoint(argv, capsys):
    assert main(argv) == 1
    assert "error:" in capsys.readouterr().err
