"""Per-feature retrieval diagnostics: the views mean what they say, from one extraction."""

import numpy as np
import pytest
import torch

from fmcnet.config import make_config
from fmcnet.data.base import EvalSplit, ImageSet
from fmcnet.evaluation import diagnostics as diag
from fmcnet.evaluation import evaluate_dataset
from fmcnet.model import FMCNet

DIM = 6


def image_set(pids, cams, modality):
    return ImageSet([f"{modality}/{n}.png" for n in range(len(pids))], np.asarray(pids),
                    np.asarray(cams), modality)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FMCNet(4, backbone="resnet18", generator_hidden=16)


def test_views_pair_the_parts_as_documented(model):
    """Hand-made parts: each view must retrieve exactly as its definition says."""
    dim = model.sfd.dim
    g = torch.Generator().manual_seed(0)
    ids = np.arange(5)
    query, gallery = image_set(ids, [3] * 5, "infrared"), image_set(ids, [1] * 5, "visible")
    split = EvalSplit("all/single", "sysu", query, gallery, [np.arange(5)])
    code = torch.randn(5, dim, generator=g)  # one vector per identity
    noise = lambda: torch.randn(5, dim, generator=g)  # noqa: E731
    # gallery (visible): real V-specific = code; query (infrared): its generated V-specific
    # = code too (a perfect G), its shared feature also matches, its real I-specific is noise.
    q = {"shared": code, "specific": noise(), "generated": code}
    gl = {"shared": code, "specific": code, "generated": noise()}
    for parts in (q, gl):  # F_fp = Cat(F_sh, w1 V-kind + w2 I-kind) with w = (1, 0)
        v_kind = parts["generated"] if parts is q else parts["specific"]
        parts["fused"] = torch.cat([parts["shared"], v_kind], 1)
    packed_q, packed_g = diag.pack_parts(q, model), diag.pack_parts(gl, model)
    assert packed_q.shape == (5, 5 * dim)
    assert torch.equal(diag.unpack_parts(packed_q, model)["generated"], code)
    got = diag.feature_retrieval(packed_q, packed_g, split, model, trials=1)
    assert set(got) == {"shared", "specific", "fused", "specific_real", "generated"}
    for view in ("shared", "specific", "fused", "generated"):
        assert got[view] == {"R1": 100.0, "mAP": 100.0}, view
    assert got["specific_real"]["R1"] < 100.0  # real I-specific (noise) vs real V-specific


def test_evaluation_reports_each_feature_from_one_extraction(model, synthetic_dataset,
                                                             monkeypatch):
    cfg = make_config("smoke", trials=2, progress=False)
    seen = {"visible": 0, "infrared": 0}
    front = model.sfd.front

    def counting(x, modality):
        seen[modality] += len(x)
        return front(x, modality)

    monkeypatch.setattr(model.sfd, "front", counting)
    out = evaluate_dataset(model, synthetic_dataset, cfg, progress=False)
    distinct = {m: len({p for s in synthetic_dataset.splits.values()
                        for images in (s.query, s.gallery) if images.modality == m
                        for p in images.paths}) for m in seen}
    assert seen == distinct  # every image through the network once, diagnostics included
    assert out["features_setting"] == diag.main_setting(synthetic_dataset) == "all/single"
    features, main = out["features"], out["settings"]["all/single"]
    assert set(features) == {"shared", "specific", "fused", "specific_real", "generated"}
    # "fused" is the retrieval feature, on the same trials: it must equal the main table.
    assert features["fused"]["R1"] == pytest.approx(main["R1"], abs=1e-3)
    assert features["fused"]["mAP"] == pytest.approx(main["mAP"], abs=1e-3)
    without = evaluate_dataset(model, synthetic_dataset, cfg, progress=False, diagnostics=False)
    assert "features" not in without
    assert without["settings"]["all/single"]["mAP"] == pytest.approx(main["mAP"], abs=1e-4)


def test_base_model_reports_only_the_shared_feature(synthetic_dataset):
    torch.manual_seed(0)
    base = FMCNet(4, backbone="resnet18", sfd=False, fmc=False, fusion="none")
    out = evaluate_dataset(base, synthetic_dataset, make_config("smoke", trials=1),
                           progress=False)
    assert set(out["features"]) == {"shared"}
    assert out["features"]["shared"]["R1"] == pytest.approx(
        out["settings"]["all/single"]["R1"], abs=1e-3)


def test_saved_features_browse_as_the_diagnostics_scored_them(model, synthetic_dataset, tmp_path):
    """The browser's rankings of every saved trial and feature view give back the numbers
    of results.json: the evaluation saved what it scored (`_save_browsable`)."""
    from fmcnet.viz.rankings import load_run

    cfg = make_config("smoke", trials=2, progress=False)
    out = evaluate_dataset(model, synthetic_dataset, cfg, save_dir=tmp_path / "eval",
                           progress=False)
    settings = load_run(tmp_path)
    main = settings["all/single"]
    assert main.features == ["retrieval", "shared", "specific", "specific_real", "generated"]
    assert settings["all/multi"].features == ["retrieval"]  # parts: the main setting only
    for name, s in settings.items():
        assert s.n_trials == 2
        summaries = [s.ranked("retrieval", t).summary(np.arange(len(s.query.pids)))
                     for t in range(2)]
        for key in ("R1", "mAP", "mINP"):
            want = [p[key] for p in out["settings"][name]["per_trial"]]
            assert [100 * x[key] for x in summaries] == pytest.approx(want, abs=1e-4), (name, key)
    for view, want in out["features"].items():
        got = [main.ranked("retrieval" if view == "fused" else view, t).summary(
            np.arange(len(main.query.pids))) for t in range(2)]
        assert 100 * np.mean([g["R1"] for g in got]) == pytest.approx(want["R1"], abs=1e-3), view
        assert 100 * np.mean([g["mAP"] for g in got]) == pytest.approx(want["mAP"], abs=1e-3), view
