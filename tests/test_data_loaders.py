"""SYSU-MM01, RegDB and LLCM loaders on tiny fixture trees in the owners' layouts."""

from __future__ import annotations

import os
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fixtures import make_llcm_tree, make_regdb_tree, make_sysu_tree, write_rand_perm_cam

from fmcnet.config import ConfigError, make_config
from fmcnet.data import dataset_for_config, load_dataset, load_llcm, load_regdb, load_sysu
from fmcnet.data.base import DatasetError
from fmcnet.data.splits import SplitError

TRAIN, VAL, TEST = (1, 2, 3), (4,), (5, 6, 7)
# (pid, cam) -> images; others get 3. (5, 1) exceeds the 10-image multi-shot cap.
COUNTS = {(5, 1): 12, (5, 2): 1, (6, 3): 5, (1, 6): 2}
MISSING = [(6, 4), (7, 3), (2, 5)]


def _n(pid: int, cam: int) -> int:
    return 0 if (pid, cam) in MISSING else COUNTS.get((pid, cam), 3)


@pytest.fixture(scope="module")
def sysu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sysu")
    return make_sysu_tree(root, train_ids=TRAIN, val_ids=VAL, test_ids=TEST,
                          images_per_cam=COUNTS, missing=MISSING)


@pytest.fixture(scope="module")
def sysu_owners_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sysu_owners")
    return make_sysu_tree(root, train_ids=TRAIN, val_ids=VAL, test_ids=TEST,
                          images_per_cam=COUNTS, missing=MISSING)


def _key(path: str) -> tuple[int, int, str]:
    p = Path(path)
    return int(p.parent.parent.name[3:]), int(p.parent.name), p.name


# ---- SYSU-MM01 ---------------------------------------------------------------------------


def test_sysu_counts_every_split(sysu_root):
    ds = load_sysu(sysu_root, trials=3)
    # no exp/rand_perm_cam.mat: single-shot as AGW draws it, multi-shot seeded
    assert ds.name == "sysu" and ds.val is None
    assert ds.sampler == "agw: all/single, indoor/single; seeded: all/multi, indoor/multi"
    assert {n: s.sampler for n, s in ds.splits.items()} == {
        "all/single": "agw", "all/multi": "seeded", "indoor/single": "agw",
        "indoor/multi": "seeded"}
    train_ids = TRAIN + VAL
    assert len(ds.train.visible) == sum(_n(p, c) for p in train_ids for c in (1, 2, 4, 5))
    assert len(ds.train.infrared) == sum(_n(p, c) for p in train_ids for c in (3, 6))
    assert ds.train.num_classes == 4
    # joint re-indexing: pid 1..4 -> 0..3 in both modalities
    assert np.array_equal(ds.train.visible.labels, ds.train.visible.pids - 1)
    assert np.array_equal(ds.train.infrared.labels, ds.train.infrared.pids - 1)
    assert set(ds.train.infrared.cams.tolist()) == {3, 6}

    n_query = sum(_n(p, c) for p in TEST for c in (3, 6))
    assert set(ds.splits) == {"all/single", "all/multi", "indoor/single", "indoor/multi"}
    for name, split in ds.splits.items():
        mode, shot = name.split("/")
        cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
        k = 1 if shot == "single" else 10
        assert split.protocol == "sysu"
        assert len(split.query) == n_query and split.query.modality == "infrared"
        assert split.gallery.modality == "visible"
        assert len(split.gallery) == sum(_n(p, c) for p in TEST for c in cams)
        assert len(split.trials) == 3
        expected = sum(min(_n(p, c), k) for p in TEST for c in cams)
        for rows in split.trials:
            assert len(rows) == expected
            pairs = list(zip(split.gallery.pids[rows].tolist(), split.gallery.cams[rows].tolist()))
            assert all(pairs.count(pc) == min(_n(*pc), k) for pc in set(pairs))
            keys = [_key(split.gallery.paths[i]) for i in rows]
            assert keys == sorted(keys)  # (cam, pid, image) order


