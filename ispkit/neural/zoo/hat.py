"""Register HAT (Chen et al., CVPR 2023): HAT-S, HAT and HAT-L at ×2/×3/×4, and Real-HAT-GAN ×4.

Layouts follow XPixelGroup/HAT ``hat/archs/hat_arch.py`` with the network
options of ``options/test/*.yml``. The official checkpoints are BasicSR
training files whose weights sit under ``params_ema`` (the test configs load
``param_key_g: 'params_ema'`` with ``strict_load_g: true``); ispkit unwraps
that container, so they load with ``strict=True`` and no key remapping.
"""

from __future__ import annotations

from ..models.hat import HAT
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = [
    "HAT_VARIANTS",
    "HAT_COMMON",
    "hat_contract",
    "build_hat",
    "build_hat_s_srx2",
    "build_hat_s_srx3",
    "build_hat_s_srx4",
    "build_hat_srx2",
    "build_hat_srx3",
    "build_hat_srx4",
    "build_hat_real_gan_srx4",
    "build_hat_l_srx2",
    "build_hat_l_srx3",
    "build_hat_l_srx4",
]

#: Network options shared by every released model (``network_g`` of the test configs).
HAT_COMMON = dict(in_channels=3, window_size=16, conv_scale=0.01, overlap_ratio=0.5, mlp_ratio=2.0,
                  img_range=1.0, resi_connection="1conv")

#: The options that tell the three sizes apart.
HAT_VARIANTS = {
    "hat_s": dict(embed_dim=144, depths=(6,) * 6, num_heads=(6,) * 6, compress_ratio=24, squeeze_factor=24),
    "hat": dict(embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, compress_ratio=3, squeeze_factor=30),
    "hat_l": dict(embed_dim=180, depths=(6,) * 12, num_heads=(6,) * 12, compress_ratio=3, squeeze_factor=30),
}

_PAPER = ("X. Chen, X. Wang, J. Zhou, Y. Qiao, C. Dong, \"Activating More Pixels in Image Super-Resolution "
          "Transformer\", CVPR 2023, arXiv:2205.04437")
_URL = ("https://drive.google.com/drive/folders/1HpmReFfoUqUbnAOQ7rvOeNU3uf_m69w0 (or Baidu Netdisk "
        "https://pan.baidu.com/s/1u2r4Lc2_EEeQqra2-w85Xg, access code qyrl), linked from the "
        "github.com/XPixelGroup/HAT README")
_LICENSE = "Apache-2.0 (XPixelGroup/HAT LICENSE, Copyright 2023 Xiangyu Chen); no separate terms for the weights"
_SOURCE = "XPixelGroup/HAT hat/archs/hat_arch.py (class HAT, upsampler 'pixelshuffle') with options/test/{config}"
_COMMON_NOTES = ("BasicSR checkpoint: the weights are under 'params_ema' (some files also hold 'params'; ispkit "
                 "prefers params_ema like the official test configs). The state dict includes the int64 buffers "
                 "relative_position_index_SA (256×256) and relative_position_index_OCA (256×576); the DIV2K mean is "
                 "not in it. The module pads to a multiple of the 16-pixel window by reflection inside forward "
                 "(as HATModel.test does) and crops, so it accepts any size; the contract still declares "
                 "size_multiple=16 so that tiles start on the window grid and interior windows see the same pixels "
                 "as in an untiled run. Half precision (float16) may overflow (spandrel marks HAT as not "
                 "fp16-safe); bfloat16 autocast runs. ")

_DESCRIPTIONS = {
    "hat_s": "HAT-S (small: embed 144, 6 groups × 6 HABs, CAB ratio 24)",
    "hat": "HAT (embed 180, 6 groups × 6 HABs)",
    "hat_l": "HAT-L (large: embed 180, 12 groups × 6 HABs)",
}


def hat_contract(upscale: int) -> InputContract:
    """The input contract of every released HAT model at ``upscale``."""
    return InputContract(
        domain="rgb_display",
        channel_order="RGB",
        normalization=("display RGB in [0, 1] (BasicSR reads 8-bit images /255, BGR→RGB), img_range 1; the "
                       "DIV2K mean (0.4488, 0.4371, 0.4040) is subtracted and added back inside the model"),
        gamma="sRGB (display-referred)",
        size_multiple=16,
        scale=float(upscale),
        in_channels=3,
        out_channels=3,
    )


def build_hat(variant: str, upscale: int) -> HAT:
    """Build ``variant`` (``"hat_s"``, ``"hat"``, ``"hat_l"``) at ``upscale`` with the official options."""
    return HAT(upscale=upscale, **HAT_COMMON, **HAT_VARIANTS[variant])


def build_hat_s_srx2() -> HAT:
    """HAT-S ×2."""
    return build_hat("hat_s", 2)


