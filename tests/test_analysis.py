"""The notebooks' helpers (fmcnet.analysis) on tiny inputs with known answers."""

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fmcnet import analysis
from fmcnet.analysis import FeatureSet
from fmcnet.config import make_config
from fmcnet.data.base import EvalSplit, ImageSet
from fmcnet.utils import FMCNetError


def _feature_set(shared_v, shared_i, specific_v, specific_i, pids, **extra):
    """Visible rows first, then infrared; the same `pids` order in both halves."""
    kinds = {"shared": np.concatenate([shared_v, shared_i]),
             "specific": np.concatenate([specific_v, specific_i])}
    kinds.update(extra)
    n = len(pids)
    return FeatureSet(kinds, np.concatenate([pids, pids]), np.ones(2 * n, np.int64),
                      np.array(["visible"] * n + ["infrared"] * n))


def _clusters(rng, ids, per_id, dim, offset=0, noise=0.05):
    """Unit-ish identity clusters in coordinates offset..offset+len(ids)."""
    pids = np.repeat(ids, per_id)
    x = np.zeros((len(pids), dim))
    x[np.arange(len(pids)), offset + np.searchsorted(ids, pids)] = 1.0
    return x + noise * rng.normal(size=x.shape), pids


# ---- separation statistics (notebook 01) ------------------------------------------------


def test_separation_stats_tell_decomposed_from_entangled_features():
    rng = np.random.default_rng(0)
    ids = np.arange(4)
    shared, pids = _clusters(rng, ids, 3, 16, offset=0)
    # specific features in other coordinates (orthogonal to the shared ones): a common
    # modality direction plus a weaker identity part, so they spread less than they lie
    # away from the shared centers (what Eq. 4 asks)
    specific, _ = _clusters(rng, ids, 3, 16, offset=8)
    specific = 0.3 * specific
    specific[:, 15] += 1.0
    apart = analysis.separation_stats(_feature_set(shared, shared, specific, specific, pids))
    assert apart["cos(F_sh, F_sp)"] < 0.1
    assert apart["kind 1-NN accuracy"] == 1.0
    assert apart["Eq. 4 margin"] > 0
    assert apart["shared modality gap"] == pytest.approx(0.0, abs=1e-9)  # same shared in V and I

    # specific == shared (the tails at initialisation): nothing is decomposed
    shared_i = shared + 0.01 * rng.normal(size=shared.shape)
    same = analysis.separation_stats(_feature_set(shared, shared_i, shared, shared_i, pids))
    assert same["cos(F_sh, F_sp)"] == pytest.approx(1.0)
    assert same["kind 1-NN accuracy"] == 0.0  # each feature's twin is of the other kind
    assert same["Eq. 4 margin"] < 0

    # shared features that do not agree across modalities: the gap is about 1
    other_i, _ = _clusters(rng, ids, 3, 16, offset=4)
    gap = analysis.separation_stats(_feature_set(shared, other_i, specific, specific, pids))
    assert gap["shared modality gap"] == pytest.approx(1.0, abs=0.05)


def test_separation_stats_need_specific_features():
    fs = FeatureSet({"shared": np.ones((2, 3))}, np.array([0, 0]), np.array([1, 3]),
                    np.array(["visible", "infrared"]))
    with pytest.raises(FMCNetError, match="specific"):
        analysis.separation_stats(fs)


# ---- compensation statistics (notebook 02) ----------------------------------------------


def test_compensation_stats_hit_rate_follows_the_generated_features():
    rng = np.random.default_rng(1)
    ids = np.arange(5)
    real, pids = _clusters(rng, ids, 2, 12)
    shared = rng.normal(size=real.shape)
    # generated features next to the real center of their own identity (both directions)
    good = _feature_set(shared, shared, real, real, pids, generated=np.concatenate([real, real]))
    stats = analysis.compensation_stats(good)
    assert list(stats.index) == ["V->I", "I->V"]
    assert (stats["identity hit rate"] == 1.0).all()
    assert (stats["to own center"] < stats["to nearest other center"]).all()
    assert stats.loc["V->I", "chance"] == pytest.approx(0.2)

    # generated features pointing at the *next* identity: never a hit
    wrong = np.concatenate([np.roll(real, 2, axis=0)] * 2)
    bad = analysis.compensation_stats(_feature_set(shared, shared, real, real, pids,
                                                   generated=wrong))
    assert (bad["identity hit rate"] == 0.0).all()

    scores = {"V->I": {"real": np.array([0.9, 0.7]), "generated": np.array([0.1, 0.3])},
              "I->V": {"real": np.array([0.5]), "generated": np.array([0.5])}}
    with_d = analysis.compensation_stats(good, scores)
    assert with_d.loc["V->I", "D(real)"] == pytest.approx(0.8)
    assert with_d.loc["V->I", "D(generated)"] == pytest.approx(0.2)