def test_sysu_seeded_galleries_reproducible_and_vary(sysu_root):
    a = load_sysu(sysu_root, trials=4, gallery_sampler="seeded")
    b = load_sysu(sysu_root, trials=4, gallery_sampler="seeded")
    assert a.sampler == "seeded" and {s.sampler for s in a.splits.values()} == {"seeded"}
    for name in a.splits:
        for ta, tb in zip(a.splits[name].trials, b.splits[name].trials):
            assert np.array_equal(ta, tb)
    single = a.splits["all/single"]
    draws = {tuple(single.gallery.paths[i] for i in t) for t in single.trials}
    assert len(draws) > 1
    # single-shot is the first multi-shot draw; indoor is all-search restricted to cams 1, 2
    multi, indoor = a.splits["all/multi"], a.splits["indoor/single"]
    for t in range(4):
        s = {single.gallery.paths[i] for i in single.trials[t]}
        assert s <= {multi.gallery.paths[i] for i in multi.trials[t]}
        ind = {indoor.gallery.paths[i] for i in indoor.trials[t]}
        assert ind == {p for p in s if _key(p)[0] in (1, 2)}


def _agw_draw(root: Path, mode: str, trial: int) -> list[tuple[int, int, str]]:
    """AGW's single-shot gallery for (mode, trial), re-stated from the rules in issue 13
    (AGW's `process_gallery_sysu`), as (cam, pid, file name) keys."""
    random.seed(trial)
    cams = ["cam1", "cam2", "cam4", "cam5"] if mode == "all" else ["cam1", "cam2"]
    with open(os.path.join(root, "exp/test_id.txt")) as f:
        ids = [f"{int(y):04d}" for y in f.read().splitlines()[0].split(",")]
    picks = []
    for pid in sorted(ids):
        for cam in cams:
            folder = os.path.join(root, cam, pid)
            if os.path.isdir(folder):
                picks.append(random.choice(sorted(folder + "/" + n for n in os.listdir(folder))))
    return [_key(p) for p in picks]


@pytest.fixture(scope="module")
def agw_root(tmp_path_factory) -> Path:
    # ids listed out of order and past 9 (string-sorted as %04d), folders of 1..12 images
    # so that draws differ between trials, some (id, camera) folders absent
    root = tmp_path_factory.mktemp("sysu_agw")
    counts = lambda pid, cam: 1 + (pid * 7 + cam * 3) % 12  # noqa: E731
    make_sysu_tree(root, train_ids=(1, 2), val_ids=(3,), test_ids=(12, 5, 9, 21, 7),
                   images_per_cam=counts, missing=[(9, 4), (21, 1), (7, 2)])
    return root


def test_sysu_agw_sampler_reproduces_agw_draw_for_draw(agw_root):
    ds = load_sysu(agw_root, trials=10, gallery_sampler="agw")
    restricted_differs = 0
    for mode in ("all", "indoor"):
        split = ds.splits[f"{mode}/single"]
        assert split.sampler == "agw" and len(split.trials) == 10
        for t, rows in enumerate(split.trials):
            ours = sorted(_key(split.gallery.paths[i]) for i in rows)
            assert ours == sorted(_agw_draw(agw_root, mode, t)), (mode, t)
            if mode == "indoor":
                # indoor is drawn on its own stream, not all-search restricted to cams 1, 2
                allsearch = ds.splits["all/single"]
                restricted = sorted(k for k in (_key(allsearch.gallery.paths[i])
                                                for i in allsearch.trials[t]) if k[0] in (1, 2))
                restricted_differs += ours != restricted
    assert restricted_differs > 0
    draws = {tuple(r.tolist()) for r in ds.splits["all/single"].trials}
    assert len(draws) == 10
    # AGW has no multi-shot: seeded without the owners' file, and said so
    assert {ds.splits[n].sampler for n in ("all/multi", "indoor/multi")} == {"seeded"}
    auto = load_sysu(agw_root, trials=2)
    assert all(np.array_equal(a, b) for a, b in zip(auto.splits["all/single"].trials,
                                                     ds.splits["all/single"].trials))


