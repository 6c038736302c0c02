"""The one reference run the notebooks share: found, trained once, resumed, then only loaded."""

import json

import pytest

import fmcnet.evaluation.run as evaluation_run
import fmcnet.train as train_mod
from fmcnet import analysis
from fmcnet.checkpoints import CheckpointMismatch, load_checkpoint
from fmcnet.config import make_config
from fmcnet.utils import FMCNetError


def smoke(**kw):
    return make_config("smoke", **{"epochs": 2, "steps_per_epoch": 2, "trials": 1, **kw})


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished, evaluated run was trained again")

    monkeypatch.setattr(train_mod, "train", refuse)


def test_reference_run_folder_is_the_demo_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path))
    assert analysis.reference_run_dir() == tmp_path / "demo"  # what `make demo` writes
    assert analysis.reference_run_dir("smoke") == tmp_path / "demo-smoke"
    assert analysis.reference_run_dir("paper", "sysu") == tmp_path / "demo-sysu-paper"
    assert analysis.demo_config() == make_config("quick")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_dataset):
    """A finished, evaluated smoke run in a runs folder, as `demo-smoke` (one training)."""
    return analysis.open_run(tmp_path_factory.mktemp("runs") / "demo-smoke", smoke(),
                             dataset=synthetic_dataset)


def test_open_run_trains_once_then_only_loads(trained, tmp_path, synthetic_dataset, monkeypatch):
    run, first = trained.run_dir, trained
    assert (run / "results.json").exists() and first.results["settings"]
    _no_training(monkeypatch)
    again = analysis.open_run(run, smoke(), dataset=synthetic_dataset)
    assert again.results == first.results and again.history == first.history
    assert not again.model.training
    for key, value in first.model.state_dict().items():
        assert again.model.state_dict()[key].equal(value.cpu()), key
    # another experiment in the folder is named, not silently used
    with pytest.raises(CheckpointMismatch, match=r"epochs: the run has 2, asked for 3"):
        analysis.open_run(run, smoke(epochs=3), dataset=synthetic_dataset)
    # ... unless the folder was named by the user: then the run is taken as it is
    assert analysis.open_run(run, smoke(epochs=3), expect_config=False,
                             dataset=synthetic_dataset).cfg.epochs == 2
    with pytest.raises(FMCNetError, match="holds no trained run"):
        analysis.open_run(tmp_path / "empty", None)


def test_open_run_resumes_an_interrupted_run(tmp_path, synthetic_dataset):
    run = tmp_path / "run"

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analysis.open_run(run, smoke(log_every=1), dataset=synthetic_dataset, callback=stop)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["global_step"] == 1
    seen = []
    result = analysis.open_run(run, smoke(log_every=1), dataset=synthetic_dataset,
                               callback=seen.append)
    assert [r["global_step"] for r in seen] == [2, 3, 4]  # continued, not restarted
    assert load_checkpoint(run / "checkpoints" / "last.pt")["global_step"] == 4
    assert result.results is not None and (run / "results.json").exists()


def test_training_run_keeps_the_reference_run_the_demo(monkeypatch, tmp_path, synthetic_dataset):
    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path))
    with pytest.raises(FMCNetError, match="give run_dir"):
        analysis.training_run("smoke", overrides={"epochs": 5})
    calls = []
    monkeypatch.setattr(analysis.runs, "open_run",
                        lambda folder, cfg, **kw: calls.append((folder, cfg)))
    analysis.training_run("smoke")
    analysis.training_run("smoke", run_dir=str(tmp_path / "mine"), overrides={"epochs": 5},
                          config_files=["configs/ablations/t2_base.yaml"])
    assert calls[0] == (tmp_path / "demo-smoke", analysis.demo_config("smoke"))
    assert calls[1][0] == tmp_path / "mine"
    assert calls[1][1].epochs == 5 and calls[1][1].fusion == "none"  # the YAML row's


