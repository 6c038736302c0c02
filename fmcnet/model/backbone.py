"""The ResNet split FMCNet is built from, and its ImageNet weights.

docs/method.md (SFD): E_V and E_I are the ResNet stem + layer1 + layer2 ("first three
blocks", separate weights per modality); E^V_sp, E^I_sp and E_sh are layer3 + layer4 +
global average pooling ("last two blocks", three independent copies). Every one of these
parts starts from the same ImageNet weights. Module names inside `ResNetFront` and
`ResNetTail` are torchvision's (`conv1`, `layer3`, ...) so their state dicts are slices of
a torchvision ResNet state dict. `backbone_width` (not in the paper) narrows every stage
for CPU training from random init; only the standard width 64 has ImageNet weights.
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import torch
import torchvision
from torch import nn

from fmcnet.utils import FMCNetError

FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
_WEIGHTS = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
}


STANDARD_WIDTH = 64  # channels of torchvision's stem and layer1 (ImageNet weights exist)
# Where a relative `pretrained_path` is looked for when the working directory does not
# hold it: the folder that holds the `fmcnet` package (the repository root of a clone), so
# the stand-in weights of `quick` (fmcnet/weights/) load from a notebook's folder too.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def resolve_weights_path(path: str | os.PathLike) -> Path:
    """`pretrained_path` as a file: as given (absolute, or relative to the working
    directory), else relative to the folder holding the `fmcnet` package."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    beside_package = PACKAGE_PARENT / given
    return beside_package if beside_package.exists() else given


def feature_dim(name: str, width: int = STANDARD_WIDTH) -> int:
    """Width of the pooled tail output: 2048 for ResNet-50, 512 for ResNet-18/34 at the
    standard width; every layer scales with `width` (the stem's channel count)."""
    _check_name(name)
    return FEATURE_DIMS[name] * width // STANDARD_WIDTH


def _check_name(name: str) -> None:
    if name not in FEATURE_DIMS:
        raise ValueError(f"backbone must be one of {sorted(FEATURE_DIMS)}, got {name!r}")


def _check_width(name: str, width: int, *, pretrained: bool,
                 pretrained_path: str | os.PathLike | None) -> None:
    _check_name(name)
    if width < 8 or width % 8:
        raise FMCNetError(f"backbone_width must be a positive multiple of 8, got {width}")
    if width != STANDARD_WIDTH and pretrained and pretrained_path is None:
        raise FMCNetError(
            f"pretrained=true needs backbone_width={STANDARD_WIDTH}: ImageNet weights exist "
            f"only for the standard {name}, not for width {width}. Name a state dict of this "
            f"width with pretrained_path=FILE, set backbone_width={STANDARD_WIDTH}, or "
            "pretrained=false to train the narrow network from random init"
        )