def test_the_one_line_reading_follows_the_hit_rate():
    rng = np.random.default_rng(1)
    ids = np.arange(5)
    real, pids = _clusters(rng, ids, 2, 12)
    shared = rng.normal(size=real.shape)
    good = _feature_set(shared, shared, real, real, pids, generated=np.concatenate([real, real]))
    line = analysis.compensation_reading(analysis.compensation_stats(good))
    assert "V→I 100%, I→V 100% (chance 20%)" in line and "carry identity" in line
    wrong = np.concatenate([np.roll(real, 2, axis=0)] * 2)
    bad = _feature_set(shared, shared, real, real, pids, generated=wrong)
    assert "no nearer their own identity than chance" in analysis.compensation_reading(
        analysis.compensation_stats(bad))
    one_sided = _feature_set(shared, shared, real, real, pids,
                             generated=np.concatenate([real, np.roll(real, 2, axis=0)]))
    assert "one-sided" in analysis.compensation_reading(analysis.compensation_stats(one_sided))
    # the figure carries the same sentence under its panels
    fig = analysis.plot_real_vs_generated(good)
    assert fig.get_supxlabel() == line
    assert analysis.plot_real_vs_generated(good, reading=False).get_supxlabel() == ""


def test_real_and_generated_stacks_target_rows_with_generated_ones():
    n = 3
    pids = np.array([1, 2, 3])
    fs = _feature_set(np.zeros((n, 4)), np.zeros((n, 4)), np.full((n, 4), 1.0),
                      np.full((n, 4), 2.0), pids, generated=np.concatenate(
                          [np.full((n, 4), 3.0), np.full((n, 4), 4.0)]))
    kinds, p, labels = analysis.real_and_generated(fs, target="infrared")
    (feats,) = kinds.values()
    # real infrared-specific (2.0), then F'_sp,I generated from the visible images (3.0)
    assert feats[:n].tolist() == [[2.0] * 4] * n and feats[n:].tolist() == [[3.0] * 4] * n
    assert p.tolist() == [1, 2, 3, 1, 2, 3]
    assert labels[0].startswith("real") and labels[-1].startswith("generated")


# ---- SFF (notebook 03) ------------------------------------------------------------------


def test_omega_history_reads_the_metrics_log():
    records = [
        {"global_step": 1, "loss/total": 3.0, "omega/sff/omega_v/1": 1.0, "omega/sff/omega_v/2": 0.5,
         "omega/sff/omega_i/1": 1.0, "omega/sff/omega_i/2": 0.5},
        {"global_step": 2, "loss/total": 2.0, "omega/sff/omega_v/1": 0.9, "omega/sff/omega_v/2": 0.6,
         "omega/sff/omega_i/1": 1.1, "omega/sff/omega_i/2": 0.4},
    ]
    h = analysis.omega_history(records)
    assert list(h.index) == [1, 2]
    assert h.loc[2, "w1 (V)"] == 0.9 and h.loc[2, "w2 (I)"] == 0.4
    with pytest.raises(FMCNetError, match="fusion=sff"):
        analysis.omega_history([{"global_step": 1, "loss/total": 1.0}])


def test_feature_variants_and_retrieval_table():
    # 4 identities, 2 queries and 2 gallery images each; the shared feature is a perfect
    # identity code, the specific one is noise
    rng = np.random.default_rng(2)
    ids = np.arange(4)
    q_sh, q_p = _clusters(rng, ids, 2, 8, noise=0.01)
    g_sh, g_p = _clusters(rng, ids, 2, 8, noise=0.01)
    dim = 8

    def parts(sh):
        sp = rng.normal(size=sh.shape)
        gen = rng.normal(size=sh.shape)
        fused = np.concatenate([sh, 1.0 * sp + 0.5 * gen], 1)
        return {"shared": sh, "specific": sp, "generated": gen, "fused": fused}

    qp, gp = parts(q_sh), parts(g_sh)
    variants = analysis.feature_variants(qp)
    assert variants["F_sh"].shape == (8, dim)
    assert variants["Cat(F_sh, F_sp, F'_sp)"].shape == (8, 3 * dim)
    assert torch.allclose(variants["F_fu = w1 F_sp + w2 F'_sp"], torch.as_tensor(
        qp["fused"][:, dim:]).float())

    split = EvalSplit(
        "visible_to_infrared", "regdb",
        ImageSet([f"q{i}" for i in range(8)], q_p, np.ones(8), "visible"),
        ImageSet([f"g{i}" for i in range(8)], g_p, np.full(8, 2), "infrared"),
        [np.arange(8), np.arange(8)],
    )
    table = analysis.retrieval_table(qp, gp, split)
    assert table.loc["F_sh", "R1"] == pytest.approx(100.0)
    assert table.loc["F_sh", "mAP"] == pytest.approx(100.0)
    assert table.loc["F_sp", "mAP"] < 100.0
    assert set(table.columns) == {"R1", "R10", "mAP", "mINP"}


# ---- model plumbing (notebook 01) -------------------------------------------------------


