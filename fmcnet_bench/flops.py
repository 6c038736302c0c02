"""What a step costs and what a card can do: FLOPs of one training step counted on meta
tensors, and dense bf16 peaks from the vendors' data sheets (the second MFU figure beside
the measured matmul rate).
"""

from __future__ import annotations

import os

import torch

from fmcnet.config import Config

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, for
# a second MFU figure beside the measured matmul rate. First match of the name wins.
DATASHEET_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
)


def datasheet_bf16_tflops(device: torch.device) -> tuple[float | None, str]:
    """(dense bf16 peak, where it comes from); None off CUDA or for an unknown card."""
    if device.type != "cuda":
        return None, "no data-sheet peak for a CPU"
    override = os.environ.get("FMCNET_PEAK_TFLOPS")
    if override:
        return float(override), "FMCNET_PEAK_TFLOPS"
    name = torch.cuda.get_device_name(device)
    for key, tflops in DATASHEET_BF16_TFLOPS:
        if key in name:
            return tflops, f"dense bf16 peak of {key} from the data sheet"
    return None, f"unknown data-sheet peak for {name}; set FMCNET_PEAK_TFLOPS"


def count_step_flops(cfg: Config, num_classes: int) -> float:
    """FLOPs of one step's forward + backward through the network, counted on meta
    tensors (no compute). The losses' own FLOPs (a few [B, C] distance matrices, well
    under 0.1 %) are left out: their identity checks need real values."""
    from torch.utils.flop_counter import FlopCounterMode

    from fmcnet.model import FMCNet

    with torch.device("meta"):
        model = FMCNet.from_config(cfg, num_classes)
        x = torch.empty(cfg.batch_size, 3, cfg.height, cfg.width)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, x)
        sum(v.float().mean() for v in out.values()).backward()
    return float(counter.get_total_flops())
