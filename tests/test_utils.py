"""Shared helpers: atomic writes keep the user's umask; orphan temporary files go."""

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
