"""The method diagrams name every tensor, draw Eq. 15 as the model fuses, and read at
README width (no label too small, outside its box, or on top of another)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmcnet.model.sff import SFF
from fmcnet.viz import method_diagram as md

REPO = Path(__file__).resolve().parents[1]
README_WIDTH_PX = 900
MIN_TEXT_PX = 11.0  # a label's font size in pixels when the PNG is shown 900 px wide

FIGURES = {"method": md.method_figure, "sfd": md.sfd_figure, "fmc": md.fmc_figure,
           "sff": md.sff_figure}

# Written here, not taken from the module: what docs/method.md names, in the normalised
# mathtext of `_norm` (no $, braces or spaces).
SFD_NAMES = ["X_V", "X_I", "E_V", "E_I", "E_sh", "E^V_sp", "E^I_sp", "F_V", "F_I",
             "F_sh,V", "F_sh,I", "F_sp,V", "F_sp,I"]
FMC_NAMES = [r"G_V\toI", r"G_I\toV", r"D_V\toI", r"D_I\toV", "F'_sp,I", "F'_sp,V"]
SFF_NAMES = [r"\omega_1", r"\omega_2", "F_fu,V", "F_fu,I", "F_fp,V", "F_fp,I"]
LOSSES = ["L_MD", "L_ID", "L_GAN", "L_FC", "L_IC", "L_MC", "L_FID"]
EXPECTED = {
    "method": SFD_NAMES + FMC_NAMES + SFF_NAMES + LOSSES + ["L_SFD", "L_FMC", "L_SFF"],
    "sfd": SFD_NAMES + ["P_sh", "P^V_sp", "P^I_sp", "S_sh,V", "S_sp,I", "L_shs", "L_dc",
                        "L_sps", "L_MD", "L_ID", "C^p_x,m"],
    "fmc": FMC_NAMES + ["F_sh,V", "F_sh,I", "C^p_sp,I", "P^I_sp", "P^V_sp", "L_GAN", "L_FC",
                        "L_IC", "L_FMC"],
    "sff": SFF_NAMES + ["F_sp,V", "F_sp,I", "F'_sp,I", "F'_sp,V", "F_sh,V", "F_sh,I", "L_MC",
                        "L_FID"],
}
# Eq. 15 per kind: omega_1 on the visible-specific kind, real or generated
PER_KIND = {"V": r"F_fu,V=\omega_1F_sp,V+\omega_2F'_sp,I",
            "I": r"F_fu,I=\omega_1F'_sp,V+\omega_2F_sp,I"}


def _norm(s: str) -> str:
    return re.sub(r"[\s${}]|\\,", "", s)


@pytest.fixture(scope="module", params=sorted(FIGURES))
def drawn(request):
    fig = FIGURES[request.param]()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))
             if t.get_text().strip() and t.get_visible()]
    return request.param, fig, renderer, texts


def test_every_tensor_and_loss_is_named(drawn):
    name, _, _, texts = drawn
    labels = [_norm(t.get_text()) for t in texts]
    missing = [n for n in EXPECTED[name] if not any(n in label for label in labels)]
    assert not missing, f"{name} figure lacks the labels {missing}"


@pytest.mark.parametrize("name", ["method", "sff"])
def test_fusion_is_drawn_per_kind(name):
    labels = [_norm(t.get_text()) for t in FIGURES[name]().findobj(
        lambda a: hasattr(a, "get_text") and hasattr(a, "get_fontsize"))]
    for formula in PER_KIND.values():
        assert any(formula in label for label in labels), (name, formula)
    # the per-role reading (omega_1 on the image's own real feature) must not appear
    assert not any(r"\omega_1F_sp,I" in label for label in labels)


@pytest.mark.parametrize("m", ["V", "I"])
def test_drawn_formula_is_what_the_model_computes(m):
    """Parse the figure's Eq. 15 and evaluate it on tensors: it must equal SFF.fuse."""
    w1_term, w2_term = re.fullmatch(r"F_fu,[VI]=\\omega_1(.+)\+\\omega_2(.+)",
                                    _norm(md.fusion_formula(m))).groups()
    torch.manual_seed(0)
    feats = {k: torch.randn(3, 5) for k in ("F_sp,V", "F'_sp,V", "F_sp,I", "F'_sp,I")}
    sff = SFF(5, 4, omega_init=(2.0, -3.0))
    real, generated = (feats["F_sp,V"], feats["F'_sp,I"]) if m == "V" else \
        (feats["F_sp,I"], feats["F'_sp,V"])
    shared = torch.zeros(3, 5)
    fused = sff.fuse(shared, real, generated, "visible" if m == "V" else "infrared")[:, 5:]
    torch.testing.assert_close(fused, 2.0 * feats[w1_term] - 3.0 * feats[w2_term])


def test_text_reads_at_readme_width(drawn):
    name, fig, _, texts = drawn
    width_px = fig.get_figwidth() * fig.dpi
    scale = min(1.0, README_WIDTH_PX / width_px)
    small = {t.get_text(): round(t.get_fontsize() * fig.dpi / 72 * scale, 1) for t in texts
             if t.get_fontsize() * fig.dpi / 72 * scale < MIN_TEXT_PX}
    assert not small, f"{name}: labels under {MIN_TEXT_PX} px at {README_WIDTH_PX} px: {small}"


def test_labels_fit_their_boxes_and_the_canvas(drawn):
    name, fig, renderer, texts = drawn
    canvas = fig.bbox
    boxes = {p.get_gid().split(":")[1]: p.get_window_extent(renderer)
             for p in fig.findobj(lambda a: str(a.get_gid()).startswith("box:"))}
    assert boxes
    for t in texts:
        ext = t.get_window_extent(renderer)
        assert (ext.x0 >= canvas.x0 and ext.x1 <= canvas.x1 and ext.y0 >= canvas.y0
                and ext.y1 <= canvas.y1), f"{name}: {t.get_text()!r} leaves the picture"
        gid = t.get_gid() or ""
        if gid.startswith("label:"):
            box = boxes[gid.split(":")[1]]
            assert (ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0
                    and ext.y1 <= box.y1), f"{name}: {t.get_text()!r} overflows its box"


def test_no_two_labels_overlap(drawn):
    name, _, renderer, texts = drawn
    extents = [(t.get_text(), t.get_window_extent(renderer).shrunk(0.98, 0.9)) for t in texts]
    clashes = [(a, b) for (a, ea), (b, eb) in itertools.combinations(extents, 2)
               if ea.overlaps(eb)]
    assert not clashes, f"{name}: overlapping labels {clashes}"


def test_saved_pictures_and_the_committed_ones(tmp_path):
    paths = md.save_method_figures(tmp_path)
    assert sorted(paths) == sorted(FIGURES)
    for name, path in paths.items():
        fig = FIGURES[name]()
        size = (round(fig.get_figwidth() * fig.dpi), round(fig.get_figheight() * fig.dpi))
        with Image.open(path) as img:
            assert img.size == size
            pixels = np.asarray(img.convert("L"))
        assert pixels.min() < 50 and pixels.max() > 240  # drawn, not blank
        committed = REPO / "figures" / md.FIGURE_FILES[name]
        with Image.open(committed) as img:  # re-run `python -m fmcnet.viz.method_diagram`
            assert img.size == size, f"{committed} is stale"
