"""A built-in visible-infrared re-ID data set in the SYSU-MM01 layout.

Real VI-ReID data sets are released only on request, so the demos, notebooks and tests
run on a synthetic set that the SYSU-MM01 loader reads unchanged:

```
root/cam1..cam6/<pid %04d>/<%04d>.jpg   visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
root/exp/{train,val,test}_id.txt        one line of comma-separated ids (~60/20/20 %)
root/synthetic.json                     the parameters that produced it
```

Each identity is a rendered pedestrian (`fmcnet.data.render`: body, clothes, cameras and
the modality gap, with its two knobs); this module writes the rendered images as a data
set on disk, and keeps one cached copy per configuration (`ensure_synthetic`: a cache key
over every parameter that changes the bytes, a file lock so that concurrent processes
generate it once). The difficulty knobs are keyword arguments of `synthesize`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmcnet.data.render import (
    GENERATOR_VERSION,
    INFRARED_CAMS,
    VISIBLE_CAMS,
    Scene,
    image_list,
    seed_streams,
)
from fmcnet.utils import FMCNetError, cache_dir

# Defaults of the two modality-gap knobs of `synthesize` (the configuration's
# synthetic_thermal_coupling / synthetic_cross_modal_predictability default to these).
THERMAL_COUPLING = 0.2
CROSS_MODAL_PREDICTABILITY = 0.5
DEFAULT_IMAGE_SIZE = (128, 64)  # (H, W) on disk; the pre-processing cache resizes
MARKER = "synthetic.json"


class TargetExists(FMCNetError):
    """A set was to be written into a non-empty directory without `overwrite=True`, or
    `overwrite` pointed at a folder that holds no set."""


def refuse_to_replace(out: Path, marker: str = MARKER, kind: str = "synthetic") -> None:
    """`overwrite` deletes `out`: refused unless `out` holds a set a renderer wrote (its
    `marker` file), so a mistyped folder of someone's own files is never deleted."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) \
            and not (out / marker).is_file():
        raise TargetExists(
            f"{out} already exists and holds no {kind} set (no {marker}); synthesize "
            "replaces only a set it wrote, so nothing of yours is deleted: choose another --out"
        )


def check_target(out: Path, overwrite: bool, marker: str = MARKER, kind: str = "synthetic") -> None:
    """Where a renderer writes its set: an empty or missing `out`, or with `overwrite` a
    folder holding a set it wrote (`refuse_to_replace`)."""
    if overwrite:
        refuse_to_replace(out, marker, kind)
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TargetExists(
            f"{out} already exists and is not empty; choose another directory or pass "
            "overwrite=True (--overwrite) to replace it"
        )


# ---- writing ----------------------------------------------------------------------------


def split_ids(rng: np.random.Generator, n: int, split: tuple[float, float] = (0.2, 0.2)
              ) -> dict[str, np.ndarray]:
    """Train / val / test pids (1-based) of `n` identities, `split` the (val, test) fractions:
    the default about 60 / 20 / 20 % like SYSU-MM01's 296/99/96. One permutation, test first."""
    perm = rng.permutation(n) + 1
    n_val, n_test = (max(1, round(f * n)) for f in split)
    return {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test:n_test + n_val]),
        "train": np.sort(perm[n_test + n_val:]),
    }


