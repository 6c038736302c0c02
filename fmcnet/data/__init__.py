"""Datasets in their owners' layouts, the synthetic set, the cache, sampler, augmentation.

`load_dataset(name, root)` reads SYSU-MM01, RegDB or LLCM from a user's copy;
`dataset_for_config(cfg)` is what training and evaluation call (the synthetic set is
generated once into the cache and read by the SYSU-MM01 loader).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from fmcnet.data.base import DatasetError, VIDataset
from fmcnet.data.llcm import load_llcm
from fmcnet.data.regdb import load_regdb
from fmcnet.data.sysu import load_sysu

if TYPE_CHECKING:
    from fmcnet.config import Config

__all__ = ["DATASETS", "DatasetError", "dataset_for_config", "load_dataset", "load_llcm",
           "load_regdb", "load_sysu"]

# name -> (title, what its root holds)
DATASETS = {
    "sysu": ("SYSU-MM01", "cam1..cam6/ and exp/"),
    "regdb": ("RegDB", "Visible/, Thermal/ and idx/"),
    "llcm": ("LLCM", "idx/, test_vis/ and test_nir/"),
}


def load_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    trial: int = 1,
    trials: int = 10,
    validate: bool = False,
    gallery_sampler: str = "auto",
    llcm_protocol: str = "deen",
) -> VIDataset:
    """Read dataset `name` ("sysu" | "regdb" | "llcm") from the user's copy at `root`.

    `trial` selects the RegDB split (1..10); `trials` is the number of gallery draws for
    SYSU-MM01 and LLCM; `validate` holds out the SYSU-MM01 val ids; `gallery_sampler`
    (SYSU-MM01) and `llcm_protocol` (LLCM) choose the evaluation rules (docs/datasets.md).
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    title, holds = DATASETS[name]
    path = Path(root).expanduser()
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise DatasetError(
            f"{title} root {path} {what}; expected {holds} (see docs/datasets.md)"
        )
    if name == "sysu":
        return load_sysu(path, trials=trials, validate=validate, gallery_sampler=gallery_sampler)
    if name == "regdb":
        return load_regdb(path, trial=trial)
    return load_llcm(path, trials=trials, protocol=llcm_protocol)


def dataset_for_config(cfg: Config) -> VIDataset:
    """The dataset a configuration names: the synthetic set, the held-out renderer's set
    (both generated and cached on first use, in the SYSU-MM01 layout) or `cfg.data_root`."""
    if cfg.dataset in ("synthetic", "heldout"):
        from fmcnet.data.heldout import ensure_heldout
        from fmcnet.data.synthetic import ensure_synthetic

        root = ensure_synthetic(cfg) if cfg.dataset == "synthetic" else ensure_heldout(cfg)
        return load_sysu(root, trials=cfg.trials, validate=cfg.validate,
                         gallery_sampler=cfg.gallery_sampler)
    if cfg.data_root is None:
        title, holds = DATASETS.get(cfg.dataset, (cfg.dataset, "the owners' layout"))
        raise DatasetError(
            f"dataset={cfg.dataset} needs data_root=<path to your {title} copy> (a folder "
            f"holding {holds}; see docs/datasets.md)"
        )
    return load_dataset(
        cfg.dataset, cfg.data_root, trial=cfg.trial, trials=cfg.trials, validate=cfg.validate,
        gallery_sampler=cfg.gallery_sampler, llcm_protocol=cfg.llcm_protocol,
    )