def test_trace_shapes_follows_the_batch_through_fmcnet():
    from fmcnet.model import FMCNet

    cfg = make_config("smoke", generator_hidden=16)
    model = FMCNet.from_config(cfg, num_classes=5)
    x = torch.randn(2, 3, cfg.height, cfg.width)
    table = analysis.trace_shapes(model, x, x)
    shapes = dict(zip(table["symbol"], table["shape"]))
    assert shapes["X_V"] == (2, 3, 32, 16)
    assert shapes["F_sh,V"] == (2, 512) and shapes["F_sp,I"] == (2, 512)
    assert shapes["F'_sp,I"] == (2, 512)  # generated from the visible image
    assert shapes["F_fp,V"] == (2, 1024)  # Cat(F_sh, F_fu)
    assert shapes["S_sh,V"] == (2, 5)
    assert model.training  # the trace leaves the mode as it found it


def test_pca_2d_is_deterministic_and_ordered_by_variance():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)) * np.array([10, 3, 1, 0.1, 0.1, 0.1])
    a, b = analysis.pca_2d(x), analysis.pca_2d(x.copy())
    assert a.shape == (50, 2) and np.array_equal(a, b)
    assert a[:, 0].var() > a[:, 1].var() > 0.5


# ---- runs and folders -------------------------------------------------------------------


def test_run_folder_and_repo_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path))
    assert analysis.run_folder("04_train_model", "smoke") == tmp_path / "04_train_model-smoke"
    assert analysis.run_folder("x", "smoke", str(tmp_path / "given")) == tmp_path / "given"
    assert analysis.repo_path("configs/ablations/t2_base.yaml").is_file()
    assert analysis.repo_path(tmp_path) == tmp_path


def test_notebook_config_precedence():
    cfg = analysis.notebook_config("smoke", config_files=["configs/ablations/t2_base.yaml"],
                                   defaults={"log_every": 1, "epochs": 5},
                                   overrides={"epochs": 3})
    assert (cfg.sfd, cfg.fmc, cfg.fusion) == (False, False, "none")  # from the YAML
    assert cfg.log_every == 1 and cfg.epochs == 3  # the user's override beats the default
    with pytest.raises(FMCNetError, match="no_such_key"):
        analysis.notebook_config("smoke", overrides={"no_such_key": 1})


def test_train_or_resume_resumes_or_clears_only_run_outputs(monkeypatch, tmp_path):
    import fmcnet.train as train_mod

    calls = []

    def fake_train(cfg, run_dir, *, resume, dataset, evaluate, callback):
        calls.append(resume)
        return train_mod.TrainResult(Path(run_dir), None, None, cfg, None, [])

    monkeypatch.setattr(train_mod, "train", fake_train)
    cfg = make_config("smoke")
    run = tmp_path / "run"
    analysis.train_or_resume(cfg, run)  # nothing there yet: a fresh run
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    (run / "metrics.jsonl").write_text('{"global_step": 1, "loss/total": 1.0}\n')
    (run / "04_train_model.ipynb").write_text("{}")  # e.g. papermill's output notebook
    result = analysis.train_or_resume(cfg, run, resume=True)
    assert result.history == [{"global_step": 1, "loss/total": 1.0}]  # the whole log
    analysis.train_or_resume(cfg, run, resume=False)
    assert calls == [False, True, False]
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    assert (run / "04_train_model.ipynb").exists()


def test_data_views_on_the_synthetic_fixture(synthetic_dataset):
    ds = synthetic_dataset
    counts = analysis.images_per_camera(ds)
    train = counts[counts.part == "train"]
    assert train.images.sum() == len(ds.train.visible) + len(ds.train.infrared)
    assert set(train.modality[train.camera.isin(["cam3", "cam6"])]) == {"infrared"}

    images, titles = analysis.samples_by_camera(ds, n=3, size=(32, 16))
    assert len(images) == 6  # six SYSU-MM01 cameras
    assert all(v.shape == (3, 32, 16, 3) and v.dtype == np.uint8 for v in images.values())
    # the same identities in every row
    assert len({tuple(t.split(":")[0] for t in ts) for ts in titles.values()}) == 1

    pixels = analysis.pixel_intensities(ds, per_camera=2, pixels_per_image=10, size=(16, 8))
    assert set(pixels.channel[pixels.modality == "infrared"]) == {"gray"}
    assert set(pixels.channel[pixels.modality == "visible"]) == {"R", "G", "B"}
    assert pixels.value.between(0, 255).all()


def test_plot_ablation_bars_shows_missing_rows():
    rows = [{"row": "a", "table": "2", "label": "Base", "R1": 40.0, "mAP": 30.0,
             "paper": {"R1": 57.09, "mAP": 53.11}},
            {"row": "b", "table": "3", "label": "", "R1": None, "mAP": None,
             "paper": {"R1": 58.68, "mAP": 54.33}}]
    fig = analysis.plot_ablation_bars(rows, metric="mAP")
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_the_generators_curve_is_named_after_the_loss_the_run_trained():
    records = [{"global_step": s, "loss/gan_g": 1.4, "loss/gan_d": 2.8, "loss/ic": 1.0,
                "loss/fc": 1.0, "disc_acc": 0.5} for s in (1, 2)]
    for loss, label in (("minimax", "log(1 - D(G(F_sh)))"), ("nonsaturating", "-log D(G(F_sh))")):
        fig = analysis.plot_adversarial_dynamics(records, loss)
        names = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert names == [f"generators: {label}", "discriminators"], names
