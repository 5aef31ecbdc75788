"""Register MW-ISPNet (AIM 2020 learned-ISP challenge, fidelity track): ``mwispnet.aim2020``.

Layout and input contract follow cszhilu1998/MW-ISPNet: ``Code_Track1_Fidelity``
builds ``MWRCAN()`` (``mwcnn_model.py`` on top of ``networks.py``), wraps it in
``torch.nn.DataParallel`` and saves/loads ``state_dict()`` — so the Track 1
checkpoint ``ckpt/Track1/mwcnnvggssim4_epoch_60.pth`` is a plain state dict
whose keys carry a ``module.`` prefix.
"""

from __future__ import annotations

from ..models.mwispnet import MWISPNet
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["MWISPNET_AIM2020_CONTRACT", "build_mwispnet_aim2020"]

#: ``load_data.py`` ``extract_bayer_channels``: the Huawei P20 (IMX380) RGGB
#: mosaic of the Zurich RAW-to-RGB dataset, planes raw[1::2, 1::2],
#: raw[0::2, 1::2], raw[0::2, 0::2], raw[1::2, 0::2] (the authors call them
#: B, Gb, R, Gr; in ispkit's naming — Gr is the green on the red row — that
#: is B, Gr, R, Gb), then max(raw - 63, 0) / (4 * 255 - 63). The target is
#: the Canon 5D Mark IV JPEG / 255 at twice the packed resolution.
MWISPNET_AIM2020_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="B,Gr,R,Gb",
    normalization="10-bit Huawei P20 RAW: max(raw - 63, 0) / (1020 - 63) (black level 63, white 4*255)",
    gamma=None,
    size_multiple=8,
    scale=2.0,
    in_channels=4,
    out_channels=3,
    raw_clip_black=True,  # max(raw - 63, 0)
)

_PAPER = ("A. Ignatov, R. Timofte et al., \"AIM 2020 Challenge on Learned Image Signal Processing Pipeline\", "
          "ECCV Workshops 2020, arXiv:2011.04994 — winning entry MW-ISPNet by Zhilu Zhang et al. (HIT)")
_SOURCE = ("cszhilu1998/MW-ISPNet Code_Track1_Fidelity/mwcnn_model.py (MWRCAN: c1=64, c2=128, c3=128, "
           "20 RCABs per group) and networks.py (DWTForward/DWTInverse, RCAGroup)")
_NOTES = ("Track 1 (fidelity) model mwcnnvggssim4_epoch_60.pth, saved from DataParallel ('module.' prefix). "
          "Output: display-referred sRGB in [0, 1] (the test script clips and writes ×255). The wavelet "
          "filters are stored in the checkpoint (head.weight, down2.0.weight, …) as fixed Haar values. "
          "The optional Track 1 pre-denoiser (ckpt/raw_denoising, 'urcan' Net) is a separate network and "
          "is not part of this entry. The official mwcnn_model.py is not in the searchable index; its "
          "layout was read from two copies found by content (the same file with its PatchGAN Discriminator, "
          "and an 'MWISP' class in a later project's networks.py) and cross-checked against networks.py "
          "and the Deep-FlexISP "
          "adaptation (which changes c2 to 96).")


def build_mwispnet_aim2020() -> MWISPNet:
    """MW-ISPNet with the official widths (64, 128, 128) and 20 RCABs per residual group."""
    return MWISPNet(channels=(64, 128, 128), num_blocks=20, reduction=16)


register_model(
    "mwispnet.aim2020", build_mwispnet_aim2020,
    WeightsSpec(
        paper=_PAPER,
        url="https://drive.google.com/drive/folders/1lt5eXn49LgLzdj3z7k7lPK0B7obiLIHd "
            "(Track1 model linked from github.com/cszhilu1998/MW-ISPNet README)",
        license="no licence stated by the authors (all rights reserved by default)",
        source=_SOURCE,
        contract=MWISPNET_AIM2020_CONTRACT,
        key_remap=((r"^module\.", ""),),
        notes=_NOTES,
    ),
    description="MW-ISPNet (MWRCAN), AIM 2020 learned-ISP winner: packed RAW → sRGB at 2×",
    family="mwispnet",
)
