"""The study document: verdicts, the JSON / Markdown / figure written from a hand-made sweep."""

import json
from pathlib import Path

import pytest
import yaml

from fmcnet import stats, study, sweep

REPO = Path(__file__).resolve().parents[1]


def _run(folder: Path, r1: float, mAP: float, *, coupling: float = 0.2, sfd: bool = True,
         features: dict | None = None, val: float | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"all/single": {"R1": r1, "mAP": mAP}}
    if val is not None:  # validate=true: the held-out val ids' setting
        settings["val/all/single"] = {"R1": val, "mAP": val + 1, "mINP": val / 2}
    (folder / "results.json").write_text(json.dumps({
        "dataset": "synthetic", "profile": "smoke", "commit": "abc1234", "device": "CPU (x, 2 cores)",
        "trials": 4, "settings": settings,
        **({"features": features} if features else {}),
    }))
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "dataset": "synthetic", "synthetic_thermal_coupling": coupling, "sfd": sfd,
        "synthetic_cross_modal_predictability": 0.5, "backbone": "resnet18", "height": 64}))
    (folder / sweep.RUN_FILE).write_text(json.dumps({"attempts": [
        {"wall_s": 100.0, "machine": "CPU (x, 2 cores), Linux, torch 2"}]}))


def test_verdict_counts_a_difference_only_beyond_both_spreads():
    a = {"R1": 50.0, "R1_std": 2.0}
    assert stats.verdict(a, {"R1": 45.0, "R1_std": 2.0}) == {
        "diff": 5.0, "spread": 4.0, "verdict": "better, beyond the seed spread", "p": None}
    assert stats.verdict(a, {"R1": 47.0, "R1_std": 2.0})["verdict"] == "within the seed spread"
    assert stats.verdict({"R1": 40.0, "R1_std": 1.0}, {"R1": 45.0, "R1_std": 1.0})["verdict"] == \
        "worse, beyond the seed spread"
    assert stats.verdict(a, {"R1": 40.0, "R1_std": None})["verdict"] == "no spread (one seed)"
    assert stats.verdict(a, {"R1": None})["verdict"] == "not run"


def test_compare_decides_by_welch_or_by_the_paired_test():
    from scipy import stats as scipy_stats

    a = {0: 20.0, 1: 18.9, 2: 11.4, 3: 12.0, 4: 21.0, 5: 15.5}
    b = {0: 15.9, 1: 6.3, 2: 8.6, 3: 9.3, 4: 4.3, 5: 10.9}
    welch = stats.compare(a, b)
    assert welch["p"] == pytest.approx(scipy_stats.ttest_ind(list(a.values()), list(b.values()),
                                                             equal_var=False).pvalue)
    assert welch["verdict"] == "better" and welch["n"] == [6, 6]
    assert stats.compare(b, a)["verdict"] == "worse"
    paired = stats.compare(a, b, paired=True)
    assert paired["p"] == pytest.approx(scipy_stats.ttest_rel(list(a.values()),
                                                              list(b.values())).pvalue)
    close = {k: v + (0.5 if k % 2 else -0.5) for k, v in a.items()}
    assert stats.compare(close, a)["verdict"] == "not resolved"
    assert stats.compare({0: 1.0}, b)["verdict"] == "no test (one seed)"
    assert stats.compare({}, b)["verdict"] == "not run"


