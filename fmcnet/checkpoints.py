"""Checkpoints: what they hold, their hash, and whether one fits a run or an evaluation.

`training_state` is everything a run needs to continue bit for bit (weights, both
optimizers, the sampler's position, every random stream, the configuration, the data
set's signature); `save_checkpoint` writes it atomically with a SHA-256 over all of it and
`load_checkpoint` verifies that hash. `check_config` compares a checkpoint's configuration
with a run's (`resume_keys` for a resume, `MODEL_KEYS` for an evaluation),
`check_dataset` its data set, refusing an evaluation that would test on identities the
checkpoint trained on; `restore_training_state` puts a checkpoint back into a run's parts
and `load_model_from_checkpoint` rebuilds a model for evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fmcnet.config import Config, config_from_dict, plain
from fmcnet.data.base import ImageSet, VIDataset
from fmcnet.model import FMCNet
from fmcnet.utils import FMCNetError, atomic_torch_save

if TYPE_CHECKING:
    from fmcnet.assembly import Assembly

# Configuration keys that change the network's shape or the meaning of its weights:
# a checkpoint must agree on all of them to be evaluated.
MODEL_KEYS = (
    "backbone", "backbone_width", "last_stride", "bnneck", "generator_hidden", "sfd", "fmc",
    "fusion", "omega_weighs", "height", "width",
)
# The keys a resumed run may change: every other `Config` field (loss switches and
# constants, optimizer, schedule, augmentation, data, model, seed, ...) must match the
# checkpoint, so a key added later is covered without being listed anywhere. Why each
# is safe (docs/reliability.md):
RESUME_SAFE_KEYS = {
    "epochs": "the end of the run; the schedule of the steps already taken is unchanged "
              "(it may not fall below the epochs already completed)",
    "device": "where the same computation runs",
    "compile": "speed only",
    "cpu_threads": "speed only",
    "channels_last": "memory layout only",
    "data_on_device": "where the training images are kept",
    "data_root": "the same data moved (the training identities and counts are still checked)",
    "progress": "output only",
    "tensorboard": "output only",
    "log_every": "output only",
    "checkpoint_every": "how often the state is saved",
    "keep_snapshots": "which checkpoints are kept",
    "eval_batch_size": "evaluation only",
    "trials": "evaluation only",
    "tta": "evaluation only",
    "rerank": "evaluation only",
    "max_rank": "evaluation only",
    "eval_amp": "evaluation only",
    "gallery_sampler": "evaluation only",
    "llcm_protocol": "evaluation only",
}


def resume_keys() -> tuple[str, ...]:
    """Every configuration key that must match the checkpoint for `--resume`."""
    return tuple(f.name for f in dataclasses.fields(Config) if f.name not in RESUME_SAFE_KEYS)


CHECKPOINT_FORMAT = 2


class CheckpointMismatch(FMCNetError):
    """A checkpoint that does not fit the model, dataset or run it is loaded into."""


def _digest(obj: Any, h: Any) -> None:
    """Feed a checkpoint's contents to `h` in a canonical order (dict keys sorted)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode() + b":")
            _digest(obj[key], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)};".encode())
        for item in obj:
            _digest(item, h)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"unexpected {type(obj).__name__} in a checkpoint")


def checkpoint_sha256(state: dict[str, Any]) -> str:
    """SHA-256 of the whole checkpoint (weights, optimizers, sampler, RNG, config, ...)."""
    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != "sha256"}, h)
    return h.hexdigest()


def identities(images: ImageSet) -> set[str]:
    """The people an image set shows, by the folder each image sits in: SYSU-MM01 and the
    synthetic sets `cam<c>/<pid>/`, RegDB `Visible/<id>/` and `Thermal/<id>/`, LLCM
    `cam<c>/<pid>/` ("0007" and "7" are one person). An image outside a numbered folder
    counts by its pid. Never the labels alone: the owners' RegDB and LLCM lists number
    each list's identities from 0, so equal labels in a training and a test list are
    different people."""
    out = set()
    for path, pid in zip(images.paths, images.pids.tolist()):
        folder = os.path.basename(os.path.dirname(path))
        out.add(str(int(folder)) if folder.isdigit() else f"pid {pid}")
    return out


def dataset_signature(dataset: VIDataset) -> dict[str, Any]:
    """What a checkpoint records of its training data: name, RegDB trial, sizes, the
    training labels (list and hash) and the training identities by folder (`identities`),
    so that evaluation can refuse a test split that shares people with them."""
    pids = np.union1d(dataset.train.visible.pids, dataset.train.infrared.pids).astype(np.int64)
    people = identities(dataset.train.visible) | identities(dataset.train.infrared)
    return {
        "name": dataset.name,
        "trial": dataset.trial,
        "num_classes": dataset.train.num_classes,
        "visible": len(dataset.train.visible),
        "infrared": len(dataset.train.infrared),
        "train_pids": pids.tolist(),
        "train_ids_sha256": hashlib.sha256(pids.tobytes()).hexdigest(),
        "train_identities": sorted(people, key=_identity_order),
    }


