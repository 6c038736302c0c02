"""SYSU-MM01 in its owners' layout (docs/protocols.md, docs/datasets.md).

```
root/cam1..cam6/<pid %04d>/<%04d>.jpg        visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
root/exp/{train,val,test}_id.txt             one line of comma-separated ids
root/exp/rand_perm_cam.mat                   (optional) the owners' gallery permutations
```

Training uses train ∪ val ids (or train only with ``validate=True``); queries are every
test-id image of cam3 and cam6; the four gallery settings draw 1 (single-shot) or 10
(multi-shot) images per (identity, camera) from cams 1, 2, 4, 5 (all-search) or 1, 2
(indoor-search). Three gallery samplers, each named in every result:

* ``owners`` -- the owners' ``exp/rand_perm_cam.mat`` (the official MATLAB protocol);
* ``agw``    -- the draw of the AGW baseline's ``process_gallery_sysu`` (single-shot),
  which AGW-lineage papers (AGW, CAJ, DEEN, MMN, DNS, ...) report;
* ``seeded`` -- this repo's own seeded draw (multi-shot without the ``.mat``).
"""

from __future__ import annotations

import os
import random
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fmcnet.data.base import (
    DatasetError,
    EvalSplit,
    ImageSet,
    TrainSet,
    VIDataset,
    describe_samplers,
    reindex,
)
from fmcnet.data.splits import SplitList, check_disjoint, check_repeats

VISIBLE_CAMS = (1, 2, 4, 5)
INFRARED_CAMS = (3, 6)
INDOOR_CAMS = (1, 2)
SHOTS = {"single": 1, "multi": 10}
SPLITS = ("all/single", "all/multi", "indoor/single", "indoor/multi")
GALLERY_SAMPLERS = ("auto", "owners", "agw", "seeded")
# AGW's `process_gallery_sysu` camera lists, in its order (the inner loop of the draw)
AGW_CAMS = {"all": (1, 2, 4, 5), "indoor": (1, 2)}
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
_LAYOUT = "expected cam1..cam6/ and exp/ (see docs/datasets.md)"
_LIST_NAMES = {"train": "training", "val": "validation", "test": "test"}


# ---- helpers shared with the LLCM loader -------------------------------------------------


def check_root(root: str | os.PathLike, title: str, expected: str) -> Path:
    """Resolve `root` or raise a DatasetError saying what the layout should be."""
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise DatasetError(f"{title} root {path} {what}; {expected}")
    return path.resolve()


