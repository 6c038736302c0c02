"""SFF: shared-specific feature fusion (docs/method.md section 3, paper Sec. 3.3).

    F_fu,V = w1 * F_sp,V  + w2 * F'_sp,I       F_fp,V = Cat(F_sh,V, F_fu,V)    (Eqs. 15-16)
    F_fu,I = w1 * F'_sp,V + w2 * F_sp,I        F_fp,I = Cat(F_sh,I, F_fu,I)
    S_fp,m = P_fp(F_fp,m)                      one shared classifier

Reading (docs/method_readings.md): w1 weighs the *visible-specific kind* and w2 the
*infrared-specific kind*, real or generated, in both modalities. Every image carries one
feature of each kind -- its own modality's real one and the other modality's generated
one -- so an infrared query's generated F'_sp,V meets a visible gallery image's real
F_sp,V under the same weight, and with a perfect generator the fused features of one
identity are equal across modalities. Table 2's "Base+SFD+FMC" row concatenates the
same two slots plainly (`concat_fusion`), with no weights and no classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from fmcnet.model.sfd import IdentityClassifier, check_modality

OMEGA_NAMES = ("v_specific", "i_specific")  # what w1 and w2 weigh (metrics: omega/<name>)


def specific_kinds(specific_features: torch.Tensor, generated_features: torch.Tensor,
                   modality: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(V-specific, I-specific) of an image: its real F_sp,m and the generated other kind.

    A visible image has real F_sp,V and generated F'_sp,I; an infrared image generated
    F'_sp,V and real F_sp,I. Fusion puts them in this order for both modalities.
    """
    if check_modality(modality) == "visible":
        return specific_features, generated_features
    return generated_features, specific_features


def concat_fusion(shared_features: torch.Tensor, specific_features: torch.Tensor,
                  generated_features: torch.Tensor, modality: str) -> torch.Tensor:
    """Cat(F_sh,m, V-specific slot, I-specific slot): Table 2's plain fusion, like with like."""
    v_kind, i_kind = specific_kinds(specific_features, generated_features, modality)
    return torch.cat([shared_features, v_kind, i_kind], dim=1)


class SFF(nn.Module):
    """The fusion weights (w1, w2), one per kind of specific feature, and the classifier P_fp.

    Choice: init (0.5, 0.5) -- no kind is favoured and F_fu starts as the mean of the two
    kinds, on the scale of one feature (the paper gives no initial values).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        omega_init: tuple[float, float] = (0.5, 0.5),
        bnneck: bool = False,
    ) -> None:
        super().__init__()
        if len(omega_init) != 2:
            raise ValueError(f"omega_init must be two numbers (w1, w2), got {omega_init!r}")
        self.omega = nn.Parameter(torch.tensor([float(w) for w in omega_init]))
        self.classifier_fused = IdentityClassifier(2 * dim, num_classes, bnneck)  # P_fp

    def fuse(
        self,
        shared_features: torch.Tensor,
        specific_features: torch.Tensor,
        generated_features: torch.Tensor,
        modality: str,
    ) -> torch.Tensor:
        """F_fp,m = Cat(F_sh,m, w1 * V-specific + w2 * I-specific) (Eqs. 15-16).

        `specific_features` is the image's real F_sp,m, `generated_features` the other
        modality's F'_sp from G (`specific_kinds` puts them in kind order).
        """
        v_kind, i_kind = specific_kinds(specific_features, generated_features, modality)
        fused_specific = self.omega[0] * v_kind + self.omega[1] * i_kind
        return torch.cat([shared_features, fused_specific], dim=1)

    def omega_values(self) -> dict[str, float]:
        """{"v_specific": w1, "i_specific": w2} as plain numbers (the metrics log)."""
        return dict(zip(OMEGA_NAMES, self.omega.detach().float().tolist()))

    def forward(self, fused_features: torch.Tensor) -> torch.Tensor:
        """S_fp,m = P_fp(F_fp,m)."""
        return self.classifier_fused(fused_features)
