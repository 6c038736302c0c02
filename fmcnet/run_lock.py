"""One writer per run folder: an exclusive lock, `<run>/.lock`.

Two `train --out R` started together used to interleave their metrics records and replace
each other's checkpoints and results. Whatever writes into a run folder -- `train` (new
and `--resume`), `evaluate --run`, `clear_run`, the notebooks' later evaluations, a
`sweep` (its folder of runs) -- holds `hold_run(run_dir, what)` while it does, and
`pretrain` holds `hold_file(out, what)` (`<out>.lock`) for the weights it writes:

* the lock is an `fcntl.flock` on `<run>/.lock`, taken atomically (no check-then-create
  race); the file names its holder: pid, host, since when, what and the command line;
* a second writer is refused before any work (`RunFolderBusy`), naming the holder and
  what to do;
* the kernel drops a flock when its process ends, however it ends, and `hold_run`
  deletes the file on every exit path it sees (return, exception, Ctrl-C); a `.lock`
  that still names a holder after a SIGKILL is stale: reported and taken over when that
  pid is gone from this host;
* it is re-entrant within a process (`train()` inside the notebooks' `open_run`); the
  rank processes `cpu_ranks` starts train under their parent's lock (`FMCNET_RUN_LOCK`
  names it), and under torchrun rank 0 takes it.

A holder on another host cannot be checked from here: its lock is refused until it is
released, or deleted by hand once that host writes no more.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmcnet.utils import FMCNetError, _pid_alive, write_error

LOCK_NAME = ".lock"
# Set in the processes `fmcnet.parallel` starts: the lock their parent holds for them.
PARENT_LOCK_ENV = "FMCNET_RUN_LOCK"
# A holder that has taken the lock writes its record at once; a reader that finds the
# file empty waits this long for it before calling the holder unknown.
_RECORD_WAIT_S = 1.0

_held: dict[str, list[int]] = {}  # lock path -> [fd, depth] of the locks this process holds
_held_guard = threading.Lock()


class RunFolderBusy(FMCNetError):
    """Another process writes this run folder (it holds `<run>/.lock`)."""


def lock_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / LOCK_NAME


def command_line() -> str:
    """This process's command as the user typed it (`python -m fmcnet train ...`)."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    if first.name == "__main__.py" and first.parent.name == "fmcnet":
        return shlex.join(["python", "-m", "fmcnet", *argv[1:]])
    return shlex.join([Path(sys.executable).name, *argv])


