"""Register the model-based dictionary ISP (Conde et al., AAAI 2022): ``dictionary_isp.k8``.

No official code or checkpoint was released: train it with
``ispkit train dictionary_isp.k8`` (recipe :mod:`ispkit.neural.train.recipe_dictionary`).
The forward (RAW → sRGB) runs in the ``learned_raw_to_rgb`` stage; the exact
inverse (sRGB → RAW) in the ``dictionary_unprocess`` stage
(:mod:`ispkit.neural.dictionary_stages`).
"""

from __future__ import annotations

from ..models.dictionary_isp import DictionaryISP
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["DICTIONARY_ISP_CONTRACT", "build_dictionary_isp_k8"]

DICTIONARY_ISP_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="R,Gr,Gb,B",
    normalization="black-level-normalised packed planes, (x - black)/(white - black), nominally [0, 1]",
    gamma=None,
    size_multiple=1,
    scale=2.0,
    in_channels=4,
    out_channels=3,
)


def build_dictionary_isp_k8() -> DictionaryISP:
    """DictionaryISP(K = 8 matrices and gain sets, 16-knot tone curve, encoders of width 16): 30 961 parameters."""
    return DictionaryISP(k=8, knots=16, encoder_width=16)


register_model(
    "dictionary_isp.k8", build_dictionary_isp_k8,
    WeightsSpec(
        paper=("M. V. Conde, S. McDonagh, M. Maggioni, A. Leonardis, E. Pérez-Pellitero, \"Model-Based Image "
               "Signal Processors via Learnable Dictionaries\", AAAI 2022, arXiv:2201.03210"),
        url="",
        license="MIT (ispkit)",
        source="ispkit.neural.models.dictionary_isp (no official code was released)",
        contract=DICTIONARY_ISP_CONTRACT,
        notes=("global parameters per image (encoders on a 64×64 thumbnail): run untiled (tile=None with the "
               "default memory budget keeps ordinary frames whole); exact inverse in DictionaryISP.unrender"),
    ),
    description="model-based invertible ISP: dictionary WB/CCM mixtures, monotone tone, gamma (RAW ↔ sRGB)",
    family="dictionary_isp",
)
