"""SFF: shared-specific feature fusion (docs/method.md section 3, paper Sec. 3.3).

    F_fu,V = w1 * F_sp,V  + w2 * F'_sp,I       F_fp,V = Cat(F_sh,V, F_fu,V)    (Eqs. 15-16)
    F_fu,I = w1 * F'_sp,V + w2 * F_sp,I        F_fp,I = Cat(F_sh,I, F_fu,I)
    S_fp,m = P_fp(F_fp,m)                      one shared classifier

Reading (docs/method_readings.md; `omega_weighs`): w1 weighs the *visible-specific kind*
and w2 the *infrared-specific kind*, real or generated, in both modalities ("kind", this
code's default). Every image carries one
feature of each kind -- its own modality's real one and the other modality's generated
one -- so an infrared query's generated F'_sp,V meets a visible gallery image's real
F_sp,V under the same weight, and with a perfect generator the fused features of one
identity are equal across modalities. Table 2's "Base+SFD+FMC" row concatenates the
same two slots plainly (`concat_fusion`), with no weights and no classifier.

The other reading, "role", takes the visible case of Eq. 15 literally for both
modalities: w1 weighs the image's *real* specific feature and w2 the *generated* one,
F_fu,I = w1 * F_sp,I + w2 * F'_sp,V (one pair shared by the two modalities).
"""

from __future__ import annotations

import torch
from torch import nn

from fmcnet.model.sfd import IdentityClassifier, check_modality

# What w1 and w2 weigh under each reading (metrics: omega/<name>)
OMEGA_NAMES = {"kind": ("v_specific", "i_specific"), "role": ("real", "generated")}


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
    """The fusion weights (w1, w2) and the classifier P_fp.

    `weighs`: "kind" (w1 the V-specific kind, w2 the I-specific kind) or "role" (w1 the
    image's real specific feature, w2 the generated one). Choice: init (0.5, 0.5) -- no
    part is favoured and F_fu starts as the mean of the two, on the scale of one feature
    (the paper gives no initial values).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        omega_init: tuple[float, float] = (0.5, 0.5),
        bnneck: bool = False,
        weighs: str = "kind",
    ) -> None:
        super().__init__()
        if weighs not in OMEGA_NAMES:
            raise ValueError(f"weighs must be one of {tuple(OMEGA_NAMES)}, got {weighs!r}")
        self.weighs = weighs
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
        """F_fp,m = Cat(F_sh,m, w1 * V-specific + w2 * I-specific) (Eqs. 15-16); "role":
        Cat(F_sh,m, w1 * F_sp,m + w2 * F'_sp).

        `specific_features` is the image's real F_sp,m, `generated_features` the other
        modality's F'_sp from G (`specific_kinds` puts them in kind order).
        """
        if self.weighs == "role":
            first, second = specific_features, generated_features
        else:
            first, second = specific_kinds(specific_features, generated_features, modality)
        fused_specific = self.omega[0] * first + self.omega[1] * second
        return torch.cat([shared_features, fused_specific], dim=1)

    def omega_values(self) -> dict[str, float]:
        """{"v_specific": w1, "i_specific": w2} ("role": {"real": w1, "generated": w2}) as
        plain numbers (the metrics log)."""
        return dict(zip(OMEGA_NAMES[self.weighs], self.omega.detach().float().tolist()))

    def forward(self, fused_features: torch.Tensor) -> torch.Tensor:
        """S_fp,m = P_fp(F_fp,m)."""
        return self.classifier_fused(fused_features)
