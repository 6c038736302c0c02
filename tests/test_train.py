"""The training loop: it learns, resumes exactly, and fails loudly and safely."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fmcnet.step as step_mod
import fmcnet.train as train_mod
from fmcnet import checkpoints, optim, run_folder
from fmcnet.checkpoints import CheckpointMismatch, load_checkpoint, load_model_from_checkpoint
from fmcnet.config import make_config
from fmcnet.optim import lr_factor
from fmcnet.train import NonFiniteLoss, train
from fmcnet.utils import FMCNetError

REPO = Path(__file__).resolve().parents[1]


def smoke(**kw):
    return make_config("smoke", **kw)


def test_lr_schedule_warms_up_then_steps_down():
    cfg = make_config("paper")
    spe = 100
    assert lr_factor(cfg, 0, spe) == pytest.approx(1 / 1000)
    assert lr_factor(cfg, 499, spe) == pytest.approx(0.5)
    assert lr_factor(cfg, 10 * spe, spe) == 1.0
    assert lr_factor(cfg, 20 * spe, spe) == pytest.approx(0.1)
    assert lr_factor(cfg, 50 * spe, spe) == pytest.approx(0.01)


def test_smoke_run_learns_and_writes_its_folder(tmp_path, synthetic_dataset, capsys):
    cfg = smoke(epochs=6, steps_per_epoch=4, log_every=4, lr=0.02, checkpoint_every=3,
                keep_snapshots=True)
    result = train(cfg, tmp_path / "run", dataset=synthetic_dataset)
    assert "random init (pretrained=false)" in capsys.readouterr().out
    run = tmp_path / "run"
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 6 and history[-1]["global_step"] == 24
    first, last = history[0]["loss/id"], history[-1]["loss/id"]
    assert last < first, f"identity loss did not fall: {first:.3f} -> {last:.3f}"
    assert {"lr", "images_per_s", "loss/total"} <= set(history[0])
    assert {"omega/v_specific", "omega/i_specific", "disc_acc"} <= set(history[0])
    assert {"hinge/shs", "hinge/sps", "hinge/dc", "hinge/mc"} <= set(history[0])
    assert not any(k.startswith("loss/hinge") for k in history[0])
    assert (run / "config.yaml").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch_003.pt", "epoch_006.pt", "last.pt"]
    results = json.loads((run / "results.json").read_text())
    assert results["dataset"] == "synthetic" and results["profile"] == "smoke"
    assert set(results["settings"]) == {"all/single", "all/multi", "indoor/single", "indoor/multi"}
    assert 0 <= results["settings"]["all/single"]["R1"] <= 100
    assert "last epoch" in results["selection"]
    assert results["pretrained"] == "random"
    assert results["features_setting"] == "all/single"
    assert set(results["features"]) == {"shared", "specific", "fused", "specific_real",
                                        "generated"}
    assert results["features"]["fused"]["R1"] == pytest.approx(
        results["settings"]["all/single"]["R1"], abs=1e-3)
    assert result.results == results


def test_results_name_the_commit_training_started_from(tmp_path, synthetic_dataset, monkeypatch):
    """A commit made while a run trains (a sweep's working tree moves on) is not the code
    that trained it: results.json names the commit of the start."""
    last = tmp_path / "run" / "checkpoints" / "last.pt"

    def commit(default="unknown"):  # the tree moves on once training has saved a checkpoint
        return "def5678-dirty" if last.exists() else "abc1234"

    monkeypatch.setattr(train_mod, "git_commit", commit)
    monkeypatch.setattr("fmcnet.utils.git_commit", commit)
    train(smoke(epochs=1, steps_per_epoch=2), tmp_path / "run", dataset=synthetic_dataset)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["commit"] == "abc1234"


def test_paper_profile_stops_before_training_without_imagenet_weights(tmp_path, synthetic_root):
    """The paper starts from ImageNet weights: without them nothing is loaded or trained,
    and the CLI says in one line which file torchvision looks for, where, and the way out."""
    torch_home = tmp_path / "torch"  # an empty torch hub cache
    proc = subprocess.run(
        [sys.executable, "-m", "fmcnet", "train", "--dataset", "sysu", "--root",
         str(synthetic_root), "--profile", "paper", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "TORCH_HOME": str(torch_home)},
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: pretrained=true")
    assert "resnet50-" in lines[0] and str(torch_home / "hub" / "checkpoints") in lines[0]
    assert "pretrained=false" in lines[0]
    assert not (tmp_path / "run").exists()


def test_gradient_clipping_leaves_the_discriminators_out():
    """grad_clip bounds the network's gradient norm; D's gradients are neither counted nor
    scaled (they belong to D's own optimizer)."""
    from fmcnet.model import FMCNet

    torch.manual_seed(0)
    model = FMCNet.from_config(smoke(), num_classes=4).train()
    groups = model.parameter_groups()
    main = groups["pretrained"] + groups["new"]
    g = torch.Generator().manual_seed(1)
    x_v, x_i = (torch.randn(4, 3, 32, 16, generator=g) for _ in range(2))
    y = torch.tensor([0, 0, 1, 1])

    def grads_after_step(clip):  # LR 0: the weights never change between the two calls
        step = step_mod.TrainStep(
            model, smoke(grad_clip=clip), torch.optim.SGD(main, lr=0.0),
            torch.optim.SGD(groups["discriminator"], lr=0.0), device=torch.device("cpu"))
        step(x_v, x_i, y, y)
        return ([p.grad.clone() for p in main if p.grad is not None],
                [p.grad.clone() for p in groups["discriminator"]])

    main_free, d_free = grads_after_step(None)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in main_free]))
    main_clipped, d_clipped = grads_after_step(float(norm) / 4)
    clipped = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(t) for t in main_clipped]))
    assert float(clipped) == pytest.approx(float(norm) / 4, rel=1e-4)
    assert all(float(t.abs().sum()) > 0 for t in d_free)
    for free, kept in zip(d_free, d_clipped):
        torch.testing.assert_close(kept, free, rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_disc_optimizer_trains_exactly_the_discriminators_with_the_chosen_rule(kind):
    """`disc_optimizer`: D's parameters, and only they, go to D's optimizer; under Adam the
    first step moves every D weight with a gradient by its LR (Adam's normalised step),
    under SGD by LR x gradient."""
    from fmcnet.config import ConfigError
    from fmcnet.model import FMCNet

    torch.manual_seed(0)
    cfg = smoke(disc_optimizer=kind, disc_lr=0.01, weight_decay=0.0)
    model = FMCNet.from_config(cfg, num_classes=4).train()
    main, disc = optim.build_optimizers(model, cfg)
    d_params = model.parameter_groups()["discriminator"]
    assert [id(p) for g in disc.param_groups for p in g["params"]] == [id(p) for p in d_params]
    assert not {id(p) for p in d_params} & {id(p) for g in main.param_groups for p in g["params"]}
    assert isinstance(disc, torch.optim.Adam if kind == "adam" else torch.optim.SGD)
    before = [p.detach().clone() for p in d_params]
    g = torch.Generator().manual_seed(1)
    x_v, x_i = (torch.randn(4, 3, 32, 16, generator=g) for _ in range(2))
    y = torch.tensor([0, 0, 1, 1])
    step_mod.TrainStep(model, cfg, main, disc, device=torch.device("cpu"))(x_v, x_i, y, y)
    for p, old in zip(d_params, before):
        moved = (p.detach() - old).abs()
        if kind == "adam":
            nonzero = p.grad.abs() > 1e-4  # Adam: lr * g / (|g| + 1e-8)
            assert bool(nonzero.any())
            torch.testing.assert_close(moved[nonzero], torch.full_like(moved[nonzero], 0.01),
                                       rtol=1e-3, atol=0.0)
        else:
            torch.testing.assert_close(moved, 0.01 * p.grad.abs(), rtol=1e-4, atol=1e-9)
    with pytest.raises(ConfigError, match="disc_optimizer"):
        smoke(disc_optimizer="rmsprop")


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, synthetic_dataset):
    cfg = smoke(epochs=1, steps_per_epoch=1)
    train(cfg, tmp_path / "run", dataset=synthetic_dataset, evaluate=False)
    with pytest.raises(FMCNetError, match="--resume"):
        train(cfg, tmp_path / "run", dataset=synthetic_dataset, evaluate=False)


