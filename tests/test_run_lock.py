"""One writer per run folder (`fmcnet.run_lock`): a second trainer or evaluation is refused
before any work, naming the holder; a killed holder's lock is taken over; the lock goes
however the holder ends."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from fmcnet import run_folder, sweep
from fmcnet.cli import main
from fmcnet.config import make_config
from fmcnet.pretrain import PretrainRecipe, pretrain
from fmcnet.run_lock import RunFolderBusy, hold_run, read_holder
from fmcnet.train import train

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _wait_for_lock(run: Path, pid: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (read_holder(run) or {}).get("pid") != pid:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first trainer never took the lock"
        time.sleep(0.1)


def test_a_second_trainer_is_refused_before_any_work_and_ctrl_c_releases_the_lock(
        tmp_path, synthetic_root, synthetic_dataset, capsys):
    """Two `train --out SAME` started together both exited 0, their metrics interleaved
    and one's checkpoint and results replaced by the other's."""
    run = tmp_path / "run"
    argv = ["train", "--dataset", "sysu", "--root", str(synthetic_root), "--profile", "smoke",
            "--out", str(run), "epochs=1000", "steps_per_epoch=1", "trials=1", "progress=false"]
    first = subprocess.Popen([sys.executable, "-m", "fmcnet", *argv], cwd=REPO, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lock(run, first.pid, first)
        holder = read_holder(run)
        assert holder["command"] == "python -m fmcnet " + " ".join(argv)
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err == (
            f"error: {run} is being written by another process: train by pid {first.pid} on "
            f"host {socket.gethostname()} since {holder['since']} (`{holder['command']}`), "
            f"which holds {run / '.lock'}. A run folder has one writer at a time (two would "
            "interleave their metrics and replace each other's checkpoints and results): wait "
            "for it to end or stop it, or write elsewhere (another --out)\n")
        # a resume, an evaluation and the notebooks' clear_run of that folder: refused too
        with pytest.raises(RunFolderBusy, match=f"train by pid {first.pid}"):
            train(make_config("smoke"), run, resume=True, dataset=synthetic_dataset)
        assert main(["evaluate", "--run", str(run)]) == 1
        assert f"train by pid {first.pid}" in capsys.readouterr().err
        with pytest.raises(RunFolderBusy):
            run_folder.clear_run(run)
        # Ctrl-C: the first trainer saves its step and stops; its lock goes with it
        while not (run / "metrics.jsonl").exists():
            assert first.poll() is None, first.communicate()[1][-3000:]
            time.sleep(0.1)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 130, first.communicate()[1][-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (run / ".lock").exists()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["global_step"] for r in records]
    assert steps == sorted(set(steps))  # one writer: every step once


def _holder(run: Path, how: str = "hold_run", what: str = "train") -> subprocess.Popen:
    """A process that holds `run`'s lock (`hold_file`: the file's), as train would, until
    it is killed."""
    code = textwrap.dedent(f"""
        import time
        from fmcnet.run_lock import {how}
        with {how}({str(run)!r}, {what!r}):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_killed_holders_lock_is_reported_and_taken_over(tmp_path, synthetic_dataset, capsys):
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        with pytest.raises(RunFolderBusy, match=f"train by pid {holder.pid} on host"):
            train(make_config("smoke", epochs=1, steps_per_epoch=1), run,
                  dataset=synthetic_dataset, evaluate=False)
    finally:
        holder.send_signal(signal.SIGKILL)  # no `finally` of its own runs
        holder.wait()
    left = read_holder(run)
    assert left["pid"] == holder.pid  # the kill left the file behind
    train(make_config("smoke", epochs=1, steps_per_epoch=1), run, dataset=synthetic_dataset,
          evaluate=False)
    err = capsys.readouterr().err
    assert (f"note: {run / '.lock'} was left by train by pid {holder.pid} on host "
            f"{socket.gethostname()} since {left['since']}") in err
    assert "ended without releasing it (killed?); taking the lock over" in err
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / ".lock").exists()


def _record(run: Path, **fields) -> None:
    run.mkdir(parents=True, exist_ok=True)
    record = {"pid": 1, "host": socket.gethostname(), "since": "2024-01-01T00:00:00+0000",
              "what": "train", "command": "python -m fmcnet train --out x", **fields}
    (run / ".lock").write_text(json.dumps(record))


def test_a_lock_file_naming_a_live_dead_or_remote_holder(tmp_path, capsys):
    """A lock file whose flock is free: its holder is gone when its pid is (taken over),
    may still write when its pid runs (a file system without locks, or a reused pid) or
    when it is another host's (refused, saying what to check and what to delete)."""
    run = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        _record(run, pid=sleeper.pid)
        with pytest.raises(RunFolderBusy, match=rf"that pid is running but does not hold the "
                                                rf"lock .* If pid {sleeper.pid} is no fmcnet "
                                                rf"run, delete {run / '.lock'} and run again"):
            with hold_run(run, "train"):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    _record(run, pid=sleeper.pid)  # now a dead pid: taken over, said so
    with hold_run(run, "evaluate"):
        assert read_holder(run)["pid"] == os.getpid()
        assert read_holder(run)["what"] == "evaluate"
    assert f"was left by train by pid {sleeper.pid}" in capsys.readouterr().err
    assert not (run / ".lock").exists()
    _record(run, host="another-host")
    with pytest.raises(RunFolderBusy, match=r"another host, which this machine cannot check"):
        with hold_run(run, "train"):
            pass
    assert json.loads((run / ".lock").read_text())["host"] == "another-host"  # untouched