def read_holder(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The record in `<run>/.lock` (who holds, or last held, the lock), or None."""
    return _read_path(lock_path(run_dir))


def _read_path(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            return _parse(fh.read())
    except OSError:
        return None


def _parse(data: bytes) -> dict[str, Any] | None:
    if not data.strip():
        return None
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return {"unreadable": data[:80].decode("utf-8", "replace")}
    return record


def describe_holder(record: dict[str, Any] | None) -> str:
    """`train by pid 123 on host h since 2024-... (`python -m fmcnet train ...`)`."""
    if record is None:
        return "a process that has not yet written its name into the lock"
    if "unreadable" in record:
        return f"an unknown process (the lock file holds {record['unreadable']!r})"
    return (f"{record.get('what')} by pid {record.get('pid')} on host {record.get('host')} "
            f"since {record.get('since')} (`{record.get('command')}`)")


def _read_fd(fd: int) -> dict[str, Any] | None:
    return _parse(os.pread(fd, 1 << 16, 0))


# Why one writer, in the refusal: a run folder (and a sweep's folder of runs), an output file.
_WHY_FOLDER = ("A run folder has one writer at a time (two would interleave their metrics and "
               "replace each other's checkpoints and results)")
_WHY_FILE = ("A file has one writer at a time (two would replace each other's output and its "
             "record)")


def _busy(target: Path, path: Path, holder: dict[str, Any] | None, why: str) -> RunFolderBusy:
    return RunFolderBusy(
        f"{target} is being written by another process: {describe_holder(holder)}, which "
        f"holds {path}. {why}: wait for it to end or stop it, or write elsewhere (another "
        "--out)"
    )


def _previous_holder_still_there(target: Path, path: Path, holder: dict[str, Any]) -> None:
    """The flock was free but the file names a holder: refuse when that holder may still
    be writing, else say that its lock is taken over."""
    here = socket.gethostname()
    pid = holder.get("pid")
    if "unreadable" in holder:
        print(f"note: {path} held {holder['unreadable']!r}, no holder's record; taking the "
              "lock over", file=sys.stderr, flush=True)
        return
    if holder.get("host") != here:
        raise RunFolderBusy(
            f"{target} is locked by {describe_holder(holder)}, another host, which this "
            f"machine cannot check ({path}): if no process on {holder.get('host')} writes "
            f"{target} any more, delete {path} and run again; otherwise wait for it to end"
        )
    if isinstance(pid, int) and pid != os.getpid() and _pid_alive(pid):
        raise RunFolderBusy(
            f"{target}: its lock {path} names {describe_holder(holder)}; that pid is running "
            "but does not hold the lock (the file system may not support locks, or the pid "
            f"now belongs to another program). If pid {pid} is no fmcnet run, delete {path} "
            "and run again; otherwise wait for it to end"
        )
    print(f"note: {path} was left by {describe_holder(holder)}, which ended without "
          "releasing it (killed?); taking the lock over", file=sys.stderr, flush=True)


def _acquire(target: Path, path: Path, what: str, why: str) -> int:
    """Take the lock: a file descriptor holding `path`'s flock, our record written in it."""
    import fcntl

    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what,
              "command": command_line()}
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise write_error(path, exc, kept=False) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder, waited = _read_fd(fd), 0.0
                while holder is None and waited < _RECORD_WAIT_S:  # taken an instant ago
                    time.sleep(0.05)
                    waited += 0.05
                    holder = _read_fd(fd)
                raise _busy(target, path, holder, why) from None
            except OSError as exc:  # no locks on this file system: the record alone decides
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
            # The holder before us may have released and deleted the file between our
            # open and our flock: then we hold a lock on a file nobody else sees.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                os.close(fd)
                continue
            previous = _read_fd(fd)
            if previous is not None:
                _previous_holder_still_there(target, path, previous)
            data = (json.dumps(record) + "\n").encode()
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                os.fsync(fd)
            except OSError as exc:
                raise write_error(path, exc, kept=False) from None
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    raise FMCNetError(f"could not take the lock {path}: other processes kept replacing it; "
                      "run again once they have finished")


def _release(path: Path, fd: int) -> None:
    """Delete the lock file (when it is still ours) and drop the flock."""
    with contextlib.suppress(OSError):
        current, mine = os.stat(path), os.fstat(fd)
        if (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            os.unlink(path)
    with contextlib.suppress(OSError):
        os.close(fd)


def _held_by_parent(path: Path) -> bool:
    """A rank process that `fmcnet.parallel` started: its parent holds this very lock."""
    named = os.environ.get(PARENT_LOCK_ENV)
    if not named or os.path.realpath(named) != os.path.realpath(path):
        return False
    holder = _read_path(path)
    return bool(holder) and holder.get("pid") == os.getppid() \
        and holder.get("host") == socket.gethostname()


@contextlib.contextmanager
def hold_run(run_dir: str | os.PathLike, what: str, *, enabled: bool = True) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block: refused (`RunFolderBusy`) before the block
    runs when another process holds it; released however the block ends. `what` ("train",
    "evaluate", ...) goes into the record a refused writer is shown. The folder is
    created; one this call created and left empty is removed again."""
    if not enabled:
        yield
        return
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(run_dir, exc, kept=False) from None
    try:
        with _hold(run_dir, lock_path(run_dir), what, _WHY_FOLDER):
            yield
    finally:
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty: nothing was written


@contextlib.contextmanager
def hold_file(out: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the lock of one output file, `<out>.lock` beside it (`pretrain --out W.pt`
    writes W.pt, W.json and W.log), as `hold_run` holds a run folder's."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out.parent, exc, kept=False) from None
    with _hold(out, out.with_name(out.name + LOCK_NAME), what, _WHY_FILE):
        yield


@contextlib.contextmanager
def _hold(target: Path, path: Path, what: str, why: str) -> Iterator[None]:
    """The lock file `path` of `target` held for the block (re-entrant in a process)."""
    key = os.path.realpath(path)
    with _held_guard:
        entry = _held.get(key)
        if entry is not None:  # this process holds it already (train inside open_run)
            entry[1] += 1
    if entry is not None:
        try:
            yield
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    if _held_by_parent(path):
        yield
        return
    fd = _acquire(target, path, what, why)
    with _held_guard:
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _held_guard:
            _held.pop(key, None)
        _release(path, fd)
