"""TensorBoard event files: the metrics records, key for key, and nothing when switched off."""

import json

import pytest

from fmcnet import tensorboard_log
from fmcnet.config import make_config
from fmcnet.tensorboard_log import TensorBoardLog, read_scalars, scalars
from fmcnet.train import train

pytest.importorskip("tensorboard", reason="the TensorBoard files need the tensorboard package")


def _events(run):
    return sorted(p.name for p in run.glob("events.out.tfevents.*"))


def test_scalars_keep_every_numeric_key_but_the_steps():
    record = {"epoch": 1, "step": 2, "global_step": 2, "loss/total": 1.5, "lr": 1e-3,
              "hinge/dc": 0.25, "omega/sff/w/1": 0.5, "disc_acc": 1, "images_per_s": float("nan"),
              "note": "text", "flag": True}
    assert scalars(record) == {"loss/total": 1.5, "lr": 1e-3, "hinge/dc": 0.25,
                               "omega/sff/w/1": 0.5, "disc_acc": 1.0}


def test_a_run_writes_its_metrics_records_as_tensorboard_scalars(tmp_path, synthetic_root):
    from fmcnet.data.sysu import load_sysu

    cfg = make_config("smoke", epochs=2, steps_per_epoch=2, log_every=1, validate=True)
    run = tmp_path / "run"
    train(cfg, run, dataset=load_sysu(synthetic_root, trials=1, validate=True), evaluate=False)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curves = read_scalars(run)
    # a key the trainer adds (hinge/*, omega/*) needs no edit in the writer: all of them come
    expected = set().union(*(scalars(r) for r in records)) | {"val_mAP"}
    assert expected <= set(curves) and {"loss/total", "lr", "images_per_s"} <= expected
    assert any(k.startswith("omega/") for k in curves)
    for r in records:
        for key, value in scalars(r).items():
            assert dict(curves[key])[r["global_step"]] == pytest.approx(value, rel=1e-6), key
    assert [s for s, _ in curves["val_mAP"]] == [2, 4]  # after each epoch (checkpoint_every=1)
    assert all(0 <= v <= 100 for _, v in curves["val_mAP"])


def test_a_resumed_run_does_not_fold_its_curves_back(tmp_path, synthetic_dataset):
    run = tmp_path / "run"
    train(make_config("smoke", epochs=1, steps_per_epoch=3, log_every=1), run,
          dataset=synthetic_dataset, evaluate=False)
    train(make_config("smoke", epochs=2, steps_per_epoch=3, log_every=1), run,
          dataset=synthetic_dataset, evaluate=False, resume=True)
    steps = [s for s, _ in read_scalars(run)["loss/total"]]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert len(_events(run)) == 2  # one file per attempt, read back as one run


def test_switched_off_or_not_installed_means_no_event_files(tmp_path, synthetic_dataset,
                                                            monkeypatch):
    train(make_config("smoke", epochs=1, steps_per_epoch=1, tensorboard=False), tmp_path / "off",
          dataset=synthetic_dataset, evaluate=False)
    assert _events(tmp_path / "off") == [] and (tmp_path / "off" / "metrics.jsonl").exists()
    # without the package the trainer gets no writer (and writes no files), as when off
    writer = TensorBoardLog.open(tmp_path / "on")
    assert writer is not None
    writer.close()
    assert _events(tmp_path / "on")
    monkeypatch.setattr(tensorboard_log, "available", lambda: False)
    assert TensorBoardLog.open(tmp_path / "missing") is None
    assert not (tmp_path / "missing").exists()
