"""The FMCNet model: ResNet split (backbone), SFD, FMC, SFF, and the assembled network."""

from fmcnet.model.fmcnet import FMCNet, build_model

__all__ = ["FMCNet", "build_model"]