def test_sysu_agw_sampler_lists_every_entry_and_warns_on_stray_files(tmp_path):
    root = make_sysu_tree(tmp_path, train_ids=(1,), val_ids=(2,), test_ids=(3, 4),
                          images_per_cam=4)
    stray = root / "cam1" / "0003" / "Thumbs.db"
    stray.write_bytes(b"not an image")
    expected = {t: _agw_draw(root, "all", t) for t in range(10)}
    with pytest.warns(UserWarning, match=r"picks .*Thumbs\.db, which is not an image"):
        ds = load_sysu(root, trials=10, gallery_sampler="agw")
    assert any("Thumbs.db" in n for n in ds.notes)
    split = ds.splits["all/single"]
    for t, rows in enumerate(split.trials):
        # the stray entry takes part in the draw as in AGW's listing; when drawn, that
        # folder is left out and every other pick still matches
        want = sorted(k for k in expected[t] if k[2] != "Thumbs.db")
        assert sorted(_key(split.gallery.paths[i]) for i in rows) == want
    assert any(k[2] == "Thumbs.db" for t in expected for k in expected[t])


def test_sysu_sampler_choice_with_and_without_the_owners_file(tmp_path):
    root = make_sysu_tree(tmp_path, train_ids=(1,), val_ids=(2,), test_ids=(3, 4),
                          images_per_cam=5)
    with pytest.raises(DatasetError, match=r"gallery_sampler=owners needs .*rand_perm_cam\.mat"):
        load_sysu(root, gallery_sampler="owners")
    with pytest.raises(DatasetError, match=r"gallery_sampler must be one of"):
        load_sysu(root, gallery_sampler="matlab")
    write_rand_perm_cam(root, trials=2)
    samplers = {
        choice: {n: s.sampler for n, s in load_sysu(root, trials=2, gallery_sampler=choice)
                 .splits.items()}
        for choice in ("auto", "owners", "agw", "seeded")
    }
    assert set(samplers["auto"].values()) == set(samplers["owners"].values()) == {"owners"}
    assert samplers["agw"] == {"all/single": "agw", "all/multi": "owners",
                               "indoor/single": "agw", "indoor/multi": "owners"}
    assert set(samplers["seeded"].values()) == {"seeded"}
    cfg = make_config("smoke", dataset="sysu", data_root=str(root), gallery_sampler="agw")
    assert dataset_for_config(cfg).splits["all/single"].sampler == "agw"
    for key, value in (("gallery_sampler", "matlab"), ("llcm_protocol", "agw")):
        with pytest.raises(ConfigError, match=f"{key} must be one of"):
            make_config("smoke", **{key: value})


@pytest.mark.parametrize("orientation", ["row", "column"])
def test_sysu_owners_permutation_honoured(sysu_owners_root, orientation):
    perms = write_rand_perm_cam(sysu_owners_root, trials=3, seed=int(orientation == "row"),
                                orientation=orientation)
    ds = load_sysu(sysu_owners_root, trials=3)
    assert ds.sampler == "owners"
    for name, split in ds.splits.items():
        mode, shot = name.split("/")
        cams = (1, 2, 4, 5) if mode == "all" else (1, 2)
        k = 1 if shot == "single" else 10
        for t, rows in enumerate(split.trials):
            expected = []
            for cam in cams:
                for pid in TEST:
                    if (cam, pid) not in perms:
                        continue
                    folder = sysu_owners_root / f"cam{cam}" / f"{pid:04d}"
                    names = sorted(f.name for f in folder.iterdir())
                    expected += [str(folder / names[j - 1]) for j in sorted(perms[cam, pid][t][:k])]
            assert [split.gallery.paths[i] for i in rows] == expected


