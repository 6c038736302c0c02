"""One reader of run files (`fmcnet.run_files`): a damaged results.json, metrics.jsonl,
config.yaml, resumes.jsonl or eval/*.npz is one message naming the file, in the figures
command, the notebooks' `open_run`, the sweep and the study report alike."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from fmcnet import analysis, run_files, study, sweep
from fmcnet.cli import main
from fmcnet.config import make_config
from fmcnet.run_files import RunFileError
from fmcnet.train import train

# (file, damaged content, what the message must say)
DAMAGE = [
    ("results.json", "{not json", r"results.json is not JSON \(Expecting property name"),
    ("results.json", "[1, 2]", r"results.json holds a list, not the results mapping"),
    ("results.json", '{"dataset": "sysu"}', r"results.json has no `settings`, not a mapping "
                                             r"of setting -> numbers"),
    ("metrics.jsonl", '{"global_step": 1}\ngarbage\n{"global_step": 2}\n',
     r"metrics.jsonl line 2 is not a JSON record \(Expecting value: .* 'garbage'\)"),
    ("metrics.jsonl", '{"global_step": 1}\n[3]\n', r"metrics.jsonl line 2 holds a list, not a "
                                                  r"record"),
    ("config.yaml", "lr: [0.1\n", r"config.yaml is not valid YAML \("),
    ("config.yaml", "- lr\n- 0.1\n", r"config.yaml holds a list, not the run's configuration"),
    ("resumes.jsonl", '{"epoch": 1}\n{"epoch": \n{"epoch": 2}\n', r"resumes.jsonl line 2 is not "
                                                                 r"a JSON record"),
]
DAMAGE_IDS = ["results-not-json", "results-list", "results-no-settings", "metrics-garbage-line",
              "metrics-list-line", "config-not-yaml", "config-list", "resumes-garbage-line"]


@pytest.mark.parametrize("name, content, message", DAMAGE, ids=DAMAGE_IDS)
def test_each_damaged_run_file_is_named_with_what_is_wrong(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(RunFileError, match=rf"^{tmp_path}/{message}.*; \S"):
        run_files.check_run_files(tmp_path)


def test_a_log_line_a_kill_cut_short_is_left_out_and_eval_files_are_checked(tmp_path):
    # the last line without its newline: a record being written, or cut by a kill
    (tmp_path / "metrics.jsonl").write_text('{"global_step": 1}\n{"global_st')
    assert run_files.read_metrics(tmp_path) == [{"global_step": 1}]
    (tmp_path / "eval").mkdir()
    good = tmp_path / "eval" / "all_single.npz"
    np.savez(good, q_pids=np.arange(3), distmat=np.zeros((3, 2)))
    arrays, names = run_files.read_eval(good, skip=["distmat"])
    assert names == {"q_pids", "distmat"} and list(arrays) == ["q_pids"]
    good.write_bytes(good.read_bytes()[:40])  # truncated by a full disk or a kill
    with pytest.raises(RunFileError, match=r"all_single.npz is not a readable evaluation file "
                                           r"\(BadZipFile.*move .*/eval aside"):
        run_files.check_run_files(tmp_path)
    np.savez(good, paths=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RunFileError, match="holds Python objects"):
        run_files.read_eval(good)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, synthetic_root, synthetic_dataset):
    """A finished, evaluated smoke run (one training for the module)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    cfg = make_config("smoke", dataset="sysu", data_root=str(synthetic_root), epochs=1,
                      steps_per_epoch=2, trials=1)
    train(cfg, run, dataset=synthetic_dataset)
    return run


@pytest.mark.parametrize("name, content, message",
                         [DAMAGE[0], DAMAGE[1], DAMAGE[3], DAMAGE[5]],
                         ids=["results-not-json", "results-list", "metrics-garbage-line",
                              "config-not-yaml"])
def test_figures_and_open_run_end_with_one_message_and_draw_nothing(finished, tmp_path, capsys,
                                                                   name, content, message):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / name).write_text(content)
    out = tmp_path / "figures"
    assert main(["figures", "--run", str(run), "--out", str(out),
                 "--ablations", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {run / name} ")
    assert not out.exists()  # no figure drawn, none claiming success
    with pytest.raises(RunFileError, match=message):
        analysis.open_run(run, None)
    # the same run, undamaged, opens and draws
    (run / name).write_bytes((finished / name).read_bytes())
    assert main(["figures", "--run", str(run), "--out", str(out),
                 "--ablations", str(tmp_path / "none.json")]) == 0
    assert (out / "cmc.png").is_file()
    # notebook 01's pair, trained for the decomposition figure, lands in the session's
    # FMCNET_RUNS (conftest), not in the checkout's runs/ where nbval's notebook 01 finds it
    assert (Path(os.environ["FMCNET_RUNS"]) / "01_decompose_features-smoke" / "md_on").is_dir()


def _sweep_run(folder, r1):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "dataset": "synthetic", "profile": "smoke", "trials": 1,
        "settings": {"all/single": {"R1": r1, "mAP": r1 / 2}}}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"dataset": "synthetic", "lr": 0.1}))
    (folder / "metrics.jsonl").write_text(json.dumps({"global_step": 1, "disc_acc": 0.5}) + "\n")


@pytest.mark.parametrize("name, content, message", [DAMAGE[1], DAMAGE[3], DAMAGE[6]],
                         ids=["results-list", "metrics-garbage-line", "config-list"])
def test_the_sweep_and_the_study_report_a_damaged_run_as_corrupt(tmp_path, capsys, name,
                                                                  content, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "runner": "train", "out": str(tmp_path / "sweep"), "profile": "smoke",
        "setting": "all/single", "rows": {"a": {"label": "A"}, "b": {"label": "B"}}}))
    _sweep_run(tmp_path / "sweep" / "a", 30.0)
    _sweep_run(tmp_path / "sweep" / "b", 40.0)
    (tmp_path / "sweep" / "b" / name).write_text(content)
    rows = {r["row"]: r for r in sweep.collect_sweep(spec)}
    assert rows["a"]["status"] == "done" and rows["a"]["R1"] == 30.0
    assert rows["b"]["status"] == "corrupt" and rows["b"]["R1"] is None
    assert rows["b"]["message"].startswith(str(tmp_path / "sweep" / "b" / name))
    paths = study.write_study(spec, tmp_path / "report", command="x")
    record = {r["name"]: r for r in json.loads(paths["json"].read_text())["rows"]}["b"]
    assert record["status"] == "corrupt" and record["R1_mean"] is None
    md = paths["md"].read_text()
    assert "| b | B |" in md and "corrupt: " + str(tmp_path / "sweep" / "b" / name) in md
    assert "not run" not in md
    # the sweep never trains over it and ends with an error naming it
    assert main(["sweep", str(spec)]) == 1
    captured = capsys.readouterr()
    assert "b: corrupt, not run: " in captured.err + captured.out
    assert "b (corrupt)" in captured.err
