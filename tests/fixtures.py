"""Tiny dataset trees in each owner's layout, for tests (import: ``from fixtures import ...``).

Every builder writes real image files (16x8 by default) whose pixels encode
(pid, camera, image number), so tests can tell images apart after caching:
``fixture_pixel(pid, cam, k)`` is the grey level of image k (1-based) of that pair
(visible images add a small per-channel offset; infrared ones are 3 equal channels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_IMAGES = 3
SYSU_INFRARED_CAMS = (3, 6)

ImagesPerCam = int | Mapping[tuple[int, int], int] | Callable[[int, int], int]


def fixture_pixel(pid: int, cam: int, k: int) -> int:
    """The base grey level written for image k (1-based) of (pid, cam)."""
    return (pid * 53 + cam * 29 + k * 7) % 200 + 20


def _count(images_per_cam: ImagesPerCam, pid: int, cam: int) -> int:
    if callable(images_per_cam):
        return int(images_per_cam(pid, cam))
    if isinstance(images_per_cam, Mapping):
        return int(images_per_cam.get((pid, cam), DEFAULT_IMAGES))
    return int(images_per_cam)


def write_image(path: Path, value: int, size: tuple[int, int], *, infrared: bool) -> None:
    """A flat image of grey `value` (visible: slightly tinted), size = (H, W)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = (0, 0, 0) if infrared else (0, 10, 20)
    pixels = np.empty((*size, 3), dtype=np.uint8)
    pixels[:] = [min(value + o, 255) for o in offsets]
    Image.fromarray(pixels).save(path, quality=95)


def _missing_pairs(missing: Iterable[int | tuple[int, int]], cams: Iterable[int]) -> set:
    out = set()
    for m in missing:
        out |= {(m, c) for c in cams} if isinstance(m, int) else {tuple(m)}
    return out


def make_sysu_tree(
    root: str | Path,
    *,
    train_ids: Iterable[int] = (1, 2, 3),
    val_ids: Iterable[int] = (4,),
    test_ids: Iterable[int] = (5, 6, 7),
    images_per_cam: ImagesPerCam = DEFAULT_IMAGES,
    missing: Iterable[int | tuple[int, int]] = (),
    size: tuple[int, int] = (16, 8),
    write_ids: bool = True,
) -> Path:
    """A SYSU-MM01 tree: cam1..cam6/<pid %04d>/<%04d>.jpg plus exp/{train,val,test}_id.txt.

    `images_per_cam` is an int, a {(pid, cam): n} mapping (others get DEFAULT_IMAGES) or
    a function (pid, cam) -> n. `missing` holds (pid, cam) pairs without a folder, or a
    bare pid for an id with no folder in any camera (still listed in exp/).
    """
    root = Path(root)
    ids = {"train": list(train_ids), "val": list(val_ids), "test": list(test_ids)}
    skip = _missing_pairs(missing, range(1, 7))
    for cam in range(1, 7):
        (root / f"cam{cam}").mkdir(parents=True, exist_ok=True)
        for pid in sorted(set(sum(ids.values(), []))):
            if (pid, cam) in skip:
                continue
            for k in range(1, _count(images_per_cam, pid, cam) + 1):
                write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{k:04d}.jpg",
                            fixture_pixel(pid, cam, k), size, infrared=cam in SYSU_INFRARED_CAMS)
    if write_ids:
        (root / "exp").mkdir(exist_ok=True)
        for split, values in ids.items():
            (root / "exp" / f"{split}_id.txt").write_text(",".join(str(v) for v in values))
    return root


def write_rand_perm_cam(
    root: str | Path,
    *,
    trials: int = 10,
    seed: int = 0,
    max_pid: int | None = None,
    orientation: str = "row",
) -> dict[tuple[int, int], np.ndarray]:
    """Write exp/rand_perm_cam.mat in the owners' nesting; return {(cam, pid): perms}.

    MATLAB: a 6x1 cell; cell{cam} is a cell with one entry per pid (`orientation` "row":
    1 x max_pid, "column": max_pid x 1); entry{pid} is a trials x n double matrix of
    1-based image numbers (a random permutation of 1..n per row; an empty matrix where
    the folder is absent). `scipy.io.loadmat` then gives
    ``mat["rand_perm_cam"][cam-1][0]`` -> that per-pid cell.
    """
    import scipy.io

    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = {}
    for cam in range(1, 7):
        for folder in sorted((root / f"cam{cam}").iterdir()):
            if folder.is_dir() and folder.name.isdigit():
                counts[(cam, int(folder.name))] = len(list(folder.glob("*.jpg")))
    max_pid = max_pid or max(pid for _, pid in counts)
    shape = (1, max_pid) if orientation == "row" else (max_pid, 1)
    outer = np.empty((6, 1), dtype=object)
    perms = {}
    for cam in range(1, 7):
        inner = np.empty(shape, dtype=object)
        for pid in range(1, max_pid + 1):
            n = counts.get((cam, pid), 0)
            if n:
                perms[(cam, pid)] = np.stack([rng.permutation(n) + 1 for _ in range(trials)])
                value = perms[(cam, pid)].astype(np.float64)
            else:
                value = np.zeros((0, 0))
            inner.flat[pid - 1] = value
        outer[cam - 1, 0] = inner
    (root / "exp").mkdir(exist_ok=True)
    scipy.io.savemat(str(root / "exp" / "rand_perm_cam.mat"), {"rand_perm_cam": outer})
    return perms


