"""Notebook sweeps: spec checks, result collection, and a real 2-row papermill sweep."""

import json
from pathlib import Path

import pytest
import yaml

from fmcnet import stats, sweep
from fmcnet.sweep import SweepError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "04_train_model.ipynb"


def _spec(tmp_path, rows, **top):
    data = {"notebook": str(NOTEBOOK), "out": str(tmp_path / "sweep"), "rows": rows, **top}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _results(folder: Path, r1: float, mAP: float, profile="smoke"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({
        "dataset": "synthetic", "profile": profile,
        "settings": {"all/single": {"R1": r1, "mAP": mAP}, "all/multi": {"R1": 1.0, "mAP": 1.0}},
    }))


def test_the_ablation_spec_covers_every_ablation_config():
    spec = sweep.load_spec(REPO / "configs" / "sweeps" / "ablations.yaml")
    configs = {Path(r.config).name for r in spec.rows.values() if r.config}
    reused = {r.name for r in spec.rows.values() if r.same_as}
    on_disk = {p.name for p in (REPO / "configs" / "ablations").glob("*.yaml")}
    assert configs | {f"{name}.yaml" for name in reused} == on_disk
    assert spec.notebook == NOTEBOOK and spec.profile == "quick"
    assert all(r.paper.keys() == {"R1", "mAP"} for r in spec.rows.values())
    assert spec.rows["t2_full"].paper == {"R1": 66.34, "mAP": 62.51}
    assert sweep.default_out(spec, "quick") == spec.out
    assert sweep.default_out(spec, "smoke").name == "sweep-ablations-smoke"


@pytest.mark.parametrize("rows, top, message", [
    ({"a": {"bogus": 1}}, {}, "unknown key"),
    ({"a": {"same_as": "b"}, "b": {"same_as": "a"}}, {}, "same_as"),
    ({"a": {"config": "configs/ablations/nope.yaml"}}, {}, "does not exist"),
    ({"a": {}}, {"extra": 1}, "unknown key"),
    (["a", "b"], {}, "`rows` must be a mapping"),
    ({"a": ["x"]}, {}, "row 'a': expected a mapping"),
    ({"a": {"overrides": ["epochs=1"]}}, {}, "`overrides` must be a mapping"),
    ({"a": {}}, {"parameters": 3}, "`parameters` must be a mapping"),
])
def test_bad_specs_are_refused_with_the_reason(tmp_path, rows, top, message):
    with pytest.raises(SweepError, match=message):
        sweep.load_spec(_spec(tmp_path, rows, **top))