class ResNetFront(nn.Module):
    """E_V / E_I: conv1 + bn1 + relu + maxpool + layer1 + layer2."""

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.conv1 = copy.deepcopy(resnet.conv1)
        self.bn1 = copy.deepcopy(resnet.bn1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = copy.deepcopy(resnet.maxpool)
        self.layer1 = copy.deepcopy(resnet.layer1)
        self.layer2 = copy.deepcopy(resnet.layer2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer2(self.layer1(x))


class ResNetTail(nn.Module):
    """E^V_sp / E^I_sp / E_sh: layer3 + layer4 + global average pooling -> [B, C]."""

    def __init__(self, resnet: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        self.layer3 = copy.deepcopy(resnet.layer3)
        self.layer4 = copy.deepcopy(resnet.layer4)
        set_last_stride(self.layer4, last_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(x)).mean(dim=(2, 3))


def set_last_stride(layer4: nn.Sequential, stride: int) -> None:
    """Stride of layer4's first block; 1 (ReID convention) keeps 18x9 maps at 288x144."""
    if stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {stride}")
    block = layer4[0]
    # torchvision's Bottleneck strides its 3x3 conv2 (ResNet v1.5); BasicBlock strides conv1.
    conv = block.conv2 if isinstance(block, torchvision.models.resnet.Bottleneck) else block.conv1
    conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


# What a `pretrained_path` file must hold, said by every message about one.
_STATE_DICT_FILE = (
    "the file must hold a torchvision ResNet state dict as torch.save(model.state_dict(), path) "
    "writes it: a mapping of parameter names to tensors, optionally wrapped as "
    "{'state_dict': ...} or {'model': ...}"
)


def _unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FMCNetError(f"pretrained_path={str(path)!r} does not hold a ResNet state dict; "
                          f"{_STATE_DICT_FILE}")
    # Checkpoints saved from DataParallel / DDP prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_state_dict_file(resnet: nn.Module, path: str | os.PathLike) -> None:
    """Load a torchvision-ResNet state dict saved with `torch.save` into `resnet`."""
    path = resolve_weights_path(path)
    if not path.is_file():
        raise FMCNetError(f"pretrained_path={str(path)!r} does not exist or is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise FMCNetError(f"pretrained_path={str(path)!r} is not readable for you (permission "
                          "denied); ask its owner or copy it") from None
    except Exception as exc:  # pickle, zip or weights_only errors all mean "not usable"
        # torch's own text is not passed on: for objects beyond tensors it advises
        # weights_only=False, which would run code from the file.
        if isinstance(exc, pickle.UnpicklingError):
            found = ("it is not a torch.save file of tensors only: corrupt, another format, or "
                     "holding other objects")
        else:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            found = (f"{exc.__class__.__name__}: {first.split('. ')[0]}; it is truncated, "
                     "corrupt or not a file torch.save wrote")
        raise FMCNetError(
            f"pretrained_path={str(path)!r} could not be read ({found}); {_STATE_DICT_FILE}"
        ) from None
    state = _unwrap_state_dict(obj, path)
    expected = resnet.state_dict()
    # The ImageNet classifier (fc) is never used, so a headless state dict is fine.
    missing = sorted(k for k in expected if k not in state and not k.startswith("fc."))
    unexpected = sorted(k for k in state if k not in expected)
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items() if k in state and state[k].shape != v.shape
    )
    if missing or unexpected or wrong:
        raise FMCNetError(
            f"pretrained_path={str(path)!r} does not match a torchvision "
            f"{type(resnet).__name__} of this depth: missing keys {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}, shape mismatches {wrong[:8]}"
        )
    resnet.load_state_dict(state, strict=False)


def imagenet_weights_file(name: str) -> Path:
    """Where torchvision looks for the ImageNet weights of `name`: the torch hub cache.

    `torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`; the hub directory is
    `$TORCH_HOME/hub` (default ~/.cache/torch/hub).
    """
    _check_name(name)
    weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _missing_weights_message(name: str, detail: str) -> str:
    weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    cached = imagenet_weights_file(name)
    return (
        f"pretrained=true, but torchvision's ImageNet weights for {name} "
        f"({_WEIGHTS[name]}.IMAGENET1K_V1) are not usable: {detail}. torchvision looks for "
        f"the file {cached.name} in {cached.parent} (torch.hub.get_dir(), set by $TORCH_HOME). "
        f"To fix: copy {cached.name} there (download {weights.url} on a machine with "
        "internet), or pass pretrained_path=<a saved torchvision ResNet state dict>, or "
        "pretrained=false to train from random init on purpose (far below the paper's accuracy)"
    )


def weights_source(name: str, *, pretrained: bool,
                   pretrained_path: str | os.PathLike | None = None) -> str:
    """What a model built with these settings starts from: "file:<path>",
    "imagenet:<file name>" or "random" (no file is opened; `check_pretrained` checks)."""
    if pretrained_path is not None:
        return f"file:{pretrained_path}"
    if pretrained:
        return f"imagenet:{imagenet_weights_file(name).name}"
    return "random"


def check_pretrained(name: str, *, pretrained: bool,
                     pretrained_path: str | os.PathLike | None = None,
                     width: int = STANDARD_WIDTH) -> str:
    """Where the backbone weights will come from, checked before any work is done.

    Returns "file:<path>", "imagenet:<file name>" or "random" (only when `pretrained` is
    false and no file is given). Raises FMCNetError when the requested weights are missing,
    so a run stops before it loads data or trains -- never silently from random init.
    """
    _check_width(name, width, pretrained=pretrained, pretrained_path=pretrained_path)
    if pretrained_path is not None:
        path = resolve_weights_path(pretrained_path)
        if not path.is_file():
            raise FMCNetError(f"pretrained_path={str(path)!r} does not exist or is not a file "
                              f"(a relative path is looked for in the working directory and in "
                              f"{PACKAGE_PARENT})")
    elif pretrained:
        cached = imagenet_weights_file(name)
        if not cached.is_file():
            raise FMCNetError(_missing_weights_message(name, f"{cached} does not exist"))
    return weights_source(name, pretrained=pretrained, pretrained_path=pretrained_path)


def imagenet_weights(name: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """torchvision's ImageNet weights from the torch hub cache, or (None, why not).

    Never downloads: the cache file is looked up first, because `get_state_dict` would
    otherwise reach for the network (and hang or fail slowly on an offline machine).
    """
    weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    cached = imagenet_weights_file(name)
    if not cached.is_file():
        return None, f"{cached} does not exist"
    try:
        return weights.get_state_dict(progress=False, weights_only=True), cached.name
    except Exception as exc:  # a truncated or corrupt cache file
        return None, f"{cached} could not be read ({exc})"


def narrow_resnet(name: str, width: int) -> torchvision.models.ResNet:
    """A randomly initialised torchvision ResNet whose every stage has `width / 64` of the
    standard channels (stem `width`, layer1..4 `width`, 2x, 4x, 8x; bottleneck expansion
    kept). Not in the paper: a cheaper network for CPU training from random init."""
    _check_width(name, width, pretrained=False, pretrained_path=None)
    resnet = getattr(torchvision.models, name)(weights=None)
    if width == STANDARD_WIDTH:
        return resnet
    block = type(resnet.layer1[0])
    depths = [len(getattr(resnet, f"layer{i}")) for i in range(1, 5)]
    resnet.inplanes = width
    resnet.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    resnet.bn1 = nn.BatchNorm2d(width)
    for i, depth in enumerate(depths):
        # torchvision's own layer builder, so block layout and names stay its own.
        layer = resnet._make_layer(block, width * 2**i, depth, stride=1 if i == 0 else 2)
        setattr(resnet, f"layer{i + 1}", layer)
    resnet.fc = nn.Linear(width * 8 * block.expansion, 1000)
    for m in resnet.modules():  # torchvision's initialisation of a fresh ResNet
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return resnet


def build_resnet(
    name: str = "resnet50",
    *,
    pretrained: bool = False,
    pretrained_path: str | os.PathLike | None = None,
    width: int = STANDARD_WIDTH,
) -> tuple[torchvision.models.ResNet, str]:
    """A torchvision ResNet holding the requested weights, and where they came from.

    Returns `(resnet, source)` with source "file:<path>", "imagenet:<file name>" or
    "random". Requested weights that are missing or unusable raise FMCNetError (an
    explicit `pretrained_path`, or `pretrained=True` without the file in the torch hub
    cache): random init happens only when asked for (`pretrained=False`). A `width`
    other than 64 exists only from random init or from a file saved at that width.
    """
    _check_width(name, width, pretrained=pretrained, pretrained_path=pretrained_path)
    resnet = narrow_resnet(name, width)
    if pretrained_path is not None:
        load_state_dict_file(resnet, pretrained_path)
        return resnet, f"file:{pretrained_path}"
    if not pretrained:
        return resnet, "random"
    state, detail = imagenet_weights(name)
    if state is None:
        raise FMCNetError(_missing_weights_message(name, detail))
    resnet.load_state_dict(state)
    return resnet, f"imagenet:{detail}"
