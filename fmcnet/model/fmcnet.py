"""FMCNet: SFD + FMC + SFF assembled (paper Fig. 2), with the ablation switches of Tables 2-4.

`forward(x_v, x_i)` returns the dict documented in docs/architecture.md ("Model outputs");
`fmcnet.losses.fmcnet_loss` turns it into L = L_SFD + L_FMC + L_SFF.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from fmcnet.model.fmc import FMC
from fmcnet.model.sfd import SFD, check_modality
from fmcnet.model.sff import SFF, concat_fusion

FUSIONS = ("sff", "concat", "none")


def _check_image_batch(x: Any, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a float image batch [B, 3, H, W] (infrared images as 3 identical "
            f"channels), got {shape}"
        )


class FMCNet(nn.Module):
    """The feature-level modality compensation network.

    Switches: `sfd=False` is the paper's "Base" (E_V, E_I, E_sh, P_sh only); `fmc` adds the
    generators and discriminators; `fusion` is "sff" (the full model), "concat" (Table 2's
    plain Cat(F_sh, V-specific, I-specific)) or "none" (retrieval on F_sh).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet50",
        backbone_width: int = 64,
        pretrained: bool = False,
        pretrained_path: str | os.PathLike | None = None,
        last_stride: int = 1,
        bnneck: bool = False,
        generator_hidden: int = 1024,
        fmc_detach_input: bool = False,
        omega_init: tuple[float, float] = (0.5, 0.5),
        omega_weighs: str = "kind",
        sfd: bool = True,
        fmc: bool = True,
        fusion: str = "sff",
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if fmc and not sfd:
            raise ValueError("fmc=True needs sfd=True (the generators target F_sp)")
        if fusion != "none" and not fmc:
            raise ValueError(f"fusion={fusion!r} needs sfd=True and fmc=True; use fusion='none'")
        if num_classes < 1:
            raise ValueError(f"num_classes must be a positive number of identities, got {num_classes}")
        self.num_classes = num_classes
        self.fusion = fusion
        self.sfd = SFD(
            num_classes, backbone=backbone, width=backbone_width, pretrained=pretrained,
            pretrained_path=pretrained_path, last_stride=last_stride, bnneck=bnneck, specific=sfd,
        )
        self.pretrained_source: str = self.sfd.pretrained_source
        dim = self.sfd.dim
        self.fmc = FMC(dim, generator_hidden) if fmc else None
        # True: the generators read F_sh detached, so L_FMC trains G but not E_sh
        self.fmc_detach_input = fmc_detach_input
        self.sff = (SFF(dim, num_classes, tuple(omega_init), bnneck, weighs=omega_weighs)
                    if fusion == "sff" else None)
        # Retrieval width: F_fp (2C), Cat(F_sh, V-specific, I-specific) (3C) or F_sh (C).
        self.feature_dim: int = {"sff": 2 * dim, "concat": 3 * dim, "none": dim}[fusion]

    @classmethod
    def from_config(cls, cfg: Any, num_classes: int) -> FMCNet:
        """Build from a `fmcnet.config.Config` (model and ablation fields)."""
        return cls(
            num_classes,
            backbone=cfg.backbone,
            backbone_width=cfg.backbone_width,
            pretrained=cfg.pretrained,
            pretrained_path=cfg.weights_path,
            last_stride=cfg.last_stride,
            bnneck=cfg.bnneck,
            generator_hidden=cfg.generator_hidden,
            fmc_detach_input=cfg.fmc_detach_input,
            omega_init=tuple(cfg.omega_init),
            omega_weighs=getattr(cfg, "omega_weighs", "kind"),
            sfd=cfg.sfd,
            fmc=cfg.fmc,
            fusion=cfg.fusion,
        )

    def _fuse(self, shared: torch.Tensor, specific: torch.Tensor, generated: torch.Tensor,
              modality: str) -> torch.Tensor:
        if self.sff is not None:
            return self.sff.fuse(shared, specific, generated, modality)
        return concat_fusion(shared, specific, generated, modality)

    def forward(self, x_v: torch.Tensor, x_i: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training forward pass over a visible and an infrared batch."""
        _check_image_batch(x_v, "x_v")
        _check_image_batch(x_i, "x_i")
        if x_v.shape[1:] != x_i.shape[1:]:
            raise ValueError(
                f"x_v and x_i must share channels and image size, got {tuple(x_v.shape)} "
                f"and {tuple(x_i.shape)}"
            )
        out = self.sfd(x_v, x_i)
        if self.fmc is not None:
            source_v, source_i = out["shared_v"], out["shared_i"]
            if self.fmc_detach_input:
                source_v, source_i = source_v.detach(), source_i.detach()
            generated_i = self.fmc.generate(source_v, "visible")  # F'_sp,I
            generated_v = self.fmc.generate(source_i, "infrared")  # F'_sp,V
            out["generated_i"] = generated_i
            out["generated_v"] = generated_v
            out["logits_generated_i"] = self.sfd.classify_specific(generated_i, "infrared")
            out["logits_generated_v"] = self.sfd.classify_specific(generated_v, "visible")
            # Generator-side logits with D frozen: L_GAN(G side) never writes D's grads.
            out["disc_fake_i"] = self.fmc.discriminator_v2i.frozen(generated_i)
            out["disc_fake_v"] = self.fmc.discriminator_i2v.frozen(generated_v)
        if self.fusion != "none":
            out["fused_v"] = self._fuse(out["shared_v"], out["specific_v"], out["generated_i"],
                                        "visible")
            out["fused_i"] = self._fuse(out["shared_i"], out["specific_i"], out["generated_v"],
                                        "infrared")
            if self.sff is not None:
                out["logits_fused_v"] = self.sff(out["fused_v"])
                out["logits_fused_i"] = self.sff(out["fused_i"])
        return out

    def extract(self, x: torch.Tensor, modality: str, *, _retrieval_only: bool = False
                ) -> dict[str, torch.Tensor]:
        """Features of one modality's images: "shared", "specific", "generated", "fused".

        "generated" is the compensated *other* modality's specific feature (F'_sp,I for a
        visible image). Keys appear when the model has the branch. Call `model.eval()` first.
        """
        check_modality(modality)
        _check_image_batch(x, "x")
        maps = self.sfd.front(x, modality)
        feats = {"shared": self.sfd.shared_features(maps)}
        if _retrieval_only and self.fusion == "none":
            return feats
        if self.sfd.specific:
            feats["specific"] = self.sfd.specific_features(maps, modality)
        if self.fmc is not None:
            feats["generated"] = self.fmc.generate(feats["shared"], modality)
        if self.fusion != "none":
            feats["fused"] = self._fuse(feats["shared"], feats["specific"], feats["generated"],
                                        modality)
        return feats

    def embed(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """The retrieval feature [B, feature_dim] (not normalised; docs/method.md section 3).

        F_fp of the image's own modality for the full model (a visible image goes through
        E_V, E^V_sp, E_sh and G_{V->I}), Cat(F_sh, V-specific, I-specific) for
        fusion="concat", F_sh for fusion="none" (Base, Base+SFD). Widths with ResNet-50: 4096 / 6144 / 2048
        (ResNet-18/34: 1024 / 1536 / 512).
        """
        feats = self.extract(x, modality, _retrieval_only=True)
        return feats["fused"] if self.fusion != "none" else feats["shared"]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Every parameter in exactly one group: ResNet parts, new layers, discriminators.

        The trainer gives "pretrained" a lower LR (cfg.pretrained_lr_mult) and steps
        "discriminator" with its own optimizer against the discriminator loss.
        """
        pretrained = [p for m in self.sfd.backbone_modules() for p in m.parameters()]
        discriminator = []
        if self.fmc is not None:
            discriminator = [*self.fmc.discriminator_v2i.parameters(),
                             *self.fmc.discriminator_i2v.parameters()]
        taken = {id(p) for p in pretrained + discriminator}
        new = [p for p in self.parameters() if id(p) not in taken]
        return {"pretrained": pretrained, "new": new, "discriminator": discriminator}


def build_model(cfg: Any, num_classes: int) -> FMCNet:
    """`FMCNet.from_config(cfg, num_classes)`."""
    return FMCNet.from_config(cfg, num_classes)
