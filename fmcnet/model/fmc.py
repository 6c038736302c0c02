"""FMC: feature-level modality compensation (docs/method.md section 2, paper Sec. 3.2).

    F'_sp,I = G_{V->I}(F_sh,V)        F'_sp,V = G_{I->V}(F_sh,I)        (Eq. 11)

D_{V->I} tells real F_sp,I from generated F'_sp,I, D_{I->V} likewise for V (Eq. 12).
The discriminators return logits; the paper's sigmoid lives in the BCE-with-logits
losses (`fmcnet.losses`) for numerical stability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fmcnet.model.sfd import check_modality, init_kaiming


class FeatureGenerator(nn.Module):
    """G: three stacked FC layers dim -> h -> h -> dim (choice: BN + LeakyReLU(0.2) between).

    In training mode BatchNorm needs at least 2 samples; call `model.eval()` to generate
    from single images (it then uses the running statistics).
    """

    def __init__(self, dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, dim),
        )
        init_kaiming(self.layers[:-1], nonlinearity="leaky_relu", a=0.2)
        init_kaiming(self.layers[-1])  # the output is a feature, not an activation

    def forward(self, shared_features: torch.Tensor) -> torch.Tensor:
        return self.layers(shared_features)


class FeatureDiscriminator(nn.Module):
    """D: one FC layer dim -> 1 giving a logit (the paper's sigmoid is in the loss)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        init_kaiming(self)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features).squeeze(-1)

    def frozen(self, features: torch.Tensor) -> torch.Tensor:
        """D's logit with D's parameters treated as constants (the generator's view).

        The generator's adversarial loss must move G, not D: with detached weights its
        gradient reaches G (through `features`) and never writes into D's `.grad`.
        """
        bias = None if self.linear.bias is None else self.linear.bias.detach()
        return F.linear(features, self.linear.weight.detach(), bias).squeeze(-1)


class FMC(nn.Module):
    """G_{V->I}, G_{I->V}, D_{V->I}, D_{I->V}."""

    def __init__(self, dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.generator_v2i = FeatureGenerator(dim, hidden)
        self.generator_i2v = FeatureGenerator(dim, hidden)
        self.discriminator_v2i = FeatureDiscriminator(dim)
        self.discriminator_i2v = FeatureDiscriminator(dim)

    def generate(self, shared_features: torch.Tensor, modality: str) -> torch.Tensor:
        """The missing specific features of the *other* modality (Eq. 11).

        `modality` is the source: "visible" gives F'_sp,I = G_{V->I}(F_sh,V).
        """
        visible = check_modality(modality) == "visible"
        return (self.generator_v2i if visible else self.generator_i2v)(shared_features)

    def discriminator(self, source_modality: str) -> FeatureDiscriminator:
        """D_{V->I} for source "visible" (judges infrared features), D_{I->V} otherwise."""
        visible = check_modality(source_modality) == "visible"
        return self.discriminator_v2i if visible else self.discriminator_i2v
