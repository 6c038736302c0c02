"""The pre-processing cache: LANCZOS resize, memory-map, rebuild on change or corruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from fixtures import fixture_pixel, make_sysu_tree, write_image
from PIL import Image

from fmcnet.data import cache as cache_mod
from fmcnet.data.base import DatasetError
from fmcnet.data.cache import load_images
from fmcnet.data.sysu import load_sysu
from fmcnet.utils import FMCNetError, _host


@pytest.fixture()
def tree(tmp_path):
    return make_sysu_tree(tmp_path / "sysu", train_ids=(1,), val_ids=(2,), test_ids=(3,),
                          images_per_cam=2)


def _paths(tree, cam=1):
    return sorted(str(p) for p in (tree / f"cam{cam}").rglob("*.jpg"))


def _npy_files(folder):
    return sorted(p for p in folder.iterdir() if p.suffix == ".npy")


def test_shape_values_and_lanczos(tree, tmp_path):
    paths = _paths(tree, 1) + _paths(tree, 3)
    arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert isinstance(arr, np.memmap) and arr.dtype == np.uint8 and arr.shape == (12, 16, 8, 3)
    assert not arr.flags.writeable
    pid, k = int(os.path.basename(os.path.dirname(paths[0]))), 1
    assert abs(int(arr[0, ..., 0].mean()) - fixture_pixel(pid, 1, k)) <= 2
    ir = arr[6:]  # cam3 is infrared: three equal channels
    assert np.array_equal(ir[..., 0], ir[..., 1]) and np.array_equal(ir[..., 0], ir[..., 2])

    # a real resize goes through LANCZOS, exactly as Pillow does it
    big = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(big)
    got = load_images([big], (16, 8), cache_root=tmp_path / "c", progress=False)[0]
    want = np.asarray(Image.open(big).convert("RGB").resize((8, 16), Image.LANCZOS))
    assert np.array_equal(got, want)


def test_image_set_input_and_reuse(tree, tmp_path, monkeypatch):
    ds = load_sysu(tree, trials=1)
    first = load_images(ds.train.infrared, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert first.shape == (len(ds.train.infrared), 16, 8, 3)
    assert len(_npy_files(tmp_path / "c")) == 1

    def boom(*args):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(cache_mod, "_decode", boom)
    again = load_images(ds.train.infrared.paths, (16, 8), cache_root=tmp_path / "c",
                        progress=False)
    assert np.array_equal(first, again)
    assert load_images([], (16, 8), cache_root=tmp_path / "c").shape == (0, 16, 8, 3)


def test_rebuilt_when_an_image_changes(tree, tmp_path):
    paths = _paths(tree)
    old = np.array(load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False))
    write_image(tree / "cam1" / "0001" / "0001.jpg", 250, (16, 8), infrared=False)
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # coarse-clock file systems
    new = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert len(_npy_files(tmp_path / "c")) == 2
    assert new[0, ..., 0].mean() > 240 and old[0, ..., 0].mean() < 200
    assert np.array_equal(new[1:], old[1:])


def test_truncated_cache_is_rebuilt_with_a_warning(tree, tmp_path):
    paths = _paths(tree)
    good = np.array(load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False))
    (npy,) = _npy_files(tmp_path / "c")
    npy.write_bytes(npy.read_bytes()[:-100])
    with pytest.warns(RuntimeWarning, match=r"image cache .* is unusable .*rebuilding"):
        arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert np.array_equal(arr, good)
    # a cache whose shape does not match its manifest is not used either
    np.save(npy, np.zeros((len(paths), 8, 8, 3), np.uint8))
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert np.array_equal(arr, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)


def test_corrupt_image_names_the_file(tree, tmp_path):
    paths = _paths(tree)
    bad = tree / "cam1" / "0002" / "0002.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match=rf"{bad} is not a readable image"):
        load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert list((tmp_path / "c").iterdir()) == []  # no half-written cache or temp file
    bad.unlink()
    with pytest.raises(DatasetError, match=rf"image {bad} does not exist"):
        load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)


def _build(tree, tmp_path):
    paths = _paths(tree)
    good = np.array(load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False))
    (npy,) = _npy_files(tmp_path / "c")
    return paths, good, npy


def test_a_zeroed_cache_is_caught_by_its_checksum_and_rebuilt(tree, tmp_path):
    paths, good, npy = _build(tree, tmp_path)
    header = len(npy.read_bytes()) - good.nbytes
    data = bytearray(npy.read_bytes())
    data[header:] = bytes(len(data) - header)  # the header survives, the pixels are zeros
    npy.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="fails the checksum of sampled rows"):
        arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert np.array_equal(arr, good)


@pytest.mark.parametrize("content", ["[1, 2]", "\"text\"", "{not json"])
def test_a_manifest_that_is_not_an_object_is_named_and_rebuilt(tree, tmp_path, content):
    paths, good, npy = _build(tree, tmp_path)
    manifest = npy.with_suffix(".json")
    manifest.write_text(content)
    with pytest.warns(RuntimeWarning, match=rf"its manifest {manifest}"):
        arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert np.array_equal(arr, good)
    assert isinstance(json.loads(manifest.read_text()), dict)


def test_cache_files_keep_the_umask_and_unreadable_ones_are_rebuilt(tree, tmp_path,
                                                                    monkeypatch):
    old = os.umask(0o022)
    try:
        paths, good, npy = _build(tree, tmp_path)
    finally:
        os.umask(old)
    # readable by the others who share FMCNET_DATA (mkstemp alone would give 0600)
    assert npy.stat().st_mode & 0o777 == 0o644
    assert npy.with_suffix(".json").stat().st_mode & 0o777 == 0o644

    real_load, calls = np.load, []

    def another_users_file(path, *args, **kwargs):  # what a 0600 file of someone else gives
        calls.append(path)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied", str(npy))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(cache_mod.np, "load", another_users_file)
    with pytest.warns(RuntimeWarning, match=rf"permission denied reading {npy}.*rebuilding"):
        arr = load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert np.array_equal(arr, good) and len(calls) == 2  # rebuilt in place, then read


def test_an_unwritable_cache_folder_is_one_clear_message(tree, tmp_path, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "c"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(FMCNetError, match=r"cannot write .*permission denied on .*FMCNET_DATA"):
        load_images(_paths(tree), (16, 8), cache_root=tmp_path / "c", progress=False)


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no fallocate here")
def test_a_cache_that_does_not_fit_the_disk_is_named_before_it_is_written(tree, tmp_path,
                                                                          monkeypatch):
    """A store into a memory map on a full disk kills the process (SIGBUS) without a word;
    the cache's blocks are allocated first, so a full disk is an error naming the cache."""
    import errno

    calls = []

    def full(fd, offset, length):
        calls.append(length)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_mod.os, "posix_fallocate", full)
    folder = tmp_path / "c"
    with pytest.raises(FMCNetError, match=rf"^cannot build the image cache {folder}/\w+\.npy: it "
                                          rf"needs 0 MB and the disk holding {folder} is full "
                                          r"\(No space left on device\); free space there, or set "
                                          r"FMCNET_DATA to a folder with room"):
        load_images(_paths(tree), (16, 8), cache_root=folder, progress=False)
    assert calls and calls[0] >= len(_paths(tree)) * 16 * 8 * 3
    assert list(folder.iterdir()) == []  # neither the array nor its temporary file is left
    monkeypatch.undo()
    assert load_images(_paths(tree), (16, 8), cache_root=folder, progress=False).shape[1:] == (
        16, 8, 3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_cache_folder_is_one_clear_message(tree, tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(FMCNetError, match=rf"{folder}.*(not writable|permission denied)"):
            load_images(_paths(tree), (16, 8), cache_root=folder, progress=False)
    finally:
        folder.chmod(0o755)


def test_temporary_files_of_a_killed_build_are_removed(tree, tmp_path):
    paths, _, npy = _build(tree, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = npy.parent / f".{npy.name}.{_host()}-{dead.pid}.abc123.tmp"
    orphan.write_bytes(b"x" * 1000)
    load_images(paths, (16, 8), cache_root=tmp_path / "c", progress=False)
    assert not orphan.exists()
