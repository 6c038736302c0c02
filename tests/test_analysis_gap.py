"""Notebook 00's view of the modality gap: the same identities side by side, and how much
infrared intensity follows visible brightness on the images themselves."""

import numpy as np
import pytest

from fmcnet import analysis
from fmcnet.data import load_dataset
from fmcnet.data.synthetic import synthesize


def test_modality_pairs_show_the_same_identities(synthetic_dataset):
    images, titles = analysis.modality_pairs(synthetic_dataset, n=5, size=(32, 16))
    assert list(images) == ["visible", "visible as grey (luminance)", "infrared"]
    assert all(v.shape == (5, 32, 16, 3) and v.dtype == np.uint8 for v in images.values())
    assert titles["visible"] == titles["infrared"] and len(set(titles["visible"])) == 5
    grey = images["visible as grey (luminance)"]
    expected = images["visible"].astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(grey[..., 0] - expected).max() <= 0.5 and (grey[..., 0] == grey[..., 2]).all()
    ir = images["infrared"]
    assert (ir[..., 0] == ir[..., 1]).all()  # infrared: three equal channels


@pytest.mark.parametrize("coupling, low, high", [(0.95, 0.85, 1.0), (0.0, -0.35, 0.35)])
def test_torso_levels_follow_the_thermal_coupling(tmp_path, coupling, low, high):
    root = synthesize(tmp_path / "s", identities=60, seed=0, images_per_camera=2,
                      image_size=(64, 32), progress=False, thermal_coupling=coupling,
                      cross_modal_predictability=0.0)
    levels = analysis.torso_levels(load_dataset("sysu", root, trials=1))
    assert list(levels.columns) == ["pid", "visible", "infrared"] and len(levels) >= 30
    r = np.corrcoef(levels["visible"], levels["infrared"])[0, 1]
    assert low < r < high
    fig = analysis.plot_torso_levels(levels)
    assert f"r = {r:.2f}" in fig.axes[0].get_title()
