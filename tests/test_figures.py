"""Figures return Figures with the expected content; ranking grids follow `ranking()`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from fmcnet.evaluation.metrics import pairwise_distance, rank_metrics, ranking
from fmcnet.run_files import RunFileError
from fmcnet.viz.browser import toy_rankings
from fmcnet.viz.figures import (
    MATCH_COLOR,
    MISS_COLOR,
    add_border,
    first_match_rank,
    per_query_ap,
    plot_cmc,
    plot_ranking_grid,
    plot_sample_grid,
    plot_training_curves,
    save_figure,
)

GREEN, RED = (44, 160, 44), (214, 39, 40)


@pytest.fixture(scope="module")
def toy():
    t = toy_rankings(0)
    t["distmat"] = pairwise_distance(t["q_feats"], t["g_feats"]).numpy()
    t["ranking"] = ranking(t["distmat"], t["q_pids"], t["g_pids"], t["q_cams"], t["g_cams"],
                           protocol="sysu")
    return t


@pytest.mark.parametrize("protocol", ["sysu", "regdb", "llcm"])
def test_per_query_ap_mean_is_rank_metrics_map(protocol):
    rng = np.random.default_rng(1)
    q_pids, g_pids = rng.integers(0, 15, 40), rng.integers(0, 12, 90)  # some queries invalid
    q_cams, g_cams = rng.choice([3, 6], 40), rng.choice([1, 2, 4, 5], 90)
    dist = rng.random((40, 90)).round(1)  # rounding makes ties: both sides must break them alike
    rk = ranking(dist, q_pids, g_pids, q_cams, g_cams, protocol=protocol)
    ap = per_query_ap(rk, chunk=7)  # several blocks
    ref = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, protocol=protocol)
    assert np.isnan(ap).any() and not np.isnan(ap).all()
    assert np.nanmean(ap) == pytest.approx(ref["mAP"], abs=1e-12)
    first = first_match_rank(rk)
    assert np.array_equal(first == 0, np.isnan(ap))
    # rank-1 is the same under the owners' distinct-identity CMC: the first kept item decides
    assert np.mean(first[first > 0] == 1) == pytest.approx(ref["cmc"][0])


def test_plot_cmc_one_line_per_setting():
    fig = plot_cmc({"all": {"cmc": np.linspace(0.5, 1, 20), "mAP": 0.5}, "indoor": np.linspace(40, 90, 20)})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["all", "indoor"]
    assert ax.lines[0].get_ydata()[0] == pytest.approx(50.0)  # fractions shown in percent


def test_training_curves_panels_and_missing_keys(tmp_path):
    recs = [{"epoch": 0, "step": s, "lr": 0.01 * s, "loss/total": 5 - s, "loss/id": 3 - s * 0.5,
             "omega/v1": 1.0, "omega/v2": 0.5, "images_per_s": 100.0} for s in range(5)]
    recs.append({"epoch": 1, "step": 5, "loss/total": 0.5})  # a record without most keys
    path = tmp_path / "metrics.jsonl"
    # the last line of a log a kill cut short (no newline): left out
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n{\"step\": 6, \"loss/to")
    fig = plot_training_curves(path)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["losses", "learning rate", "omega (SFF weights)", "throughput (images/s)"]
    losses = fig.axes[0]
    assert sorted(ln.get_label() for ln in losses.lines) == ["id", "total"]
    total = next(ln for ln in losses.lines if ln.get_label() == "total")
    assert list(total.get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert len(plot_training_curves([]).axes) == 1  # empty log: a message, not an error
    # a damaged line anywhere else: the run files' reader names the file and the line
    path.write_text(json.dumps(recs[0]) + "\ngarbage\n" + json.dumps(recs[1]) + "\n")
    with pytest.raises(RunFileError, match=r"metrics.jsonl line 2 is not a JSON record"):
        plot_training_curves(path)


def test_sample_grid_shape(toy):
    fig = plot_sample_grid({"visible": toy["g_images"][:5], "infrared": toy["q_images"][:3]}, n=4)
    assert len(fig.axes) == 8
    assert fig.axes[0].get_ylabel() == "visible"
    assert len(fig.axes[7].images) == 0  # third infrared row slot beyond 3 images is empty


def test_ranking_grid_borders_follow_ranking(toy, tmp_path):
    rk, queries, k = toy["ranking"], [0, 5, 30], 6
    fig = plot_ranking_grid(rk, toy["q_images"], toy["g_images"], queries, k,
                            distmat=toy["distmat"], g_cams=toy["g_cams"])
    assert len(fig.axes) == len(queries) * (k + 1)
    for r, q in enumerate(queries):
        idx, match = rk.kept(q)
        for c in range(k):
            ax = fig.axes[r * (k + 1) + c + 1]
            corner = tuple(ax.images[0].get_array()[0, 0])
            assert corner == (GREEN if match[c] else RED)
            assert f"cam{toy['g_cams'][idx[c]]}" in ax.get_title()
    out = save_figure(fig, tmp_path / "sub" / "grid.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temporary left behind


def test_add_border():
    img = np.zeros((4, 3, 3), np.uint8)
    out = add_border(img, MATCH_COLOR, 2)
    assert out.shape == (8, 7, 3) and tuple(out[0, 0]) == GREEN and tuple(out[3, 3]) == (0, 0, 0)
    assert tuple(add_border(img, MISS_COLOR, 1)[0, 0]) == RED


def test_umap_reproducible_and_feature_map():
    from fmcnet.viz.embedding import plot_feature_map, umap_embedding

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(6), 12)
    x = rng.normal(size=(6, 20))[pids] + 0.3 * rng.normal(size=(72, 20))
    a, idx = umap_embedding(x, n_pca=10, max_points=60, random_state=3, return_index=True)
    b = umap_embedding(x, n_pca=10, max_points=60, random_state=3)
    assert a.shape == (60, 2) and len(idx) == 60 and len(set(idx.tolist())) == 60
    assert np.array_equal(a, b)
    mods = np.where(np.arange(72) % 2, "infrared", "visible")
    fig = plot_feature_map({"shared": x, "fused": x * 2}, pids, mods, identities=[0, 1, 2])
    assert len(fig.axes) == 4 and [ax.get_title() for ax in fig.axes[:2]] == ["shared", "fused"]
    assert len(fig.axes[0].collections[0].get_offsets()) == 36  # 3 identities x 12


# ---- make figures: the README's pictures from a run ---------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A finished, evaluated smoke run on the configured synthetic set."""
    from fmcnet import analysis
    from fmcnet.config import make_config

    run = tmp_path_factory.mktemp("figures") / "run"
    analysis.open_run(run, make_config("smoke", epochs=1, steps_per_epoch=2, trials=1))
    return run


