"""Training images on the device, and the augmented batches gathered from them.

`DeviceImages` keeps a modality's uint8 images where batches are gathered fastest (the
GPU's memory when they fit); `OnDeviceBatches` turns a sampler's index arrays into an
augmented batch with its labels, the whole batch at once on the device.
"""

from __future__ import annotations

import numpy as np
import torch

from fmcnet.config import Config
from fmcnet.data.augment import TrainAugment


class DeviceImages:
    """A uint8 NHWC image array kept where batches are gathered fastest.

    On a GPU the whole array lives in device memory when it fits (SYSU-MM01 at 288x144
    is ~4.3 GB); otherwise in pinned host memory with asynchronous copies. On the CPU
    the memory-mapped cache is used as it is.
    """

    def __init__(self, array: np.ndarray, device: torch.device, on_device: bool = True):
        self.device = device
        host = torch.from_numpy(np.array(array, copy=True))  # the cache is a read-only memmap
        self.location = "host"
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if on_device and host.numel() < 0.5 * free:
                self.data = host.to(device)
                self.location = "device"
            else:
                self.data = host.pin_memory()
                self.location = "pinned"
        else:
            self.data = host

    def __len__(self) -> int:
        return self.data.shape[0]

    def batch(self, index: np.ndarray) -> torch.Tensor:
        """uint8 NCHW (channels_last memory) on the training device."""
        idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
        if self.location == "device":
            x = self.data[idx.to(self.device, non_blocking=True)]
        else:
            x = self.data[idx]
            if self.device.type == "cuda":
                x = x.pin_memory().to(self.device, non_blocking=True)
        return x.permute(0, 3, 1, 2)


class OnDeviceBatches:
    """Turns a sampler's index arrays into an augmented training batch on the device.

    Gathers the P x K uint8 images of each modality where they live (`DeviceImages`),
    augments the whole batch there (`TrainAugment`) and looks up the labels.
    """

    def __init__(self, images_v: DeviceImages, images_i: DeviceImages, labels_v: np.ndarray,
                 labels_i: np.ndarray, cfg: Config, generator: torch.Generator) -> None:
        self.images_v, self.images_i = images_v, images_i
        self.device = images_v.device
        self.labels_v = torch.from_numpy(np.asarray(labels_v)).to(self.device)
        self.labels_i = torch.from_numpy(np.asarray(labels_i)).to(self.device)
        self.augment_v = TrainAugment.from_config(cfg, "visible")
        self.augment_i = TrainAugment.from_config(cfg, "infrared")
        self.generator = generator
        self.channels_last = cfg.channels_last

    def __call__(self, idx_v: np.ndarray, idx_i: np.ndarray
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x_v = self.augment_v(self.images_v.batch(idx_v), self.generator)
        x_i = self.augment_i(self.images_i.batch(idx_i), self.generator)
        y_v = self.labels_v[torch.from_numpy(np.asarray(idx_v)).to(self.device)]
        y_i = self.labels_i[torch.from_numpy(np.asarray(idx_i)).to(self.device)]
        if self.channels_last:
            x_v = x_v.contiguous(memory_format=torch.channels_last)
            x_i = x_i.contiguous(memory_format=torch.channels_last)
        return x_v, x_i, y_v, y_i