def test_welch_p_is_the_t_test_of_the_seeds_numbers():
    """p from the rows' mean, sample std and seed count equals Welch's test on the seeds'
    numbers themselves; six seeds resolve a difference that the spread bar does not."""
    from scipy import stats as scipy_stats

    a, b = [20.0, 18.9, 11.4, 12.0, 21.0, 15.5], [15.9, 6.3, 8.6, 9.3, 4.3, 10.9]

    def row(xs):
        m = sum(xs) / len(xs)
        return {"R1": m, "R1_std": (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5,
                "n": len(xs)}

    v = stats.verdict(row(a), row(b))
    assert v["p"] == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert v["verdict"] == "within the seed spread" and v["p"] < 0.05
    assert stats.verdict({"R1": 20.0, "R1_std": 1.0, "n": 1}, row(b))["p"] is None  # one seed


def test_write_study_from_a_hand_made_sweep(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "runner": "train", "out": str(tmp_path / "sweep"), "profile": "smoke",
        "setting": "all/single", "seeds": [0, 1], "rows": {
            "t2_base": {"table": 2, "label": "Base", "seeds": [0, 1, 2],
                        "paper": {"R1": 57.09, "mAP": 53.11}},
            "t2_full": {"table": 2, "label": "full", "seeds": [0, 1, 2]},
            "c095_base": {"table": "coupling", "label": "Base", "seeds": [0]},
            "cdef_base": {"same_as": "t2_base", "table": "coupling", "label": "Base"},
        }, "comparisons": [
            {"better": "t2_full", "worse": "t2_base", "what": "the full model over Base"},
            {"better": "t2_full", "worse": "t2_base", "what": "the same, val ids", "ids": "val"},
            {"better": "t2_full:fused", "worse": "t2_full:shared", "what": "F_fp over F_sh",
             "paired": True},
        ]}))
    out = tmp_path / "sweep"
    for seed, (b, f) in enumerate([(10.0, 30.0), (12.0, 34.0), (14.0, 38.0)]):
        _run(out / "t2_base" / f"seed_{seed}", b, b / 2, sfd=False, val=20.0 + seed)
        _run(out / "t2_full" / f"seed_{seed}", f, f / 2, val=21.0 - seed,
             features={"shared": {"R1": f - 5 - seed}, "fused": {"R1": f}})
        (out / "t2_full" / f"seed_{seed}" / "metrics.jsonl").write_text(json.dumps(
            {"global_step": 9, "disc_acc": 0.7 + 0.1 * seed, "loss/gan_d": 2.0}) + "\n")
    _run(out / "c095_base" / "seed_0", 60.0, 50.0, coupling=0.95, sfd=False)
    paths = study.write_study(spec, tmp_path / "results" / "abl", command="python -m fmcnet x")
    assert all(p.is_file() for p in paths.values())
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(paths["json"].read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert rows["t2_full"]["R1_mean"] == pytest.approx(34.0)
    assert rows["t2_full"]["R1_std"] == pytest.approx(4.0)
    assert rows["t2_base"]["mAP_mean"] == pytest.approx(6.0)
    assert rows["t2_base"]["mAP_std"] == pytest.approx(1.0)
    assert rows["t2_full"]["seeds"] == [0, 1, 2] and rows["c095_base"]["thermal_coupling"] == 0.95
    assert rows["t2_full"]["diagnostics"]["features/fused/R1"]["mean"] == pytest.approx(34.0)
    assert doc["synthetic"] is True and doc["provenance"]["commits"] == ["abc1234"]
    assert doc["provenance"]["runs_finished"] == 7  # the same_as row counts no runs of its own
    assert doc["provenance"]["wall_s_total"] == pytest.approx(700.0)
    test, val, paired = doc["comparisons"]
    assert test["R1"] == {"diff": pytest.approx(22.0), "spread": pytest.approx(6.0),
                          "verdict": "better", "n": [3, 3],
                          "p": pytest.approx(0.00366, abs=1e-5)}
    assert val["ids"] == "val" and val["R1"]["diff"] == pytest.approx(-1.0)  # 20 vs 21 mean
    assert val["R1"]["verdict"] == "not resolved"
    assert paired["paired"] and paired["R1"]["diff"] == pytest.approx(6.0)  # 5, 6, 7
    assert paired["R1"]["p"] == pytest.approx(0.00913, abs=1e-5) and paired["R1"]["verdict"] == "better"
    md = paths["md"].read_text()
    assert "python -m fmcnet x" in md and "not SYSU-MM01" in md
    assert "| t2_full | full | 20.0 ± 1.0 | 21.0 ± 1.0 | 34.0 ± 4.0 | 17.0 ± 2.0 | 3/3 |" in md
    assert "| t2_base | Base | 21.0 ± 1.0 | 22.0 ± 1.0 | 12.0 ± 2.0 | 6.0 ± 1.0 | 3/3 | 57.09 / 53.11 |" in md
    assert "| Base | 0.95 | 0.5 | 60.0 | 50.0 | 1/1 |" in md
    assert "| Base | 0.2 | 0.5 | 12.0 ± 2.0 | 6.0 ± 1.0 | 3/3 |" in md
    assert "| row | fused | shared |" in md and "| t2_full | 34.0 ± 4.0 | 28.0 ± 3.0 |" in md
    assert md.index("## Verdicts") < md.index("## Provenance")  # the verdicts lead
    assert "| test | +22.0 | 0.004 | **better** (Welch) | +11.0 |" in md
    assert "| val | -1.0 | " in md and "**better** (paired t-test)" in md
    assert "| row | `disc_acc` | `loss/gan_d` |" in md and "| t2_full | 0.80 ± 0.10 | 2.00 ± 0.00 |" in md
    assert "Discussion" not in md
    # A hand-written discussion beside the prefix is copied in.
    (tmp_path / "results" / "abl.discussion.md").write_text("SFF helps because ...")
    md = study.write_study(spec, tmp_path / "results" / "abl")["md"].read_text()
    assert "## Discussion (written by hand for these numbers)\n\nSFF helps because ..." in md


def test_the_study_spec_has_every_ablation_row_with_its_seeds():
    spec = sweep.load_spec(REPO / "configs" / "sweeps" / "synthetic_study.yaml")
    ablations = sweep.load_spec(REPO / "configs" / "sweeps" / "ablations.yaml")
    assert spec.runner == "train" and spec.setting == "all/single"
    for name, row in ablations.rows.items():
        mine = spec.rows[name]
        assert (mine.config, mine.same_as, mine.paper) == (row.config, row.same_as, row.paper)
        seeds = sweep.row_seeds(spec, mine)
        assert len(seeds) >= (3 if row.table == "2" else 2), name
    coupling = [r for r in spec.rows.values() if r.table == study.COUPLING_TABLE]
    assert {r.label for r in coupling} == {"Base", "full model"}


def test_the_study_trains_what_quick_trains_and_decides_on_val():
    """Every row is `quick` (the demo's schedule, the stand-in start) with its own switches;
    every row but the demo holds the val ids out and keeps the last epoch, and every
    reading is decided on them."""
    from fmcnet.config import make_config

    spec = sweep.load_spec(REPO / "configs" / "sweeps" / "synthetic_study.yaml")

    def resolved(row):
        return make_config(spec.profile, yaml_files=[REPO / row.config],
                           overrides=sweep._run_overrides(spec, row, None, None))

    quick = make_config("quick")
    keys = ("epochs", "steps_per_epoch", "lr_milestones", "num_identities", "num_instances",
            "height", "width", "backbone_width", "pretrained_path")
    full = resolved(spec.rows["t2_full"])
    demo = resolved(spec.rows["demo"])
    for key in keys:
        assert getattr(full, key) == getattr(quick, key), key
    assert full.validate and not full.keep_best_val and not demo.validate
    assert {k: v for k, v in plain_dict(demo).items() if k not in ("validate",)} == {
        k: v for k, v in plain_dict(make_config("quick", yaml_files=[
            REPO / "configs/ablations/t2_full.yaml"], keep_best_val=False)).items()
        if k not in ("validate",)}
    readings = [n for n, r in spec.rows.items() if r.table == "readings"]
    assert len(readings) >= 8
    decided = {c.better for c in spec.comparisons if c.ids == "val"}
    assert set(readings) <= decided
    for name in readings:  # one switch each, against the full model
        changed = {k for k in keys + ("align_weight", "fmc_detach_input", "fc_loss_space",
                                      "center_loss_space", "disc_optimizer", "optimizer",
                                      "omega_weighs", "generator_loss", "fc_detach_centers",
                                      "omega_lr_mult")
                   if getattr(resolved(spec.rows[name]), k) != getattr(full, k)}
        assert changed, name


def plain_dict(cfg):
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.to_dict().items()}