def read_id_list(path: Path, title: str) -> list[int]:
    """The ids of a file of comma-separated integer ids, in file order, repeats kept
    (whitespace and newlines tolerated); `fmcnet.data.splits` checks the repeats."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DatasetError(
            f"{title} root {path.parent.parent} has no {path.parent.name}/{path.name}; expected one "
            "line of comma-separated integer ids (see docs/datasets.md)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    tokens = [t for t in re.split(r"[,\s]+", text) if t]
    ids = []
    for token in tokens:
        try:
            ids.append(int(token))
        except ValueError:
            raise DatasetError(
                f"{path} holds {token!r}, which is not an integer id; expected one line of "
                "comma-separated integer ids such as 1,2,5"
            ) from None
    if not ids:
        raise DatasetError(f"{path} lists no ids; expected one line of comma-separated integer ids")
    return ids


def read_id_file(path: Path, title: str) -> np.ndarray:
    """The distinct ids of `read_id_list`, sorted."""
    return np.unique(np.asarray(read_id_list(path, title), dtype=np.int64))


def list_images(folder: Path) -> list[str]:
    """Image file names of one identity folder, sorted by name ([] when it does not exist)."""
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with entries:
        names = [
            e.name for e in entries
            if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(names)


def within_group_rank(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation position (0, 1, ...) of each item inside its group.

    One uniform key per item, drawn in the order given; items of a group are ranked by
    key. Taking ``rank < shots`` therefore draws `shots` images per group without
    replacement, and the single-shot image is always the first multi-shot one.
    """
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = rng.random(n)
    order = np.lexsort((key, groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    return rank


def group_ids(pids: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """One integer per (identity, camera) pair."""
    return np.unique(np.stack([pids, cams], axis=1), axis=0, return_inverse=True)[1].reshape(-1)


def listing_cache() -> Callable[[Path], list[str] | None]:
    """`sorted(os.listdir(folder))` -- every entry, no extension filter, as the AGW / DEEN
    code lists a folder -- or None when `folder` is not a directory; each folder read once."""
    seen: dict[Path, list[str] | None] = {}

    def listing(folder: Path) -> list[str] | None:
        if folder not in seen:
            seen[folder] = sorted(os.listdir(folder)) if folder.is_dir() else None
        return seen[folder]

    return listing


def first_line_ids(path: Path) -> list[int]:
    """The ids of the first line of an id file, in file order, repeats kept.

    AGW and DEEN read ``file.read().splitlines()[0].split(',')``; empty tokens (a
    trailing comma), which would stop their ``int()``, are skipped.
    """
    text = path.read_text()
    line = text.splitlines()[0] if text.strip() else ""
    ids = []
    for tok in line.split(","):
        try:
            ids.append(int(tok)) if tok.strip() else None
        except ValueError:
            raise DatasetError(
                f"the first line of {path} holds {tok.strip()!r}, which the AGW and DEEN "
                "gallery draws (they split the first line at commas) cannot read as an id; "
                "separate the ids with commas"
            ) from None
    return ids


def python_random_draw(
    folders: Sequence[Path], trial: int, listing: Callable[[Path], list[str] | None]
) -> list[tuple[Path, str | None]]:
    """One ``random.choice`` per existing folder, in the given order, seeded by `trial`.

    Re-states the gallery draw of the AGW baseline (``process_gallery_sysu`` in
    mangye16/Cross-Modal-Re-ID-baseline, PAMI23_Supervised/data_manager.py) and of DEEN
    (``process_gallery_llcm`` in ZYK100/LLCM, DEEN/data_manager.py): ``random.seed(trial)``,
    then for each folder that ``os.path.isdir``, ``random.choice`` of its sorted full
    paths (sorting ``folder + '/' + name`` orders like the names). ``random.Random(trial)``
    yields the stream ``random.seed(trial)`` gives the module functions; integer seeding
    and ``choice`` have drawn the same numbers since Python 3.2.

    Returns (folder, chosen name) per existing folder; an empty folder, on which their
    ``random.choice`` raises IndexError, gives (folder, None) and consumes no draw.
    """
    rng = random.Random(trial)
    out: list[tuple[Path, str | None]] = []
    for folder in folders:
        names = listing(folder)
        if names is None:
            continue
        out.append((folder, rng.choice(names) if names else None))
    return out


def draw_rows(
    pool: ImageSet,
    folders: Sequence[Path],
    trials: int,
    listing: Callable[[Path], list[str] | None],
    title: str,
    notes: list[str],
) -> list[np.ndarray]:
    """Rows of `pool` picked by `python_random_draw` for trials 0..trials-1 (ascending).

    A pick that is not one of the pool's images (a stray non-image file in a folder,
    which the reference code would fail to open) or an empty folder is left out with a
    warning naming it; the draw stream is unchanged by that, so later picks still match.
    """
    row_of = {p: i for i, p in enumerate(pool.paths)}
    out = []
    for t in range(trials):
        rows = []
        for folder, name in python_random_draw(folders, t, listing):
            if name is None:
                _note(notes, f"{title}: {folder} is empty; the reference code would stop on it "
                             "(random.choice of an empty list), here it adds no gallery image")
                continue
            row = row_of.get(str(folder / name))
            if row is None:
                _note(notes, f"{title}: the draw picks {folder / name}, which is not an image "
                             "of this copy (the reference code would fail to open it); left out "
                             "of the trials that pick it -- remove stray files from the image "
                             "folders")
                continue
            rows.append(row)
        out.append(np.sort(np.asarray(rows, dtype=np.int64)))
    return out


def _note(notes: list[str], message: str) -> None:
    """Warn once per message and keep it for `dataset-info`."""
    if message not in notes:
        notes.append(message)
        warnings.warn(message, stacklevel=3)


# ---- SYSU-MM01 --------------------------------------------------------------------------


def _scan(root: Path, pids: np.ndarray) -> dict[tuple[int, int], list[str]]:
    """{(cam, pid): sorted image names} for the listed ids (pairs without images left out)."""
    missing = [f"cam{c}" for c in range(1, 7) if not (root / f"cam{c}").is_dir()]
    if missing:
        raise DatasetError(
            f"SYSU-MM01 root {root} has no {', '.join(m + '/' for m in missing)}; {_LAYOUT}"
        )
    found = {}
    for cam in range(1, 7):
        for pid in pids.tolist():
            names = list_images(root / f"cam{cam}" / f"{pid:04d}")
            if names:
                found[(cam, pid)] = names
    return found


def _image_set(
    root: Path, found: dict, pids: np.ndarray, cams: tuple[int, ...], modality: str
) -> ImageSet:
    """All images of `pids` in `cams`, ordered by (cam, pid, image name)."""
    paths, p_out, c_out = [], [], []
    for cam in sorted(cams):
        for pid in pids.tolist():
            names = found.get((cam, pid), ())
            folder = root / f"cam{cam}" / f"{pid:04d}"
            paths.extend(str(folder / n) for n in names)
            p_out.extend([pid] * len(names))
            c_out.extend([cam] * len(names))
    return ImageSet(paths, np.asarray(p_out, np.int64), np.asarray(c_out, np.int64), modality)


def _train_set(root: Path, found: dict, pids: np.ndarray) -> TrainSet:
    visible = _image_set(root, found, pids, VISIBLE_CAMS, "visible")
    infrared = _image_set(root, found, pids, INFRARED_CAMS, "infrared")
    visible.labels, infrared.labels, num_classes = reindex(visible.pids, infrared.pids)
    return TrainSet(visible, infrared, num_classes)


def _owners_ranks(
    mat_path: Path, pool: ImageSet, found: dict, trials: int
) -> list[np.ndarray]:
    """Permutation position of each pool image per trial, from the owners' rand_perm_cam.mat.

    `rand_perm_cam[cam-1][0]` is a cell with one entry per pid (index pid-1); entry
    `[trial]` lists 1-based numbers into the sorted images of that (pid, cam) folder.
    Images the permutation does not list get an infinite rank (never drawn); an empty
    cell contributes no gallery image, as in the owners' MATLAB evaluation.
    """
    import scipy.io

    try:
        perm = scipy.io.loadmat(str(mat_path))["rand_perm_cam"]
    except Exception as exc:  # scipy raises many types for a broken file
        raise DatasetError(
            f"{mat_path} is not a readable MATLAB file with a 'rand_perm_cam' cell array ({exc}); "
            "replace it with the owners' copy or delete it to use seeded sampling"
        ) from None
    ranks = [np.full(len(pool), np.iinfo(np.int64).max, dtype=np.int64) for _ in range(trials)]
    # `rand_perm_cam[cam-1][0]` with loadmat's default (6, 1) nesting; flattening also
    # accepts a (1, 6) cell and either orientation of the per-pid cell.
    per_cam = np.asarray(perm, dtype=object).reshape(-1)
    pairs = np.stack([pool.cams, pool.pids], axis=1)
    # The pool is sorted by (cam, pid, image): each pair's rows are contiguous.
    _, starts = np.unique(pairs, axis=0, return_index=True)
    for start in starts.tolist():
        cam, pid = int(pool.cams[start]), int(pool.pids[start])
        n = len(found[(cam, pid)])
        idx = np.arange(start, start + n)
        try:
            cells = np.asarray(per_cam[cam - 1], dtype=object).reshape(-1)
            rows = np.atleast_2d(np.asarray(cells[pid - 1]))
        except (IndexError, TypeError, ValueError):
            raise DatasetError(
                f"{mat_path} has no permutation entry for cam{cam}/{pid:04d}; expected "
                "rand_perm_cam{cam}{pid} (the owners' file covers every id), or delete it to use "
                "seeded sampling"
            ) from None
        if rows.size == 0:
            continue  # an empty cell: the owners' MATLAB evaluation skips this pair too
        if rows.shape[0] < trials:
            raise DatasetError(
                f"{mat_path} has {rows.shape[0]} permutations for cam{cam}/{pid:04d} ({n} images), "
                f"{trials} trials were asked for; use the owners' file or delete it to use "
                "seeded sampling"
            )
        for t in range(trials):
            numbers = rows[t].astype(np.int64)
            bad = numbers[(numbers < 1) | (numbers > n)]
            if bad.size:
                raise DatasetError(
                    f"{mat_path} refers to image {int(bad[0])} of cam{cam}/{pid:04d}, which "
                    f"holds {n} images; is this copy of SYSU-MM01 incomplete?"
                )
            ranks[t][idx[numbers - 1]] = np.arange(len(numbers))
    return ranks


def _agw_ids(root: Path, test_ids: np.ndarray, notes: list[str]) -> list[str]:
    """Test ids as AGW's draw loops over them: first line of exp/test_id.txt, "%04d", sorted."""
    path = root / "exp" / "test_id.txt"
    ids = first_line_ids(path)
    if sorted(set(ids)) != test_ids.tolist():
        _note(notes, f"SYSU-MM01: the first line of {path} lists {len(set(ids))} ids, the whole "
                     f"file {len(test_ids)}; the agw sampler draws for the first line only, as "
                     "AGW's code reads it")
    return sorted(f"{i:04d}" for i in ids)  # AGW: "%04d" % x, sorted as strings


# The held-out validation ids as a setting of their own (with `validate`): all-search
# single-shot among the val ids, drawn by the `seeded` sampler (the `agw` draw reads
# exp/test_id.txt only). Choices are made on it; the test settings are for reporting.
VAL_SETTING = "val/all/single"


def _val_split(root: Path, found: dict, val_ids: np.ndarray, trials: int) -> EvalSplit:
    query = _image_set(root, found, val_ids, INFRARED_CAMS, "infrared")
    pool = _image_set(root, found, val_ids, VISIBLE_CAMS, "visible")
    groups = group_ids(pool.pids, pool.cams)
    picks = [np.flatnonzero(within_group_rank(groups, np.random.default_rng(t)) < 1)
             for t in range(trials)]
    return EvalSplit(VAL_SETTING, "sysu", query, pool, picks, sampler="seeded")


def _check_splits(lists: dict[str, SplitList]) -> None:
    """No id twice in a list, none in two lists (whether `validate` is on or not)."""
    for split in lists.values():
        check_repeats("SYSU-MM01", split)
    for a, b, why in (
        ("train", "test", "a test identity that trains is tested on what the model trained "
                          "on, which inflates every metric"),
        ("train", "val", "a validation identity that trains selects the checkpoint on what "
                         "the model trained on (validate=true reports a validation mAP near "
                         "100 %)"),
        ("val", "test", "the val ids train unless validate=true (a test identity then trains), "
                        "and with it the checkpoint is selected on a test identity; either "
                        "inflates every metric"),
    ):
        check_disjoint("SYSU-MM01", lists[a], lists[b], why=why)


def load_sysu(
    root: str | os.PathLike,
    *,
    trials: int = 10,
    validate: bool = False,
    gallery_sampler: str = "auto",
) -> VIDataset:
    """Read SYSU-MM01 (or the synthetic set, which shares its layout).

    `gallery_sampler` chooses how trial t (0-based) draws each gallery:

    * ``"owners"``: row t of the owners' ``exp/rand_perm_cam.mat`` (the first 1 or 10
      numbers), single- and multi-shot; indoor-search is the same draw restricted to
      cams 1, 2 (as the owners' MATLAB code). Needs the file.
    * ``"agw"``: single-shot as AGW's ``process_gallery_sysu`` draws it (see
      `python_random_draw`): one ``random.Random(t)`` stream per (mode, trial) -- indoor
      is drawn on its own, not restricted from all-search -- ids from the first line of
      exp/test_id.txt as ``%04d``, sorted (outer loop), cams [1, 2, 4, 5] or [1, 2]
      (inner loop), existing folders only, one ``choice`` per folder over its sorted
      entries. AGW has no multi-shot: multi-shot uses ``owners`` when the ``.mat`` file
      is present, else ``seeded``.
    * ``"seeded"``: ``np.random.default_rng(t)`` draws one uniform key per all-search
      pool image (ordered by cam, pid, image) and the images with the smallest keys of
      each (identity, camera) are taken; single-shot is the first multi-shot image and
      indoor-search the same draws restricted to cams 1, 2.
    * ``"auto"`` (default): ``owners`` when ``exp/rand_perm_cam.mat`` is present, else
      ``agw`` for single-shot (and ``seeded`` for multi-shot).

    Each split's `sampler` names its draw; `VIDataset.sampler` sums them up. Gallery rows
    are in pool order (camera, identity, image) for every sampler.
    """
    if gallery_sampler not in GALLERY_SAMPLERS:
        raise DatasetError(
            f"gallery_sampler must be one of {GALLERY_SAMPLERS}, got {gallery_sampler!r}"
        )
    root = check_root(root, "SYSU-MM01", _LAYOUT)
    exp = root / "exp"
    id_files = {s: exp / f"{s}_id.txt" for s in ("train", "val", "test")}
    listed = {s: SplitList(f"{_LIST_NAMES[s]} list", p, tuple(read_id_list(p, "SYSU-MM01")))
              for s, p in id_files.items()}
    _check_splits(listed)
    ids = {s: np.unique(np.asarray(v.entries, dtype=np.int64)) for s, v in listed.items()}
    listed = np.unique(np.concatenate(list(ids.values())))
    found = _scan(root, listed)
    if not found:
        raise DatasetError(
            f"SYSU-MM01 root {root} holds no images: found none under cam1..cam6/<pid %04d>/ for "
            f"the {len(listed)} ids listed in exp/*_id.txt; {_LAYOUT}"
        )
    present = {pid for (_, pid) in found}
    for split, pids in ids.items():
        absent = [p for p in pids.tolist() if p not in present]
        if absent:
            shown = ", ".join(f"{p:04d}" for p in absent[:10]) + (" ..." if len(absent) > 10 else "")
            raise DatasetError(
                f"{id_files[split]} lists id(s) {shown} with no image folder in any camera "
                f"(expected {root}/camN/<pid %04d>/ in at least one of cam1..cam6); "
                "is this copy of SYSU-MM01 incomplete?"
            )

    train_ids = ids["train"] if validate else np.union1d(ids["train"], ids["val"])
    train = _train_set(root, found, train_ids)
    val = _train_set(root, found, ids["val"]) if validate else None

    query = _image_set(root, found, ids["test"], INFRARED_CAMS, "infrared")
    pool_all = _image_set(root, found, ids["test"], VISIBLE_CAMS, "visible")
    indoor_rows = np.flatnonzero(np.isin(pool_all.cams, INDOOR_CAMS))
    pool_indoor = pool_all.subset(indoor_rows)

    mat_path = exp / "rand_perm_cam.mat"
    has_mat = mat_path.is_file()
    if gallery_sampler == "owners" and not has_mat:
        raise DatasetError(
            f"gallery_sampler=owners needs the owners' permutations at {mat_path}, which does "
            "not exist; copy evaluation/data_split/rand_perm_cam.mat from the owners' "
            "evaluation code into exp/, or choose gallery_sampler=agw (what AGW-lineage papers "
            "report) or seeded"
        )
    single = {"auto": "owners" if has_mat else "agw"}.get(gallery_sampler, gallery_sampler)
    multi = "owners" if has_mat and gallery_sampler != "seeded" else "seeded"

    ranks = {}
    if "owners" in (single, multi):
        ranks["owners"] = _owners_ranks(mat_path, pool_all, found, trials)
    if "seeded" in (single, multi):
        groups = group_ids(pool_all.pids, pool_all.cams)
        ranks["seeded"] = [within_group_rank(groups, np.random.default_rng(t)) for t in range(trials)]
    notes: list[str] = []
    if single == "agw":
        agw_ids = _agw_ids(root, ids["test"], notes)
        listing = listing_cache()

    splits = {}
    for mode, pool, rows in (("all", pool_all, None), ("indoor", pool_indoor, indoor_rows)):
        for shot, k in SHOTS.items():
            sampler = single if shot == "single" else multi
            if sampler == "agw":
                folders = [root / f"cam{c}" / pid for pid in agw_ids for c in AGW_CAMS[mode]]
                picks = draw_rows(pool, folders, trials, listing, "SYSU-MM01 agw sampler", notes)
            else:
                picks = [np.flatnonzero((r if rows is None else r[rows]) < k) for r in ranks[sampler]]
            name = f"{mode}/{shot}"
            splits[name] = EvalSplit(name, "sysu", query, pool, picks, sampler=sampler)
    if validate:
        splits[VAL_SETTING] = _val_split(root, found, ids["val"], trials)
    return VIDataset("sysu", root, train, splits, sampler=describe_samplers(splits), val=val,
                     notes=notes)
