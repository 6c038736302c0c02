"""Feature extraction and the protocol runner on a tiny hand-built VIDataset."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fmcnet.config import make_config
from fmcnet.data.augment import normalize
from fmcnet.data.base import EvalSplit, ImageSet, TrainSet, VIDataset
from fmcnet.data.cache import load_images
from fmcnet.evaluation import (
    evaluate_dataset,
    extract_features,
    pairwise_distance,
    protocols,
    rank_metrics,
)
from fmcnet.utils import FMCNetError

H, W = 8, 8  # the smallest images the configuration accepts (MIN_IMAGE_SIDE)


class CountingModel(torch.nn.Module):
    """Deterministic features (channel means and a left-right contrast); counts images."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen = {"visible": 0, "infrared": 0}

    def extract(self, x, modality):
        self.seen[modality] += len(x)
        means = x.mean(dim=(2, 3))
        contrast = x[..., : W // 2].mean(dim=(2, 3)) - x[..., W // 2 :].mean(dim=(2, 3))
        return {"shared": means * self.scale, "specific": contrast + 1.0}

    def embed(self, x, modality):
        parts = self.extract(x, modality)
        return torch.cat([parts["shared"], parts["specific"]], dim=1)


def _write_set(folder, pids, cams, modality, rng):
    paths = []
    for n, (pid, cam) in enumerate(zip(pids, cams)):
        img = np.empty((H, W, 3), np.uint8)
        base = 30 + 40 * pid + rng.integers(0, 15)
        img[:] = base
        img[:, : W // 2] += np.uint8(rng.integers(0, 20))  # a left-right difference per image
        if modality == "visible":
            img[..., 1] += np.uint8(5 * cam)
        path = folder / f"{modality}_{pid}_{cam}_{n}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return ImageSet(paths, pids, cams, modality)


def _per_group(pool, k, seed):
    """k random rows per (pid, camera) of `pool`, seeded."""
    rng = np.random.default_rng(seed)
    rows = []
    for key in sorted(set(zip(pool.pids.tolist(), pool.cams.tolist()))):
        members = np.flatnonzero((pool.pids == key[0]) & (pool.cams == key[1]))
        rows.extend(rng.permutation(members)[:k].tolist())
    return np.sort(np.asarray(rows))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_vi")
    rng = np.random.default_rng(0)
    ids = np.arange(4)
    q_pids, q_cams = np.repeat(ids, 4), np.tile([3, 3, 6, 6], 4)
    g_pids, g_cams = np.repeat(ids, 12), np.tile(np.repeat([1, 2, 4, 5], 3), 4)
    query = _write_set(folder, q_pids, q_cams, "infrared", rng)
    pool = _write_set(folder, g_pids, g_cams, "visible", rng)
    indoor = pool.subset(np.flatnonzero(np.isin(pool.cams, [1, 2])))
    splits = {
        "all/single": EvalSplit("all/single", "sysu", query, pool,
                                [_per_group(pool, 1, t) for t in range(3)], sampler="seeded"),
        "all/multi": EvalSplit("all/multi", "sysu", query, pool,
                               [_per_group(pool, 2, t) for t in range(3)], sampler="seeded"),
        "indoor/single": EvalSplit("indoor/single", "sysu", query, indoor,
                                   [_per_group(indoor, 1, t) for t in range(3)], sampler="seeded"),
        # the reverse direction reuses both sets: nothing new to extract
        "visible_to_infrared": EvalSplit("visible_to_infrared", "regdb", pool, query,
                                         [np.arange(len(query))], sampler="fixed"),
    }
    train = TrainSet(query, pool, 4)
    return VIDataset("sysu", folder, train, splits, sampler="seeded")


@pytest.fixture()
def cfg():
    return make_config("smoke", height=H, width=W, trials=2, eval_batch_size=5, progress=False)


def test_each_image_extracted_once_and_trials_reselect_rows(tiny, cfg, monkeypatch):
    sizes = []

    def recording(d, q_pids, g_pids, *args, **kw):
        sizes.append((d.shape[0], d.shape[1], len(g_pids)))
        return rank_metrics(d, q_pids, g_pids, *args, **kw)

    monkeypatch.setattr(protocols, "rank_metrics", recording)
    model = CountingModel()
    out = evaluate_dataset(model, tiny, cfg, progress=False)
    # 16 queries + a 48-image pool, four settings: every image passes once
    assert model.seen == {"infrared": 16, "visible": 48}
    assert out["trials"] == 2 and out["precision"] == "fp32"
    assert out["sampler"] == ("seeded: all/single, all/multi, indoor/single; "
                              "fixed: visible_to_infrared")
    assert out["samplers"] == {**dict.fromkeys(tiny.splits, "seeded"),
                               "visible_to_infrared": "fixed"}
    assert sizes == [(16, 16, 16)] * 2 + [(16, 32, 32)] * 2 + [(16, 8, 8)] * 2 + [(48, 16, 16)]
    for name, s in out["settings"].items():
        expected_trials = 1 if name == "visible_to_infrared" else 2
        assert len(s["per_trial"]) == expected_trials
        for k in ("R1", "R5", "R10", "R20", "mAP", "mINP"):
            assert 0.0 <= s[k] <= 100.0
            assert s[k] == pytest.approx(np.mean([t[k] for t in s["per_trial"]]))
            assert s["std"][k] >= 0.0


def test_per_trial_numbers_equal_a_direct_computation(tiny, cfg):
    model = CountingModel()
    out = evaluate_dataset(model, tiny, cfg, settings=["all/single"], trials=3, progress=False)
    split = tiny.splits["all/single"]
    kw = dict(device="cpu", batch_size=7)
    qf = extract_features(model, load_images(split.query, (H, W), progress=False), "infrared", **kw)
    gf = extract_features(model, load_images(split.gallery, (H, W), progress=False), "visible",
                          **kw)
    per_trial = out["settings"]["all/single"]["per_trial"]
    assert len(per_trial) == 3 and list(out["settings"]) == ["all/single"]
    for t, rows in enumerate(split.trials):
        d = pairwise_distance(qf, gf[rows])
        m = rank_metrics(d, split.query.pids, split.gallery.pids[rows], split.query.cams,
                         split.gallery.cams[rows], protocol="sysu")
        assert per_trial[t]["R1"] == pytest.approx(100 * m["cmc"][0], abs=1e-4)
        assert per_trial[t]["R5"] == pytest.approx(100 * m["cmc"][4], abs=1e-4)
        assert per_trial[t]["mAP"] == pytest.approx(100 * m["mAP"], abs=1e-4)
        assert per_trial[t]["mINP"] == pytest.approx(100 * m["mINP"], abs=1e-4)


def test_save_dir_tta_rerank_and_errors(tiny, cfg, tmp_path):
    model = CountingModel()
    out = evaluate_dataset(model, tiny, cfg, settings=["all/single", "indoor/single"],
                           tta=True, rerank=True, trials=1, save_dir=tmp_path, progress=False)
    assert out["tta"] and out["rerank"] and out["trials"] == 1
    assert model.seen == {"infrared": 32, "visible": 96}  # TTA: image + mirror, once each
    split = tiny.splits["all/single"]
    with np.load(tmp_path / "all_single.npz") as z:
        assert set(z.files) == {"q_feats", "g_feats", "q_pids", "g_pids", "q_cams", "g_cams",
                                "q_paths", "g_paths", "q_modality", "g_modality", "protocol",
                                "setting", "distmat", "sampled", "reranked", "pool_pids",
                                "pool_cams", "pool_paths", "pool_feats", "trial_rows",
                                "trial_offsets"}  # no parts: not an FMCNet
        assert bool(z["reranked"]) and str(z["sampled"]) == "gallery"
        assert (str(z["q_modality"]), str(z["g_modality"])) == ("infrared", "visible")
        rows = split.trials[0]
        # The saved matrix is the re-ranked one that was scored, and it gives trial 0's numbers.
        d = z["distmat"]
        m = rank_metrics(d, z["q_pids"], z["g_pids"], z["q_cams"], z["g_cams"], protocol="sysu")
        assert out["settings"]["all/single"]["per_trial"][0]["mAP"] == pytest.approx(
            100 * m["mAP"], abs=1e-4)
        plain = pairwise_distance(z["q_feats"].astype(np.float32),
                                  z["g_feats"].astype(np.float32)).numpy()
        assert not np.allclose(d, plain, atol=1e-3)
        assert z["g_feats"].shape == (len(rows), 6) and z["q_feats"].shape == (16, 6)
        assert z["g_pids"].tolist() == split.gallery.pids[rows].tolist()
        assert z["g_cams"].dtype == np.int64
        assert z["g_paths"].tolist() == [split.gallery.paths[i] for i in rows]
        assert str(z["protocol"]) == "sysu" and str(z["setting"]) == "all/single"
    assert (tmp_path / "indoor_single.npz").exists()
    with pytest.raises(FMCNetError, match="no evaluation setting"):
        evaluate_dataset(model, tiny, cfg, settings=["outdoor/single"], progress=False)


def test_saved_trials_rebuild_every_trial(tiny, cfg, tmp_path):
    # The browser's inputs: each trial's gallery from the saved pool, features included.
    model = CountingModel()
    out = evaluate_dataset(model, tiny, cfg, settings=["all/single"], trials=3,
                           save_dir=tmp_path, progress=False)
    split = tiny.splits["all/single"]
    with np.load(tmp_path / "all_single.npz") as z:
        assert not bool(z["reranked"]) and str(z["sampled"]) == "gallery"
        assert z["trial_offsets"].tolist() == [0, *np.cumsum([len(r) for r in split.trials[:3]])]
        pool_index = {p: i for i, p in enumerate(z["pool_paths"].tolist())}
        assert len(pool_index) == len(z["pool_paths"])  # each image once
        for t in range(3):
            rows = z["trial_rows"][z["trial_offsets"][t]:z["trial_offsets"][t + 1]]
            want = split.trials[t]
            assert z["pool_paths"][rows].tolist() == [split.gallery.paths[i] for i in want]
            assert z["pool_pids"][rows].tolist() == split.gallery.pids[want].tolist()
            assert z["pool_cams"][rows].tolist() == split.gallery.cams[want].tolist()
            d = pairwise_distance(z["q_feats"], z["pool_feats"][rows])
            m = rank_metrics(d, z["q_pids"], z["pool_pids"][rows], z["q_cams"],
                             z["pool_cams"][rows], protocol="sysu")
            for key, value in (("mAP", m["mAP"]), ("R1", m["cmc"][0]), ("mINP", m["mINP"])):
                assert out["settings"]["all/single"]["per_trial"][t][key] == pytest.approx(
                    100 * value, abs=1e-4)
        assert z["pool_feats"].dtype == z["q_feats"].dtype == np.float32  # as scored


def test_extract_features_tta_batches_and_parts(tiny):
    images = load_images(tiny.splits["all/single"].query, (H, W), progress=False)
    model = CountingModel()
    plain = extract_features(model, images, "infrared", device="cpu", batch_size=3)
    flipped = extract_features(model, images, "infrared", device="cpu", batch_size=3, tta=True)
    assert model.seen["infrared"] == 16 * 3  # 6 batches of 3 (the last one 1), + mirrors
    assert plain.shape == flipped.shape == (16, 6) and flipped.dtype == torch.float32
    torch.testing.assert_close(flipped.norm(dim=1), torch.ones(16))
    x = normalize(torch.from_numpy(np.array(images)).permute(0, 3, 1, 2))
    raw = model.embed(x, "infrared")
    mirror = model.embed(torch.flip(x, dims=[3]), "infrared")
    torch.testing.assert_close(plain, F.normalize(raw, dim=1))
    torch.testing.assert_close(flipped, F.normalize((raw + mirror) / 2, dim=1))
    assert not torch.allclose(plain, flipped)  # the left-right contrast flips sign
    parts = extract_features(model, images, "infrared", device="cpu", parts=True)
    assert set(parts) == {"shared", "specific"} and parts["specific"].shape == (16, 3)
    torch.testing.assert_close(parts["shared"], model.extract(x, "infrared")["shared"])
    assert model.training  # the caller's mode is restored


def test_query_sampled_split_selects_query_rows(tiny, cfg, tmp_path):
    # LLCM "visible -> infrared" as DEEN scores it: each trial samples the queries (here
    # 1 infrared image per identity and camera) and ranks them against the whole pool.
    query, pool = tiny.splits["all/single"].query, tiny.splits["all/single"].gallery
    trials = [_per_group(query, 1, t) for t in range(3)]
    split = EvalSplit("visible_to_infrared", "llcm", query, pool, trials, sampler="deen",
                      sampled="query")
    ds = VIDataset("llcm", tiny.root, tiny.train, {split.name: split}, sampler="deen")
    model = CountingModel()
    out = evaluate_dataset(model, ds, cfg, trials=3, save_dir=tmp_path, progress=False)
    assert out["samplers"] == {"visible_to_infrared": "deen"}
    kw = dict(device="cpu", batch_size=7)
    qf = extract_features(model, load_images(query, (H, W), progress=False), "infrared", **kw)
    gf = extract_features(model, load_images(pool, (H, W), progress=False), "visible", **kw)
    per_trial = out["settings"][split.name]["per_trial"]
    for t, rows in enumerate(trials):
        assert len(rows) == 8  # 4 identities x cams 3, 6; the gallery stays all 48 images
        m = rank_metrics(pairwise_distance(qf[rows], gf), query.pids[rows], pool.pids,
                         query.cams[rows], pool.cams, protocol="llcm")
        assert per_trial[t]["mAP"] == pytest.approx(100 * m["mAP"], abs=1e-4)
        assert per_trial[t]["R5"] == pytest.approx(100 * m["cmc"][4], abs=1e-4)
    with np.load(tmp_path / "visible_to_infrared.npz") as z:
        assert z["q_paths"].tolist() == [query.paths[i] for i in trials[0]]
        assert len(z["g_paths"]) == 48 and z["distmat"].shape == (8, 48)
        assert (str(z["q_modality"]), str(z["g_modality"])) == ("infrared", "visible")
    with pytest.raises(ValueError, match="sampled must be one of"):
        EvalSplit("x", "llcm", query, pool, trials, sampled="both")


def test_reported_features_are_fp32_unless_eval_amp(tiny, monkeypatch):
    seen = []

    def recording(*args, **kw):
        seen.append(kw["amp"])
        return extract_features(*args, **kw)

    monkeypatch.setattr(protocols, "extract_features", recording)
    for eval_amp in (False, True):
        cfg = make_config("smoke", height=H, width=W, trials=1, progress=False, amp=True,
                          eval_amp=eval_amp)
        out = evaluate_dataset(CountingModel(), tiny, cfg, settings=["all/single"],
                               progress=False)
        assert out["precision"] == "fp32"  # bf16 autocast applies on CUDA only
    # training's amp=True does not reach the test-time features; eval_amp does
    assert seen == [False, False, True, True]