def install_set(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished `tmp` tree to `out` with renames, so `out` is never half-written."""
    try:
        os.rename(tmp, out)  # also replaces an empty directory on POSIX
        return
    except OSError:
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TargetExists(
                f"{out} already exists and is not empty; choose another directory or pass "
                "overwrite=True (--overwrite) to replace it"
            ) from None
    trash = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(out, trash)
    os.rename(tmp, out)
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def synthesize(
    out: str | os.PathLike,
    *,
    identities: int = 300,
    seed: int = 0,
    images_per_camera: int = 6,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    progress: bool = True,
    jitter: float = 0.015,
    scale_jitter: float = 0.02,
    noise: float = 0.02,
    illumination: float = 0.05,
    camera_presence: float = 0.8,
    thermal_coupling: float = THERMAL_COUPLING,
    cross_modal_predictability: float = CROSS_MODAL_PREDICTABILITY,
    colourfulness: float = 0.25,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic VI-ReID data set in the SYSU-MM01 layout to `out`; returns `out`.

    identities: pids 1..N, split ~60/20/20 into exp/train_id.txt, val_id.txt, test_id.txt.
    images_per_camera: mean images per (identity, camera) present (1..2m-1 each).
    image_size: (H, W) of the JPEG files.
    Difficulty knobs: `jitter` (std of the position offset, fraction of the image),
    `scale_jitter` (std of log scale), `noise` (pixel noise std, 0..1 range),
    `illumination` (std of log per-image brightness), `camera_presence` (probability an
    identity appears in a camera), `thermal_coupling` (0..1: how much a garment's
    infrared level follows its visible luminance rather than its fabric),
    `cross_modal_predictability` (0..1: how much of a garment's dye and fabric is a rule
    of its cut, which both modalities show; see the module docstring), `colourfulness`
    (0..1: the highest clothing saturation; hue is a cue only the visible modality has).
    The output is byte-identical for equal arguments.

    Calibration of the defaults (a plain ResNet-18 from random init, ID + batch-hard
    triplet loss, 120 SGD steps at lr 0.05 of 8 ids x 4 images per modality, 128x64, on
    the 200-identity set, CPU): all-search single-shot rank-1 about 39 % (chance 2.5 %).
    At 64x32 the same run gave 24 %; starting from a near gap-free setting (34 % at
    64x32), colourfulness 0.6 alone brought it to 17 %, thermal_coupling 0.8 alone to
    14 %, and jitter 0.03 / scale_jitter 0.04 / noise 0.03 / illumination 0.1 to 21 %.

    The set is written to a temporary sibling directory and renamed into place, so an
    interrupted run leaves nothing half-written.
    """
    out = Path(out).expanduser()
    if identities < 3:
        raise FMCNetError(f"identities must be at least 3 (one per split), got {identities}")
    if images_per_camera < 1:
        raise FMCNetError(f"images_per_camera must be at least 1, got {images_per_camera}")
    h, w = (int(v) for v in image_size)
    for name, value in (("thermal_coupling", thermal_coupling),
                        ("cross_modal_predictability", cross_modal_predictability),
                        ("colourfulness", colourfulness)):
        if not 0.0 <= value <= 1.0:
            raise FMCNetError(f"{name} must be in [0, 1], got {value}")
    if h < 16 or w < 8:
        raise FMCNetError(f"image_size must be at least (16, 8), got {image_size}")
    check_target(out, overwrite)

    params = {
        "identities": int(identities), "seed": int(seed),
        "images_per_camera": int(images_per_camera), "image_size": [h, w],
        "jitter": jitter, "scale_jitter": scale_jitter, "noise": noise,
        "illumination": illumination, "camera_presence": camera_presence,
        "thermal_coupling": thermal_coupling,
        "cross_modal_predictability": cross_modal_predictability,
        "colourfulness": colourfulness,
        "version": GENERATOR_VERSION,
    }
    s_id, s_cam, s_list, s_img, s_split = seed_streams(seed)
    cam_of, ident = image_list(np.random.default_rng(s_list), identities, images_per_camera,
                               camera_presence)
    scene = Scene((s_id, s_cam, s_img), int(seed), identities, cam_of, ident, (h, w),
                   jitter=jitter, scale_jitter=scale_jitter, noise=noise,
                   illumination=illumination, thermal_coupling=thermal_coupling,
                   colourfulness=colourfulness,
                   cross_modal_predictability=cross_modal_predictability)
    n_img = len(cam_of)

    info = dict(params, images=int(n_img),
                visible=int(np.isin(cam_of, VISIBLE_CAMS).sum()),
                infrared=int(np.isin(cam_of, INFRARED_CAMS).sum()))
    ids = split_ids(np.random.default_rng(s_split), identities)
    return write_set(out, overwrite, scene, ident, ids, info, MARKER, progress=progress)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def write_set(out: Path, overwrite: bool, scene: Any, ident: np.ndarray,
              split_ids: dict[str, np.ndarray], info: dict[str, Any], marker: str, *,
              quality: Callable[[int], int] = lambda cam: 92, progress: bool = False) -> Path:
    """Render every chunk of `scene` (`scene.chunks`: (camera, start, stop); `ident`: each
    image's 0-based identity) into `out` in SYSU-MM01's layout -- `cam<c>/<pid>/<n>.jpg`,
    `exp/<split>_id.txt` from `split_ids`, and `marker` holding `info` -- in a temporary
    folder renamed into place (`install_set`), removed again if anything fails."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        bar = _progress(len(scene.chunks), progress)
        counter: dict[tuple[int, int], int] = {}
        for k, (c, start, stop) in enumerate(scene.chunks):
            for pid0, arr in zip(ident[start:stop].tolist(), scene.render_chunk(k)):
                pid = pid0 + 1
                num = counter[(c, pid)] = counter.get((c, pid), 0) + 1
                folder = tmp / f"cam{c}" / f"{pid:04d}"
                if num == 1:
                    folder.mkdir(parents=True)
                Image.fromarray(arr).save(folder / f"{num:04d}.jpg", quality=quality(c))
            bar.update(1)
        bar.close()
        for c in range(1, 7):
            (tmp / f"cam{c}").mkdir(exist_ok=True)
        (tmp / "exp").mkdir()
        for split, pids in split_ids.items():
            (tmp / "exp" / f"{split}_id.txt").write_text(",".join(str(p) for p in pids) + "\n")
        (tmp / marker).write_text(json.dumps(info, indent=2) + "\n")
        install_set(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from fmcnet.progress import bar

    return bar(total=total, desc="synthesizing", unit="chunk", leave=False)


# ---- the cached copy --------------------------------------------------------------------


# The difficulty knobs are every keyword of `synthesize` except these: a knob added
# there is part of the cache key without another edit here.
_NOT_KNOBS = {"out", "identities", "seed", "images_per_camera", "image_size", "progress",
              "overwrite"}
_KNOB_DEFAULTS = {name: p.default for name, p in inspect.signature(synthesize).parameters.items()
                  if name not in _NOT_KNOBS}


def config_knobs(cfg: Any) -> dict[str, Any]:
    """The difficulty knobs a configuration sets: field `synthetic_<knob>` when `cfg` has
    one (e.g. synthetic_thermal_coupling), else `synthesize`'s default."""
    return {name: getattr(cfg, f"synthetic_{name}", default)
            for name, default in _KNOB_DEFAULTS.items()}


def expected_params(identities: int, seed: int, images_per_camera: int,
                    **knobs: Any) -> dict[str, Any]:
    """The parameters `synthesize` records in synthetic.json for these arguments: the
    difficulty knobs given in `knobs`, the defaults for the others, the image size and
    the generator version."""
    unknown = set(knobs) - set(_KNOB_DEFAULTS)
    if unknown:
        raise FMCNetError(f"unknown synthetic knob(s) {sorted(unknown)}; "
                          f"valid: {sorted(_KNOB_DEFAULTS)}")
    params = {"identities": int(identities), "seed": int(seed),
              "images_per_camera": int(images_per_camera),
              "image_size": list(DEFAULT_IMAGE_SIZE)}
    params.update(_KNOB_DEFAULTS)
    params.update(knobs)
    params["version"] = GENERATOR_VERSION
    return params


def synthetic_key(identities: int, seed: int, images_per_camera: int, **knobs: Any) -> str:
    """Hash of everything that determines the cached set's bytes (the knobs' defaults
    included, so a changed default gives a new set rather than a stale one)."""
    blob = json.dumps(expected_params(identities, seed, images_per_camera, **knobs),
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _is_current(path: Path, expected: dict[str, Any], marker: str = MARKER) -> bool:
    """Whether `path` holds a finished set written with exactly `expected` parameters."""
    try:
        recorded = json.loads((path / marker).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in expected.items())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock so concurrent processes generate the set once (POSIX only;
    elsewhere the atomic rename alone keeps the cache consistent)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_set(path: Path, expected: dict[str, Any], write: Callable[[bool], Any], *,
               marker: str = MARKER) -> Path:
    """`path` once it holds the set `expected` describes (its `marker` file records the
    parameters): generated by `write(overwrite)` on first use, once among concurrent
    processes (a file lock), and regenerated when the marker records other parameters."""
    if _is_current(path, expected, marker):
        return path
    with _file_lock(path.with_name(path.name + ".lock")):
        if _is_current(path, expected, marker):  # another process finished while we waited
            return path
        if path.exists() and not (path / marker).is_file():
            # A cache entry without its marker is a leftover of a killed or older writer
            # (the entry is this cache's, named by its key): removed here, since
            # `overwrite` replaces only a folder that holds a set (`refuse_to_replace`).
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        try:
            # A set written with other parameters or by another generator (not ours to
            # keep): replace it.
            write(path.exists())
        except FMCNetError:
            if not _is_current(path, expected, marker):
                raise
    return path


def ensure_synthetic(cfg: Any) -> Path:
    """The cached synthetic set for `cfg`, generated on first use.

    Lives at ``cache_dir() / f"synthetic-{key}"`` where the key hashes
    cfg.synthetic_identities, cfg.synthetic_seed, cfg.synthetic_images_per_camera, the
    difficulty knobs (`config_knobs`: cfg.synthetic_thermal_coupling, ...; the defaults of
    `synthesize` for knobs the configuration does not name) and the generator version, so
    changing any of them gives a fresh set. A set whose synthetic.json records other
    parameters is regenerated.
    """
    identities = int(getattr(cfg, "synthetic_identities", 300))
    seed = int(getattr(cfg, "synthetic_seed", 0))
    per_cam = int(getattr(cfg, "synthetic_images_per_camera", 6))
    knobs = config_knobs(cfg)
    expected = expected_params(identities, seed, per_cam, **knobs)
    path = cache_dir() / f"synthetic-{synthetic_key(identities, seed, per_cam, **knobs)}"
    return cached_set(path, expected, lambda overwrite: synthesize(
        path, identities=identities, seed=seed, images_per_camera=per_cam,
        progress=bool(getattr(cfg, "progress", True)), overwrite=overwrite, **knobs))


def render_images(
    cam_of: np.ndarray,
    ident: np.ndarray,
    *,
    identities: int,
    seed: int = 0,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    workers: int = 1,
    **knobs: float,
) -> np.ndarray:
    """The pixels of an explicit image list, in memory: uint8 [N, H, W, 3] in list order.

    The renderer of `synthesize` (same identities and cameras for the same `seed` and
    `identities`, same difficulty knobs and defaults) without writing JPEG files: for
    benchmarks that need a set of a given size quickly, such as SYSU-MM01's 34,167
    training images in the GPU check. `cam_of[i]` is image i's camera (1..6),
    `ident[i]` its identity index (0..identities-1). Chunks render in `workers` threads
    (numpy releases the GIL inside its array operations); the result does not depend on
    `workers`.
    """
    from concurrent.futures import ThreadPoolExecutor

    unknown = sorted(set(knobs) - set(_KNOB_DEFAULTS))
    if unknown:
        raise FMCNetError(f"render_images got unknown knobs {unknown}; "
                          f"valid: {sorted(_KNOB_DEFAULTS)}")
    params = {**_KNOB_DEFAULTS, **knobs}
    params.pop("camera_presence")  # the image list is given
    cam_of, ident = np.asarray(cam_of, np.int64), np.asarray(ident, np.int64)
    if len(cam_of) != len(ident) or (len(cam_of) and (
            cam_of.min() < 1 or cam_of.max() > 6 or ident.min() < 0 or ident.max() >= identities)):
        raise FMCNetError(f"render_images expects cameras 1..6 and identity indices "
                          f"0..{identities - 1} of equal length; got {len(cam_of)} cameras "
                          f"and {len(ident)} identities")
    order = np.argsort(cam_of, kind="stable")
    s_id, s_cam, _s_list, s_img, _s_split = seed_streams(seed)
    size = (int(image_size[0]), int(image_size[1]))
    scene = Scene((s_id, s_cam, s_img), int(seed), identities, cam_of[order], ident[order],
                   size, **params)
    out = np.empty((len(cam_of), *size, 3), dtype=np.uint8)

    def fill(k: int) -> None:
        _, start, stop = scene.chunks[k]
        out[order[start:stop]] = scene.render_chunk(k)

    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        list(pool.map(fill, range(len(scene.chunks))))
    return out
