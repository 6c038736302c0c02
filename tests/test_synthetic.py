"""The synthetic set: SYSU-MM01 layout, determinism, a real modality gap, the cache."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmcnet.config import make_config
from fmcnet.data import render, synthetic
from fmcnet.data.synthetic import ensure_synthetic, synthesize
from fmcnet.utils import FMCNetError

TINY = {"identities": 12, "images_per_camera": 2, "image_size": (32, 16), "progress": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("syn") / "set", seed=0, **TINY)


def _ids(path: Path) -> list[int]:
    text = path.read_text()
    assert re.fullmatch(r"\d+(,\d+)*\n", text), f"{path.name} is not one line of ids: {text!r}"
    return [int(t) for t in text.strip().split(",")]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _images(root: Path, cams: tuple[int, ...]) -> dict[int, list[np.ndarray]]:
    out: dict[int, list[np.ndarray]] = {}
    for cam in cams:
        for f in sorted((root / f"cam{cam}").glob("*/*.jpg")):
            out.setdefault(int(f.parent.name), []).append(np.asarray(Image.open(f)))
    return out


def test_layout_is_sysu(tiny):
    assert sorted(p.name for p in tiny.iterdir()) == [
        "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "exp", "synthetic.json"]
    assert sorted(p.name for p in (tiny / "exp").iterdir()) == [
        "test_id.txt", "train_id.txt", "val_id.txt"]
    splits = {s: _ids(tiny / "exp" / f"{s}_id.txt") for s in ("train", "val", "test")}
    every = sorted(sum(splits.values(), []))
    assert every == list(range(1, 13))  # disjoint and complete
    assert [len(splits[s]) for s in ("train", "val", "test")] == [8, 2, 2]
    for f in tiny.rglob("*.jpg"):
        cam, pid, name = f.relative_to(tiny).parts
        assert re.fullmatch(r"cam[1-6]", cam) and re.fullmatch(r"\d{4}", pid)
        assert re.fullmatch(r"\d{4}\.jpg", name) and 1 <= int(pid) <= 12
        assert Image.open(f).size == (16, 32) and Image.open(f).mode == "RGB"
    # Image numbers run 0001.. without gaps in each (camera, identity) folder.
    for folder in tiny.glob("cam*/*"):
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{i:04d}.jpg" for i in range(1, len(names) + 1)]


def test_every_identity_has_both_modalities(tiny):
    vis, ir = _images(tiny, synthetic.VISIBLE_CAMS), _images(tiny, synthetic.INFRARED_CAMS)
    assert set(vis) == set(ir) == set(range(1, 13))


def test_sysu_loader_reads_it(tiny):
    from fmcnet.data.sysu import load_sysu

    ds = load_sysu(tiny, trials=2)
    test_ids = set(_ids(tiny / "exp" / "test_id.txt"))
    assert set(ds.splits["all/single"].query.pids.tolist()) == test_ids
    assert ds.train.num_classes == 10


def test_deterministic_for_a_seed(tiny, tmp_path):
    again = synthesize(tmp_path / "again", seed=0, **TINY)
    other = synthesize(tmp_path / "other", seed=1, **TINY)
    assert _hashes(again) == _hashes(tiny)
    h_other = _hashes(other)
    common = set(h_other) & set(_hashes(tiny))
    assert sum(h_other[k] != _hashes(tiny)[k] for k in common) > len(common) // 2


def test_infrared_is_grey_and_visible_is_colour(tiny):
    ir = [im for ims in _images(tiny, synthetic.INFRARED_CAMS).values() for im in ims]
    vis = [im for ims in _images(tiny, synthetic.VISIBLE_CAMS).values() for im in ims]
    for im in ir:
        assert np.array_equal(im[..., 0], im[..., 1]) and np.array_equal(im[..., 1], im[..., 2])
    chroma = [np.abs(im.astype(int) - im.mean(-1, keepdims=True)).mean() for im in vis]
    assert min(chroma) > 3  # every visible image carries colour


def test_infrared_intensity_is_an_identity_signature(tmp_path):
    """In each infrared camera, per-identity mean torso brightness varies far more than
    image-to-image variation alone would make it vary (one-way ANOVA F-ratio): a
    per-identity thermal signature exists."""
    root = synthesize(tmp_path / "s", seed=3, identities=16, images_per_camera=3,
                      image_size=(32, 16), progress=False)
    for cam in synthetic.INFRARED_CAMS:
        torso = {pid: [im[8:16, 5:11, 0].mean() for im in ims]
                 for pid, ims in _images(root, (cam,)).items() if len(ims) > 1}
        assert len(torso) >= 5
        between = np.var([np.mean(m) for m in torso.values()], ddof=1)
        within = np.mean([np.var(m, ddof=1) / len(m) for m in torso.values()])
        assert between > 4 * within


def test_refuses_to_overwrite(tiny, tmp_path):
    with pytest.raises(FMCNetError, match="already exists"):
        synthesize(tiny, **TINY)
    assert not list(tiny.parent.glob(".set.tmp-*"))  # nothing left behind


@pytest.mark.parametrize("renderer", ["builtin", "heldout"])
def test_overwrite_from_python_never_deletes_a_folder_that_is_not_a_set(tmp_path, renderer):
    """The command line refused it; `synthesize(overwrite=True)` called from Python deleted
    whatever the folder held."""
    from fmcnet.data.heldout import synthesize_heldout

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    write, marker, kind = ((synthesize, "synthetic.json", "synthetic") if renderer == "builtin"
                           else (synthesize_heldout, "heldout.json", "held-out"))
    with pytest.raises(FMCNetError) as caught:
        write(mine, identities=3, images_per_camera=1, overwrite=True)
    assert str(caught.value) == (
        f"{mine} already exists and holds no {kind} set (no {marker}); synthesize replaces "
        "only a set it wrote, so nothing of yours is deleted: choose another --out")
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "install_set", boom)  # every image written by then
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "x", **TINY)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def synthesize_calls(tmp_path, monkeypatch):
    """`synthesize` at 32x16 into a cache under tmp_path; the list of its calls' keywords."""
    monkeypatch.setenv("FMCNET_DATA", str(tmp_path))
    calls = []
    real = synthetic.synthesize

    def counted(out, **kw):
        calls.append(kw)
        return real(out, **dict(kw, image_size=(32, 16)))

    monkeypatch.setattr(synthetic, "synthesize", counted)
    monkeypatch.setattr(synthetic, "DEFAULT_IMAGE_SIZE", (32, 16))
    return calls


