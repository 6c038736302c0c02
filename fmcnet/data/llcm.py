"""LLCM in its owners' layout (docs/protocols.md, docs/datasets.md).

```
root/idx/train_vis.txt  root/idx/train_nir.txt     lines "<relative path> <label>"
root/idx/test_id.txt                               one line of comma-separated ids
root/test_vis/cam<c>/<pid %04d>/...  root/test_nir/cam<c>/<pid %04d>/...
```

Two evaluation protocols (``llcm_protocol``), each named in every result:

* ``deen`` (default) -- as the LLCM authors' DEEN code evaluates it (ZYK100/LLCM,
  DEEN/data_manager.py and DEEN/test.py): visible cams 1-9, infrared cams 1, 2, 4-9 (no
  ``test_nir/cam3``); per trial t one image per (identity, camera) drawn with
  ``random.seed(t)`` + ``random.choice`` over sorted ids x cams; CMC by distinct
  identities. "infrared -> visible" (its ``test_mode=[1, 2]``) scores every infrared
  image against the sampled visible images. "visible -> infrared" (``test_mode=[2, 1]``)
  scores the *sampled infrared images as queries* against *every visible image* -- the
  reverse of what the name says (ZYK100/LLCM issue #35), reproduced because that is
  the number DEEN-lineage papers report for it.
* ``literal`` -- the directions as named: every image of the query modality is a query,
  the gallery holds 1 image per (identity, camera) of the other modality drawn with
  ``np.random.default_rng(t)`` (see `fmcnet.data.sysu.within_group_rank`); every
  ``cam<c>`` folder is used; image-level CMC.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from fmcnet.data.base import DatasetError, EvalSplit, ImageSet, TrainSet, VIDataset, reindex
from fmcnet.data.regdb import identity_folder, read_list_file
from fmcnet.data.splits import SplitList, check_disjoint, check_repeats
from fmcnet.data.sysu import (
    check_root,
    draw_rows,
    first_line_ids,
    group_ids,
    list_images,
    listing_cache,
    read_id_list,
    within_group_rank,
)

_LAYOUT = "expected idx/, test_vis/ and test_nir/ (see docs/datasets.md)"
_CAM = re.compile(r"^cam(\d+)$")
_TEST_DIRS = {"visible": "test_vis", "infrared": "test_nir"}
LLCM_PROTOCOLS = ("deen", "literal")
# DEEN's `process_query_llcm` / `process_gallery_llcm` camera lists, in its order
DEEN_CAMS = {"visible": (1, 2, 3, 4, 5, 6, 7, 8, 9), "infrared": (1, 2, 4, 5, 6, 7, 8, 9)}


def _camera_of(path: str) -> int:
    """The camera number from a `camN` path component (0 when the path has none)."""
    for part in Path(path).parts[::-1]:
        m = _CAM.match(part)
        if m:
            return int(m.group(1))
    return 0


def _train_set(root: Path) -> TrainSet:
    sets = []
    for name, modality in (("train_vis", "visible"), ("train_nir", "infrared")):
        paths, labels = read_list_file(root / "idx" / f"{name}.txt", root, "LLCM")
        cams = np.asarray([_camera_of(p) for p in paths], dtype=np.int64)
        sets.append(ImageSet(paths, labels, cams, modality))
    visible, infrared = sets
    visible.labels, infrared.labels, num_classes = reindex(visible.pids, infrared.pids)
    return TrainSet(visible, infrared, num_classes)


def _check_splits(root: Path, train: TrainSet, id_file: Path, test_ids: list[int],
                  test: dict[str, ImageSet]) -> None:
    """No row twice in a training list, no id twice in idx/test_id.txt, no test image in a
    training list, no training identity folder (``.../cam<c>/<pid %04d>/``, the folders
    the test images sit in too) among the test ids. Labels are not compared: a training
    list may number its identities from 0."""
    title = "LLCM"
    test_list = SplitList("test list", id_file, tuple(test_ids))
    check_repeats(title, test_list)
    test_images = SplitList(
        f"the test images of {id_file.name}'s ids", root, tuple(os.path.relpath(p, root)
                                   for s in test.values() for p in s.paths), kind="row")
    for name, images in (("train_vis", train.visible), ("train_nir", train.infrared)):
        path = root / "idx" / f"{name}.txt"
        rows = SplitList("training list", path,
                         tuple(os.path.relpath(p, root) for p in images.paths), kind="row")
        check_repeats(title, rows)
        check_disjoint(title, rows, test_images, what="test image",
                       why="a test image in a training list is retrieved by the very image "
                           "the model trained on, which inflates every metric")
        folders = (identity_folder(p, root) for p in images.paths)
        check_disjoint(title, SplitList("training list", path, tuple(
            int(f) for f in folders if f is not None and f.isdigit())), test_list,
            why="the identity folders of training images and test_id.txt share one "
                "numbering: a training identity in the test list is tested on a person it "
                "trained on, which inflates every metric")


def camera_folders(root: Path, modality: str) -> list[int]:
    """The camera numbers of the ``cam<c>`` folders under test_vis/ or test_nir/."""
    base = root / _TEST_DIRS[modality]
    if not base.is_dir():
        raise DatasetError(f"LLCM root {root} has no {base.name}/; {_LAYOUT}")
    return sorted(
        int(m.group(1)) for e in os.scandir(base) if e.is_dir() and (m := _CAM.match(e.name))
    )


def _test_set(root: Path, pids: np.ndarray, modality: str, cams: list[int]) -> ImageSet:
    """Every image of the test ids in `cams` of one modality, ordered by (cam, pid, name)."""
    base = root / _TEST_DIRS[modality]
    paths, p_out, c_out = [], [], []
    for cam in cams:
        for pid in pids.tolist():
            folder = base / f"cam{cam}" / f"{pid:04d}"
            names = list_images(folder)
            paths.extend(str(folder / n) for n in names)
            p_out.extend([pid] * len(names))
            c_out.extend([cam] * len(names))
    return ImageSet(paths, np.asarray(p_out, np.int64), np.asarray(c_out, np.int64), modality)


def _one_per_camera(gallery: ImageSet, trials: int) -> list[np.ndarray]:
    groups = group_ids(gallery.pids, gallery.cams)
    return [
        np.flatnonzero(within_group_rank(groups, np.random.default_rng(t)) < 1)
        for t in range(trials)
    ]


def _cameras(root: Path, protocol: str, notes: list[str]) -> dict[str, list[int]]:
    """Cameras each modality uses; under `deen`, a warning per folder DEEN does not read."""
    present = {m: camera_folders(root, m) for m in _TEST_DIRS}
    if protocol == "literal":
        return present
    for modality, cams in present.items():
        unused = [c for c in cams if c not in DEEN_CAMS[modality]]
        for cam in unused:
            message = (
                f"LLCM: {root / _TEST_DIRS[modality] / f'cam{cam}'} is left out: DEEN's "
                f"evaluation reads {_TEST_DIRS[modality]} cams "
                f"{', '.join(map(str, DEEN_CAMS[modality]))} only (LLCM copies differ between "
                "dataset versions); use llcm_protocol=literal to evaluate every camera folder"
            )
            notes.append(message)
            warnings.warn(message, stacklevel=3)
    return {m: list(DEEN_CAMS[m]) for m in _TEST_DIRS}


def _deen_draws(
    root: Path, pool: ImageSet, cams: list[int], trials: int, notes: list[str]
) -> list[np.ndarray]:
    """Rows of `pool` DEEN's `process_gallery_llcm` draws for trials 0..trials-1: one
    `random.Random(t)` stream per call, ids of the first line of idx/test_id.txt as
    ``%04d`` sorted (outer loop), DEEN's cameras in its order (inner loop)."""
    ids = sorted(f"{i:04d}" for i in first_line_ids(root / "idx" / "test_id.txt"))
    base = root / _TEST_DIRS[pool.modality]
    folders = [base / f"cam{c}" / pid for pid in ids for c in cams]
    return draw_rows(pool, folders, trials, listing_cache(), "LLCM deen sampler", notes)


