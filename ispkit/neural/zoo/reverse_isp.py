"""Register the reverse-ISP networks (sRGB → demosaiced RAW): ``reverse_isp.*``.

One table row per variant of :class:`~ispkit.neural.models.reverse_isp.ReverseISPNet`:

* ``reverse_isp.unet`` — one U-Net (the baseline of the seed paper);
* ``reverse_isp.unet_refine`` — plus the refinement step (an ablation: refinement
  without the mask fusion);
* ``reverse_isp.unet_fusion`` — the seed's method: normal and over-exposed
  branches blended by the overexposure mask, then the refinement step.

There is no official checkpoint (the authors released theirs for academic
use only, with another layout): train with ``ispkit train reverse_isp``
(recipe :mod:`ispkit.neural.train.recipe_reverse`) and load the result with
``create_model(name, weights=path)`` or the ``reverse_isp`` stage.
"""

from __future__ import annotations

from ..models.reverse_isp import ReverseISPNet
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["REVERSE_ISP_CONTRACT", "REVERSE_ISP_VARIANTS", "build_reverse_isp"]

REVERSE_ISP_CONTRACT = InputContract(
    domain="rgb_display",
    channel_order="RGB",
    normalization=("display sRGB in [0, 1] (8-bit images / 255); output: demosaiced linear camera R, G, B "
                   "of the training camera, black 0, white 1 (sensor saturation), not clipped"),
    gamma="sRGB (display-referred input; linear output)",
    size_multiple=8,
    scale=1.0,
    in_channels=3,
    out_channels=3,
)

#: variant → (ReverseISPNet options, description)
REVERSE_ISP_VARIANTS: dict[str, tuple[dict, str]] = {
    "unet": (dict(fusion=False, refine=False),
             "reverse ISP U-Net: display sRGB → demosaiced linear camera RAW (AIM 2022 baseline)"),
    "unet_refine": (dict(fusion=False, refine=True),
                    "reverse ISP U-Net + refinement step (ablation without mask fusion)"),
    "unet_fusion": (dict(fusion=True, refine=True),
                    "reverse ISP with overexposure mask fusion (normal/over-exposed branches) and refinement"),
}

_PAPER = ("J. Kim, J. Jiang, J. Gu, \"Overexposure Mask Fusion: Generalizable Reverse ISP Multi-Step "
          "Refinement\", ECCV Workshops (AIM 2022), arXiv:2210.11511")


def build_reverse_isp(variant: str) -> ReverseISPNet:
    """Build a :data:`REVERSE_ISP_VARIANTS` variant (base 16, depth 3)."""
    return ReverseISPNet(base=16, depth=3, **REVERSE_ISP_VARIANTS[variant][0])


def _builder(variant: str):
    def build() -> ReverseISPNet:
        return build_reverse_isp(variant)

    build.__qualname__ = f"build_reverse_isp_{variant}"
    build.__doc__ = f"ReverseISPNet variant {variant!r}."
    return build


for _variant, (_opts, _description) in REVERSE_ISP_VARIANTS.items():
    register_model(
        f"reverse_isp.{_variant}", _builder(_variant),
        WeightsSpec(
            paper=_PAPER,
            url="",
            license="ispkit (own implementation)",
            source="ispkit.neural.models.reverse_isp (ispkit's own implementation after the paper; no official "
                   "checkpoint)",
            contract=REVERSE_ISP_CONTRACT,
            notes="untrained, the model returns linearised sRGB (zero-initialised residual heads); weights are "
                  "camera-specific: train on RAW of the camera you want to synthesise",
        ),
        description=_description,
        family="reverse_isp",
    )