def test_ensure_synthetic_caches_and_keys(synthesize_calls, tmp_path):
    calls = synthesize_calls
    cfg = make_config("smoke", synthetic_identities=6, synthetic_images_per_camera=1)
    first = ensure_synthetic(cfg)
    assert first.parent == tmp_path and first.name.startswith("synthetic-")
    assert (first / "exp" / "test_id.txt").is_file() and len(calls) == 1
    # The key covers exactly what the set records about how it was rendered.
    recorded = json.loads((first / synthetic.MARKER).read_text())
    counts = {"images", "visible", "infrared"}
    assert {k: v for k, v in recorded.items() if k not in counts} == \
        synthetic.expected_params(6, 0, 1)
    assert ensure_synthetic(cfg) == first and len(calls) == 1  # cached
    other = ensure_synthetic(make_config("smoke", synthetic_identities=6,
                                         synthetic_images_per_camera=1, synthetic_seed=5))
    assert other != first and len(calls) == 2  # new parameters -> new set
    assert calls[1]["seed"] == 5 and calls[1]["identities"] == 6

    # A directory without the completion marker (a crash of an older version, say) is
    # regenerated in place.
    (first / synthetic.MARKER).unlink()
    assert ensure_synthetic(cfg) == first and len(calls) == 3
    assert (first / synthetic.MARKER).is_file()

    # A set written with other rendering parameters under the same name (an older
    # generator whose defaults have since changed) is stale: regenerated, not reused.
    marker = first / synthetic.MARKER
    recorded = json.loads(marker.read_text())
    marker.write_text(json.dumps(dict(recorded, jitter=recorded["jitter"] * 3)))
    assert ensure_synthetic(cfg) == first and len(calls) == 4
    assert json.loads(marker.read_text())["jitter"] == recorded["jitter"]


def test_cache_key_follows_the_difficulty_defaults(monkeypatch):
    key = synthetic.synthetic_key(6, 0, 1)
    monkeypatch.setitem(synthetic._KNOB_DEFAULTS, "thermal_coupling", 0.5)
    assert synthetic.synthetic_key(6, 0, 1) != key