def _identity_order(key: str) -> tuple[int, int, str]:
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a kill at any moment leaves the old or the new file)
    with the SHA-256 of its whole content."""
    model_state = {k: v.detach().cpu() for k, v in state["model"].items()}
    state = {**state, "model": model_state, "format": CHECKPOINT_FORMAT}
    state["sha256"] = checkpoint_sha256(state)
    atomic_torch_save(state, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`, verifying its content hash."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointMismatch(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointMismatch(f"checkpoint {path} is not readable for you (permission "
                                 "denied); ask its owner or copy it") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        # Only the first line of torch's message: the rest suggests weights_only=False,
        # which would run arbitrary code from the file.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if isinstance(exc, pickle.UnpicklingError):
            first = "it holds objects an fmcnet checkpoint never contains"
        raise CheckpointMismatch(
            f"checkpoint {path} could not be read ({exc.__class__.__name__}: {first}); "
            "it is truncated, corrupt or not an fmcnet checkpoint"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointMismatch(f"checkpoint {path} is not an fmcnet checkpoint (no model/config)")
    try:
        if "sha256" in state:
            ok = state["sha256"] == checkpoint_sha256(state)
        else:  # written before format 2: only the weights were hashed
            ok = state.get("model_sha256") == _weights_sha256(state["model"])
    except (TypeError, AttributeError, RuntimeError):
        ok = False
    if not ok:
        raise CheckpointMismatch(f"checkpoint {path} fails its content hash: the file is corrupt")
    return state


def _weights_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# Keys added after checkpoints were first written whose default is not what the code did
# before the key existed: a checkpoint (or config.yaml) without the key trained with this
# value. Every other key added later defaults to the behaviour it replaced.
BEFORE_THE_KEY = {
    "generator_loss": "nonsaturating",  # -log D(G) was fixed in code before the key
}


def saved_value(saved: dict[str, Any], key: str) -> Any:
    """A checkpoint's value of `key`; a key added after it was written takes the value the
    code had before the key (`BEFORE_THE_KEY`), else its default."""
    if key in saved:
        return plain(saved[key])
    if key in BEFORE_THE_KEY:
        return BEFORE_THE_KEY[key]
    return plain(getattr(Config(), key))


def config_differences(a: dict[str, Any], b: dict[str, Any], keys, name_a: str,
                       name_b: str) -> list[str]:
    """`key: <name_a> has x, <name_b> has y` for each of `keys` on which two saved
    configurations (a checkpoint's, a config.yaml, `Config.to_dict()`) differ."""
    return [f"{k}: {name_a} has {saved_value(a, k)!r}, {name_b} has {saved_value(b, k)!r}"
            for k in keys if saved_value(a, k) != saved_value(b, k)]


def check_config(ckpt: dict[str, Any], cfg: Config, path: Path, keys=MODEL_KEYS,
                 *, what: str = "this configuration") -> None:
    """Fail loudly, listing every differing key, instead of mixing two experiments."""
    problems = config_differences(ckpt["config"], cfg.to_dict(), keys, "checkpoint", what)
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {path} does not match {what}:\n  - " + "\n  - ".join(problems)
        )


def check_dataset(ckpt: dict[str, Any], dataset: VIDataset, path: Path, *,
                  training: bool = False) -> None:
    """The checkpoint fits `dataset`: same name and classes; for training (resume) the
    same training identities; for evaluation no test identity it was trained on."""
    want = dataset_signature(dataset)
    have = ckpt.get("dataset", {})
    keys = ("name", "num_classes") + (("trial", "visible", "infrared") if training else ())
    problems = [f"dataset {k}: checkpoint has {have.get(k)!r}, this dataset has {want[k]!r}"
                for k in keys if have.get(k) != want[k]]
    if training and have.get("train_ids_sha256") not in (None, want["train_ids_sha256"]):
        problems.append("dataset training identities: the checkpoint was trained on another "
                        "set of identities (train_ids_sha256 differs)")
    if problems:
        raise CheckpointMismatch(
            f"checkpoint {path} does not match this dataset:\n  - " + "\n  - ".join(problems)
        )
    if not training:
        _refuse_test_leakage(have, dataset, path)


