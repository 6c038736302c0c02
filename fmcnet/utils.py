"""Small shared helpers: atomic writes, device choice, seeding, provenance."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


class FMCNetError(Exception):
    """An error meant for the user: the CLI prints the message, no traceback."""


# Temporary files are named `.<target name>.<host>-<pid>.<random>.tmp`, so a later
# process can tell the leftovers of a killed writer (`remove_orphans`) from a live one.
_TMP_PATTERN = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<host>[^.]+)-(?P<pid>\d+)\.)?[^.]+\.tmp$")
# A temporary file of another host (shared file system) or of an older version is an
# orphan once nobody has written to it for this long.
ORPHAN_AGE_S = 6 * 3600


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")


def current_umask() -> int:
    """The process umask (read from /proc where possible: `os.umask` has to set it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_file(path: str | os.PathLike) -> tuple[Path, int, str]:
    """(target, fd, temporary path) for an atomic write of `path`.

    The temporary file gets the permissions an ordinary `open` would give (0666 minus
    the umask) rather than mkstemp's 0600: caches and results in a shared folder must
    stay readable by the others who use it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.",
                                   suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise FMCNetError(
            f"cannot write {path}: permission denied on {path.parent}; make it writable for "
            "you or choose another folder (FMCNET_DATA for caches, --out for runs)"
        ) from None
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except OSError:  # a file system without permissions (e.g. some network mounts)
        pass
    return path, fd, tmp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True
    return True


def remove_orphans(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporary files that killed writers left in `folder` (only ours: `name`'s,
    or every `.<name>...tmp` file when None). Returns what was removed.

    A file of this host whose writer process is gone is removed at once; one of another
    host, or without a pid (older versions), once untouched for `ORPHAN_AGE_S`.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    now, host = time.time(), _host()
    for entry in entries:
        match = _TMP_PATTERN.match(entry.name)
        if not match or (name is not None and match["name"] != name):
            continue
        try:
            if match["pid"] is not None and match["host"] == host:
                orphan = int(match["pid"]) != os.getpid() and not _pid_alive(int(match["pid"]))
            else:
                orphan = now - entry.stat().st_mtime > ORPHAN_AGE_S
            if orphan and entry.is_file():
                entry.unlink()
                removed.append(entry)
        except OSError:  # gone already, or not ours to delete
            continue
    return removed


# Where a user can send what does not fit: named by every message about a full disk.
_ELSEWHERE = "--out for runs, FMCNET_DATA for data and caches"


def write_error(path: str | os.PathLike, exc: OSError, *, kept: bool = True) -> FMCNetError:
    """An `OSError` of writing `path` (a full disk above all) as the user's error: the path,
    what happened, what to do; `kept`: the previous file at `path` is unchanged (an atomic
    write that failed never replaces it)."""
    path = Path(path)
    unchanged = f"; {path} is as it was before" if kept else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return FMCNetError(
            f"cannot write {path}: the disk holding {path.parent} is full ({exc.strerror}); "
            f"free space there, or write elsewhere ({_ELSEWHERE}), and run again{unchanged}"
        )
    if exc.errno == errno.EROFS:
        return FMCNetError(f"cannot write {path}: {path.parent} is on a read-only file system; "
                           f"write elsewhere ({_ELSEWHERE}){unchanged}")
    return FMCNetError(f"cannot write {path}: {exc.strerror or exc}{unchanged}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file and a rename: never half-written.

    A failed write (a full disk: ENOSPC at the write, the flush or the fsync) removes the
    temporary file, leaves `path` as it was and raises `write_error`'s message."""
    path, fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> str:
    """`torch.save` atomically; returns the SHA-256 of the written bytes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def pick_device(name: str = "auto") -> torch.device:
    """`cuda` when present (or asked for), else `cpu`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise FMCNetError(f"device={name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") \
            from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FMCNetError(f"device={name!r} was asked for but CUDA is not available here; "
                              "use device=auto or device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FMCNetError(f"device={name!r}: this machine has {torch.cuda.device_count()} "
                              "CUDA device(s), numbered from 0")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FMCNetError(f"device={name!r} was asked for but MPS is not available here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit(default: str = "unknown") -> str:
    """The commit of the checkout the package runs from (with '-dirty' if modified)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "") if sha else default
    except (OSError, subprocess.SubprocessError):
        return default


def cache_dir() -> Path:
    """Where datasets and pre-processing caches live: `$FMCNET_DATA` or the user cache."""
    env = os.environ.get("FMCNET_DATA")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fmcnet"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU ({cpu}, {os.cpu_count()} cores)"
