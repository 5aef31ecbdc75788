"""Register ispkit's own packed-Bayer U-Net: ``unet.raw``.

There is no official checkpoint: train it with ``ispkit train`` (or your own
loop) and load the result with ``create_model("unet.raw", weights=path)``.
"""

from __future__ import annotations

from ..models.unet import UNet
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["UNET_RAW_CONTRACT", "build_unet_raw"]

UNET_RAW_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="R,Gr,Gb,B",
    normalization="black-level-normalised packed planes, (x - black)/(white - black), nominally [0, 1]; "
                  "a 5th channel holds the noise standard deviation sigma in the same units",
    gamma=None,
    size_multiple=8,
    scale=1.0,
    in_channels=5,
    out_channels=4,
)


def build_unet_raw() -> UNet:
    """U-Net(5 → 4, base 16, depth 3, residual): packed R, Gr, Gb, B + noise map → denoised planes."""
    return UNet(in_channels=5, out_channels=4, base=16, depth=3, residual=True)


register_model(
    "unet.raw", build_unet_raw,
    WeightsSpec(
        paper="O. Ronneberger, P. Fischer, T. Brox, \"U-Net: Convolutional Networks for Biomedical Image "
              "Segmentation\", MICCAI 2015; packed-Bayer input after C. Chen et al., \"Learning to See in "
              "the Dark\", CVPR 2018",
        url="",
        license="MIT (ispkit)",
        source="ispkit.neural.models.unet (ispkit's own configuration; no official checkpoint)",
        contract=UNET_RAW_CONTRACT,
        notes="residual: an untrained model is the identity on the four Bayer planes",
    ),
    description="packed-Bayer U-Net for denoising (R, Gr, Gb, B + noise-level map)",
)
