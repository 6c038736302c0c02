"""`validate=true`: the val ids are held out of training and evaluated on their own."""

import numpy as np

from fmcnet.data import load_dataset
from fmcnet.data.sysu import VAL_SETTING


def test_validation_setting_holds_only_val_ids(synthetic_root):
    dataset = load_dataset("sysu", synthetic_root, trials=3, validate=True)
    val_ids = np.loadtxt(synthetic_root / "exp" / "val_id.txt", delimiter=",", dtype=int, ndmin=1)
    split = dataset.splits[VAL_SETTING]
    assert set(split.query.pids) == set(val_ids) == set(dataset.val.visible.pids)
    assert set(split.gallery.pids) <= set(val_ids)
    assert not set(val_ids) & set(dataset.train.visible.pids)  # held out of training
    assert split.sampler == "seeded"
    for t in range(3):  # single-shot: one image per (identity, camera) in every trial
        _, rows = split.trial_rows(t)
        pairs = list(zip(split.gallery.pids[rows], split.gallery.cams[rows]))
        assert len(pairs) == len(set(pairs)) == len(set(zip(split.gallery.pids, split.gallery.cams)))
    assert not np.array_equal(split.trial_rows(0)[1], split.trial_rows(1)[1])


def test_no_validation_setting_without_validate(synthetic_dataset):
    assert VAL_SETTING not in synthetic_dataset.splits
