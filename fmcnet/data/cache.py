"""The pre-processing cache: every image decoded and resized once, then memory-mapped.

`load_images(paths, (H, W))` returns a read-only uint8 ``[N, H, W, 3]`` array backed by
``<cache>/<key>.npy``. The key hashes the resolved paths, each file's size and
modification time, and the target size, so editing, replacing or touching an image
gives a new cache. Files are written to a temporary name and renamed (never
half-written), with the user's umask permissions (a shared ``FMCNET_DATA`` stays
readable for its other users); on load the array header is checked against a small JSON
manifest, and the content against a checksum of sampled rows, and a cache that does not
match (truncated, zeroed, corrupt) is rebuilt with a warning. Temporary files of killed
builds are removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from fmcnet.data.base import DatasetError, ImageSet
from fmcnet.utils import FMCNetError, atomic_write_json, cache_dir, remove_orphans, temp_file

# Bumped when the decoding below changes, so old caches are not reused.
CACHE_VERSION = 1
# Pillow >= 9.1 spells it Image.Resampling.LANCZOS; Image.ANTIALIAS is gone since 10.
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS
_CHUNK = 256  # images decoded per thread-pool round; bounds memory held in flight
_WORKERS = 2  # PIL releases the GIL while decoding and resizing
# Rows hashed for the content check on every load: enough to catch a zeroed or
# overwritten file, few enough to cost milliseconds on SYSU-MM01 at 288x144.
_SAMPLE_ROWS = 64


def _decode(path: str, size: tuple[int, int]) -> np.ndarray:
    """One image as uint8 [H, W, 3]: RGB (grey/infrared replicated), LANCZOS-resized."""
    height, width = size
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), _LANCZOS)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image {path} does not exist (listed by the dataset)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(
            f"{path} is not a readable image ({exc}); replace it with a good copy and retry"
        ) from None


def _cache_key(paths: list[str], size: tuple[int, int]) -> tuple[str, str]:
    """(cache key, hash of the path list) for these files at this size."""
    key = hashlib.sha256(f"fmcnet-images-v{CACHE_VERSION} {size[0]}x{size[1]}\n".encode())
    names = hashlib.sha256()
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DatasetError(f"image {p} does not exist (listed by the dataset)") from None
        key.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        names.update(f"{p}\n".encode())
    return key.hexdigest(), names.hexdigest()


def sample_digest(arr: np.ndarray) -> str:
    """SHA-256 of `_SAMPLE_ROWS` evenly spaced rows (first and last included)."""
    rows = np.unique(np.linspace(0, len(arr) - 1, min(len(arr), _SAMPLE_ROWS)).astype(np.int64))
    digest = hashlib.sha256(np.ascontiguousarray(arr[rows]).tobytes())
    digest.update(repr(rows.tolist()).encode())
    return digest.hexdigest()


def _open_cached(npy: Path, manifest: Path, expected: dict) -> np.ndarray | None:
    """The memory-mapped cache if it exists and matches; None (with a warning) otherwise."""
    if not npy.exists() and not manifest.exists():
        return None
    try:
        try:
            meta = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"its manifest {manifest} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"its manifest {manifest} holds a {type(meta).__name__}, not an "
                             "object")
        if any(meta.get(k) != v for k, v in expected.items()):
            raise ValueError(f"manifest {meta} does not match {expected}")
        arr = np.load(npy, mmap_mode="r")
        if arr.dtype != np.uint8 or list(arr.shape) != expected["shape"]:
            raise ValueError(f"array {arr.dtype}{list(arr.shape)}, expected uint8{expected['shape']}")
        if "sample_sha256" not in meta:
            raise ValueError("its manifest has no content checksum (an older version wrote it)")
        if sample_digest(arr) != meta["sample_sha256"]:
            raise ValueError("its content fails the checksum of sampled rows (overwritten or "
                             "zeroed)")
        return arr
    except (OSError, ValueError, EOFError) as exc:
        reason = f"permission denied reading {exc.filename}" if isinstance(
            exc, PermissionError) else str(exc)
        warnings.warn(
            f"image cache {npy} is unusable ({reason}); rebuilding it", RuntimeWarning,
            stacklevel=3,
        )
        return None


def _reserve(tmp: str, npy: Path) -> None:
    """Allocate the blocks of the memory-mapped file now: on a full disk a store into the
    map would kill the process (SIGBUS) with no word of which file; here it is an error
    naming the cache and the room it needs. File systems without fallocate are left be."""
    if not hasattr(os, "posix_fallocate"):  # pragma: no cover - macOS, Windows
        return
    fd = os.open(tmp, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return  # EOPNOTSUPP, EINVAL, ...: no reservation, the writes still work
        need = os.fstat(fd).st_size / 2**20
        raise FMCNetError(
            f"cannot build the image cache {npy}: it needs {need:,.0f} MB and the disk holding "
            f"{npy.parent} is full ({exc.strerror}); free space there, or set FMCNET_DATA to a "
            "folder with room, and run again"
        ) from None
    finally:
        os.close(fd)


def _build(npy: Path, paths: list[str], size: tuple[int, int], progress: bool) -> str:
    """Decode every image into a temporary .npy beside `npy`, then rename it into place;
    returns the checksum of its sampled rows."""
    _, fd, tmp = temp_file(npy)
    os.close(fd)
    bar = None
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(paths), *size, 3))
        _reserve(tmp, npy)
        if progress:
            from fmcnet.progress import bar as progress_bar

            bar = progress_bar(total=len(paths), desc=f"caching images at {size[0]}x{size[1]}",
                               unit="img")
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            for start in range(0, len(paths), _CHUNK):
                chunk = paths[start:start + _CHUNK]
                for i, img in enumerate(pool.map(lambda p: _decode(p, size), chunk)):
                    out[start + i] = img
                if bar is not None:
                    bar.update(len(chunk))
        out.flush()
        digest = sample_digest(out)
        del out
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return digest


def load_images(
    images: ImageSet | Sequence[str | os.PathLike],
    size: tuple[int, int],
    *,
    cache_root: str | os.PathLike | None = None,
    progress: bool = True,
) -> np.ndarray:
    """All `images` resized to `size` = (H, W): a read-only memory-mapped uint8 [N, H, W, 3].

    `images` is an `ImageSet` or a list of paths. The cache lives in `cache_root` or
    ``fmcnet.utils.cache_dir() / "images"``; it is built on first use (with a tqdm bar
    when `progress`) and rebuilt whenever a listed file changes.
    """
    raw = images.paths if isinstance(images, ImageSet) else list(images)
    height, width = (int(s) for s in size)
    size = (height, width)
    if not raw:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    paths = [str(Path(p).expanduser().resolve()) for p in raw]
    key, names_hash = _cache_key(paths, size)
    folder = Path(cache_root) if cache_root is not None else cache_dir() / "images"
    npy, manifest = folder / f"{key}.npy", folder / f"{key}.json"
    expected = {"count": len(paths), "shape": [len(paths), height, width, 3],
                "paths_sha256": names_hash}
    if folder.is_dir():
        remove_orphans(folder)  # temporary files of builds that were killed
    arr = _open_cached(npy, manifest, expected)
    if arr is not None:
        return arr
    try:
        folder.mkdir(parents=True, exist_ok=True)
        manifest.unlink(missing_ok=True)  # a manifest never outlives the array it describes
    except PermissionError as exc:
        raise FMCNetError(
            f"the image cache {folder} is not writable for you ({exc.strerror}: {exc.filename}); "
            "fix its permissions or set FMCNET_DATA to a folder of your own"
        ) from None
    digest = _build(npy, paths, size, progress)
    atomic_write_json(manifest, {**expected, "version": CACHE_VERSION, "sample_sha256": digest})
    return np.load(npy, mmap_mode="r")
