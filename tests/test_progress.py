"""Progress in a log: plain lines, one per epoch, no carriage returns or escape codes."""

import os
import re
import subprocess
import sys
from pathlib import Path

from fmcnet import progress

REPO = Path(__file__).resolve().parents[1]


def test_not_interactive_without_terminals(monkeypatch, tmp_path):
    with open(tmp_path / "log", "w") as fh:
        assert not progress.interactive([fh])
    assert not progress.in_notebook()


def test_a_bar_in_a_log_prints_one_line_when_it_closes(capsys, monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    bar = progress.bar(range(4), desc="epoch 2/3", unit="step", leave=False, line=True)
    for i in bar:
        bar.set_postfix(loss=f"{4 - i:.3f}")
    progress.bar(range(3), desc="extract", leave=False).close()  # transient: silent
    out = capsys.readouterr().out
    assert re.fullmatch(r"epoch 2/3: 4/4 step in \d+\.\d s, loss=1\.000\n", out), out


def test_a_long_bar_in_a_log_prints_at_most_one_line_per_interval(capsys, monkeypatch):
    monkeypatch.setattr(progress, "interactive", lambda: False)
    clock = iter([0.0, 10.0, 61.0, 70.0, 125.0, 128.0, 130.0, 131.0])  # start, 6 updates, close
    monkeypatch.setattr(progress, "_now", lambda: next(clock))
    bar = progress.bar(total=6, desc="caching", unit="img")
    for _ in range(6):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "caching: 2/6 img", "caching: 4/6 img", "caching: 6/6 img"]


def test_training_to_a_file_logs_one_line_per_epoch(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "fmcnet", "train", "--profile", "smoke", "--out", str(tmp_path / "run"),
         "progress=true", "epochs=2", "steps_per_epoch=2", "trials=1", "tensorboard=false"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]
    log = out.stdout
    assert "\r" not in log and "\x1b[" not in log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["epoch 1/2", "epoch 2/2"], log
    assert all(re.search(r": 2/2 steps in \d+\.\d s, loss=\d", e) for e in epochs), epochs