def _png(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.format, im.size


def test_make_figures_draws_the_readme_pictures(smoke_run, tmp_path):
    from fmcnet import analysis

    study = tmp_path / "study.json"
    study.write_text(json.dumps({"dataset": "the synthetic set", "seeds": [0, 1, 2], "rows": [
        {"name": "Base", "R1_mean": 20.0, "R1_std": 2.0, "mAP_mean": 25.0, "mAP_std": 1.0},
        {"name": "full", "R1_mean": 30.0, "R1_std": 3.0, "mAP_mean": 35.0, "mAP_std": 1.5}]}))
    run = analysis.reference_run("smoke", run_dir=smoke_run)
    done = {w.name: w for w in analysis.make_figures(run, tmp_path / "out", ablations=study)}
    assert list(done) == ["samples", "decomposition", "real_vs_generated", "cmc",
                          "training_curves", "ablations"]
    for w in done.values():
        assert w.path == tmp_path / "out" / f"{w.name}.png"
        fmt, (width, height) = _png(w.path)
        assert fmt == "PNG" and width > 300 and height > 200, w.name


def test_ablation_study_missing_or_malformed_is_skipped_with_a_reason(smoke_run, tmp_path):
    from fmcnet import analysis

    run = analysis.reference_run("smoke", run_dir=smoke_run)
    done = {w.name: w for w in analysis.make_figures(run, tmp_path, ablations=tmp_path / "no.json")}
    assert done["ablations"].path is None and "no ablation study at" in done["ablations"].note
    assert not (tmp_path / "ablations.png").exists() and (tmp_path / "cmc.png").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "Base", "R1_mean": 1.0}]))
    with pytest.raises(Exception, match=r"row 0 lacks \['R1_std', 'mAP_mean', 'mAP_std'\]"):
        analysis.load_ablation_study(bad)


def test_figures_command(smoke_run, tmp_path, capsys):
    from fmcnet.cli import main

    assert main(["figures", "--run", str(smoke_run), "--out", str(tmp_path / "f"),
                 "--ablations", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert f"cmc                {tmp_path / 'f' / 'cmc.png'}" in out
    assert "ablations          -- skipped: no ablation study at" in out
    assert main(["figures", "--run", str(tmp_path / "nothing-here"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing-here holds no trained run" in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