def test_the_sweep_command_writes_the_report_without_training(tmp_path, capsys):
    from fmcnet.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "runner": "train", "out": str(tmp_path / "sweep"), "profile": "smoke",
        "setting": "all/single", "rows": {"t2_base": {"table": 2, "label": "Base"}}}))
    _run(tmp_path / "sweep" / "t2_base" / "seed_3", 20.0, 10.0)
    prefix = tmp_path / "out" / "study"
    assert main(["sweep", str(spec), "--seeds", "3", "--no-run", "--report", str(prefix)]) == 0
    assert "study written" in capsys.readouterr().out
    md = prefix.with_suffix(".md").read_text()
    assert f"python -m fmcnet sweep {spec} --seeds 3 --report {prefix}" in md
    assert "| t2_base | Base | — | — | 20.0 | 10.0 | 1/1 |" in md
    assert not (tmp_path / "sweep" / "t2_base" / "seed_3" / "train.log").exists()  # nothing ran


def test_the_sweep_command_trains_only_the_rows_asked_for(tmp_path, monkeypatch, capsys):
    """`--rows`: the named rows are trained, the others are collected as they stand and do
    not make the command fail."""
    from fmcnet.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "runner": "train", "out": str(tmp_path / "sweep"), "profile": "smoke",
        "setting": "all/single",
        "rows": {"t2_base": {"table": 2}, "t2_full": {"table": 2}}}))
    trained = []

    def fake_train(row, folder, *a, **k):
        trained.append(row.name)
        _run(folder, 20.0, 10.0)

    monkeypatch.setattr(sweep, "_train_run", fake_train)
    assert main(["sweep", str(spec), "--seeds", "3", "--rows", "t2_base"]) == 0
    assert trained == ["t2_base"]
    capsys.readouterr()
    assert main(["sweep", str(spec), "--seeds", "3", "--no-run"]) == 0  # collects only
    table = capsys.readouterr().out
    assert "| t2_base |" in table and "not run" in table.split("| t2_full |")[1]
    assert trained == ["t2_base"]


