"""Register PyNET (Ignatov, Van Gool, Timofte, CVPRW 2020): ``pynet.level0``.

Layout and input contract follow aiff22/PyNET-PyTorch: ``test_model.py``
builds ``PyNET(level=0, instance_norm=True, instance_norm_level_1=True)``,
wraps it in ``torch.nn.DataParallel`` and loads
``models/original/pynet_level_0.pth`` with ``strict=True`` — a plain state
dict with ``module.``-prefixed keys that covers the modules of all six levels.
"""

from __future__ import annotations

from ..models.pynet import PyNET
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["PYNET_LEVEL0_CONTRACT", "build_pynet_level0"]

#: ``load_data.py`` ``extract_bayer_channels``: the Huawei P20 (IMX380) RGGB
#: mosaic of the Zurich RAW-to-RGB dataset, planes raw[1::2, 1::2],
#: raw[0::2, 1::2], raw[0::2, 0::2], raw[1::2, 0::2] (the authors call them
#: B, Gb, R, Gr; in ispkit's naming — Gr is the green on the red row — that
#: is B, Gr, R, Gb), divided by 4 * 255 with no black-level subtraction.
#: ``LoadVisualData`` crops full-resolution frames to 1440×1984 packed
#: (multiples of 16); the output is sRGB in (0, 1) at twice that size.
PYNET_LEVEL0_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="B,Gr,R,Gb",
    normalization="10-bit Huawei P20 RAW divided by 1020 (4*255), no black-level subtraction",
    gamma=None,
    size_multiple=16,
    scale=2.0,
    in_channels=4,
    out_channels=3,
    raw_black_white=(63.0 / 1020.0, 1.0),  # the P20's black level 63 stays in the input
)


def build_pynet_level0() -> PyNET:
    """PyNET at level 0 (full model) with instance norm in levels 1–5, as the official checkpoint."""
    return PyNET(level=0, instance_norm=True, instance_norm_level_1=True, width=32)


register_model(
    "pynet.level0", build_pynet_level0,
    WeightsSpec(
        paper=("A. Ignatov, L. Van Gool, R. Timofte, \"Replacing Mobile Camera ISP with a Single Deep Learning "
               "Model\", CVPR Workshops 2020, arXiv:2002.05509"),
        url="https://drive.google.com/file/d/1PMP2ntbmV7fQaQeewbr_dw6-4zTR1PEM/view "
            "(pre-trained PyNET model linked from github.com/aiff22/PyNET-PyTorch README)",
        license=("CC BY-NC-SA 4.0 (LICENSE.md of aiff22/PyNET-PyTorch; README: copyright 2020 Andrey Ignatov, "
                 "academic research use only)"),
        source="aiff22/PyNET-PyTorch model.py (PyNET with upsampling convolutions, instance norm in level 1)",
        contract=PYNET_LEVEL0_CONTRACT,
        key_remap=((r"^module\.", ""),),
        notes=("models/original/pynet_level_0.pth (README: PSNR 21.17, MS-SSIM 0.8623 on Zurich RAW-to-RGB); "
               "the official test runs it in float16. Inputs smaller than 32×32 packed are refused (level 5 "
               "reflection padding). Output: display-referred sRGB through a sigmoid."),
    ),
    description="PyNET full model (level 0): packed RAW → sRGB at 2×, Zurich RAW-to-RGB (Huawei P20)",
    family="pynet",
)