def test_sysu_owners_file_must_fit_the_tree(tmp_path):
    root = make_sysu_tree(tmp_path, train_ids=(1,), val_ids=(2,), test_ids=(3,), images_per_cam=2)
    write_rand_perm_cam(root, trials=2)
    load_sysu(root, trials=2)
    with pytest.raises(DatasetError, match=r"rand_perm_cam.mat has 2 permutations .*3 trials"):
        load_sysu(root, trials=3)
    (root / "cam1" / "0003" / "0002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"refers to image 2 of cam1/0003, which holds 1 images"):
        load_sysu(root, trials=2)


def test_sysu_validate_holds_out_val_ids(sysu_root):
    ds = load_sysu(sysu_root, trials=1, validate=True)
    assert set(ds.train.visible.pids.tolist()) == set(TRAIN)
    assert ds.train.num_classes == len(TRAIN)
    assert ds.val is not None and set(ds.val.visible.pids.tolist()) == set(VAL)
    assert ds.val.num_classes == 1 and set(ds.val.infrared.labels.tolist()) == {0}


def test_sysu_id_file_tolerates_whitespace(tmp_path):
    root = make_sysu_tree(tmp_path, train_ids=(1, 2), val_ids=(3,), test_ids=(4, 5),
                          images_per_cam=1)
    (root / "exp" / "train_id.txt").write_text(" 1,\n 2 \n")
    assert load_sysu(root, trials=1).train.num_classes == 3
    # the AGW draw reads the first line split at commas: "4 5" is no id there (a traceback)
    (root / "exp" / "test_id.txt").write_text("4 5\n")
    with pytest.raises(DatasetError, match=r"the first line of .*test_id\.txt holds '4 5', which "
                                           r"the AGW and DEEN gallery draws .* cannot read as an "
                                           r"id; separate the ids with commas"):
        load_sysu(root, trials=1)


def test_sysu_errors(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError) as err:
        load_dataset("sysu", missing)
    assert str(err.value) == (
        f"SYSU-MM01 root {missing} does not exist; expected cam1..cam6/ and exp/ "
        "(see docs/datasets.md)"
    )
    with pytest.raises(DatasetError, match="SYSU-MM01 root .* does not exist"):
        load_sysu(missing)

    root = make_sysu_tree(tmp_path / "a", train_ids=(1,), val_ids=(2,), test_ids=(3, 9),
                          images_per_cam=1, missing=[9])
    with pytest.raises(DatasetError, match=r"test_id\.txt lists id\(s\) 0009 with no image folder"):
        load_sysu(root)

    (root / "exp" / "val_id.txt").write_text("2,x3")
    with pytest.raises(DatasetError, match=r"val_id\.txt holds 'x3', which is not an integer"):
        load_sysu(root)

    (root / "exp" / "val_id.txt").unlink()
    with pytest.raises(DatasetError, match=r"has no exp/val_id\.txt; expected one line of comma"):
        load_sysu(root)

    empty = make_sysu_tree(tmp_path / "b", train_ids=(1,), val_ids=(2,), test_ids=(3,),
                           images_per_cam=0)
    with pytest.raises(DatasetError, match=r"holds no images.*cam1\.\.cam6"):
        load_sysu(empty)


# ---- RegDB -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regdb_root(tmp_path_factory) -> Path:
    return make_regdb_tree(tmp_path_factory.mktemp("regdb"), num_ids=6, images_per_id=2,
                           trials=(1, 2))


def test_regdb_both_directions(regdb_root):
    ds = load_regdb(regdb_root, trial=2)
    assert (ds.name, ds.trial, ds.sampler) == ("regdb", 2, "fixed")
    assert len(ds.train.visible) == len(ds.train.infrared) == 6 and ds.train.num_classes == 3
    assert set(ds.train.visible.labels.tolist()) == {0, 1, 2}
    assert np.array_equal(ds.train.visible.labels, ds.train.infrared.labels)
    v2i, i2v = ds.splits["visible_to_infrared"], ds.splits["infrared_to_visible"]
    assert (v2i.protocol, i2v.protocol) == ("regdb", "regdb")
    assert (v2i.sampler, i2v.sampler) == ("fixed", "fixed")  # every test row, every result
    assert v2i.query.modality == "visible" and v2i.gallery.modality == "infrared"
    assert i2v.query.modality == "infrared" and i2v.gallery.modality == "visible"
    assert v2i.query.paths == i2v.gallery.paths and v2i.gallery.paths == i2v.query.paths
    assert set(v2i.query.cams.tolist()) == {1} and set(v2i.gallery.cams.tolist()) == {2}
    assert len(v2i.trials) == 1 and np.array_equal(v2i.trials[0], np.arange(6))
    assert all(Path(p).exists() and "/Thermal/" in p for p in v2i.gallery.paths)
    test_ids = set(v2i.query.pids.tolist())
    assert not test_ids & set(ds.train.visible.pids.tolist())
    other = load_regdb(regdb_root, trial=1)
    assert set(other.splits["visible_to_infrared"].query.pids.tolist()) != test_ids


def test_regdb_errors(tmp_path):
    root = make_regdb_tree(tmp_path / "r", num_ids=4, images_per_id=1, trials=(1,))
    with pytest.raises(DatasetError, match=r"has no idx/train_visible_3\.txt; expected lines"):
        load_regdb(root, trial=3)
    listing = root / "idx" / "test_thermal_1.txt"
    good = listing.read_text()
    listing.write_text(good + "Thermal/1/t_0001_1.bmp\n")
    with pytest.raises(DatasetError, match=r"test_thermal_1\.txt:3: expected '<relative path> "
                                            r"<integer label>', got 'Thermal/1/t_0001_1\.bmp'"):
        load_regdb(root)
    listing.write_text(good + "Thermal/1/gone.bmp 1\n")
    with pytest.raises(DatasetError, match=r"lists .*Thermal/1/gone\.bmp, which does not exist"):
        load_regdb(root)
    with pytest.raises(DatasetError, match="RegDB root .* does not exist; expected Visible/"):
        load_dataset("regdb", tmp_path / "none")


# ---- LLCM --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llcm_root(tmp_path_factory) -> Path:
    counts = {(4, 1): 4, (5, 2): 1, (6, 3): 5}
    return make_llcm_tree(tmp_path_factory.mktemp("llcm"), train_ids=(1, 2), test_ids=(4, 5, 6),
                          vis_cams=(1, 2), nir_cams=(1, 3), images_per_cam=counts,
                          missing=[(5, 1)])


def test_llcm_literal_splits(llcm_root):
    ds = load_llcm(llcm_root, trials=5, protocol="literal")
    assert ds.name == "llcm" and ds.train.num_classes == 2
    assert ds.llcm_protocol == "literal" and ds.sampler == "seeded" and ds.notes == []
    assert set(ds.train.visible.cams.tolist()) == {1, 2}  # from the cam<c> folder names
    v2i, i2v = ds.splits["visible_to_infrared"], ds.splits["infrared_to_visible"]
    assert v2i.query.modality == "visible" and v2i.gallery.modality == "infrared"
    assert v2i.query.paths == i2v.gallery.paths and i2v.query.paths == v2i.gallery.paths
    assert set(v2i.gallery.cams.tolist()) == {1, 3} and set(v2i.query.cams.tolist()) == {1, 2}
    # visible: (4,1)=4 (5,2)=1, other pairs 3 (the mapping default); (5,1) missing
    assert len(v2i.query) == 4 + 1 + 3 * 3
    for split in (v2i, i2v):
        pool = set(zip(split.gallery.pids.tolist(), split.gallery.cams.tolist()))
        assert split.protocol == "llcm_literal" and len(split.trials) == 5
        assert split.sampled == "gallery" and split.sampler == "seeded"
        for rows in split.trials:
            pairs = list(zip(split.gallery.pids[rows].tolist(), split.gallery.cams[rows].tolist()))
            assert sorted(pairs) == sorted(pool)  # exactly 1 per (identity, camera)
        draws = {tuple(r.tolist()) for r in split.trials}
        assert len(draws) > 1
    again = load_llcm(llcm_root, trials=5, protocol="literal")
    assert all(np.array_equal(a, b) for a, b in zip(again.splits["visible_to_infrared"].trials,
                                                     v2i.trials))


def _deen_draw(root: Path, folder: str, cams: list[int], trial: int) -> list[str]:
    """DEEN's `process_gallery_llcm` for one trial, re-stated from its rules (issue 13)."""
    random.seed(trial)
    with open(os.path.join(root, "idx/test_id.txt")) as f:
        ids = [f"{int(y):04d}" for y in f.read().splitlines()[0].split(",")]
    picks = []
    for pid in sorted(ids):
        for cam in cams:
            img_dir = os.path.join(root, folder, f"cam{cam}", pid)
            if os.path.isdir(img_dir):
                picks.append(random.choice(sorted(img_dir + "/" + n for n in os.listdir(img_dir))))
    return sorted(str(Path(p).relative_to(root)) for p in picks)


def test_llcm_deen_protocol(tmp_path):
    counts = lambda pid, cam: 1 + (pid * 5 + cam) % 6  # noqa: E731
    root = make_llcm_tree(tmp_path, train_ids=(1, 2), test_ids=(14, 4, 9), vis_cams=(1, 3, 9),
                          nir_cams=(1, 2, 3, 8), images_per_cam=counts, missing=[(9, 8), (4, 3)])
    with pytest.warns(UserWarning, match=r"test_nir/cam3 is left out: DEEN's evaluation reads "
                                         r"test_nir cams 1, 2, 4, 5, 6, 7, 8, 9 only"):
        ds = load_llcm(root, trials=6)
    assert ds.llcm_protocol == "deen" and ds.sampler == "deen"
    assert len(ds.notes) == 1 and "test_nir/cam3" in ds.notes[0]
    v2i, i2v = ds.splits["visible_to_infrared"], ds.splits["infrared_to_visible"]
    assert v2i.protocol == i2v.protocol == "llcm"
    # both directions rank infrared images against visible ones; no test_nir/cam3 image
    for split in (v2i, i2v):
        assert split.query.modality == "infrared" and split.gallery.modality == "visible"
        assert set(split.query.cams.tolist()) == {1, 2, 8}
        assert set(split.gallery.cams.tolist()) == {1, 3, 9}
    assert (i2v.sampled, v2i.sampled) == ("gallery", "query")

    def rel(images, rows):
        return sorted(str(Path(images.paths[i]).relative_to(root)) for i in rows)

    for t in range(6):
        # infrared -> visible (test_mode [1, 2]): every infrared query, a sampled gallery
        q_rows, g_rows = i2v.trial_rows(t)
        assert q_rows is None
        assert rel(i2v.gallery, g_rows) == _deen_draw(root, "test_vis", list(range(1, 10)), t)
        # "visible -> infrared" (test_mode [2, 1]): sampled infrared queries, every visible
        q_rows, g_rows = v2i.trial_rows(t)
        assert g_rows is None
        assert rel(v2i.query, q_rows) == _deen_draw(root, "test_nir", [1, 2, 4, 5, 6, 7, 8, 9], t)
    assert len({tuple(r.tolist()) for r in v2i.trials}) > 1

    literal = load_llcm(root, trials=1, protocol="literal")
    assert set(literal.splits["visible_to_infrared"].gallery.cams.tolist()) == {1, 2, 3, 8}
    with pytest.raises(DatasetError, match="llcm_protocol must be one of"):
        load_llcm(root, protocol="agw")


def test_llcm_errors(tmp_path):
    root = make_llcm_tree(tmp_path / "l", train_ids=(1,), test_ids=(2, 3), images_per_cam=1,
                          missing=[3])
    with pytest.raises(DatasetError, match=r"test_id\.txt lists id\(s\) 0003 with no image folder"):
        load_llcm(root)
    (root / "idx" / "train_nir.txt").unlink()
    with pytest.raises(DatasetError, match=r"has no idx/train_nir\.txt"):
        load_llcm(root)


# ---- split lists: no identity in two lists, none twice ------------------------------------


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text().rstrip("\n") + text)


