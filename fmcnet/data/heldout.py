"""A held-out visible-infrared person renderer: a second set in the SYSU-MM01 layout.

A model trained and tested on the built-in synthetic set (`fmcnet.data.synthetic`) may
learn that renderer rather than people: its flat-coloured rectangles, its pattern
family, its four plain backgrounds. This module draws pedestrians another way, so that
"the profile learns identity" can be checked on images it was never tuned on:

```
root/cam1..cam6/<pid %04d>/<%04d>.jpg   visible: cam1, cam2, cam4, cam5; infrared: cam3, cam6
root/exp/{train,val,test}_id.txt        one line of comma-separated ids (160/20/40 of 220)
root/heldout.json                       the parameters that produced it
```

What differs from the built-in renderer
---------------------------------------
* **Body.** A jointed figure in a walking pose: elliptic head, rounded tapered torso,
  limbs as capsules (thigh and shin, upper arm and forearm) that swing with a per-image
  gait phase, arms opposite to legs; the figure turns (yaw), faces the camera or walks
  away (front / back view: hair covers the head, a chest logo is hidden), and its lowest
  foot stands on the ground. Every shape is a signed distance, painted with
  anti-aliased edges (the built-in renderer paints hard masks).
* **Clothes.** Upper patterns: plain, horizontal bands (own duty cycle), staggered
  dots, a vertical gradient, a chest logo (block or disc), a yoke; lower: plain, a side
  stripe, bands. Cuts: sleeve length (long, three-quarter, short, none), a top's length
  (tucked to a long flared coat), trousers, shorts or a flared skirt over bare legs or
  tights; hair short, medium or long.
* **Accessories.** Backpack (straps from the front, the pack from behind or beside),
  cap or beanie, scarf with a hanging end, a cup in one hand (hot or iced).
* **Scenes and cameras.** Textured backgrounds (brick, panelled corridor, street with
  foliage and paving, glass shop front; a thermal corridor with lamps and a radiator, a
  thermal street), each image a different crop of its camera's scene, occluders (a
  pole, a low box, a passer-by at the edge), and a camera model per camera: keystone
  perspective and roll, defocus blur, white-balance cast, gamma, saturation, a side
  light, vignetting, noise and JPEG quality; infrared: heat bloom, fixed-pattern column
  noise.
* **Thermal model.** Infrared shows temperature: skin at the person's own skin
  temperature, each fabric at ``ambient + (skin - ambient) * (1 - insulation)`` with an
  insulation of its own (loose parts -- a coat's skirt, a skirt -- cooler still), hair
  and shoes insulating, a scarf warm, a backpack at ambient, a cup hot or iced; the
  ambient temperature is the camera's.

The modality gap: body shape and pose, the cut, the pattern geometry (the second
fabric's insulation differs from the first by at least 0.25, so patterns show in both),
hair length and accessories cross it; the dyes (and skin and hair colour) are visible
only, and the insulations (and skin temperature, and whether a cup is hot) infrared
only, drawn independently of the dyes.

Rendering is vectorised numpy over a chunk of images of one camera (at most `_CHUNK`);
each chunk's noise comes from a stream keyed by its index, so the bytes do not depend
on anything but the arguments. The default set (220 identities, 7,480 images at 128x64)
takes about 29 s of CPU time on one core, JPEG writing included (3.3x the built-in
renderer's 220-identity set, timed in the same run on the busy 2-core development box).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from fmcnet.data.heldout_render import HELDOUT_VERSION, INFRARED_CAMS, VISIBLE_CAMS, _Heldout
from fmcnet.data.synthetic import check_target, split_ids, write_set
from fmcnet.utils import FMCNetError

__all__ = ["HELDOUT_VERSION", "INFRARED_CAMS", "MARKER", "VISIBLE_CAMS", "ensure_heldout",
           "sample_figure", "synthesize_heldout"]

MARKER = "heldout.json"
# 220 identities -> 160 train, 20 val, 40 test (the held-out check of issue 24);
# SYSU-MM01 itself is about 60/20/20: pass split=(0.2, 0.2) for that.
VAL_FRACTION, TEST_FRACTION = 1 / 11, 2 / 11


# ---- writing ----------------------------------------------------------------------------


def synthesize_heldout(
    out: str | os.PathLike,
    identities: int = 220,
    seed: int = 0,
    images_per_camera: int = 6,
    image_size: tuple[int, int] = (128, 64),
    overwrite: bool = False,
    *,
    split: tuple[float, float] = (VAL_FRACTION, TEST_FRACTION),
) -> Path:
    """Write a held-out VI-ReID set (this module's renderer) in the SYSU-MM01 layout; returns `out`.

    identities: pids 1..N; `split` = (val, test) fractions of them, the rest train. The
    default 1/11, 2/11 gives 160 / 20 / 40 for 220 identities (the held-out check);
    (0.2, 0.2) is SYSU-MM01's 60 / 20 / 20.
    images_per_camera: mean images per (identity, camera) present (m-2 .. m+2, at least 1).
    image_size: (H, W) of the JPEG files. Byte-identical for equal arguments; written to
    a temporary sibling directory and renamed into place.
    """

    out = Path(out).expanduser()
    h, w = (int(v) for v in image_size)
    if identities < 3:
        raise FMCNetError(f"identities must be at least 3 (one per split), got {identities}")
    if images_per_camera < 1:
        raise FMCNetError(f"images_per_camera must be at least 1, got {images_per_camera}")
    if h < 32 or w < 16:
        raise FMCNetError(f"image_size must be at least (32, 16), got {image_size}")
    val_f, test_f = (float(f) for f in split)
    if not (0 < val_f and 0 < test_f and val_f + test_f < 1):
        raise FMCNetError(f"split must be two fractions (val, test) > 0 summing below 1, "
                          f"got {split}")
    check_target(out, overwrite, MARKER, "held-out")  # only a held-out set is replaced
    scene = _Heldout(seed, identities, images_per_camera, (h, w))
    ids = split_ids(np.random.default_rng(scene.s_split), identities, (val_f, test_f))
    info = {"renderer": "fmcnet.data.heldout", "version": HELDOUT_VERSION,
            "identities": int(identities), "seed": int(seed),
            "images_per_camera": int(images_per_camera), "image_size": [h, w],
            "split": [val_f, test_f], "ids": {k: len(v) for k, v in ids.items()},
            "images": len(scene.cam_of),
            "visible": int(np.isin(scene.cam_of, VISIBLE_CAMS).sum()),
            "infrared": int(np.isin(scene.cam_of, INFRARED_CAMS).sum())}
    return write_set(out, overwrite, scene, scene.ident, ids, info, MARKER,
                     quality=lambda cam: scene.cams[cam]["quality"])


# ---- a picture of it --------------------------------------------------------------------


def sample_figure(heldout_root: str | os.PathLike, builtin_root: str | os.PathLike, *,
                  n: int = 8, cams: tuple[int, ...] = (1, 3, 4, 6)):
    """The first image of `n` training identities of each set in each of `cams`: the
    built-in renderer's rows above this renderer's (a matplotlib Figure)."""
    from PIL import Image

    from fmcnet.viz.figures import plot_sample_grid

    images: dict[str, np.ndarray] = {}
    titles: dict[str, list[str]] = {}
    for label, root in (("built-in", Path(builtin_root)), ("held-out", Path(heldout_root))):
        ids = [int(t) for t in (root / "exp" / "train_id.txt").read_text().split(",")]
        first = {}
        for pid in ids:
            found = [sorted((root / f"cam{c}" / f"{pid:04d}").glob("*.jpg")) for c in cams]
            if all(found):
                first[pid] = [f[0] for f in found]
            if len(first) == n:
                break
        for k, c in enumerate(cams):
            group = f"{label}\ncam{c} {'infrared' if c in INFRARED_CAMS else 'visible'}"
            images[group] = np.stack([np.asarray(Image.open(f[k]).convert("RGB"))
                                      for f in first.values()])
            titles[group] = [f"id {pid}" for pid in first]
    return plot_sample_grid(images, n=n, titles=titles)


def ensure_heldout(cfg: Any) -> Path:
    """The held-out renderer's set for `cfg` (`dataset=heldout`), generated on first use.

    cfg.synthetic_identities, cfg.synthetic_seed and cfg.synthetic_images_per_camera
    choose it (the built-in renderer's knobs do not apply); it lives at
    ``cache_dir() / f"heldout-{key}"``, generated once among concurrent processes.
    """
    import hashlib

    from fmcnet.data.synthetic import cached_set
    from fmcnet.utils import cache_dir

    expected = {"renderer": "fmcnet.data.heldout", "version": HELDOUT_VERSION,
                "identities": int(cfg.synthetic_identities), "seed": int(cfg.synthetic_seed),
                "images_per_camera": int(cfg.synthetic_images_per_camera),
                "image_size": [128, 64], "split": [VAL_FRACTION, TEST_FRACTION]}
    key = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir() / f"heldout-{key}"
    return cached_set(path, expected, lambda overwrite: synthesize_heldout(
        path, identities=expected["identities"], seed=expected["seed"],
        images_per_camera=expected["images_per_camera"], overwrite=overwrite), marker=MARKER)


def main(argv: list[str] | None = None) -> int:
    """``python -m fmcnet.data.heldout figures/heldout_samples.png``: the sample figure
    (a 24-identity held-out set, seed 0, beside the `quick` profile's built-in set),
    written as a 256-colour PNG."""
    import io
    import sys
    import tempfile

    from PIL import Image

    from fmcnet.config import make_config
    from fmcnet.data.synthetic import ensure_synthetic
    from fmcnet.utils import atomic_write_bytes

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fmcnet.data.heldout OUT.png", file=sys.stderr)
        return 2
    builtin = ensure_synthetic(make_config("quick", progress=False))
    with tempfile.TemporaryDirectory() as tmp:
        fig = sample_figure(synthesize_heldout(Path(tmp) / "set", identities=24), builtin)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=60, bbox_inches="tight")
    buf.seek(0)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(256).save(small, format="PNG", optimize=True)
    atomic_write_bytes(args[0], small.getvalue())
    print(f"{args[0]}: {len(small.getvalue()) // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