def _refuse_test_leakage(have: dict[str, Any], dataset: VIDataset, path: Path) -> None:
    """Refuse to evaluate on test identities the checkpoint trained on, comparing people
    (`identities`: the images' folders), never the lists' labels."""
    test: set[str] = set()
    for split in dataset.splits.values():
        test |= identities(split.query) | identities(split.gallery)
    trained = None
    if "train_identities" in have:
        trained = set(have["train_identities"])
    elif "train_pids" in have and have.get("name") == "sysu":
        # an older checkpoint: its labels are the SYSU-MM01 layout's folder numbers
        trained = {str(int(p)) for p in have["train_pids"]}
    if trained is not None:
        shared = sorted(test & trained, key=_identity_order)
        if not shared:
            return
        shown = ", ".join(shared[:8]) + (" ..." if len(shared) > 8 else "")
        overlap = f"{len(shared)} of its {len(test)} test identities ({shown}) are"
    elif have.get("trial") is not None and have.get("trial") != dataset.trial:
        # an older checkpoint without its identity list: another RegDB trial may overlap
        overlap = "its test identities may be"
    else:
        return
    trained_on = have.get("name", "?") + (f" trial {have['trial']}" if have.get("trial") else "")
    here = dataset.name + (f" trial {dataset.trial}" if dataset.trial else "")
    advice = (f"evaluate it on trial {have['trial']} (trial={have['trial']}), or use the "
              f"checkpoint trained on trial {dataset.trial}" if have.get("trial")
              else "evaluate it on a split whose test identities it never saw")
    raise CheckpointMismatch(
        f"checkpoint {path} was trained on {trained_on}; evaluating it on {here} would leak "
        f"test identities: {overlap} among the identities it trained on. {advice}"
    )


def check_compatible(
    ckpt: dict[str, Any], cfg: Config, dataset: VIDataset | None, path: Path, keys=MODEL_KEYS
) -> None:
    """`check_config` on `keys`, then (with a dataset) `check_dataset` for evaluation."""
    check_config(ckpt, cfg, path, keys)
    if dataset is not None:
        check_dataset(ckpt, dataset, path)


def load_model_from_checkpoint(
    path: str | os.PathLike, cfg: Config | None = None, dataset: VIDataset | None = None,
    device: torch.device | None = None,
) -> tuple[FMCNet, Config]:
    """Rebuild the model of a checkpoint; every weight must load (strict)."""
    path = Path(path)
    ckpt = load_checkpoint(path)
    saved_cfg = config_from_dict(ckpt["config"])
    if cfg is not None:
        check_compatible(ckpt, cfg, dataset, path)
    elif dataset is not None:
        check_compatible(ckpt, saved_cfg, dataset, path)
    model = FMCNet.from_config(_no_pretrained(saved_cfg), ckpt["dataset"]["num_classes"])
    # where the trained weights started from, not the "random" of the rebuild above
    model.pretrained_source = ckpt.get("pretrained_source", "unknown (older checkpoint)")
    missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
    if missing or unexpected:
        raise CheckpointMismatch(
            f"checkpoint {path} does not fit the model: missing {sorted(missing)[:10]}, "
            f"unexpected {sorted(unexpected)[:10]}"
        )
    return model.to(device or torch.device("cpu")), saved_cfg


def _no_pretrained(cfg: Config) -> Config:
    """Weights come from the checkpoint: do not look for ImageNet weights again."""
    return dataclasses.replace(cfg, pretrained=False, pretrained_path=None)


def training_state(parts: Assembly, cfg: Config, dataset: VIDataset, *, global_step: int,
                   epoch: int, best: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of a run after `global_step` steps and `epoch` completed epochs
    (`best`: the best validation record so far)."""
    device = parts.step.device
    rng = {"augment": parts.generator.get_state().cpu(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    spe = parts.steps_per_epoch
    return {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "disc_optimizer": parts.disc_optimizer.state_dict(),
        "sampler": {"epoch": global_step // spe, "position": global_step % spe,
                    "seed": cfg.seed},
        "rng": rng,
        "epoch": epoch,
        "global_step": global_step,
        "best": best,
        "config": {k: plain(v) for k, v in cfg.to_dict().items()},
        "dataset": dataset_signature(dataset),
        "pretrained_source": parts.model.pretrained_source,  # for results.json provenance
    }


def restore_training_state(parts: Assembly, ckpt: dict[str, Any], path: Path
                           ) -> tuple[int, int, dict[str, Any] | None]:
    """Load a checkpoint's weights, optimizer states and random streams into `parts`;
    returns (global_step, completed epochs, best validation record or None)."""
    global_step, closed = int(ckpt["global_step"]), int(ckpt["epoch"])
    spe = parts.steps_per_epoch
    if not closed * spe <= global_step <= (closed + 1) * spe:
        raise CheckpointMismatch(
            f"checkpoint {path} records step {global_step} after {closed} completed "
            f"epochs of {spe} steps, which cannot be; it was not written by "
            "this version of train()"
        )
    device = parts.step.device
    parts.model.load_state_dict(ckpt["model"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    parts.disc_optimizer.load_state_dict(ckpt["disc_optimizer"])
    parts.generator.set_state(ckpt["rng"]["augment"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if device.type == "cuda" and "cuda" in ckpt["rng"]:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
    return global_step, closed, ckpt.get("best")
