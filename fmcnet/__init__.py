"""fmcnet: FMCNet (CVPR 2022) for visible-infrared person re-identification."""

from fmcnet.config import Config, make_config

__all__ = ["Config", "make_config"]
__version__ = "0.1.0"