@pytest.mark.parametrize("edit, message", [
    # a test identity trains
    (("train", ",6"), r"exp/train_id\.txt \(training list\) and .*exp/test_id\.txt \(test list\) "
                      r"share identity 0006; a test identity that trains is tested on what the "
                      r"model trained on"),
    # a validation identity trains (with validate=true it would select the checkpoint)
    (("train", ",4"), r"exp/train_id\.txt \(training list\) and .*exp/val_id\.txt "
                      r"\(validation list\) share identity 0004; a validation identity that "
                      r"trains selects the checkpoint"),
    (("val", ",5,7"), r"exp/val_id\.txt \(validation list\) and .*exp/test_id\.txt \(test list\) "
                      r"share identities 0005, 0007"),
    # a test id twice: the AGW draw would take that id's folders twice
    (("test", ",5"), r"exp/test_id\.txt \(test list\) lists identity 0005 \(2 times\); a list "
                     r"names each entry once"),
], ids=["test-id-trains", "val-id-trains", "val-id-tested", "test-id-twice"])
@pytest.mark.parametrize("validate", [False, True])
def test_sysu_split_lists_that_leak_or_repeat_are_refused(tmp_path, edit, message, validate):
    root = make_sysu_tree(tmp_path, train_ids=TRAIN, val_ids=VAL, test_ids=TEST)
    load_sysu(root, trials=1, validate=validate)  # the owners' kind of lists load
    split, text = edit
    _append(root / "exp" / f"{split}_id.txt", text)
    with pytest.raises(SplitError, match=r"^SYSU-MM01 split lists: .*" + message) as err:
        load_sysu(root, trials=1, validate=validate)
    assert str(root) in str(err.value) and "docs/datasets.md" in str(err.value)