def make_regdb_tree(
    root: str | Path,
    *,
    num_ids: int = 8,
    images_per_id: int = 2,
    trials: Iterable[int] = (1,),
    size: tuple[int, int] = (16, 8),
    labels_from_zero: bool = False,
) -> Path:
    """A RegDB tree: Visible/<id>/, Thermal/<id>/ and idx/{train,test}_{visible,thermal}_{t}.txt.

    Ids are 1..num_ids; trial t puts a seeded (rng t) half of them in training and the
    rest in test; list labels are the ids, or with `labels_from_zero` as in the owners'
    lists: each list numbers its identities 0, 1, ... in order, so a training list and a
    test list share labels but no person.
    """
    root = Path(root)
    for pid in range(1, num_ids + 1):
        for k in range(1, images_per_id + 1):
            write_image(root / "Visible" / str(pid) / f"v_{pid:04d}_{k}.bmp",
                        fixture_pixel(pid, 1, k), size, infrared=False)
            write_image(root / "Thermal" / str(pid) / f"t_{pid:04d}_{k}.bmp",
                        fixture_pixel(pid, 2, k), size, infrared=True)
    (root / "idx").mkdir(exist_ok=True)
    for t in trials:
        order = np.random.default_rng(t).permutation(np.arange(1, num_ids + 1))
        parts = {"train": sorted(order[: num_ids // 2]), "test": sorted(order[num_ids // 2:])}
        for part, pids in parts.items():
            for mod, folder, letter in (("visible", "Visible", "v"), ("thermal", "Thermal", "t")):
                label = {p: i if labels_from_zero else p for i, p in enumerate(pids)}
                lines = [f"{folder}/{p}/{letter}_{p:04d}_{k}.bmp {label[p]}"
                         for p in pids for k in range(1, images_per_id + 1)]
                (root / "idx" / f"{part}_{mod}_{t}.txt").write_text("\n".join(lines) + "\n")
    return root


def make_llcm_tree(
    root: str | Path,
    *,
    train_ids: Iterable[int] = (1, 2, 3),
    test_ids: Iterable[int] = (4, 5, 6),
    vis_cams: Iterable[int] = (1, 2),
    nir_cams: Iterable[int] = (1, 2, 4),  # DEEN reads no test_nir/cam3
    images_per_cam: ImagesPerCam = 2,
    missing: Iterable[int | tuple[int, int]] = (),
    size: tuple[int, int] = (16, 8),
) -> Path:
    """An LLCM tree: idx/train_{vis,nir}.txt, idx/test_id.txt, test_{vis,nir}/cam<c>/<pid>/.

    Training images live in train_vis/ and train_nir/ (same cam<c>/<pid> nesting) and are
    listed with label = pid. `images_per_cam` and `missing` as in `make_sysu_tree`
    (applied to both modalities).
    """
    root = Path(root)
    vis_cams, nir_cams = list(vis_cams), list(nir_cams)
    train_ids, test_ids = list(train_ids), list(test_ids)
    skip = _missing_pairs(missing, set(vis_cams) | set(nir_cams))
    (root / "idx").mkdir(parents=True, exist_ok=True)
    lists = {"train_vis": [], "train_nir": []}
    for part, ids in (("train", train_ids), ("test", test_ids)):
        for mod, cams, infrared in (("vis", vis_cams, False), ("nir", nir_cams, True)):
            for cam in cams:
                for pid in ids:
                    if (pid, cam) in skip:
                        continue
                    for k in range(1, _count(images_per_cam, pid, cam) + 1):
                        rel = f"{part}_{mod}/cam{cam}/{pid:04d}/{pid:04d}_c{cam:02d}_{k:04d}.jpg"
                        write_image(root / rel, fixture_pixel(pid, cam, k), size,
                                    infrared=infrared)
                        if part == "train":
                            lists[f"train_{mod}"].append(f"{rel} {pid}")
    for name, lines in lists.items():
        (root / "idx" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    (root / "idx" / "test_id.txt").write_text(",".join(str(p) for p in test_ids))
    return root