@pytest.mark.parametrize("marker", ["config.yaml", "metrics.jsonl", "results.json",
                                    "checkpoints"])
def test_a_folder_holding_any_run_file_is_refused_before_data(tmp_path, monkeypatch, marker):
    """E.g. a run whose checkpoints/ were deleted to save space: its results.json,
    config.yaml and metrics.jsonl are not replaced."""
    import fmcnet.data

    def no_data(cfg):
        raise AssertionError("the dataset was built before the folder was checked")

    monkeypatch.setattr(fmcnet.data, "dataset_for_config", no_data)
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)  # an evaluation output alone is not a run
    run_folder.refuse_existing_run(run)
    if marker == "checkpoints":
        (run / marker).mkdir()
    else:
        (run / marker).write_text("{}")
    # config.yaml without a checkpoint: a run stopped before its first one (restartable)
    advice = (r"it stopped before its first checkpoint \(no checkpoints/last.pt\): pass "
              r"--resume to train it again from step 0" if marker == "config.yaml" else
              r"it has no checkpoints/last.pt to resume from")
    with pytest.raises(FMCNetError, match=rf"already holds a run \({marker}\); {advice}"):
        train(smoke(), run)
    assert sorted(p.name for p in run.iterdir()) == sorted(["eval", marker])


def _small_checkpoint(path):
    state = {
        "model": {"w": torch.arange(6.0)},
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(6)}},
                      "param_groups": [{"lr": 0.1, "params": [0]}]},
        "sampler": {"epoch": 1, "position": 2, "seed": 0},
        "config": {"backbone": "resnet18"},
        "epoch": 1, "global_step": 5,
    }
    checkpoints.save_checkpoint(path, state)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("flip", ["weights", "optimizer state", "sampler position", "config"])