def test_validation_that_trains_is_refused_on_the_synthetic_set(tmp_path, monkeypatch):
    """The synthetic set is read by the SYSU-MM01 loader: an edited copy in the cache is
    refused the same way, before any training (it reported "best validation mAP 100 %")."""
    monkeypatch.setenv("FMCNET_DATA", str(tmp_path / "cache"))
    cfg = make_config("smoke", validate=True)
    ds = dataset_for_config(cfg)
    train_ids = set(ds.train.visible.pids.tolist())
    val_ids = set(ds.val.visible.pids.tolist())
    assert val_ids and not (train_ids & val_ids)
    exp = ds.root / "exp"
    _append(exp / "train_id.txt", f",{min(val_ids)}")
    with pytest.raises(SplitError, match=rf"train_id\.txt \(training list\) and .*val_id\.txt "
                                         rf"\(validation list\) share identity {min(val_ids):04d}"):
        dataset_for_config(cfg)


def _regdb_lines(root: Path, name: str) -> list[str]:
    return (root / "idx" / name).read_text().splitlines()


def test_regdb_test_rows_or_identities_in_a_training_list_are_refused(tmp_path):
    root = make_regdb_tree(tmp_path / "r", num_ids=6, images_per_id=2)
    train, test = "train_visible_1.txt", "test_thermal_1.txt"
    ds = load_regdb(root)
    assert not set(ds.train.infrared.pids.tolist()) & set(ds.splits["visible_to_infrared"]
                                                           .gallery.pids.tolist())
    original = {n: (root / "idx" / n).read_text() for n in (train, test, "test_visible_1.txt")}

    # test rows appended to a training list: the model trains on the images it is tested on
    leaked = _regdb_lines(root, "test_visible_1.txt")[:2]
    _append(root / "idx" / train, "\n" + "\n".join(leaked) + "\n")
    with pytest.raises(SplitError, match=rf"^RegDB split lists: .*idx/{train} \(training list\) "
                                         r"and .*idx/test_visible_1\.txt \(test list\) share test "
                                         rf"images {leaked[0].split()[0]}, {leaked[1].split()[0]}; "
                                         r"a test image in a training list"):
        load_regdb(root)
    (root / "idx" / train).write_text(original[train])

    # another image of a training identity in a test list: the same person, another image
    row = _regdb_lines(root, "train_thermal_1.txt")[-1]
    folder = row.split()[0].split("/")[1]
    moved = row.split()[0][:-len("_2.bmp")] + "_3.bmp"
    (root / moved).write_bytes((root / row.split()[0]).read_bytes())
    _append(root / "idx" / test, f"\n{moved} {row.split()[1]}\n")
    # (the identity's visible training images name it first: Visible/<id> and Thermal/<id>
    # are one person)
    with pytest.raises(SplitError, match=rf"train_visible_1\.txt \(training list\) and .*{test} "
                                         rf"\(test list\) share identity folder {folder}; an "
                                         r"identity folder holds one person"):
        load_regdb(root)
    (root / "idx" / test).write_text(original[test])

    # a row listed twice
    first = _regdb_lines(root, "test_visible_1.txt")[0]
    _append(root / "idx" / "test_visible_1.txt", f"\n{first}\n")
    with pytest.raises(SplitError, match=rf"test_visible_1\.txt \(test list\) lists row "
                                         rf"{first.split()[0]} \(2 times\)"):
        load_regdb(root)