def test_run_results_reuse_or_evaluate_into_their_own_folder(trained, monkeypatch):
    run = trained
    own = json.loads((run.run_dir / "results.json").read_text())
    real_evaluate = evaluation_run.evaluate_run
    monkeypatch.setattr(evaluation_run, "evaluate_run", lambda *a, **k: pytest.fail("re-evaluated"))
    assert analysis.run_results(run) == own  # the options the run was evaluated with
    monkeypatch.setattr(evaluation_run, "evaluate_run", real_evaluate)
    assert analysis.run_results(run, trials=1) == own  # the number it used
    flipped = analysis.run_results(run, tta=True)
    assert flipped["tta"] is True and flipped["settings"].keys() == own["settings"].keys()
    folder = evaluation_run.evaluation_folder(run.run_dir, run.dataset, settings=None,
                                              trials=run.cfg.trials, tta=True, rerank=False)
    assert folder.parent == run.run_dir / "evaluations" and folder.name.endswith("_tta")
    assert (folder / "results.json").exists()
    assert json.loads((run.run_dir / "results.json").read_text()) == own  # untouched


def test_ranking_browser_is_the_run_or_an_announced_toy(trained, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path))  # no run there
    browser, out = analysis.ranking_browser("smoke")
    assert "TOY example" in capsys.readouterr().out
    assert list(browser.settings) == ["infrared_to_visible", "visible_to_infrared"]
    monkeypatch.setenv("FMCNET_RUNS", str(trained.run_dir.parent))  # holds demo-smoke
    browser, out = analysis.ranking_browser("smoke")
    assert "TOY" not in capsys.readouterr().out
    assert set(browser.settings) == {"all/single", "all/multi", "indoor/single", "indoor/multi"}
    assert out == trained.run_dir / "figures"


def test_comparison_runs_study_pair_given_pair_or_smoke_fallback(trained, monkeypatch, tmp_path,
                                                                 capsys):
    import shutil

    import fmcnet.analysis.runs as runs_mod
    import fmcnet.sweep as sweep_mod

    with pytest.raises(FMCNetError, match="give both run_a and run_b"):
        analysis.comparison_runs("smoke", run_a=trained.run_dir)
    same = analysis.comparison_runs("smoke", run_a=trained.run_dir, run_b=trained.run_dir)
    assert list(same.values()) == [trained.run_dir] * 2 and len(same) == 2  # two features
    # the reference study's Base and full model, once both are evaluated
    study = tmp_path / "study"
    monkeypatch.setattr(sweep_mod, "default_out", lambda spec, profile: study)
    for row in ("t2_base", "t2_full"):
        shutil.copytree(trained.run_dir / "eval", study / row / "seed_0" / "eval")
    runs = analysis.comparison_runs("smoke")
    assert list(runs) == ["Base (t2_base, seed 0)", "full (t2_full, seed 0)"]
    assert list(runs.values()) == [study / "t2_base" / "seed_0",
                                   study / "t2_full" / "seed_0"]
    browser, out = analysis.comparison_browser("smoke")
    assert browser.comparing and list(browser.runs) == list(runs)
    # none: the smoke demo run and a Base run with Table 2's Base switches, trained here
    shutil.rmtree(study / "t2_base")
    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path / "runs"))
    asked = []
    monkeypatch.setattr(runs_mod, "reference_run", lambda profile: trained)
    monkeypatch.setattr(runs_mod, "open_run", lambda folder, cfg: asked.append((folder, cfg)))
    runs = analysis.comparison_runs("quick")
    assert "comparing smoke-size runs instead" in capsys.readouterr().out
    assert list(runs.values()) == [tmp_path / "runs" / "demo-smoke-base", trained.run_dir]
    (folder, cfg), = asked
    assert folder == tmp_path / "runs" / "demo-smoke-base"
    assert (cfg.sfd, cfg.fmc, cfg.fusion, cfg.height) == (False, False, "none", 32)