def test_the_checkpoint_hash_covers_the_whole_checkpoint(tmp_path, flip):
    path = tmp_path / "last.pt"
    state = _small_checkpoint(path)
    assert load_checkpoint(path)["global_step"] == 5
    if flip == "weights":
        state["model"]["w"][3] += 1
    elif flip == "optimizer state":
        state["optimizer"]["state"][0]["momentum_buffer"][0] = 1.0000001
    elif flip == "sampler position":
        state["sampler"]["position"] = 1
    else:
        state["config"]["backbone"] = "resnet50"
    torch.save(state, path)  # the old hash kept: what a flipped byte on disk amounts to
    with pytest.raises(CheckpointMismatch, match="fails its content hash"):
        load_checkpoint(path)


def test_an_unreadable_checkpoint_is_explained_without_torch_advice(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "x": Path("/")}, path)  # a pickled object
    with pytest.raises(CheckpointMismatch) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value)
    assert "never contains" in str(info.value) and "evil.pt" in str(info.value)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_identity_warm_up_ramps_the_alignment_terms_in_training(
    tmp_path, synthetic_dataset, monkeypatch, weight
):
    """`id_warmup_epochs` / `align_weight`: the loop hands the loss the ramp of
    `align_factor` up to `align_weight`, step by step, and the metrics records carry it."""
    real_loss, weights = step_mod.fmcnet_loss, []

    def recorded(out, y_v, y_i, cfg, align_weight=1.0):
        weights.append(align_weight)
        return real_loss(out, y_v, y_i, cfg, align_weight=align_weight)

    monkeypatch.setattr(step_mod, "fmcnet_loss", recorded)
    cfg = smoke(epochs=3, steps_per_epoch=2, log_every=1, id_warmup_epochs=2,
                align_weight=weight)
    train(cfg, tmp_path / "run", dataset=synthetic_dataset, evaluate=False)
    assert weights == [weight * w for w in (0.0, 0.25, 0.5, 0.75, 1.0, 1.0)]
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["align_weight"] for r in records] == weights


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path, synthetic_dataset, monkeypatch
):
    real_loss = step_mod.fmcnet_loss
    calls = {"n": 0}

    def poisoned(out, y_v, y_i, cfg, **kw):
        total, terms = real_loss(out, y_v, y_i, cfg, **kw)
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 3, second step
            terms = {**terms, "id": terms["id"] * float("nan")}
            total = total * float("nan")
        return total, terms

    monkeypatch.setattr(step_mod, "fmcnet_loss", poisoned)
    cfg = smoke(epochs=4, steps_per_epoch=2, log_every=1, checkpoint_every=1)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss) as caught:
        train(cfg, run, dataset=synthetic_dataset, evaluate=False)
    assert str(caught.value) == (
        f"loss term 'id' became nan at step 5 (epoch 3); stopping. The last checkpoint, "
        f"{run / 'checkpoints' / 'last.pt'} (epoch 2, global step 4), was written before it; "
        "a --resume from it trains the same steps again, so change what made the loss diverge "
        "(e.g. a lower lr) and train into another --out")
    ckpt = load_checkpoint(run / "checkpoints/last.pt")
    assert ckpt["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (run / ".lock").exists()  # the lock goes with the error


def test_nan_loss_before_the_first_checkpoint_says_none_was_written(
    tmp_path, synthetic_dataset, monkeypatch
):
    """The message claimed "the last good checkpoint stays at .../last.pt" when none had
    been written."""
    real_loss = step_mod.fmcnet_loss

    def poisoned(out, y_v, y_i, cfg, **kw):
        total, terms = real_loss(out, y_v, y_i, cfg, **kw)
        return total * float("inf"), {**terms, "id": terms["id"] * float("inf")}

    monkeypatch.setattr(step_mod, "fmcnet_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss) as caught:
        train(smoke(epochs=4, steps_per_epoch=2, log_every=1, checkpoint_every=2), run,
              dataset=synthetic_dataset, evaluate=False)
    assert str(caught.value) == (
        f"loss term 'id' became inf at step 1 (epoch 1); stopping. No checkpoint was "
        f"written (the first comes at the end of epoch 2): {run} holds the configuration "
        "and the metrics of the steps trained, nothing to continue from; change what made "
        "the loss diverge (e.g. a lower lr) and train into another --out, or delete the "
        "folder and train into it again")
    assert not (run / "checkpoints" / "last.pt").exists()


def test_a_full_disk_while_the_logs_are_appended_names_the_file(tmp_path):
    """metrics.jsonl and resumes.jsonl are appended to, not written atomically: a full disk
    there named no path. /dev/full answers every write with ENOSPC, as a full disk does."""
    from fmcnet.config import make_config as config

    (tmp_path / "metrics.jsonl").symlink_to("/dev/full")
    with pytest.raises(FMCNetError) as caught:
        run_folder.append_metrics(tmp_path, {"global_step": 1})
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'metrics.jsonl'}: the disk holding {tmp_path} is full (No "
        "space left on device); free space there, or write elsewhere (--out for runs, "
        "FMCNET_DATA for data and caches), and run again")
    (tmp_path / "resumes.jsonl").symlink_to("/dev/full")
    ckpt = {"config": config("smoke").to_dict(), "epoch": 1, "global_step": 2}
    with pytest.raises(FMCNetError, match=rf"^cannot write {tmp_path / 'resumes.jsonl'}: the "
                                          r"disk holding .* is full"):
        run_folder.record_resume(tmp_path, ckpt, config("smoke", epochs=3))


def test_mismatched_checkpoint_fails_loudly(tmp_path, synthetic_dataset):
    cfg = smoke(epochs=1, steps_per_epoch=1)
    train(cfg, tmp_path / "run", dataset=synthetic_dataset, evaluate=False)
    path = tmp_path / "run/checkpoints/last.pt"
    model, saved = load_model_from_checkpoint(path, cfg, synthetic_dataset)
    assert saved.backbone == "resnet18"
    with pytest.raises(CheckpointMismatch, match=r"backbone: checkpoint has 'resnet18'.*resnet34"):
        load_model_from_checkpoint(path, smoke(backbone="resnet34"), synthetic_dataset)
    with pytest.raises(CheckpointMismatch, match="fusion"):
        load_model_from_checkpoint(path, smoke(fusion="concat"), synthetic_dataset)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointMismatch, match="truncated.pt could not be read"):
        load_checkpoint(truncated)


