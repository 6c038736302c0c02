"""Exact resume after any interruption: Ctrl-C mid-step, during the end-of-epoch
checkpoint write, a second Ctrl-C, SIGKILL. Each resumed run is compared with an
uninterrupted one bit for bit (CPU, smoke profile, the tiny synthetic set)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fmcnet.checkpoints as checkpoints_mod
import fmcnet.step as step_mod
from fmcnet.checkpoints import CheckpointMismatch, load_checkpoint
from fmcnet.config import make_config
from fmcnet.train import train
from fmcnet.utils import FMCNetError, remove_orphans

REPO = Path(__file__).resolve().parents[1]
# two epochs of two steps, a checkpoint after each epoch, a metrics record per step
RUN = dict(epochs=2, steps_per_epoch=2, checkpoint_every=1, log_every=1)


def smoke(**kw):
    return make_config("smoke", **{**RUN, **kw})


@pytest.fixture(scope="module")
def straight(tmp_path_factory, synthetic_dataset):
    """The uninterrupted run every interrupted one must equal."""
    run = tmp_path_factory.mktemp("straight") / "run"
    train(smoke(keep_snapshots=True), run, dataset=synthetic_dataset, evaluate=False)
    return run, load_checkpoint(run / "checkpoints" / "last.pt"), _steps(run)


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["global_step"] for line in (run / "metrics.jsonl").open()]


def _assert_same_state(a: dict, b: dict) -> None:
    assert (a["global_step"], a["epoch"]) == (b["global_step"], b["epoch"])
    assert a["sampler"] == b["sampler"]
    for part in ("model", "optimizer", "disc_optimizer", "rng"):
        flat_a, flat_b = _flatten(a[part]), _flatten(b[part])
        assert flat_a.keys() == flat_b.keys(), part
        for key, value in flat_a.items():
            other = flat_b[key]
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, other), f"{part} {key} differs"
            else:
                assert value == other, f"{part} {key}: {value!r} != {other!r}"


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: obj}


def _resume_and_compare(run, straight, dataset):
    train(smoke(), run, dataset=dataset, evaluate=False, resume=True)
    _, want, want_steps = straight
    _assert_same_state(load_checkpoint(run / "checkpoints" / "last.pt"), want)
    assert _steps(run) == want_steps  # no record lost, none duplicated


def test_ctrl_c_mid_step_saves_the_completed_step_and_resumes_bit_for_bit(
    tmp_path, synthetic_dataset, straight, monkeypatch, capsys
):
    real_loss, calls = step_mod.fmcnet_loss, {"n": 0}

    def loss_then_ctrl_c(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # inside the forward pass of step 3: BN buffers already moved
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kw)

    monkeypatch.setattr(step_mod, "fmcnet_loss", loss_then_ctrl_c)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(smoke(), run, dataset=synthetic_dataset, evaluate=False)
    assert "finishing the current step" in capsys.readouterr().err
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    # the step in flight completed (BN buffers and all), then the run stopped
    assert (saved["global_step"], saved["epoch"], saved["sampler"]["position"]) == (3, 1, 1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    monkeypatch.setattr(step_mod, "fmcnet_loss", real_loss)
    _resume_and_compare(run, straight, synthetic_dataset)


@pytest.mark.parametrize("how", ["signal", "exception"])
def test_ctrl_c_during_the_epoch_end_checkpoint_write_neither_replays_nor_skips(
    tmp_path, synthetic_dataset, straight, monkeypatch, how
):
    """`signal`: a real SIGINT arrives while last.pt is written (the write completes).
    `exception`: a KeyboardInterrupt that no handler could hold (a second Ctrl-C, a
    non-main thread) aborts the write itself."""
    real_save, calls = checkpoints_mod.atomic_torch_save, {"n": 0}

    def interrupted_save(obj, path):
        calls["n"] += 1
        if calls["n"] == 1:
            if how == "exception":
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGINT)
        return real_save(obj, path)

    monkeypatch.setattr(checkpoints_mod, "atomic_torch_save", interrupted_save)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(smoke(), run, dataset=synthetic_dataset, evaluate=False)
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    # all of epoch 1's steps are in; whether its end-of-epoch work counts as done depends
    # on whether the write finished, and a resume redoes that work only
    assert saved["global_step"] == 2
    assert saved["epoch"] == (1 if how == "signal" else 0)
    monkeypatch.setattr(checkpoints_mod, "atomic_torch_save", real_save)
    _resume_and_compare(run, straight, synthetic_dataset)


def test_a_second_ctrl_c_stops_inside_the_step_and_saves_nothing(
    tmp_path, synthetic_dataset, monkeypatch, capsys
):
    real_loss = step_mod.fmcnet_loss

    def two_ctrl_c(*args, **kw):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kw)

    monkeypatch.setattr(step_mod, "fmcnet_loss", two_ctrl_c)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(smoke(), run, dataset=synthetic_dataset, evaluate=False)
    assert "interrupted inside a training step: nothing saved" in capsys.readouterr().err
    assert not (run / "checkpoints" / "last.pt").exists()
    # the half-run folder is not silently reused (--resume starts it again: the next test)
    with pytest.raises(FMCNetError, match="it stopped before its first checkpoint"):
        train(smoke(), run, dataset=synthetic_dataset, evaluate=False)
    # --resume where there is no run at all: nothing to resume
    with pytest.raises(FMCNetError, match=r"--resume: .*/empty holds no run \(no .*last.pt\); "
                                          r"there is nothing to resume"):
        train(smoke(), tmp_path / "empty", dataset=synthetic_dataset, evaluate=False,
              resume=True)


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(
    tmp_path, synthetic_dataset, straight, monkeypatch, capsys
):
    """It could be neither resumed ("no checkpoint (deleted?)") nor trained into ("already
    holds a run"). `train --out R --resume` now trains it again from step 0 -- the same
    run as an uninterrupted one, its stopped attempt's log replaced -- when its config.yaml
    is this configuration; a finished run whose checkpoints were deleted is still refused."""
    real_loss, calls = step_mod.fmcnet_loss, {"n": 0}

    def killed_in_step_2(*args, **kw):  # two Ctrl-C: stops inside step 2, saving nothing
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args, **kw)

    monkeypatch.setattr(step_mod, "fmcnet_loss", killed_in_step_2)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(smoke(log_every=1), run, dataset=synthetic_dataset, evaluate=False)
    monkeypatch.setattr(step_mod, "fmcnet_loss", real_loss)
    assert _steps(run) == [1] and not (run / "checkpoints" / "last.pt").exists()
    with pytest.raises(CheckpointMismatch, match=r"--resume: .* stopped before its first "
                                                 r"checkpoint with another configuration than "
                                                 r"this one:\n  - lr: its config.yaml has 0.1, "
                                                 r"this run has 0.2"):
        train(smoke(lr=0.2), run, dataset=synthetic_dataset, evaluate=False, resume=True)
    capsys.readouterr()
    _resume_and_compare(run, straight, synthetic_dataset)
    assert "stopped before its first checkpoint: training it again from step 0" in \
        capsys.readouterr().err
    # a finished run whose checkpoints were removed: nothing to resume, nothing restarted
    finished = tmp_path / "finished"
    finished.mkdir()
    for name in ("config.yaml", "results.json"):
        (finished / name).write_bytes((run / "config.yaml").read_bytes())
    with pytest.raises(FMCNetError, match=r"holds config.yaml, results.json but no checkpoint "
                                          r".*, its evaluation is there"):
        train(smoke(), finished, dataset=synthetic_dataset, evaluate=False, resume=True)


def test_resume_from_an_older_checkpoint_drops_the_newer_metrics(
    tmp_path, synthetic_dataset, straight
):
    """A kill after the last checkpoint: the steps since are trained (and logged) again,
    once. Simulated with the straight run's log and its epoch-1 snapshot as last.pt."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "metrics.jsonl"):
        (run / name).write_bytes((straight[0] / name).read_bytes())
    (run / "checkpoints" / "last.pt").write_bytes(
        (straight[0] / "checkpoints" / "epoch_001.pt").read_bytes())
    assert _steps(run) == [1, 2, 3, 4]
    _resume_and_compare(run, straight, synthetic_dataset)
    (resumed,) = [json.loads(line) for line in (run / "resumes.jsonl").open()]
    assert (resumed["epoch"], resumed["global_step"]) == (1, 2)
    assert resumed["changed"] == {"keep_snapshots": [True, False]}  # the one key that changed


def test_sigkill_during_a_checkpoint_write_leaves_the_old_or_the_new_file(tmp_path):
    """A child rewrites a checkpoint in a loop and is killed with SIGKILL at several
    moments: the file always loads (one of the two versions), and the temporary file the
    killed writer left is removed as an orphan."""
    path = tmp_path / "last.pt"
    script = textwrap.dedent(f"""
        import torch
        from fmcnet.checkpoints import save_checkpoint
        i = 0
        while True:
            i += 1
            save_checkpoint(__import__("pathlib").Path({str(path)!r}), {{
                "model": {{"w": torch.full((2_000_000,), float(i))}}, "config": {{}},
                "global_step": i}})
            print(i, flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for delay in (0.05, 0.23):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                env=env, text=True)
        proc.stdout.readline()  # one checkpoint is complete
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = load_checkpoint(path)
        assert torch.equal(state["model"]["w"], torch.full((2_000_000,), float(state["global_step"])))
        remove_orphans(tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_resume_refuses_a_changed_experiment_before_touching_data(straight, monkeypatch):
    run = straight[0]
    config_before = (run / "config.yaml").read_text()

    def no_data(cfg):
        raise AssertionError("the dataset was built before the configuration was checked")

    import fmcnet.data

    monkeypatch.setattr(fmcnet.data, "dataset_for_config", no_data)
    changed = smoke(lambda1=5.0, gan=False, weight_decay=0.1, optimizer="adam")
    with pytest.raises(CheckpointMismatch) as info:
        train(changed, run, evaluate=False, resume=True)
    message = str(info.value)
    for line in ("lambda1: checkpoint has 0.5, the resumed run has 5.0",
                 "gan: checkpoint has True, the resumed run has False",
                 "weight_decay: checkpoint has 0.0005, the resumed run has 0.1",
                 "optimizer: checkpoint has 'sgd', the resumed run has 'adam'"):
        assert line in message
    assert message.count("\n  - ") == 4  # every difference, nothing else
    # epochs may grow, not fall below the epochs already completed
    with pytest.raises(CheckpointMismatch, match="completed 2 epochs; epochs=1"):
        train(smoke(epochs=1), run, evaluate=False, resume=True)
    assert (run / "config.yaml").read_text() == config_before  # the history is not rewritten


def test_every_key_but_the_documented_safe_ones_must_match_on_resume():
    from fmcnet.config import Config

    keys = set(checkpoints_mod.resume_keys())
    safe = set(checkpoints_mod.RESUME_SAFE_KEYS)
    fields = {f for f in Config.__dataclass_fields__}
    assert keys | safe == fields and not keys & safe and safe <= fields
    assert {"lambda1", "lambda2", "gan", "dc", "optimizer", "weight_decay", "momentum", "lr",
            "erase_prob", "pad", "seed", "num_identities", "center_loss_space", "fc_loss_space",
            "cpu_amp"} <= keys
    doc = (REPO / "docs" / "reliability.md").read_text()
    for key in safe:  # the allow-list is documented, key by key
        assert f"`{key}`" in doc, key


def test_a_checkpoint_from_before_a_key_reads_as_the_code_that_wrote_it(tmp_path):
    """generator_loss was added when -log D(G) was fixed in code; its default became Eq. 12's
    minimax later. A checkpoint without the key trained the non-saturating loss: resuming it
    under minimax must be refused, under nonsaturating allowed."""
    from fmcnet.config import plain

    cfg = make_config("smoke")
    assert cfg.generator_loss == "minimax"  # the default now differs from the old behaviour
    saved = {k: plain(getattr(cfg, k)) for k in cfg.__dataclass_fields__ if k != "generator_loss"}
    assert checkpoints_mod.saved_value(saved, "generator_loss") == "nonsaturating"
    ckpt, keys = {"config": saved}, checkpoints_mod.resume_keys()
    with pytest.raises(CheckpointMismatch, match="generator_loss: checkpoint has 'nonsaturating'"):
        checkpoints_mod.check_config(ckpt, cfg, tmp_path / "last.pt", keys)
    checkpoints_mod.check_config(ckpt, make_config("smoke", generator_loss="nonsaturating"),
                                 tmp_path / "last.pt", keys)
