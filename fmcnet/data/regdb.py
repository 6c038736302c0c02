"""RegDB in its owners' layout (docs/protocols.md, docs/datasets.md).

```
root/Visible/<id>/<file>.bmp   root/Thermal/<id>/<file>.bmp
root/idx/{train,test}_{visible,thermal}_{t}.txt    lines "<relative path> <label>", t = 1..10
```

One model is trained and tested per trial `t`: training rows come from the train
files, evaluation uses every test row (no sampling, ``sampler="fixed"``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmcnet.data.base import DatasetError, EvalSplit, ImageSet, TrainSet, VIDataset, reindex
from fmcnet.data.splits import SplitList, check_disjoint, check_repeats
from fmcnet.data.sysu import check_root

VISIBLE_CAM, THERMAL_CAM = 1, 2
_LAYOUT = "expected Visible/, Thermal/ and idx/ (see docs/datasets.md)"
_LINE_FORMAT = "'<relative path> <integer label>'"


def read_list_file(path: Path, root: Path, title: str) -> tuple[list[str], np.ndarray]:
    """Read an owners' list file: one "<relative path> <label>" per line.

    Returns absolute paths and labels; every listed image must exist under `root`.
    """
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(
            f"{title} root {root} has no {path.relative_to(root)}; expected lines of "
            f"{_LINE_FORMAT} (see docs/datasets.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    paths, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        try:
            if len(parts) != 2:
                raise ValueError
            labels.append(int(parts[1]))
        except ValueError:
            raise DatasetError(
                f"{path}:{number}: expected {_LINE_FORMAT}, got {line.strip()!r}"
            ) from None
        paths.append(str(root / parts[0]))
    if not paths:
        raise DatasetError(f"{path} lists no images; expected lines of {_LINE_FORMAT}")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DatasetError(
            f"{path} lists {missing[0]}{more}, which does not exist; is this copy of {title} "
            "incomplete, or does the list belong to another copy?"
        )
    return paths, np.asarray(labels, dtype=np.int64)


def identity_folder(path: str, root: Path) -> str | None:
    """The identity folder of a listed image (``Visible/<id>/<file>`` -> ``<id>``), or None
    for an image that does not sit in one."""
    parts = Path(os.path.relpath(path, root)).parts
    return parts[-2] if len(parts) >= 3 else None


def check_row_lists(title: str, root: Path, train: dict[str, list[str]],
                    test: dict[str, list[str]]) -> None:
    """Training and test lists of rows (image paths, by list file): no row twice in a list,
    no test image in a training list, no identity folder in both a training and a test
    list. Identities are compared by folder, not by label: the owners' RegDB lists number
    the identities of each list from 0, so equal labels are not one person."""
    def rows(path: str, paths: list[str]) -> SplitList:
        name = "training list" if path in train else "test list"
        return SplitList(name, Path(path), tuple(os.path.relpath(p, root) for p in paths),
                         kind="row")

    def folders(path: str, paths: list[str]) -> SplitList:
        name = "training list" if path in train else "test list"
        found = (identity_folder(p, root) for p in paths)
        return SplitList(name, Path(path), tuple(f for f in found if f is not None),
                         kind="identity folder")

    for path, paths in {**train, **test}.items():
        check_repeats(title, rows(path, paths))
    for a, a_paths in train.items():
        for b, b_paths in test.items():
            check_disjoint(title, rows(a, a_paths), rows(b, b_paths), what="test image",
                           why="a test image in a training list is retrieved by the very "
                               "image the model trained on, which inflates every metric")
    for a, a_paths in train.items():
        for b, b_paths in test.items():
            check_disjoint(title, folders(a, a_paths), folders(b, b_paths),
                           why="an identity folder holds one person: listed for training and "
                               "for test, the model is tested on a person it trained on, "
                               "which inflates every metric")


def _image_set(paths: list[str], labels: np.ndarray, cam: int, modality: str) -> ImageSet:
    return ImageSet(paths, labels, np.full(len(paths), cam, np.int64), modality)


def load_regdb(root: str | os.PathLike, *, trial: int = 1) -> VIDataset:
    """Read RegDB split `trial` (1..10): training set plus both retrieval directions."""
    if not 1 <= int(trial) <= 10:
        raise DatasetError(f"RegDB trial must be in 1..10, got {trial}")
    root = check_root(root, "RegDB", _LAYOUT)
    idx = root / "idx"
    rows = {
        (part, mod): read_list_file(idx / f"{part}_{mod}_{trial}.txt", root, "RegDB")
        for part in ("train", "test")
        for mod in ("visible", "thermal")
    }
    files = {key: str(idx / f"{key[0]}_{key[1]}_{trial}.txt") for key in rows}
    check_row_lists(
        "RegDB", root,
        train={files[k]: rows[k][0] for k in rows if k[0] == "train"},
        test={files[k]: rows[k][0] for k in rows if k[0] == "test"},
    )
    train_v = _image_set(*rows["train", "visible"], VISIBLE_CAM, "visible")
    train_i = _image_set(*rows["train", "thermal"], THERMAL_CAM, "infrared")
    train_v.labels, train_i.labels, num_classes = reindex(train_v.pids, train_i.pids)
    test_v = _image_set(*rows["test", "visible"], VISIBLE_CAM, "visible")
    test_i = _image_set(*rows["test", "thermal"], THERMAL_CAM, "infrared")
    splits = {
        "visible_to_infrared": EvalSplit(
            "visible_to_infrared", "regdb", test_v, test_i, [np.arange(len(test_i))],
            sampler="fixed",
        ),
        "infrared_to_visible": EvalSplit(
            "infrared_to_visible", "regdb", test_i, test_v, [np.arange(len(test_v))],
            sampler="fixed",
        ),
    }
    return VIDataset(
        "regdb", root, TrainSet(train_v, train_i, num_classes), splits, sampler="fixed",
        trial=int(trial),
    )
