"""Shared helpers: atomic writes keep the user's umask; orphan temporary files go."""

import errno
import os
import subprocess
import sys
import time

import pytest

from fmcnet.utils import (
    ORPHAN_AGE_S,
    FMCNetError,
    _host,
    atomic_torch_save,
    atomic_write_json,
    pick_device,
    remove_orphans,
)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_get_the_umask_permissions_not_mkstemps(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
        atomic_torch_save({"x": 1}, tmp_path / "last.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "last.pt").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("failing, code, message", [
    ("fsync", errno.ENOSPC, r"the disk holding {parent} is full \(No space left on device\); free "
                            r"space there, or write elsewhere \(--out for runs, FMCNET_DATA for "
                            r"data and caches\), and run again; {path} is as it was before$"),
    ("fsync", errno.EDQUOT, r"the disk holding {parent} is full"),
    ("replace", errno.EROFS, r"{parent} is on a read-only file system; write elsewhere"),
    ("replace", errno.EIO, r"Input/output error; {path} is as it was before$"),
])
def test_a_full_disk_during_an_atomic_write_names_the_file_and_keeps_the_old_one(
        tmp_path, monkeypatch, failing, code, message):
    """A full disk (ENOSPC, here at the fsync, where delayed allocation reports it) named
    no path: the message names the file and what to do, and the previous file stays."""
    target = tmp_path / "run" / "results.json"
    target.parent.mkdir()
    target.write_text("the previous results")

    def fails(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, failing, fails)
    with pytest.raises(FMCNetError, match="^cannot write " + str(target) + ": " + message.format(
            parent=target.parent, path=target)):
        atomic_write_json(target, {"a": 1})
    assert target.read_text() == "the previous results"
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temporary file


def test_a_full_disk_before_the_write_is_named_too(tmp_path, monkeypatch):
    import tempfile

    def no_inodes(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "mkstemp", no_inodes)
    with pytest.raises(FMCNetError, match=rf"^cannot write {tmp_path / 'last.pt'}: the disk "
                                          rf"holding {tmp_path} is full"):
        atomic_torch_save({"x": 1}, tmp_path / "last.pt")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_orphans_removes_only_the_leftovers_of_dead_writers(tmp_path):
    host = _host()
    files = {
        "dead": f".last.pt.{host}-{_dead_pid()}.k2j3.tmp",  # this host, writer gone
        "alive": f".last.pt.{host}-{os.getpid()}.a8b9.tmp",  # this process is writing it
        "other_host_new": ".last.pt.elsewhere-12.q1.tmp",  # another host, recently touched
        "other_host_old": ".results.json.elsewhere-12.q2.tmp",
        "old_style_old": ".last.pt.x7y8z9.tmp",  # an older version's name, untouched 1 day
        "not_ours": "notes.tmp",
        "target": "last.pt",
    }
    for name in files.values():
        (tmp_path / name).write_bytes(b"x")
    stale = time.time() - ORPHAN_AGE_S - 60
    for key in ("other_host_old", "old_style_old"):
        os.utime(tmp_path / files[key], (stale, stale))
    removed = {p.name for p in remove_orphans(tmp_path)}
    assert removed == {files["dead"], files["other_host_old"], files["old_style_old"]}
    assert {p.name for p in tmp_path.iterdir()} == {
        files["alive"], files["other_host_new"], files["not_ours"], files["target"]}
    assert remove_orphans(tmp_path / "missing") == []


@pytest.mark.parametrize("name, message", [
    ("bogus", "is not a device"),
    ("cuda:7", r"CUDA is not available|CUDA device\(s\)"),
])
def test_pick_device_explains_a_bad_device(name, message):
    import torch

    if name.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has eight GPUs")
    with pytest.raises(FMCNetError, match=message):
        pick_device(name)
