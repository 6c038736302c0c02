"""SFD: single-modality feature decomposition (docs/method.md section 1, paper Sec. 3.1).

    F_V    = E_V(X_V)          F_I    = E_I(X_I)
    F_sp,V = E^V_sp(F_V)       F_sp,I = E^I_sp(F_I)
    F_sh,V = E_sh(F_V)         F_sh,I = E_sh(F_I)        (one shared tail)
    S_sp,m = P^m_sp(F_sp,m)    S_sh,m = P_sh(F_sh,m)

With `specific=False` only E_V, E_I, E_sh and P_sh exist: the paper's "Base".
"""

from __future__ import annotations

import os

import torch
from torch import nn

from fmcnet.model.backbone import ResNetFront, ResNetTail, build_resnet, feature_dim

MODALITIES = ("visible", "infrared")


def check_modality(modality: str) -> str:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be 'visible' or 'infrared', got {modality!r}")
    return modality


def init_kaiming(module: nn.Module, nonlinearity: str = "linear", a: float = 0.0) -> None:
    """Kaiming init for the parts the paper does not pre-train (paper Sec. 4.2)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, a=a, mode="fan_in", nonlinearity=nonlinearity)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class IdentityClassifier(nn.Module):
    """P_sh / P^m_sp / P_fp: a linear identity classifier, optionally after a BNNeck.

    The BNNeck (choice, off by default) is BatchNorm1d with a frozen zero bias followed by
    a bias-free linear layer, as in the strong ReID baselines; it only shapes the logits --
    the features returned for losses and retrieval are taken before it.
    """

    def __init__(self, dim: int, num_classes: int, bnneck: bool = False) -> None:
        super().__init__()
        self.bnneck = nn.BatchNorm1d(dim) if bnneck else None
        self.linear = nn.Linear(dim, num_classes, bias=not bnneck)
        init_kaiming(self)
        if self.bnneck is not None:
            self.bnneck.bias.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.bnneck is not None:
            features = self.bnneck(features)
        return self.linear(features)


class SFD(nn.Module):
    """Modality fronts, the shared tail and (when `specific`) the two specific tails."""

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet50",
        width: int = 64,
        pretrained: bool = False,
        pretrained_path: str | os.PathLike | None = None,
        last_stride: int = 1,
        bnneck: bool = False,
        specific: bool = True,
    ) -> None:
        super().__init__()
        resnet, self.pretrained_source = build_resnet(
            backbone, pretrained=pretrained, pretrained_path=pretrained_path, width=width,
        )
        self.dim = feature_dim(backbone, width)
        # Every ResNet part is a copy of the same (pre-trained) network.
        self.encoder_v = ResNetFront(resnet)  # E_V
        self.encoder_i = ResNetFront(resnet)  # E_I
        self.shared_encoder = ResNetTail(resnet, last_stride)  # E_sh
        self.classifier_shared = IdentityClassifier(self.dim, num_classes, bnneck)  # P_sh
        self.specific = specific
        if specific:
            self.specific_encoder_v = ResNetTail(resnet, last_stride)  # E^V_sp
            self.specific_encoder_i = ResNetTail(resnet, last_stride)  # E^I_sp
            self.classifier_specific_v = IdentityClassifier(self.dim, num_classes, bnneck)
            self.classifier_specific_i = IdentityClassifier(self.dim, num_classes, bnneck)

    def backbone_modules(self) -> list[nn.Module]:
        """The ResNet parts (pre-trained when weights are given)."""
        parts = [self.encoder_v, self.encoder_i, self.shared_encoder]
        if self.specific:
            parts += [self.specific_encoder_v, self.specific_encoder_i]
        return parts

    def front(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """F_V = E_V(X_V) or F_I = E_I(X_I)."""
        encoder = self.encoder_v if check_modality(modality) == "visible" else self.encoder_i
        return encoder(x)

    def shared_features(self, front_maps: torch.Tensor) -> torch.Tensor:
        """F_sh,m = E_sh(F_m); one tail for both modalities."""
        return self.shared_encoder(front_maps)

    def specific_features(self, front_maps: torch.Tensor, modality: str) -> torch.Tensor:
        """F_sp,m = E^m_sp(F_m)."""
        if not self.specific:
            raise ValueError("this model has no modality-specific branches (sfd=False)")
        visible = check_modality(modality) == "visible"
        return (self.specific_encoder_v if visible else self.specific_encoder_i)(front_maps)

    def classify_specific(self, features: torch.Tensor, modality: str) -> torch.Tensor:
        """S_sp,m = P^m_sp(features); also scores generated F'_sp,m (Eq. 14)."""
        visible = check_modality(modality) == "visible"
        return (self.classifier_specific_v if visible else self.classifier_specific_i)(features)

    def forward(self, x_v: torch.Tensor, x_i: torch.Tensor) -> dict[str, torch.Tensor]:
        maps_v, maps_i = self.front(x_v, "visible"), self.front(x_i, "infrared")
        # One pass of the shared tail over both modalities: E_sh sees V and I together,
        # so its BatchNorm statistics are cross-modal, as in the common two-stream baselines.
        shared = self.shared_features(torch.cat([maps_v, maps_i]))
        shared_v, shared_i = shared.split([len(x_v), len(x_i)])
        out = {
            "shared_v": shared_v,
            "shared_i": shared_i,
            "logits_shared_v": self.classifier_shared(shared_v),
            "logits_shared_i": self.classifier_shared(shared_i),
        }
        if self.specific:
            specific_v = self.specific_features(maps_v, "visible")
            specific_i = self.specific_features(maps_i, "infrared")
            out["specific_v"] = specific_v
            out["specific_i"] = specific_i
            out["logits_specific_v"] = self.classify_specific(specific_v, "visible")
            out["logits_specific_i"] = self.classify_specific(specific_i, "infrared")
        return out