def test_a_spec_that_is_not_yaml_is_named(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("notebook: x.ipynb\nrows: {a: [1, 2\n")
    with pytest.raises(SweepError, match=rf"sweep spec {path} is not valid YAML"):
        sweep.load_spec(path)


def test_two_rows_of_one_name_or_a_key_twice_are_refused(tmp_path):
    """YAML keeps the last of two equal keys without a word: two rows of one name ran once."""
    path = tmp_path / "spec.yaml"
    path.write_text(f"notebook: {NOTEBOOK}\nrows:\n  t2_base:\n    label: Base\n"
                    "  t2_full:\n    label: Full\n  t2_base:\n    label: Base again\n")
    with pytest.raises(SweepError, match=rf"^sweep spec {path} names 't2_base' twice in one "
                                         r"mapping \(lines 3 and 7\); YAML would keep the second "
                                         r"without a word, so two rows of one name would run "
                                         r"once\. Keep one of them$"):
        sweep.load_spec(path)
    path.write_text(f"notebook: {NOTEBOOK}\nsetting: all/single\nrows: {{a: {{}}}}\n"
                    "setting: all/multi\n")
    with pytest.raises(SweepError, match=r"names 'setting' twice in one mapping \(lines 2 and 4\)"):
        sweep.load_spec(path)


@pytest.mark.parametrize("rows, top", [({"a": {"overrides": {"profile": "smoke"}}}, {}),
                                       ({"a": {}}, {"overrides": {"profile": "smoke"}})])
def test_a_profile_among_the_overrides_is_refused(tmp_path, rows, top):
    with pytest.raises(SweepError, match=r"`overrides` names profile=smoke; a sweep has one "
                                         r"profile, the spec's `profile` key \(or --profile\)"):
        sweep.load_spec(_spec(tmp_path, rows, **top))


def test_collect_and_summary_report_every_status(tmp_path):
    path = _spec(tmp_path, {
        "done": {"table": 2, "label": "Base", "paper": {"R1": 57.09, "mAP": 53.11}},
        "again": {"same_as": "done", "table": 3},
        "broken": {"table": 2},
        "old": {"table": 4},
        "todo": {"table": 4},
    }, profile="smoke", setting="all/single")
    out = tmp_path / "sweep"
    _results(out / "done", 40.0, 30.0)
    _results(out / "old", 10.0, 5.0, profile="quick")
    (out / "broken").mkdir()
    (out / "broken" / sweep.FAILED_FILE).write_text(json.dumps(
        {"message": "ConfigError: unknown configuration key", "notebook": "x/04.ipynb"}))
    rows = {r["row"]: r for r in sweep.collect_sweep(path)}
    assert (rows["done"]["status"], rows["done"]["R1"], rows["done"]["mAP"]) == ("done", 40.0, 30.0)
    assert rows["again"]["status"] == "done" and rows["again"]["R1"] == 40.0
    assert rows["broken"]["status"] == "failed" and "ConfigError" in rows["broken"]["message"]
    assert rows["old"]["status"] == "conflict" and rows["old"]["R1"] is None
    assert rows["todo"]["status"] == "not run"
    table = sweep.summary_markdown(list(rows.values()))
    assert "| done | 2 | Base | 40.00 | 30.00 | 57.09 | 53.11 | done |" in table
    assert "x/04.ipynb" in table and "NOT SYSU-MM01" in table


@pytest.mark.slow
def test_a_two_row_smoke_sweep_runs_reports_and_resumes(tmp_path, capsys):
    """One good row and one with an invalid configuration key, twice."""
    path = _spec(tmp_path, {
        "base": {"config": "configs/ablations/t2_base.yaml", "table": 2, "label": "Base",
                 "paper": {"R1": 57.09, "mAP": 53.11}},
        "broken": {"overrides": {"no_such_key": 1}, "table": 2, "label": "broken"},
    }, profile="smoke")
    out = tmp_path / "sweep"
    table = sweep.run_sweep(path, progress=False)
    rows = {r["row"]: r for r in sweep.collect_sweep(path)}
    assert rows["base"]["status"] == "done" and rows["base"]["R1"] is not None
    assert rows["broken"]["status"] == "failed"
    assert "no_such_key" in rows["broken"]["message"]
    broken_nb = out / "broken" / NOTEBOOK.name
    assert rows["broken"]["notebook"] == str(broken_nb) and broken_nb.is_file()
    # the good row's run folder is the row folder, with the executed notebook beside it
    results = json.loads((out / "base" / "results.json").read_text())
    assert results["profile"] == "smoke"
    assert (out / "base" / NOTEBOOK.name).is_file()
    assert yaml.safe_load((out / "base" / "config.yaml").read_text())["sfd"] is False
    assert (out / "summary.md").read_text() == table
    assert "failed" in table and str(broken_nb) in table

    # a re-run skips the finished row (its results stay untouched) and retries the failure;
    # the command exits non-zero while a row has no result
    from fmcnet.cli import main

    stamp = (out / "base" / "results.json").stat().st_mtime_ns
    assert main(["sweep", str(path)]) == 1
    captured = capsys.readouterr()
    assert (out / "base" / "results.json").stat().st_mtime_ns == stamp
    assert "no_such_key" in captured.out
    assert "1 of 2 rows have no result: broken (failed)" in captured.err


def test_the_ablations_notebook_collects_a_sweep_under_papermill_cli(tmp_path):
    """`papermill -p ... -f params.yaml` on notebook 06: it collects, runs nothing."""
    import subprocess
    import sys

    import nbformat

    out = tmp_path / "sweep"
    _results(out / "t2_base", 40.0, 30.0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"out": str(out), "rows": ["t2_base", "t2_full"]}))
    executed = tmp_path / "06.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(REPO / "notebooks" / "06_run_ablations.ipynb"),
         str(executed), "-p", "profile", "smoke", "-f", str(params), "--cwd",
         str(REPO / "notebooks"), "--no-progress-bar"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    nb = nbformat.read(executed, as_version=4)
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells
                     if c.cell_type == "code" for o in c.outputs)
    assert "| t2_base | 2 | Base | 40.00 | 30.00 | 57.09 | 53.11 | done |" in text
    assert "| t2_full |" in text and "not run" in text
    assert "| t3_shs |" not in text  # only the rows asked for


