"""The study's numbers as the notebooks show them: rendered from the JSON `fmcnet.study`
writes (with or without validation ids), the comparisons as `fmcnet.study` tables them,
rows the study does not hold listed as such."""

import json
from pathlib import Path

import pytest
import yaml

from fmcnet import analysis, study, sweep


def _run(folder: Path, r1: float, *, val: float, features: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({
        "dataset": "synthetic", "profile": "smoke", "commit": "abc1234", "trials": 2,
        "settings": {"all/single": {"R1": r1, "mAP": r1 / 2},
                     "val/all/single": {"R1": val, "mAP": val + 1, "mINP": val / 2}},
        **({"features": features} if features else {})}))
    (folder / "config.yaml").write_text(yaml.safe_dump({"dataset": "synthetic"}))
    (folder / sweep.RUN_FILE).write_text(json.dumps({"attempts": [{"wall_s": 10.0}]}))


@pytest.fixture(scope="module")
def study_json(tmp_path_factory):
    """results JSON written by `fmcnet.study.write_study` from a hand-made sweep."""
    tmp = tmp_path_factory.mktemp("study")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "runner": "train", "out": str(tmp / "sweep"), "profile": "smoke",
        "setting": "all/single", "seeds": [0, 1, 2], "rows": {
            "t2_base": {"table": 2, "label": "Base"},
            "t2_full": {"table": 2, "label": "full | quick"},
            "r_sgd": {"table": "readings", "label": "SGD", "seeds": [0, 1, 2, 3]},
        }, "comparisons": [
            {"better": "t2_full", "worse": "t2_base", "what": "the full model over Base"},
            {"better": "t2_full", "worse": "t2_base", "what": "the same", "ids": "val"},
            {"better": "t2_full:fused", "worse": "t2_full:shared", "what": "F_fp over F_sh",
             "paired": True},
            {"better": "r_sgd", "worse": "t2_full", "what": "SGD", "ids": "val"},
        ]}))
    for seed, (b, f) in enumerate([(10.0, 30.0), (12.0, 34.0), (14.0, 38.0)]):
        _run(tmp / "sweep" / "t2_base" / f"seed_{seed}", b, val=20.0 + seed)
        _run(tmp / "sweep" / "t2_full" / f"seed_{seed}", f, val=21.0 - seed,
             features={"shared": {"R1": f - 5 - seed}, "fused": {"R1": f}})
    # r_sgd: one of its four seeds has finished
    _run(tmp / "sweep" / "r_sgd" / "seed_0", 5.0, val=4.0)
    return study.write_study(spec, tmp / "results" / "abl", command="x")["json"]


def test_the_summary_is_the_json_of_the_study(study_json):
    s = analysis.study_summary(["t2_base", "t2_full"], diagnostics=["features/shared/R1"],
                               path=study_json)
    md = s.markdown
    assert "synthetic set, not SYSU-MM01" in md and "commit(s) abc1234" in md
    assert "| row | setting | test R1 | test mAP | val R1 | val mAP | seeds | `features/shared/R1` |" in md
    assert "| `t2_base` | Base | 12.0 ± 2.0 | 6.0 ± 1.0 | 21.0 ± 1.0 | 22.0 ± 1.0 | 3/3 | — |" in md
    # a "|" in a label does not break the table; the feature's R1 is the runs' own
    assert "| `t2_full` | full / quick | 34.0 ± 4.0 | 17.0 ± 2.0 | 20.0 ± 1.0 | 21.0 ± 1.0 | 3/3 | 28.0 ± 3.0 |" in md
    # "auto": every comparison between two of the rows, test and val ids, the paired one too
    assert [c["what"] for c in s.comparisons] == ["the full model over Base", "the same",
                                                  "F_fp over F_sh"]
    assert "| the full model over Base (`t2_full` − `t2_base`) | test | +22.0 | 0.004 | **better** (Welch) | +11.0 |" in md
    assert "| the same (`t2_full` − `t2_base`) | val | -1.0 |" in md and "**not resolved**" in md
    assert "**better** (paired t-test)" in md
    assert s._repr_markdown_() == md == repr(s)


def test_rows_and_comparisons_the_study_lacks_are_named(study_json):
    s = analysis.study_summary(["r_sgd", "t2_full", "r_never_run"],
                               comparisons=["r_sgd - t2_full", "t2_full - r_never_run"],
                               path=study_json)
    assert s.missing == ["r_never_run", "t2_full − r_never_run"]
    assert "Not in this study (yet): `r_never_run`, `t2_full − r_never_run`." in s.markdown
    assert "| `r_sgd` | SGD | 5.0 | 2.5 | 4.0 | 5.0 | 1/4 |" in s.markdown  # one seed: no std
    assert "**no test (one seed)**" in s.markdown
    assert "| comparison |" not in analysis.study_summary(["t2_full"], comparisons=None,
                                                         path=study_json).markdown
    with pytest.raises(Exception, match="comparisons must be 'auto'"):
        analysis.study_summary(["t2_full"], comparisons="all", path=study_json)


def test_a_study_without_validation_ids_and_no_json_at_all(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"provenance": {"profile": "quick", "commits": ["4b8ca8b"]},
                               "rows": [{"name": "a", "label": "A", "R1_mean": 9.2, "R1_std": 4.0,
                                         "mAP_mean": 18.0, "mAP_std": 3.8, "n": 6,
                                         "seeds": [0, 1, 2, 3, 4, 5], "diagnostics": {}}]}))
    md = analysis.study_summary(path=old).markdown
    assert "val R1" not in md  # a study that held no validation ids out
    assert "| `a` | A | 9.2 ± 4.0 | 18.0 ± 3.8 | 6/6 |" in md
    none = analysis.study_summary(["a"], path=tmp_path / "nothing.json")
    assert "No study at" in none.markdown and "--report results/synthetic_ablations" in none.markdown
    assert str(tmp_path) in none.markdown  # outside the checkout the path stays as given


def test_the_committed_study_renders(tmp_path):
    """The notebooks' call works on the JSON in the repository, whatever rows it holds."""
    s = analysis.study_summary(["t2_base", "t2_full", "no_such_row"])
    assert s.markdown.startswith("From `results/synthetic_ablations.json`")
    assert "no_such_row" in s.missing
