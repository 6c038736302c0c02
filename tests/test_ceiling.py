"""The synthetic set's ceiling: the reconstruction matches the files, the oracles retrieve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmcnet.analysis import ceiling
from fmcnet.config import make_config
from fmcnet.data.synthetic import synthesize
from fmcnet.utils import FMCNetError


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("ceiling") / "set", identities=14, seed=3,
                      images_per_camera=2, image_size=(64, 32), progress=False)


def _files(paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths]).astype(np.float64)


def test_reconstruction_names_every_file(small):
    rec = ceiling.reconstruct(small)
    on_disk = {str(p) for p in small.rglob("*.jpg")}
    assert set(rec.paths) == on_disk and len(rec.paths) == len(on_disk)
    assert len(rec.paths) == json.loads((small / "synthetic.json").read_text())["images"]
    # a path's camera and pid are the reconstructed ones
    for path, cam, ident in zip(rec.paths, rec.cam_of, rec.ident):
        parts = Path(path).parts
        assert parts[-3] == f"cam{cam}" and int(parts[-2]) == ident + 1


def test_rerendered_pixels_equal_the_files_up_to_jpeg(small):
    rec = ceiling.reconstruct(small)
    rows = np.arange(len(rec.paths))
    files = _files(rec.paths)
    noisy = ceiling.rerender(rec, rows, noise=True).astype(np.float64)
    clean = ceiling.rerender(rec, rows).astype(np.float64)  # no pixel noise (std 5.1 levels)
    # Compared in luminance: the files' JPEG keeps it at full resolution (colour is
    # subsampled, which smears the per-channel noise).
    luma = lambda a: a @ np.array([0.299, 0.587, 0.114])  # noqa: E731
    exact = np.abs(luma(noisy - files)).mean(axis=(1, 2))
    assert exact.max() < 3.0, exact.max()  # JPEG error only
    # the re-rendered noise is the files' noise: residuals correlate, another stream's do not
    resid = luma(files - clean)
    assert np.corrcoef(resid.ravel(), luma(noisy - clean).ravel())[0, 1] > 0.5
    assert abs(np.corrcoef(resid.ravel(), np.roll(luma(noisy - clean), 1, 0).ravel())[0, 1]) < 0.1
    clean = np.abs(clean - files).mean(axis=(1, 2, 3))
    assert clean.max() < 7.0, clean.max()
    # the same check against a wrong mapping (each image's file shifted by one) fails
    wrong = np.abs(ceiling.rerender(rec, rows) - np.roll(files, 1, axis=0)).mean(axis=(1, 2, 3))
    assert np.median(wrong) > 3 * np.median(clean)
    check = ceiling.check_mapping(rec, n=8)
    assert check["mean_abs_diff"] < 7.0 < check["other_identity_mean_abs_diff"]


def test_check_mapping_refuses_another_renderers_files(small, tmp_path):
    rec = ceiling.reconstruct(small)
    rec.paths = list(np.roll(np.asarray(rec.paths), 5))  # files of other images
    with pytest.raises(FMCNetError, match="does not match the renderer"):
        ceiling.check_mapping(rec, n=8)


def test_wave_resolution():
    visible, period, phase = ceiling._wave(np.array([1.5, 4.0, 4.3]), np.array([18.0] * 3),
                                           np.array([10.0] * 3), np.zeros(3))
    assert visible.tolist() == [False, True, True]  # below 2 px the grid cannot show it
    assert period[1] == 4.0 and period[2] == pytest.approx(round(4 * 4.3) / 4)
    assert phase[1] == 0.0


def test_pixel_features_are_whole_pixels(small):
    rec = ceiling.reconstruct(small)
    f = ceiling.pixel_features(rec.attributes(), (64, 32))
    for key in ("height", "head", "torso", "shoulder", "arm", "leg", "sleeve_len"):
        assert np.array_equal(f[key], np.round(f[key])), key
    assert (f["height"] > 40).all() and (f["height"] <= 64).all()


@pytest.fixture(scope="module")
def report():
    cfg = make_config("smoke", synthetic_identities=60, progress=False, trials=3)
    return ceiling.ceiling_report(cfg)


def test_oracles_far_above_chance_and_control_at_chance(report):
    res = report["oracles"]
    chance = res["exact"]["test"]["chance_R1"]
    assert report["identities"]["test"] == 12 and chance == pytest.approx(100 / 12)
    for setting in ("test", "val"):
        assert res["exact"][setting]["R1"] > 90
        assert res["pixels"][setting]["R1"] > 5 * chance
        assert res["categories"][setting]["R1"] > 3 * chance
        assert res["control"][setting]["R1"] < 3 * chance  # attributes of random identities
    assert res["exact"]["test"]["mAP"] >= res["categories"]["test"]["mAP"]
    # undoing the mirroring leaves identical features for every image of an identity
    assert res["unmirrored"]["test"]["R1"] == 100.0
    assert report["mapping_check"]["mean_abs_diff"] < 7.0


def test_val_split_uses_val_ids_one_image_per_camera(report):
    from fmcnet.data import dataset_for_config

    ds = dataset_for_config(make_config("smoke", synthetic_identities=60, progress=False,
                                        trials=3, validate=True))
    split, _ = ceiling.val_split(ds, 3)
    val_ids = set(np.unique(ds.val.visible.pids).tolist())
    assert set(np.unique(split.query.pids).tolist()) == val_ids
    for rows in split.trials:
        pairs = list(zip(split.gallery.pids[rows].tolist(), split.gallery.cams[rows].tolist()))
        assert len(pairs) == len(set(pairs))
        assert set(p for p, _ in pairs) == val_ids


def test_script_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "c.json"
    md = tmp_path / "c.md"
    assert ceiling.main(["--profile", "smoke", "--json", str(out), "--markdown", str(md),
                         "trials=2", "--couplings", "0.9"]) == 0
    printed = capsys.readouterr().out
    assert "| exact attributes" in printed and "coupling" in printed
    result = json.loads(out.read_text())
    a, b = result["default"]["oracles"], result["couplings"]["0.9"]["oracles"]
    # the oracles use no colour and no heat: the coupling cannot move them
    assert a["pixels"]["test"]["R1"] == b["pixels"]["test"]["R1"]
    assert "do not move" in md.read_text()


def test_refuses_other_datasets():
    with pytest.raises(FMCNetError, match="built-in synthetic set"):
        ceiling.ceiling_report(make_config("smoke", dataset="sysu", data_root="/nowhere"))