# ---- seeds -------------------------------------------------------------------------------


def _seeded_results(folder: Path, r1: float, mAP: float, features=None, omega=None):
    _results(folder, r1, mAP)
    if features is not None:
        data = json.loads((folder / "results.json").read_text())
        (folder / "results.json").write_text(json.dumps(dict(data, features=features)))
    if omega is not None:
        (folder / "metrics.jsonl").write_text(
            json.dumps({"global_step": 1, "omega/sff/omega/1": 0.0}) + "\n"
            + json.dumps({"global_step": 2, "omega/sff/omega/1": omega, "loss/id": 3.0,
                          "disc_acc": omega / 2}) + "\n")


def test_seeded_rows_aggregate_mean_and_sample_std(tmp_path):
    """A hand-made case: three seeds of one row, two of another (one missing), a reused row."""
    path = _spec(tmp_path, {
        "full": {"table": 2, "label": "full", "seeds": [0, 1, 2]},
        "base": {"table": 2, "label": "Base"},
        "again": {"same_as": "full", "table": 3},
    }, profile="smoke", setting="all/single", seeds=[0, 1])
    out = tmp_path / "sweep"
    for seed, (r1, mAP, fused, omega) in enumerate([(10.0, 20.0, 1.0, 0.5), (20.0, 30.0, 2.0, 1.0),
                                                     (60.0, 40.0, 6.0, 1.5)]):
        _seeded_results(out / "full" / f"seed_{seed}", r1, mAP,
                        features={"fused": {"R1": fused}, "note": "text"}, omega=omega)
    _seeded_results(out / "base" / "seed_0", 5.0, 7.0)
    rows = {r["row"]: r for r in sweep.collect_sweep(path)}
    full = rows["full"]
    assert full["status"] == "done" and full["seeds"] == [0, 1, 2] and full["n"] == 3
    assert full["R1"] == pytest.approx(30.0) and full["mAP"] == pytest.approx(30.0)
    # sample std (n - 1): R1 deviations -20, -10, 30 -> sqrt(1400 / 2)
    assert full["R1_std"] == pytest.approx(700 ** 0.5) and full["mAP_std"] == pytest.approx(10.0)
    assert {s: (v["R1"], v["mAP"]) for s, v in full["per_seed"].items()} == {
        0: (10.0, 20.0), 1: (20.0, 30.0), 2: (60.0, 40.0)}
    # every seed keeps its own diagnostics (paired comparisons of two features need them)
    assert [v["diagnostics"]["features/fused/R1"] for v in full["per_seed"].values()] == [
        1.0, 2.0, 6.0]
    assert full["diagnostics"]["features/fused/R1"] == pytest.approx((3.0, 7 ** 0.5))
    assert full["diagnostics"]["omega/sff/omega/1"] == pytest.approx((1.0, 0.5))
    assert full["diagnostics"]["disc_acc"] == pytest.approx((0.5, 0.25))
    assert "loss/id" not in full["diagnostics"] and "features/note" not in full["diagnostics"]
    assert rows["again"]["R1"] == full["R1"] and rows["again"]["seeds"] == [0, 1, 2]
    base = rows["base"]  # the spec's seeds; one finished: a mean without a spread
    assert base["status"] == "partial" and base["n"] == 1 and base["seeds"] == [0, 1]
    assert (base["R1"], base["R1_std"]) == (5.0, None) and "[1] not run" in base["message"]
    table = sweep.summary_markdown(list(rows.values()))
    assert "| full | 2 | full | 30.00 ± 26.46 | 30.00 ± 10.00 | 3/3 |" in table
    assert "| base | 2 | Base | 5.00 | 7.00 | 1/2 |" in table
    # seeds from the command line replace the spec's and the rows'
    only = {r["row"]: r for r in sweep.collect_sweep(path, seeds=[2])}
    assert only["full"]["n"] == 1 and only["full"]["R1"] == 60.0 and only["base"]["n"] == 0


