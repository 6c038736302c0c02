"""fmcnet: FMCNet (CVPR 2022) for visible-infrared person re-identification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmcnet.config import Config, make_config

__all__ = ["Config", "make_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `import fmcnet` does not import torch: `python -m fmcnet` sets the OpenMP wait
    # policy (fmcnet/__main__.py) before torch loads its OpenMP runtime, which reads it once.
    if name in __all__:
        from fmcnet import config

        return getattr(config, name)
    raise AttributeError(f"module 'fmcnet' has no attribute {name!r}")