def test_the_lock_is_reentrant_released_on_errors_and_leaves_no_empty_folder(tmp_path):
    run = tmp_path / "new"
    with pytest.raises(ValueError):
        with hold_run(run, "train"):
            with hold_run(run, "evaluate"):  # the same process: train inside open_run
                assert read_holder(run)["what"] == "train"
            assert (run / ".lock").exists()
            raise ValueError("an error in the block")
    assert not run.exists()  # created for the lock, nothing written: removed again
    with pytest.raises(KeyboardInterrupt):
        with hold_run(tmp_path, "train"):
            raise KeyboardInterrupt
    assert not (tmp_path / ".lock").exists() and tmp_path.exists()


def test_a_second_sweep_or_pretrain_into_the_same_place_is_refused(tmp_path):
    """A sweep holds its folder of runs (each run's train holds the run's folder); pretrain
    holds `<out>.lock` for the weights, their record and log."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"runner": "train", "out": str(tmp_path / "sweep"),
                                    "profile": "smoke", "rows": {"a": {}}}))
    holder = _holder(tmp_path / "sweep", what="sweep")
    try:
        with pytest.raises(RunFolderBusy, match=rf"^{tmp_path / 'sweep'} is being written by "
                                                rf"another process: sweep by pid {holder.pid} "):
            sweep.run_sweep(spec, progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "sweep" / "a").exists()  # nothing trained
    out = tmp_path / "weights" / "standin.pt"
    holder = _holder(out, how="hold_file", what="pretrain")
    try:
        with pytest.raises(RunFolderBusy) as caught:
            pretrain(PretrainRecipe.smoke(), out)
    finally:
        holder.kill()
        holder.wait()
    assert str(caught.value).startswith(
        f"{out} is being written by another process: pretrain by pid {holder.pid} ")
    assert (f"which holds {out}.lock. A file has one writer at a time (two would replace each "
            "other's output and its record): wait for it to end") in str(caught.value)
    assert sorted(p.name for p in out.parent.iterdir()) == ["standin.pt.lock"]  # left by the kill


def test_a_rank_trains_under_its_parents_lock_and_no_one_elses(tmp_path, monkeypatch):
    """`cpu_ranks` > 1: the parent holds the run's lock and names it to the ranks it starts
    (FMCNET_RUN_LOCK); a rank enters under it. Naming the lock is not enough: a process
    whose parent is not the holder is refused as any second writer is."""
    run = tmp_path / "run"
    rank = textwrap.dedent(f"""
        from fmcnet.run_lock import hold_run
        with hold_run({str(run)!r}, "train"):
            print("rank entered", flush=True)
    """)
    parent = textwrap.dedent(f"""
        import os, subprocess, sys
        from fmcnet.run_lock import PARENT_LOCK_ENV, hold_run
        with hold_run({str(run)!r}, "train"):
            env = {{**os.environ, PARENT_LOCK_ENV: os.path.join({str(run)!r}, ".lock")}}
            sys.exit(subprocess.run([sys.executable, "-c", {rank!r}], env=env).returncode)
    """)
    done = subprocess.run([sys.executable, "-c", parent], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "rank entered\n", done.stderr[-3000:]
    holder = _holder(run)  # not this process's parent
    try:
        monkeypatch.setenv("FMCNET_RUN_LOCK", str(run / ".lock"))
        with pytest.raises(RunFolderBusy, match=f"train by pid {holder.pid}"):
            with hold_run(run, "train"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_an_evaluation_written_elsewhere_reads_a_run_another_process_holds(
        tmp_path, synthetic_root, synthetic_dataset, capsys):
    """`evaluate --run R --out F` writes nothing into R, so R's writer does not stop it (it
    was refused and told to write elsewhere, which it did); without --out it files its
    results under R and is refused."""
    run = tmp_path / "run"
    train(make_config("smoke", dataset="sysu", data_root=str(synthetic_root), epochs=1,
                      steps_per_epoch=1), run, dataset=synthetic_dataset, evaluate=False)
    holder = _holder(run)
    try:
        assert main(["evaluate", "--run", str(run), "--out", str(tmp_path / "elsewhere"),
                     "--trials", "1"]) == 0
        assert (tmp_path / "elsewhere" / "results.json").is_file()
        assert not (run / "evaluations").exists()
        assert main(["evaluate", "--run", str(run)]) == 1
        assert f"train by pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