def test_tables_that_are_not_the_papers_get_their_own_heading():
    from fmcnet.analysis.ablations import table_title

    headings = sweep.load_spec(REPO / "configs" / "sweeps" / "synthetic_study.yaml").headings
    assert [table_title(t, headings) for t in ("2", "readings", "", "extra")] == [
        "Table 2", "Readings of the paper, each switched in the full model (decided on val)",
        "Rows", "extra"]


def test_the_study_spec_names_its_comparisons_and_every_one_is_a_pair_of_its_rows(tmp_path):
    """The words of the study live in its spec: each comparison names two rows of the spec
    (a misspelt row is refused, naming it), and the document reports them in spec order."""
    spec = sweep.load_spec(REPO / "configs" / "sweeps" / "synthetic_study.yaml")
    assert len(spec.comparisons) >= 10
    assert spec.comparisons[0] == sweep.Comparison(
        "t2_base_sfd", "t2_base", "SFD over Base (retrieval on F_sh in both)")
    for c in spec.comparisons:
        sides = (c.better.split(":")[0], c.worse.split(":")[0])
        assert sides[0] in spec.rows and sides[1] in spec.rows and c.what
        assert c.ids in ("val", "test") and (":" not in c.better or c.paired)
    bad = tmp_path / "spec.yaml"
    bad.write_text(yaml.safe_dump({
        "runner": "train", "rows": {"t2_base": {}, "t2_full": {}},
        "comparisons": [{"better": "t2_ful", "worse": "t2_base", "what": "typo"}]}))
    with pytest.raises(sweep.SweepError, match=r"comparison 'typo' names row\(s\) \['t2_ful'\]"):
        sweep.load_spec(bad)
    bad.write_text(yaml.safe_dump({"runner": "train", "rows": {"a": {}},
                                   "comparisons": [["a", "a", "no keys"]]}))
    with pytest.raises(sweep.SweepError, match="each comparison is"):
        sweep.load_spec(bad)