def test_regdb_lists_that_number_each_list_from_zero_load(tmp_path):
    """The owners' RegDB lists label each list's identities 0..205 on their own, so equal
    labels in a training and a test list are different people: the check compares identity
    folders, never labels."""
    root = make_regdb_tree(tmp_path / "r", num_ids=6, images_per_id=2)
    for name in sorted(p.name for p in (root / "idx").iterdir()):
        lines = _regdb_lines(root, name)
        folders = sorted({line.split()[0].split("/")[1] for line in lines}, key=int)
        relabel = {f: i for i, f in enumerate(folders)}
        (root / "idx" / name).write_text("".join(
            f"{line.split()[0]} {relabel[line.split()[0].split('/')[1]]}\n" for line in lines))
    ds = load_regdb(root)
    assert ds.train.num_classes == 3
    assert set(ds.train.visible.pids.tolist()) == set(ds.splits["visible_to_infrared"]
                                                       .query.pids.tolist()) == {0, 1, 2}


def test_llcm_split_lists_that_leak_or_repeat_are_refused(tmp_path):
    # identity 1 has training images and test images: one person in both
    root = make_llcm_tree(tmp_path / "leak", train_ids=(1, 2, 3), test_ids=(1, 4, 5),
                          images_per_cam=1)
    with pytest.raises(SplitError, match=r"^LLCM split lists: .*idx/train_vis\.txt \(training list\) "
                                         r"and .*idx/test_id\.txt \(test list\) share identity "
                                         r"0001; the identity folders of training images and "
                                         r"test_id\.txt share one numbering"):
        load_llcm(root, trials=1)

    root = make_llcm_tree(tmp_path / "l", train_ids=(1, 2, 3), test_ids=(4, 5, 6),
                          images_per_cam=1)
    load_llcm(root, trials=1)
    _append(root / "idx" / "test_id.txt", ",6")
    with pytest.raises(SplitError, match=r"test_id\.txt \(test list\) lists identity 0006 "
                                         r"\(2 times\)"):
        load_llcm(root, trials=1)
    (root / "idx" / "test_id.txt").write_text("4,5,6")

    # a test image listed for training (under a training label)
    image = "test_nir/cam2/0005/0005_c02_0001.jpg"
    assert (root / image).is_file()
    _append(root / "idx" / "train_nir.txt", f"\n{image} 3\n")
    with pytest.raises(SplitError, match=rf"train_nir\.txt \(training list\) and {root} \(the test "
                                         rf"images of test_id\.txt's ids\) share test image {image}"):
        load_llcm(root, trials=1)


