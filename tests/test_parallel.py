"""`cpu_ranks`: data-parallel training in several CPU processes, started by `train()`."""

import json

import pytest
import torch

from fmcnet.config import make_config
from fmcnet.parallel import run_cpu_ranks, wants_cpu_ranks
from fmcnet.train import train
from fmcnet.utils import FMCNetError


def test_cpu_ranks_apply_only_to_a_cpu_run_outside_a_launch(monkeypatch):
    cfg = make_config("smoke", cpu_ranks=2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert wants_cpu_ranks(cfg, torch.device("cpu"))
    assert not wants_cpu_ranks(cfg, torch.device("cuda"))
    assert not wants_cpu_ranks(make_config("smoke"), torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "2")  # already one rank of torchrun: never nested
    assert not wants_cpu_ranks(cfg, torch.device("cpu"))


def test_two_cpu_ranks_train_one_run(tmp_path):
    cfg = make_config("smoke", backbone_width=16, cpu_ranks=2, cpu_threads=1, log_every=1,
                      trials=1)
    seen = []
    # the parent holds the run folder's lock; the ranks train under it, not refusing
    # themselves (fmcnet.run_lock), and it goes when the run ends
    result = train(cfg, tmp_path / "run", callback=seen.append)
    assert not (tmp_path / "run" / ".lock").exists()
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    steps = cfg.epochs * cfg.steps_per_epoch
    # one writer: every step once, and the caller's callback saw each record
    assert [r["global_step"] for r in records] == list(range(1, steps + 1))
    assert [r["global_step"] for r in seen] == list(range(1, steps + 1))
    assert result.results["settings"]["all/single"]["R1"] >= 0
    assert "cpu_ranks: 2" in (tmp_path / "run" / "config.yaml").read_text()
    # the parent returns the trained weights, as train() does in one process
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    for name, value in result.model.state_dict().items():
        torch.testing.assert_close(value, saved["model"][name])


def _failing_rank(cfg, run_dir, *, resume, evaluate):  # module level: spawn imports it
    raise FMCNetError("this rank fails on purpose")


def test_a_failed_rank_says_whether_a_checkpoint_was_written(tmp_path, capfd):
    """It said "<run> keeps its last checkpoint" when none had been written."""
    cfg = make_config("smoke", cpu_ranks=2, cpu_threads=1)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FMCNetError) as caught:
        run_cpu_ranks(cfg, run, _failing_rank, resume=False, evaluate=False)
    assert str(caught.value).endswith(f"; no checkpoint was written in {run}")
    assert "error (rank 1): this rank fails on purpose" in capfd.readouterr().err
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"a checkpoint of an earlier epoch")
    with pytest.raises(FMCNetError) as caught:
        run_cpu_ranks(cfg, run, _failing_rank, resume=True, evaluate=False)
    assert str(caught.value).endswith(f"; {run / 'checkpoints' / 'last.pt'} keeps the last "
                                      "checkpoint")
