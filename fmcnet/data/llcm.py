"""LLCM in its owners' layout (PROTOCOLS.md, docs/datasets.md).

```
root/idx/train_vis.txt  root/idx/train_nir.txt     lines "<relative path> <label>"
root/idx/test_id.txt                               one line of comma-separated ids
root/test_vis/cam<c>/<pid %04d>/...  root/test_nir/cam<c>/<pid %04d>/...
```

Both directions: every test image of the query modality is a query; the gallery of
trial t holds 1 image per (identity, camera) of the other modality, drawn with
``np.random.default_rng(t)`` (see `fmcnet.data.sysu.within_group_rank`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from fmcnet.data.base import DatasetError, EvalSplit, ImageSet, TrainSet, VIDataset, reindex
from fmcnet.data.regdb import read_list_file
from fmcnet.data.sysu import check_root, group_ids, list_images, read_id_file, within_group_rank

_LAYOUT = "expected idx/, test_vis/ and test_nir/ (see docs/datasets.md)"
_CAM = re.compile(r"^cam(\d+)$")
_TEST_DIRS = {"visible": "test_vis", "infrared": "test_nir"}


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


def _test_set(root: Path, pids: np.ndarray, modality: str) -> ImageSet:
    """Every image of the test ids in one modality, ordered by (cam, pid, image name)."""
    base = root / _TEST_DIRS[modality]
    if not base.is_dir():
        raise DatasetError(f"LLCM root {root} has no {base.name}/; {_LAYOUT}")
    cams = sorted(
        int(m.group(1)) for e in os.scandir(base) if e.is_dir() and (m := _CAM.match(e.name))
    )
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


def load_llcm(root: str | os.PathLike, *, trials: int = 10) -> VIDataset:
    """Read LLCM: the training lists and both retrieval directions with seeded galleries."""
    root = check_root(root, "LLCM", _LAYOUT)
    id_file = root / "idx" / "test_id.txt"
    test_ids = read_id_file(id_file, "LLCM")
    train = _train_set(root)
    test = {m: _test_set(root, test_ids, m) for m in ("visible", "infrared")}
    for modality, folder in (("visible", "test_vis"), ("infrared", "test_nir")):
        # Each direction needs both sides: an empty one would leave nothing to retrieve.
        if not len(test[modality]):
            raise DatasetError(
                f"LLCM root {root} holds no {modality} test images: found none under "
                f"{folder}/cam<c>/<pid %04d>/ for the {len(test_ids)} ids in {id_file}; {_LAYOUT}"
            )
    present = set(test["visible"].pids.tolist()) | set(test["infrared"].pids.tolist())
    absent = [p for p in test_ids.tolist() if p not in present]
    if absent:
        shown = ", ".join(f"{p:04d}" for p in absent[:10]) + (" ..." if len(absent) > 10 else "")
        raise DatasetError(
            f"{id_file} lists id(s) {shown} with no image folder under test_vis/cam<c>/ or "
            "test_nir/cam<c>/; is this copy of LLCM incomplete?"
        )
    splits = {}
    for name, q, g in (
        ("visible_to_infrared", "visible", "infrared"),
        ("infrared_to_visible", "infrared", "visible"),
    ):
        gallery = test[g]
        splits[name] = EvalSplit(name, "llcm", test[q], gallery, _one_per_camera(gallery, trials))
    return VIDataset("llcm", root, train, splits, sampler="seeded")