# ---- the modality-gap knobs ------------------------------------------------------------


def _luminance_levels(root: Path, cams: tuple[int, ...]) -> dict[int, float]:
    """Per identity: mean luminance of a patch in the middle of the torso (64x32 images)."""
    weights = np.array([0.299, 0.587, 0.114])
    levels = {pid: [(im.astype(float) @ weights)[13:24, 14:18].mean() for im in ims]
              for pid, ims in _images(root, cams).items()}
    return {pid: float(np.mean(v)) for pid, v in levels.items()}


def test_thermal_coupling_ties_infrared_to_visible_luminance(tmp_path):
    """Across identities, the correlation between a garment's visible luminance and its
    infrared level follows `thermal_coupling`: ~1 at 0.95, ~0 at 0."""
    corr = {}
    for coupling in (0.0, 0.5, 0.95):
        root = synthesize(tmp_path / f"c{coupling}", seed=0, identities=48, images_per_camera=2,
                          image_size=(64, 32), progress=False, thermal_coupling=coupling,
                          cross_modal_predictability=0.0)
        vis = _luminance_levels(root, synthetic.VISIBLE_CAMS)
        ir = _luminance_levels(root, synthetic.INFRARED_CAMS)
        pids = sorted(set(vis) & set(ir))
        corr[coupling] = np.corrcoef([vis[p] for p in pids], [ir[p] for p in pids])[0, 1]
    assert corr[0.95] > 0.9
    assert corr[0.95] > corr[0.5] + 0.2 > corr[0.0] + 0.4
    assert abs(corr[0.0]) < 0.3


def _held_out_r2(values: np.ndarray, groups: np.ndarray) -> float:
    """R^2 on the second half of the identities of predicting `values` by the mean of
    their group (garment cut) in the first half: how predictable a property is from the
    cut, for identities the rule was not fitted on."""
    half = len(values) // 2
    fit, test = slice(None, half), slice(half, None)
    means = {g: values[fit][groups[fit] == g].mean() for g in np.unique(groups[fit])}
    known = np.array([g in means for g in groups[test]])
    pred = np.array([means[g] for g in groups[test][known]])
    truth = values[test][known]
    return 1 - np.mean((truth - pred) ** 2) / np.var(truth)


@pytest.mark.parametrize("part", ["upper", "lower"])
def test_cross_modal_predictability_ties_dye_and_fabric_to_the_cut(part):
    """With predictability 1 a garment's visible brightness and its infrared level are a
    function of its cut (which both modalities show), the same for identities never seen
    when the rule was learnt; with 0 the cut says nothing about them."""
    r2 = {}
    for predictability in (0.0, 0.5, 1.0):
        idp = render._identities(np.random.default_rng(0), 2000, 0.0, 0.25, predictability)
        cut = render._cut_index(idp, part)
        brightness = idp[f"c_{part}"].max(-1)  # HSV value of the dye
        r2[predictability] = (_held_out_r2(brightness, cut), _held_out_r2(idp[f"t_{part}"], cut))
    for k in range(2):  # visible, infrared
        assert r2[1.0][k] > 0.99
        assert 0.2 < r2[0.5][k] < 0.8
        assert r2[0.0][k] < 0.05


def test_configuration_defaults_are_the_generators():
    from fmcnet.config import Config

    assert synthetic.config_knobs(Config()) == synthetic._KNOB_DEFAULTS
    assert Config().synthetic_thermal_coupling == synthetic.THERMAL_COUPLING
    assert Config().synthetic_cross_modal_predictability == synthetic.CROSS_MODAL_PREDICTABILITY


def test_ensure_synthetic_uses_the_configured_knobs(synthesize_calls):
    calls = synthesize_calls
    base = dict(synthetic_identities=6, synthetic_images_per_camera=1)
    default = ensure_synthetic(make_config("smoke", **base))
    coupled = ensure_synthetic(make_config("smoke", **base, synthetic_thermal_coupling=0.9,
                                           synthetic_cross_modal_predictability=1.0))
    assert coupled != default and len(calls) == 2
    assert calls[1]["thermal_coupling"] == 0.9 and calls[1]["cross_modal_predictability"] == 1.0
    recorded = json.loads((coupled / synthetic.MARKER).read_text())
    assert recorded["thermal_coupling"] == 0.9 and recorded["cross_modal_predictability"] == 1.0
    assert ensure_synthetic(make_config("smoke", **base, synthetic_thermal_coupling=0.9,
                                        synthetic_cross_modal_predictability=1.0)) == coupled
    assert len(calls) == 2  # cached under its own key


