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
             "omega/v_specific": 1.0, "omega/i_specific": 0.5, "images_per_s": 100.0}
            for s in range(5)]
    recs.append({"epoch": 1, "step": 5, "loss/total": 0.5})  # a record without most keys
    path = tmp_path / "metrics.jsonl"
    # the last line of a log a kill cut short (no newline): left out
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n{\"step\": 6, \"loss/to")
    fig = plot_training_curves(path, x="step")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # no FMC or SFF losses in this log: their panels are left out, and so is ω without them
    assert titles == ["SFD: identity and MD losses", "total loss", "learning rate",
                      "throughput (images/s)"]
    total = next(ln for ax in fig.axes for ln in ax.lines if ln.get_label() == "total")
    assert list(total.get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert len(plot_training_curves([]).axes) == 1  # empty log: a message, not an error
    # a damaged line anywhere else: the run files' reader names the file and the line
    path.write_text(json.dumps(recs[0]) + "\ngarbage\n" + json.dumps(recs[1]) + "\n")
    with pytest.raises(RunFileError, match=r"metrics.jsonl line 2 is not a JSON record"):
        plot_training_curves(path)


def _drawn(fig):
    """Lay `fig` out as saving it would; returns the renderer to measure it with."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _full_log(n: int = 6) -> list[dict]:
    keys = ["loss/id", "loss/shs", "loss/dc", "loss/sps", "loss/gan_g", "loss/gan_d", "loss/ic",
            "loss/fc", "loss/mc", "loss/fid", "loss/total", "disc_acc", "omega/v_specific",
            "omega/i_specific", "hinge/dc", "lr", "images_per_s", "loss/extra"]
    return [{"global_step": 10 * s, **{k: 1.0 + s + i for i, k in enumerate(keys)}}
            for s in range(n)] + [{"global_step": 60, "val_mAP": 12.5}]


def _labels(ax) -> list[str]:
    """Every curve of a panel, its right-hand twin axis included."""
    lines = list(ax.lines)
    for other in ax.figure.axes:
        if other is not ax and other.bbox.bounds == ax.bbox.bounds:
            lines += other.lines
    return [ln.get_label() for ln in lines], [ln.get_color() for ln in lines]


def test_training_curves_group_the_losses_by_module():
    fig = plot_training_curves(_full_log())
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert list(panels) == ["SFD: identity and MD losses",
                            "FMC: adversarial and consistency losses", "SFF: fusion losses and ω",
                            "total loss", "learning rate", "throughput (images/s)", "evaluation"]
    expected = {
        "SFD: identity and MD losses": ["L_ID", "L_shs", "L_dc", "L_sps"],
        "FMC: adversarial and consistency losses": [
            "L_GAN, generators", "L_GAN, discriminators", "L_IC", "L_FC", "D accuracy"],
        "SFF: fusion losses and ω": ["L_MC", "L_FID", "ω1 (V-specific)", "ω2 (I-specific)"],
        "total loss": ["extra", "total"],  # a loss of no module goes beside the total
        "evaluation": ["val_mAP"],
    }
    for title, labels in expected.items():
        got, colours = _labels(panels[title])
        assert got == labels, title
        assert len(set(colours)) == len(colours), f"{title}: two curves share a colour"


def test_training_curves_legends_sit_outside_the_plots():
    fig = plot_training_curves(_full_log())
    renderer = _drawn(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 4  # the three modules and the total (single curves need none)
    for legend in legends:
        box, plot = legend.get_window_extent(renderer), legend.axes.get_window_extent(renderer)
        assert box.y1 <= plot.y0 + 1, legend.axes.get_title()  # under the panel, not on it


def test_cmc_ticks_are_whole_ranks():
    for length in (5, 20, 50, 137):
        fig = plot_cmc({"all": np.linspace(0.2, 1, length)})
        ax = fig.axes[0]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks[0] == 1 and all(float(t).is_integer() for t in ticks), (length, ticks)
        assert ticks[-1] <= length and len(ticks) <= 12


def _study_rows():
    rows = []
    for table, names in (("2", ["t2_base", "t2_full"]), ("3", ["t3_id_only"]),
                         ("readings", ["r_align003", "r_fmc_literal", "r_never_run"])):
        for i, name in enumerate(names):
            done = name != "r_never_run"
            rows.append({"name": name, "label": f"a long label for {name} " * 2, "table": table,
                         "R1_mean": 20.0 + i if done else None, "R1_std": 2.0 if done else None,
                         "mAP_mean": 30.0 + i if done else None, "mAP_std": 1.0 if done else None,
                         "per_seed": {"0": {"R1": 19.0, "mAP": 29.0}, "1": {"R1": 21.0, "mAP": 31.0}}
                         if done else {}})
    rows.append({"name": "t3_dc", "same_as": "t2_full", "table": "3", "label": "+ L_dc",
                 "R1_mean": 21.0, "R1_std": 2.0, "mAP_mean": 31.0, "mAP_std": 1.0})
    for c, r1 in ((0.0, 10.0), (0.95, 50.0)):
        rows.append({"name": f"coupling_{c}", "table": "coupling", "label": "Base",
                     "thermal_coupling": c, "R1_mean": r1, "R1_std": None,
                     "mAP_mean": r1, "mAP_std": None})
    return rows


def test_the_study_figure_has_one_panel_per_table_whose_titles_fit():
    from fmcnet import analysis

    headings = {"readings": "Readings of the paper, each switched in the full model, decided on "
                            "the validation identities of the synthetic set (a long heading)"}
    fig = analysis.plot_ablation_study(_study_rows(), headings=headings, title="the study")
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[:2] == ["Table 2", "Table 3"] and titles[2].startswith("Readings of the paper")
    assert titles[3] == "Base and the full model across the modality gap"
    assert len(fig.axes) == 4  # Tables 2 and 3, the readings, the coupling
    table3 = fig.axes[1]
    assert [t.get_text() for t in table3.get_yticklabels()][-1].endswith("(= t2_full)")
    readings = [t.get_text() for t in fig.axes[2].get_yticklabels()]
    assert readings[-1].replace("\n", " ").endswith("(not run)")
    # t2_full's means are the dashed reference lines of the readings panel, and only there
    dashed = [ln for ln in fig.axes[2].lines if ln.get_linestyle() == "--"]
    assert sorted(ln.get_xdata()[0] for ln in dashed) == [21.0, 31.0]
    assert not [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"]
    renderer = _drawn(fig)
    width = fig.bbox.width
    for ax in fig.axes:
        title = ax.title if ax.get_title() else ax._left_title
        box = title.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width, ax.get_title(loc="left")
    # the figure is drawn for the README's width: one column, 7.5 inches
    assert fig.get_size_inches()[0] == pytest.approx(7.5)


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
    pair = tmp_path / "md"
    done = {w.name: w for w in analysis.make_figures(run, tmp_path / "out", ablations=study,
                                                     md_runs=pair)}
    assert list(done) == ["samples", "decomposition", "real_vs_generated", "cmc",
                          "training_curves", "ablations"]
    for w in done.values():
        assert w.path == tmp_path / "out" / f"{w.name}.png"
        fmt, (width, height) = _png(w.path)
        assert fmt == "PNG" and width > 300 and height > 200, w.name
    # the decomposition is drawn from notebook 01's pair, trained here: with and without MD
    assert (pair / "md_on" / "checkpoints").is_dir() and (pair / "md_off" / "checkpoints").is_dir()
    assert _png(done["decomposition"].path)[1][0] > 900  # two 4.6-inch panels at 120 dpi


def test_ablation_study_missing_or_malformed_is_skipped_with_a_reason(smoke_run, tmp_path):
    from fmcnet import analysis

    run = analysis.reference_run("smoke", run_dir=smoke_run)
    done = {w.name: w for w in analysis.make_figures(run, tmp_path, ablations=tmp_path / "no.json",
                                                     md_runs=None)}
    assert _png(done["decomposition"].path)[1][0] < 900  # the reference run alone: one panel
    assert done["ablations"].path is None and "no ablation study at" in done["ablations"].note
    assert not (tmp_path / "ablations.png").exists() and (tmp_path / "cmc.png").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "Base", "R1_mean": 1.0}]))
    with pytest.raises(Exception, match=r"row 0 lacks \['R1_std', 'mAP_mean', 'mAP_std'\]"):
        analysis.load_ablation_study(bad)


def test_figures_command(smoke_run, tmp_path, capsys, monkeypatch):
    from fmcnet.cli import main

    monkeypatch.setenv("FMCNET_RUNS", str(tmp_path / "runs"))  # notebook 01's pair goes here

    assert main(["figures", "--run", str(smoke_run), "--out", str(tmp_path / "f"),
                 "--ablations", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert f"cmc                {tmp_path / 'f' / 'cmc.png'}" in out
    assert "ablations          -- skipped: no ablation study at" in out
    assert main(["figures", "--run", str(tmp_path / "nothing-here"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing-here holds no trained run" in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback


def test_the_study_spec_draws_one_panel_per_row_group_at_readme_width():
    """results/synthetic_ablations.png as `fmcnet.study` draws it: every row group of the
    real spec (Tables 2-4, the readings, the start, the demo, the held-out renderer) its
    own panel with the spec's heading inside the figure, the coupling rows a line plot."""
    from pathlib import Path

    from fmcnet import analysis, sweep

    spec = sweep.load_spec(Path(__file__).resolve().parents[1] / "configs" / "sweeps"
                           / "synthetic_study.yaml")
    rng = np.random.default_rng(0)
    rows = []
    for name, row in spec.rows.items():
        seeds = {s: {"R1": float(rng.uniform(5, 60)), "mAP": float(rng.uniform(5, 60))}
                 for s in range(3)}
        r1 = [v["R1"] for v in seeds.values()]
        rows.append({"row": name, "label": row.label, "table": row.table, "same_as": row.same_as,
                     "R1": float(np.mean(r1)), "R1_std": float(np.std(r1, ddof=1)),
                     "mAP": 30.0, "mAP_std": 2.0, "per_seed": seeds,
                     "config": {"synthetic_thermal_coupling": row.overrides.get(
                         "synthetic_thermal_coupling", 0.2)}})
    groups = list(dict.fromkeys(r.table for r in spec.rows.values() if r.table != "coupling"))
    fig = analysis.plot_study(rows, headings=spec.headings)
    assert len(fig.axes) == len(groups) + 1
    for ax, group in zip(fig.axes, groups):
        n = sum(r.table == group for r in spec.rows.values())
        assert len(ax.get_yticklabels()) == n, group
        want = analysis.ablations.table_title(group, spec.headings)
        assert ax.get_title(loc="left").replace("\n", " ") == want
    renderer = _drawn(fig)
    for ax in fig.axes:
        box = ax._left_title.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width, ax.get_title(loc="left")
        for label in ax.get_yticklabels():  # row labels inside the figure, not cut off
            assert label.get_window_extent(renderer).x0 >= 0, label.get_text()
    assert fig.get_size_inches()[0] == pytest.approx(7.5)