def test_corrupt_image_is_named_by_the_cli(tmp_path):
    from fixtures import make_sysu_tree

    root = make_sysu_tree(tmp_path / "SYSU-MM01", train_ids=[1, 2], val_ids=[3], test_ids=[4, 5])
    bad = sorted((root / "cam1").rglob("*.jpg"))[0]
    bad.write_bytes(b"not a jpeg")
    proc = subprocess.run(
        [sys.executable, "-m", "fmcnet", "train", "--dataset", "sysu", "--root", str(root),
         "--profile", "smoke", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


# The CLI under torchrun, with train() wrapped so that each rank saves its final weights.
DDP_LAUNCHER = """
import os, sys, torch
import fmcnet.train
from fmcnet.cli import main
real_train = fmcnet.train.train
def train_and_save(*args, **kwargs):
    result = real_train(*args, **kwargs)
    params = {n: p.detach().cpu() for n, p in result.model.named_parameters()}
    torch.save(params, os.path.join(sys.argv[1], f"params_rank{os.environ['RANK']}.pt"))
    return result
fmcnet.train.train = train_and_save
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path, synthetic_root):
    out = tmp_path / "ddp"
    launcher = tmp_path / "launch.py"
    launcher.write_text(DDP_LAUNCHER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(launcher), str(tmp_path), "train", "--dataset", "sysu", "--root",
         str(synthetic_root), "--profile", "smoke", "--out", str(out), "trials=1"],
        capture_output=True, text=True, cwd=REPO, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    # only rank 0 writes: one record per epoch (2 smoke epochs x 1 logging interval each)
    assert len(lines) == 2
    assert json.loads((out / "results.json").read_text())["settings"]
    # After 4 steps both ranks hold the same weights -- the discriminators included, which
    # live outside DDP, start from per-rank seeds and are synchronised by hand.
    ranks = [torch.load(tmp_path / f"params_rank{r}.pt") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    disc = [k for k in ranks[0] if "discriminator" in k]
    assert len(disc) == 4  # weight and bias of D_{V->I} and D_{I->V}
    for k in ranks[0]:
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0.0, atol=1e-6, msg=k)


@pytest.mark.parametrize("threads", [0, 1])
def test_cpu_threads_sets_torchs_threads_for_training(tmp_path, synthetic_dataset, monkeypatch,
                                                      threads):
    """`cpu_threads` > 0 sets torch's intra-op threads on the CPU; 0 leaves torch's default."""
    calls = []
    monkeypatch.setattr(train_mod.torch, "set_num_threads", calls.append)
    cfg = smoke(epochs=1, steps_per_epoch=1, cpu_threads=threads, device="cpu")
    train(cfg, tmp_path / "run", dataset=synthetic_dataset, evaluate=False)
    assert calls == ([threads] if threads else [])
