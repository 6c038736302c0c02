"""The held-out renderer: SYSU-MM01 layout, splits, determinism, what crosses the gap."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from fmcnet.data import heldout
from fmcnet.data.heldout import INFRARED_CAMS, synthesize_heldout
from fmcnet.data.synthetic import split_ids
from fmcnet.data.sysu import load_sysu
from fmcnet.utils import FMCNetError

SMALL = {"identities": 22, "images_per_camera": 2, "image_size": (64, 32)}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return synthesize_heldout(tmp_path_factory.mktemp("heldout") / "set", seed=0, **SMALL)


def _ids(path: Path) -> list[int]:
    text = path.read_text()
    assert re.fullmatch(r"\d+(,\d+)*\n", text), f"{path.name} is not one line of ids: {text!r}"
    return [int(t) for t in text.strip().split(",")]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_splits(small):
    assert sorted(p.name for p in small.iterdir()) == [
        "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "exp", "heldout.json"]
    splits = {s: _ids(small / "exp" / f"{s}_id.txt") for s in ("train", "val", "test")}
    every = sum(splits.values(), [])
    assert sorted(every) == list(range(1, 23)) and len(every) == len(set(every))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [16, 2, 4]  # 1/11, 2/11
    for f in small.rglob("*.jpg"):
        cam, pid, name = f.relative_to(small).parts
        assert re.fullmatch(r"cam[1-6]", cam) and re.fullmatch(r"\d{4}", pid)
        assert re.fullmatch(r"\d{4}\.jpg", name) and 1 <= int(pid) <= 22
    for pid in range(1, 23):  # every identity in both modalities
        cams = {int(p.parent.name[3:]) for p in small.glob(f"cam*/{pid:04d}")}
        assert cams & {1, 2, 4, 5} and cams & {3, 6}
    info = json.loads((small / "heldout.json").read_text())
    assert info["renderer"] == "fmcnet.data.heldout" and info["seed"] == 0
    assert info["images"] == len(list(small.rglob("*.jpg")))
    assert info["ids"] == {"train": 16, "val": 2, "test": 4}


def test_default_split_is_160_20_40():
    ids = split_ids(np.random.default_rng(0), 220, (heldout.VAL_FRACTION, heldout.TEST_FRACTION))
    assert {k: len(v) for k, v in ids.items()} == {"train": 160, "val": 20, "test": 40}
    ids = split_ids(np.random.default_rng(0), 100)  # SYSU-like, the built-in set's
    assert {k: len(v) for k, v in ids.items()} == {"train": 60, "val": 20, "test": 20}


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = synthesize_heldout(tmp_path / "again", seed=0, **SMALL)
    assert _hashes(again) == _hashes(small)
    other = synthesize_heldout(tmp_path / "other", seed=1, **SMALL)
    a, b = _hashes(small), _hashes(other)
    shared = [k for k in a if k.endswith(".jpg") and k in b]
    assert sum(a[k] != b[k] for k in shared) == len(shared)


def test_refuses_to_overwrite_and_replaces_with_overwrite(small, tmp_path):
    target = tmp_path / "set"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(FMCNetError, match="already exists"):
        synthesize_heldout(target, **SMALL)
    # overwrite replaces only a held-out set, never a folder of someone's files
    with pytest.raises(FMCNetError, match=r"holds no held-out set \(no heldout.json\)"):
        synthesize_heldout(target, overwrite=True, **SMALL)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    (target / "keep.txt").unlink()
    synthesize_heldout(target, **SMALL)  # an empty folder is written into
    (target / "extra.txt").write_text("x")
    synthesize_heldout(target, overwrite=True, **SMALL)  # its own set: replaced
    assert not (target / "extra.txt").exists() and (target / "heldout.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers
    with pytest.raises(FMCNetError, match="split"):
        synthesize_heldout(tmp_path / "bad", split=(0.5, 0.6), **SMALL)


def test_loads_as_sysu(small):
    ds = load_sysu(small, trials=2, validate=True)
    assert ds.train.num_classes == 16
    assert set(np.unique(ds.val.visible.pids)) == set(_ids(small / "exp" / "val_id.txt"))
    split = ds.splits["all/single"]
    assert set(np.unique(split.query.pids)) == set(_ids(small / "exp" / "test_id.txt"))
    assert set(np.unique(split.query.cams)) <= set(INFRARED_CAMS)


def test_cli_writes_a_heldout_set(tmp_path, capsys):
    from fmcnet.cli import main

    out = tmp_path / "cli"
    assert main(["synthesize", "--renderer", "heldout", "--out", str(out), "--identities", "11",
                 "--images-per-camera", "1"]) == 0
    assert "heldout renderer" in capsys.readouterr().out
    assert json.loads((out / "heldout.json").read_text())["identities"] == 11


def test_shape_crosses_the_gap_dye_does_not():
    """Measured from the pixels (person = where a frame differs from its background
    plate): the body's width at torso height is an identity's in both modalities; the
    torso's visible brightness (dye) says nothing about its infrared level (insulation)."""
    n = 120
    scene = heldout._Heldout(seed=2, identities=n, images_per_camera=2, size=(64, 32))
    frames = np.concatenate([scene.render_chunk(k) for k in range(len(scene.chunks))])
    plates = np.concatenate([scene.render_chunk(k, people=False)
                             for k in range(len(scene.chunks))])
    person = np.abs(frames.astype(np.int16) - plates).max(-1) > 12
    band, centre = slice(16, 26), slice(13, 19)  # torso rows, central columns
    width = person[:, band].sum(2).mean(1)
    luma = frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    inside = person[:, band, centre]
    level = (luma[:, band, centre] * inside).sum((1, 2)) / np.maximum(inside.sum((1, 2)), 1)
    infrared = np.isin(scene.cam_of, INFRARED_CAMS)

    def per_identity(values, sel):
        return np.array([values[sel & (scene.ident == i)].mean() for i in range(n)])

    r = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    assert r(per_identity(width, ~infrared), per_identity(width, infrared)) > 0.5  # 0.69
    vis_level, ir_level = per_identity(level, ~infrared), per_identity(level, infrared)
    # the statistics measure what they should: dye in visible, insulation in infrared ...
    dye = scene.people["c_upper"] @ np.array([0.299, 0.587, 0.114])
    assert r(vis_level, dye) > 0.5 and r(ir_level, scene.people["i_upper"]) < -0.5
    # ... and one does not predict the other
    assert abs(r(vis_level, ir_level)) < 0.3  # 0.03


def test_dataset_heldout_is_generated_once_and_cached(tmp_path, monkeypatch):
    """`dataset=heldout`: the held-out renderer's set, generated into the cache on first
    use (as the built-in set is) and read by the SYSU-MM01 loader."""
    from fmcnet.config import make_config
    from fmcnet.data import dataset_for_config

    monkeypatch.setenv("FMCNET_DATA", str(tmp_path))
    cfg = make_config("smoke", dataset="heldout", synthetic_identities=22,
                      synthetic_images_per_camera=2, validate=True)
    first = dataset_for_config(cfg)
    (root,) = [p for p in tmp_path.iterdir() if p.name.startswith("heldout-") and p.is_dir()]
    assert (root / "heldout.json").is_file() and first.name == "sysu"
    stamp = (root / "heldout.json").stat().st_mtime_ns
    again = dataset_for_config(cfg)
    assert (root / "heldout.json").stat().st_mtime_ns == stamp  # reused, not redrawn
    assert again.train.num_classes == first.train.num_classes == 16  # 22 - 2 val - 4 test
    assert "val/all/single" in first.splits