def build_hat_s_srx3() -> HAT:
    """HAT-S ×3."""
    return build_hat("hat_s", 3)


def build_hat_s_srx4() -> HAT:
    """HAT-S ×4."""
    return build_hat("hat_s", 4)


def build_hat_srx2() -> HAT:
    """HAT ×2."""
    return build_hat("hat", 2)


def build_hat_srx3() -> HAT:
    """HAT ×3."""
    return build_hat("hat", 3)


def build_hat_srx4() -> HAT:
    """HAT ×4."""
    return build_hat("hat", 4)


def build_hat_real_gan_srx4() -> HAT:
    """Real-HAT-GAN ×4 (the HAT ×4 network, trained on real-world degradations)."""
    return build_hat("hat", 4)


def build_hat_l_srx2() -> HAT:
    """HAT-L ×2."""
    return build_hat("hat_l", 2)


def build_hat_l_srx3() -> HAT:
    """HAT-L ×3."""
    return build_hat("hat_l", 3)


def build_hat_l_srx4() -> HAT:
    """HAT-L ×4."""
    return build_hat("hat_l", 4)


# name, builder, variant, upscale, test config, checkpoint files, extra notes
_ENTRIES = (
    ("hat_s.srx2", build_hat_s_srx2, "hat_s", 2, "HAT-S_SRx2.yml", "HAT-S_SRx2.pth",
     "Trained on DF2K (bicubic ×2)."),
    ("hat_s.srx3", build_hat_s_srx3, "hat_s", 3, "HAT-S_SRx3.yml", "HAT-S_SRx3.pth",
     "Trained on DF2K (bicubic ×3)."),
    ("hat_s.srx4", build_hat_s_srx4, "hat_s", 4, "HAT-S_SRx4.yml", "HAT-S_SRx4.pth",
     "Trained on DF2K (bicubic ×4, fine-tuned from ×2)."),
    ("hat.srx2", build_hat_srx2, "hat", 2, "HAT_SRx2.yml", "HAT_SRx2.pth or HAT_SRx2_ImageNet-pretrain.pth",
     "Both files share this layout (DF2K only, or ImageNet pre-training then DF2K)."),
    ("hat.srx3", build_hat_srx3, "hat", 3, "HAT_SRx3.yml", "HAT_SRx3.pth or HAT_SRx3_ImageNet-pretrain.pth",
     "Both files share this layout (DF2K only, or ImageNet pre-training then DF2K)."),
    ("hat.srx4", build_hat_srx4, "hat", 4, "HAT_SRx4.yml", "HAT_SRx4.pth or HAT_SRx4_ImageNet-pretrain.pth",
     "Both files share this layout (DF2K only, or ImageNet pre-training then DF2K)."),
    ("hat.real_gan_srx4", build_hat_real_gan_srx4, "hat", 4, "HAT_GAN_Real_SRx4.yml",
     "Real_HAT_GAN_SRx4.pth (or Real_HAT_GAN_SRx4_sharper.pth)",
     "Real-world ×4 SR: trained with Real-ESRGAN-style synthetic degradations and a GAN loss; meant for real "
     "photographs (noise, blur, JPEG), not bicubic inputs. The official config tiles at 512 with 32 pixels of pad."),
    ("hat_l.srx2", build_hat_l_srx2, "hat_l", 2, "HAT-L_SRx2_ImageNet-pretrain.yml",
     "HAT-L_SRx2_ImageNet-pretrain.pth", "ImageNet pre-training, then DF2K fine-tuning."),
    ("hat_l.srx3", build_hat_l_srx3, "hat_l", 3, "HAT-L_SRx3_ImageNet-pretrain.yml",
     "HAT-L_SRx3_ImageNet-pretrain.pth", "ImageNet pre-training, then DF2K fine-tuning."),
    ("hat_l.srx4", build_hat_l_srx4, "hat_l", 4, "HAT-L_SRx4_ImageNet-pretrain.yml",
     "HAT-L_SRx4_ImageNet-pretrain.pth", "ImageNet pre-training, then DF2K fine-tuning."),
)

for _name, _builder, _variant, _scale, _config, _files, _extra in _ENTRIES:
    register_model(
        _name, _builder,
        WeightsSpec(
            paper=_PAPER,
            url=f"{_URL}; file {_files}",
            license=_LICENSE,
            source=_SOURCE.format(config=_config),
            contract=hat_contract(_scale),
            notes=_COMMON_NOTES + _extra,
        ),
        description=(f"Real-HAT-GAN ×4 real-world super-resolution, {_DESCRIPTIONS[_variant]}"
                     if _name == "hat.real_gan_srx4" else f"{_DESCRIPTIONS[_variant]} ×{_scale} super-resolution"),
    )
del _name, _builder, _variant, _scale, _config, _files, _extra
