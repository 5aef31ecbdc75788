"""Register the compact mobile RAW-to-RGB network: ``mai.compact``.

There is no official checkpoint: train it with ``ispkit train mai.compact``
(recipe :mod:`ispkit.neural.train.recipe_mai`) and export it for phones with
:func:`ispkit.neural.export.export_onnx` / :func:`~ispkit.neural.export.quantize_onnx_int8`.
"""

from __future__ import annotations

from ..models.mai_compact import MAICompact
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["MAI_COMPACT_CONTRACT", "build_mai_compact"]

MAI_COMPACT_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="R,Gr,Gb,B",
    normalization="black-level-normalised packed planes, (x - black)/(white - black), nominally [0, 1]",
    gamma=None,
    size_multiple=4,
    scale=2.0,
    in_channels=4,
    out_channels=3,
)


def build_mai_compact() -> MAICompact:
    """MAICompact(widths 16/32/64, 2 coarse blocks): 311 804 parameters."""
    return MAICompact(widths=(16, 32, 64), blocks=2)


register_model(
    "mai.compact", build_mai_compact,
    WeightsSpec(
        paper=("A. Ignatov, R. Timofte et al., \"Learned Smartphone ISP on Mobile GPUs with Deep Learning, "
               "Mobile AI & AIM 2022 Challenge: Report\", ECCV Workshops 2022, arXiv:2211.03885"),
        url="",
        license="MIT (ispkit)",
        source="ispkit.neural.models.mai_compact (ispkit's own design after the challenge entries; "
               "no official checkpoint)",
        contract=MAI_COMPACT_CONTRACT,
        notes="Conv/ReLU/Add/PixelShuffle only, so it exports to ONNX with dynamic size and quantises to int8 "
              "(QDQ); output sRGB at twice the packed size, not clipped",
    ),
    description="compact mobile ISP (MAI 2022 style): packed RAW → sRGB at 2×, 0.31 M parameters",
    family="mai",
)