def load_llcm(root: str | os.PathLike, *, trials: int = 10, protocol: str = "deen") -> VIDataset:
    """Read LLCM: the training lists and both retrieval directions under `protocol`.

    Splits ``visible_to_infrared`` and ``infrared_to_visible`` (see the module docstring
    for what each holds under ``deen`` and ``literal``); `VIDataset.llcm_protocol` and each
    split's `sampler` ("deen" | "seeded") name the rules used.
    """
    if protocol not in LLCM_PROTOCOLS:
        raise DatasetError(f"llcm_protocol must be one of {LLCM_PROTOCOLS}, got {protocol!r}")
    root = check_root(root, "LLCM", _LAYOUT)
    id_file = root / "idx" / "test_id.txt"
    listed_ids = read_id_list(id_file, "LLCM")
    test_ids = np.unique(np.asarray(listed_ids, dtype=np.int64))
    train = _train_set(root)
    notes: list[str] = []
    cams = _cameras(root, protocol, notes)
    test = {m: _test_set(root, test_ids, m, cams[m]) for m in ("visible", "infrared")}
    _check_splits(root, train, id_file, listed_ids, test)
    for modality, folder in (("visible", "test_vis"), ("infrared", "test_nir")):
        # Each direction needs both sides: an empty one would leave nothing to retrieve.
        if not len(test[modality]):
            raise DatasetError(
                f"LLCM root {root} holds no {modality} test images: found none under "
                f"{folder}/cam<c>/<pid %04d>/ (cams {', '.join(map(str, cams[modality]))}) for "
                f"the {len(test_ids)} ids in {id_file}; {_LAYOUT}"
            )
    present = set(test["visible"].pids.tolist()) | set(test["infrared"].pids.tolist())
    absent = [p for p in test_ids.tolist() if p not in present]
    if absent:
        shown = ", ".join(f"{p:04d}" for p in absent[:10]) + (" ..." if len(absent) > 10 else "")
        raise DatasetError(
            f"{id_file} lists id(s) {shown} with no image folder under test_vis/cam<c>/ or "
            "test_nir/cam<c>/; is this copy of LLCM incomplete?"
        )
    vis, nir = test["visible"], test["infrared"]
    if protocol == "deen":
        # DEEN's test_mode=[1, 2] ("IR to VIS"): all infrared queries, sampled visible
        # gallery; test_mode=[2, 1] ("VIS to IR"): the sampled infrared images are the
        # queries (rows of its gallery-by-query matrix) and every visible image the gallery.
        i2v = EvalSplit("infrared_to_visible", "llcm", nir, vis,
                        _deen_draws(root, vis, cams["visible"], trials, notes), sampler="deen")
        v2i = EvalSplit("visible_to_infrared", "llcm", nir, vis,
                        _deen_draws(root, nir, cams["infrared"], trials, notes), sampler="deen",
                        sampled="query")
    else:
        v2i = EvalSplit("visible_to_infrared", "llcm_literal", vis, nir,
                        _one_per_camera(nir, trials), sampler="seeded")
        i2v = EvalSplit("infrared_to_visible", "llcm_literal", nir, vis,
                        _one_per_camera(vis, trials), sampler="seeded")
    splits = {"visible_to_infrared": v2i, "infrared_to_visible": i2v}
    return VIDataset("llcm", root, train, splits, sampler=v2i.sampler, llcm_protocol=protocol,
                     notes=notes)