def test_knobs_out_of_range_are_refused(tmp_path):
    with pytest.raises(FMCNetError, match=r"thermal_coupling must be in \[0, 1\], got 1.5"):
        synthesize(tmp_path / "x", thermal_coupling=1.5, **TINY)


def test_render_images_in_memory():
    """The in-memory renderer (the GPU check's SYSU-sized set): any image list, in its
    order, independent of threads; visible in colour, infrared grey."""
    from fmcnet.data.synthetic import render_images

    cam_of = np.array([3, 1, 6, 2, 1, 5, 4, 3])
    ident = np.array([0, 1, 2, 0, 2, 1, 0, 1])
    one = render_images(cam_of, ident, identities=3, seed=2, image_size=(32, 16), workers=1)
    two = render_images(cam_of, ident, identities=3, seed=2, image_size=(32, 16), workers=2)
    assert one.shape == (8, 32, 16, 3) and one.dtype == np.uint8
    np.testing.assert_array_equal(one, two)
    infrared = np.isin(cam_of, (3, 6))
    assert all(np.array_equal(im[..., 0], im[..., 1]) for im in one[infrared])
    assert not any(np.array_equal(im[..., 0], im[..., 1]) for im in one[~infrared])
    # the rendering follows the list: images of another identity differ
    other = render_images(cam_of, (ident + 1) % 3, identities=3, seed=2, image_size=(32, 16))
    assert not np.array_equal(one, other)
    with pytest.raises(FMCNetError, match="cameras 1..6"):
        render_images(np.array([7]), np.array([0]), identities=3)
    with pytest.raises(FMCNetError, match="unknown knobs"):
        render_images(cam_of, ident, identities=3, glare=0.5)


def test_the_rendering_and_the_cache_key_are_pinned():
    """Checksums taken before the renderer moved to its own module (issue 27): the pixels
    of a small render, the files and split of a tiny set (JPEG bytes aside: they depend on
    the JPEG library) and the cache keys must not change, or every cached set goes stale.
    A deliberate change of the rendering bumps GENERATOR_VERSION and these numbers."""
    from fmcnet.data.synthetic import render_images, synthetic_key

    cam_of = np.array([3, 1, 6, 2, 1, 5, 4, 3, 1, 6])
    ident = np.array([0, 1, 2, 0, 2, 1, 0, 1, 3, 3])
    pixels = render_images(cam_of, ident, identities=4, seed=5, image_size=(32, 16))
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == (
        "3268ec1b73001ef54a645a9164651de3caee82fc62cbafb48e91f3551bef6e9f")
    knobs = render_images(cam_of, ident, identities=4, seed=5, image_size=(32, 16),
                          thermal_coupling=0.9, cross_modal_predictability=1.0)
    assert hashlib.sha256(knobs.tobytes()).hexdigest() == (
        "7cb0d7d87664e4cb4dff2aa602f20fddcb6f6b2251dd1c47451b35329f60ed1a")
    assert synthetic.GENERATOR_VERSION == 2
    assert synthetic_key(24, 0, 3) == "52e7e4a93118"
    assert synthetic_key(200, 0, 6, thermal_coupling=0.5) == "042a4eb4b24f"
    cfg = make_config("quick")
    assert synthetic_key(cfg.synthetic_identities, cfg.synthetic_seed,
                         cfg.synthetic_images_per_camera,
                         **synthetic.config_knobs(cfg)) == "5aa0774d03a4"


def test_the_layout_of_a_tiny_set_is_pinned(tiny):
    """File names, the split files and synthetic.json of the `tiny` set (seed 0)."""
    files = sorted(str(p.relative_to(tiny)) for p in tiny.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\n")
        if not name.endswith(".jpg"):
            digest.update((tiny / name).read_bytes())
    assert len(files) == 127
    assert digest.hexdigest() == "c9d8c83f3c2a5a258ae8f79b39bdad5fd8547278d33cbbc427133015c602e3de"
