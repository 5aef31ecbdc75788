"""Register Deep-FlexISP networks: ``deepflexisp.raw_denoise`` and ``deepflexisp.enhance_2023``.

Layouts and input contracts follow q935970314/Deep-FlexISP:

* ``raw_denoise`` — ``Night_Photography_2024/network_raw_denoise.py``
  (``sc_net_1f``), loaded by ``utils.get_net`` from
  ``checkpoint/raw_denoise.pth`` (``['params']`` when present) with
  ``strict=True`` and no prefix stripping; called from ``main_test.py``
  ``raw_denoise()``.
* ``enhance_2023`` — ``NightRender2023/stage4/network.py`` (``MWRCAN``),
  loaded by ``test_night_render_2023.py`` ``get_net`` from ``./100.pth``
  (``['params']``, else ``['state_dict_model']``) after stripping
  ``module.``; fed by ``stage3/test_simple_isp.py``.
"""

from __future__ import annotations

from ..models.deepflexisp import DeepFlexISPEnhancer, DeepFlexISPRawDenoiser
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = [
    "DEEPFLEXISP_RAW_DENOISE_CONTRACT",
    "DEEPFLEXISP_ENHANCE_2023_CONTRACT",
    "build_deepflexisp_raw_denoise",
    "build_deepflexisp_enhance_2023",
]

#: ``main_test.py`` ``pre_process`` + ``raw_denoise``: planes packed R, G, B, G
#: at the offsets of ``utils.bayer_to_offsets`` — R, Gr, B, Gb for RGGB and
#: GRBG, but R, Gb, B, Gr (ispkit naming) for BGGR and GBRG; resized to
#: 768×1024 packed (INTER_AREA); black level (raised by
#: clip((noise_profile[0] - 0.005) * 1000, 0, 10)) subtracted and divided by
#: (white - black), clipped to [0, 1]; a lens-shading gain applied and
#: clipped again; then clipped to max(3·mean, 0.9) for the network. The
#: output is a residual: denoised = clip(unclipped input + output, 0, 1).
DEEPFLEXISP_RAW_DENOISE_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="R,Gr,B,Gb",
    normalization="(raw - black) / (white - black) clipped to [0, 1], then clipped to max(3*mean, 0.9); "
                  "the output is a residual to add to the unclipped input (then clip to [0, 1])",
    gamma=None,
    size_multiple=4,
    scale=1.0,
    in_channels=4,
    out_channels=4,
)

#: ``NightRender2023/stage3/test_simple_isp.py`` → ``stage4``: an OpenCV EA
#: demosaic of the denoised, FC4-white-balanced RAW, shades-of-gray white
#: balance (p = 2.2), camera→XYZ (ColorMatrix1, rows normalised) and a fixed
#: XYZ→RGB matrix, the fixed tone curve ``tone_curve.mat``, ``x ** (1/3.2)``;
#: saved and fed in **BGR** order, reflect-padded to a multiple of 32. The
#: output (BGR, a quarter of the size) is clipped to [0, 1] and upscaled ×4
#: by HAT in stage 5.
DEEPFLEXISP_ENHANCE_2023_CONTRACT = InputContract(
    domain="rgb_display",
    channel_order="BGR",
    normalization="float [0, 1] display-referred image after the authors' fixed tone curve (tone_curve.mat)",
    gamma="power 1/3.2 after the tone curve",
    size_multiple=32,
    scale=0.25,
    in_channels=3,
    out_channels=3,
)

_PAPER = ("S. Liu, C. Feng, X. Wang, H. Wang, R. Zhu, Y. Li, L. Lei, \"Deep-FlexISP: A Three-Stage Framework "
          "for Night Photography Rendering\", CVPR Workshops 2022, pp. 1211-1220")
_LICENSE = "MIT (LICENSE of q935970314/Deep-FlexISP, copyright 2022 helegehe)"


def build_deepflexisp_raw_denoise() -> DeepFlexISPRawDenoiser:
    """The Bayer-domain residual U-Net ``sc_net_1f`` with its official width 64."""
    return DeepFlexISPRawDenoiser(channels=64)


def build_deepflexisp_enhance_2023() -> DeepFlexISPEnhancer:
    """The NTIRE 2023 MWRCAN enhancer with its official widths (64, 96, 128) and 20 RCABs per group."""
    return DeepFlexISPEnhancer(channels=(64, 96, 128), num_blocks=20, reduction=16)


register_model(
    "deepflexisp.raw_denoise", build_deepflexisp_raw_denoise,
    WeightsSpec(
        paper=_PAPER,
        url="https://github.com/q935970314/Deep-FlexISP/tree/main/Night_Photography_2024 "
            "(checkpoint/raw_denoise.pth; the 2024 Docker image ships it)",
        license=_LICENSE,
        source="q935970314/Deep-FlexISP Night_Photography_2024/network_raw_denoise.py (sc_net_1f)",
        contract=DEEPFLEXISP_RAW_DENOISE_CONTRACT,
        key_remap=((r"^module\.", ""),),
        notes=("PyTorch port of the TensorFlow sc_net_1f used in the 2022/2023 pipelines (same layer names, "
               "no biases, 'SAME' 2×2 average pools). The 2022/2023 pipelines fed Canon 600D GBRG frames "
               "cropped by one column to BGGR, for which bayer_to_offsets puts the blue-row green second "
               "(R, Gb, B, Gr in ispkit naming); which data the 2024 checkpoint saw is not stated. Output "
               "is a residual, not the clean image. The checkpoint file itself was not inspected here "
               "(not in the searchable index): its layout is inferred from the module and get_net()."),
    ),
    description="Deep-FlexISP Bayer-domain residual U-Net denoiser (sc_net_1f), packed RAW → noise residual",
    family="deepflexisp",
)

register_model(
    "deepflexisp.enhance_2023", build_deepflexisp_enhance_2023,
    WeightsSpec(
        paper=_PAPER + "; NEW Deep-FlexISP, NTIRE 2023 Night Photography Rendering Challenge (team MIALGO)",
        url="https://github.com/q935970314/Deep-FlexISP/tree/main/Night_Photography_2023 "
            "(stage4/100.pth, loaded by stage4/test_night_render_2023.py)",
        license=_LICENSE,
        source="q935970314/Deep-FlexISP NightRender2023/stage4/network.py (MWRCAN, c1=64, c2=96, c3=128)",
        contract=DEEPFLEXISP_ENHANCE_2023_CONTRACT,
        key_remap=((r"^module\.", ""),),
        notes=("Refines a classically rendered night image toward Photoshop-retouched targets and returns "
               "it at 1/4 size (head: 2×2 average pool, pixel-unshuffle, Haar DWT); the official pipeline "
               "upscales with HAT ×4. BGR in, BGR out. The official loader also accepts a "
               "'state_dict_model' container, which ispkit's unwrapper does not know. Where 100.pth is "
               "published (repository or the team's Docker image) was not verified; its layout is "
               "inferred from network.py and get_net()."),
    ),
    description="NEW Deep-FlexISP (NTIRE 2023) MWRCAN enhancer: display RGB (BGR order) → refined at 1/4 size",
    family="deepflexisp",
)