def test_llcm_training_lists_labelled_from_zero_load(tmp_path):
    """A training list may number its identities from 0 (as DEEN's 713 classes do): labels
    are never compared with the test ids, the identity folders are."""
    root = make_llcm_tree(tmp_path / "l", train_ids=(7, 8), test_ids=(1, 2), images_per_cam=1)
    for name in ("train_vis.txt", "train_nir.txt"):
        path = root / "idx" / name
        path.write_text("".join(f"{line.split()[0]} {int(line.split()[1]) - 7}\n"
                                for line in path.read_text().splitlines()))
    ds = load_llcm(root, trials=1)
    assert set(ds.train.visible.pids.tolist()) == {0, 1}


# ---- dispatch ----------------------------------------------------------------------------


def test_load_dataset_and_config(sysu_root, regdb_root, monkeypatch):
    with pytest.raises(DatasetError, match="unknown dataset 'market'"):
        load_dataset("market", sysu_root)
    assert load_dataset("regdb", regdb_root, trial=2).trial == 2

    cfg = make_config("smoke", dataset="sysu")
    with pytest.raises(DatasetError, match="dataset=sysu needs data_root="):
        dataset_for_config(cfg)
    cfg = make_config("smoke", dataset="sysu", data_root=str(sysu_root), validate=True)
    ds = dataset_for_config(cfg)
    assert len(ds.splits["all/single"].trials) == cfg.trials and ds.val is not None

    calls = []
    fake = types.ModuleType("fmcnet.data.synthetic")
    fake.ensure_synthetic = lambda c: calls.append(c) or sysu_root
    monkeypatch.setitem(sys.modules, "fmcnet.data.synthetic", fake)
    cfg = make_config("smoke", dataset="synthetic")
    ds = dataset_for_config(cfg)
    assert calls == [cfg] and ds.name == "sysu" and ds.root == sysu_root.resolve()
