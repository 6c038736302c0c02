"""SFF: shared-specific feature fusion (FMCNET_SPEC section 3, paper Sec. 3.3).

    F_fu,V = w1 * F_sp,V + w2 * F'_sp,I        F_fp,V = Cat(F_sh,V, F_fu,V)    (Eqs. 15-16)
    F_fu,I = w1 * F_sp,I + w2 * F'_sp,V        F_fp,I = Cat(F_sh,I, F_fu,I)
    S_fp,m = P_fp(F_fp,m)                      one shared classifier

Table 2's "Base+SFD+FMC" row instead concatenates the three features plainly
(`concat_fusion`), with no weights and no classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from fmcnet.model.sfd import IdentityClassifier, check_modality


def concat_fusion(
    shared_features: torch.Tensor, specific_features: torch.Tensor, generated_features: torch.Tensor
) -> torch.Tensor:
    """Cat(F_sh,m, F_sp,m, F'_sp,other): the plain fusion of Table 2's third row."""
    return torch.cat([shared_features, specific_features, generated_features], dim=1)


class SFF(nn.Module):
    """Learnable (w1, w2) per modality (choice: init 1.0 / 0.5) and the classifier P_fp."""

    def __init__(
        self,
        dim: int,
        num_classes: int,
        omega_init: tuple[float, float] = (1.0, 0.5),
        bnneck: bool = False,
    ) -> None:
        super().__init__()
        if len(omega_init) != 2:
            raise ValueError(f"omega_init must be two numbers (w1, w2), got {omega_init!r}")
        init = torch.tensor([float(w) for w in omega_init])
        # The paper's w1, w2 could be one pair for both modalities; one pair per modality
        # (choice) lets the fusion weigh a real vs. a generated feature differently for V and I.
        self.omega_v = nn.Parameter(init.clone())
        self.omega_i = nn.Parameter(init.clone())
        self.classifier_fused = IdentityClassifier(2 * dim, num_classes, bnneck)  # P_fp

    def fuse(
        self,
        shared_features: torch.Tensor,
        specific_features: torch.Tensor,
        generated_features: torch.Tensor,
        modality: str,
    ) -> torch.Tensor:
        """F_fp,m = Cat(F_sh,m, w1 F_sp,m + w2 F'_sp,other) (Eqs. 15-16)."""
        omega = self.omega_v if check_modality(modality) == "visible" else self.omega_i
        fused_specific = omega[0] * specific_features + omega[1] * generated_features
        return torch.cat([shared_features, fused_specific], dim=1)

    def forward(self, fused_features: torch.Tensor) -> torch.Tensor:
        """S_fp,m = P_fp(F_fp,m)."""
        return self.classifier_fused(fused_features)