def test_mean_std_on_edge_cases():
    assert stats.mean_std([]) == (None, None)
    assert stats.mean_std([3.0]) == (3.0, None)
    assert stats.mean_std([1.0, 3.0]) == pytest.approx((2.0, 2 ** 0.5))


@pytest.mark.parametrize("seeds", [[], [1, 1], ["a"], "0,1", [True]])
def test_bad_seeds_are_refused(tmp_path, seeds):
    with pytest.raises(SweepError, match="seeds must be a non-empty list of distinct integers"):
        sweep.load_spec(_spec(tmp_path, {"a": {}}, seeds=seeds))


def test_a_same_as_row_cannot_have_its_own_seeds(tmp_path):
    with pytest.raises(SweepError, match="give the seeds there"):
        sweep.load_spec(_spec(tmp_path, {"a": {}, "b": {"same_as": "a", "seeds": [0]}}))


@pytest.mark.slow
def test_seeds_train_distinct_runs_with_the_train_runner(tmp_path):
    """Two seeds of one row through `python -m fmcnet train`: two run folders with their
    own seed, different training, one aggregated row; a re-run trains nothing."""
    path = _spec(tmp_path, {"base": {"config": "configs/ablations/t2_base.yaml", "table": 2,
                                     "label": "Base"}},
                 profile="smoke", runner="train", seeds=[0, 1], overrides={"trials": 1})
    out = tmp_path / "sweep"
    table = sweep.run_sweep(path, progress=False)
    folders = [out / "base" / f"seed_{s}" for s in (0, 1)]
    configs = [yaml.safe_load((f / "config.yaml").read_text()) for f in folders]
    assert [c["seed"] for c in configs] == [0, 1] and all(c["sfd"] is False for c in configs)
    assert all(c["trials"] == 1 and c["profile"] == "smoke" for c in configs)
    first_losses = [json.loads((f / "metrics.jsonl").read_text().splitlines()[0])["loss/total"]
                    for f in folders]
    assert first_losses[0] != first_losses[1]  # other initialisation and batches
    row = sweep.collect_sweep(path)[0]
    assert row["status"] == "done" and row["n"] == 2 and row["R1_std"] is not None
    attempts = [json.loads((f / sweep.RUN_FILE).read_text())["attempts"] for f in folders]
    assert [len(a) for a in attempts] == [1, 1] and attempts[1][0]["command"][-1] == "seed=1"
    assert row["wall_s"] == pytest.approx(sum(a[0]["wall_s"] for a in attempts))
    assert len(row["machines"]) == 1 and "torch" in row["machines"][0]
    assert "2/2" in table and (out / "summary.md").read_text() == table
    stamps = [(f / "results.json").stat().st_mtime_ns for f in folders]
    sweep.run_sweep(path, progress=False)
    assert [(f / "results.json").stat().st_mtime_ns for f in folders] == stamps


def test_the_train_runner_reports_a_failing_run(tmp_path):
    path = _spec(tmp_path, {"broken": {"overrides": {"no_such_key": 1}}}, profile="smoke",
                 runner="train")
    table = sweep.run_sweep(path, progress=False)
    row = sweep.collect_sweep(path)[0]
    log = tmp_path / "sweep" / "broken" / sweep.TRAIN_LOG
    assert row["status"] == "failed" and "unknown configuration key 'no_such_key'" in row["message"]
    assert row["notebook"] == str(log) and log.is_file() and str(log) in table
