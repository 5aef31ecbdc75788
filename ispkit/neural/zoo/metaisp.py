"""Register MetaISP (multi-device colour rendition): ``metaisp.real_e``, ``metaisp.real_illuminants``, ``metaisp.real_d``.

One table, one row per released checkpoint (vccimaging/MetaISP README,
"Pre-trained Models"): ``MetaISPNet_real_E.pth`` (metadata on: WB colour
scaler and the ISO/exposure MLPs), ``MetaISPNet_real_illuminants.pth``
(plus the illuminant head, which estimates the colour scaler) and
``MetaISPNet_real_D.pth`` (no ISO/exposure module; the authors' choice for
other phones, e.g. their Xiaomi results). ``inference/single_image_test.py``
loads the file into ``MetaISPNet`` with ``strict=True``; files saved from a
``DataParallel`` wrapper carry ``module.``, which is removed.
"""

from __future__ import annotations

from ..models.metaisp import MetaISPConfig, MetaISPNet
from ..registry import register_model
from ..weights import InputContract, WeightsSpec

__all__ = ["METAISP_CONTRACT", "METAISP_VARIANTS", "build_metaisp", "build_metaisp_real_e",
           "build_metaisp_real_illuminants", "build_metaisp_real_d"]

#: ``util/utils_single_image.py``: iPhone XR RGGB mosaic, planes
#: (B, Gb, R, Gr) in the authors' naming = raw[1::2, 1::2], raw[0::2, 1::2],
#: raw[0::2, 0::2], raw[1::2, 0::2] — in ispkit's naming (Gr is the green on
#: the red row) B, Gr, R, Gb — then max(raw - 528, 0) / (4095 - 528). The
#: network gamma-encodes (x^(1/2.2)) internally.
METAISP_CONTRACT = InputContract(
    domain="raw_packed",
    channel_order="B,Gr,R,Gb",
    normalization="black-level normalised (iPhone XR: max(raw - 528, 0) / (4095 - 528)); the network applies x^(1/2.2)",
    gamma=None,
    size_multiple=8,
    scale=2.0,
    in_channels=4,
    out_channels=3,
    raw_clip_black=True,
    side_inputs=("raw_full", "color_scaler", "coord", "mobile_id", "latent", "coords", "exp", "iso"),
)

_PAPER = ("M. Souza and W. Heidrich, \"MetaISP — Exploiting Global Scene Structure for Accurate Multi-Device "
          "Color Rendition\", VMV 2023, arXiv:2401.03220")
_URL = ("https://drive.google.com/drive/folders/1tLWlx0LDUjQ9niZje0cfLKt98dx1VEIR "
        "(pre_trained/{file}, linked from github.com/vccimaging/MetaISP README)")
_SOURCE = ("vccimaging/MetaISP models/metaisp_model.py (MetaISPNet, Illumination, IsoExp), models/networks.py "
           "(RCAGroup, DWTForward/DWTInverse), models/attention_models.py (XCiT, CrossAdapter, query_Attention); "
           "options/base_options.py defaults (adaquery attention, prod matching, positional, depth 1, query_emb)")
_NOTES = ("Inputs (all built by the DeviceRendition stage): packed RAW; raw_full, a bilinear demosaic (B, G, R) "
          "area-resized to 448² for a 2688² crop; color_scaler = 1/AsShotNeutral in (B, G, R, G); "
          "exp = exposure time × 100, iso = ISO / 100; coordinate grids. Device ids 0 Pixel 6 Pro, "
          "1 Galaxy S22, 2 iPhone XR. Output: display sRGB, nominally [0, 1] (the scripts save ×255 as uint8). "
          "Trained on iPhone XR RAWs only.")

#: variant → (checkpoint file, config, one-line description)
METAISP_VARIANTS: dict[str, tuple[str, MetaISPConfig, str]] = {
    "real_e": ("MetaISPNet_real_E.pth", MetaISPConfig(iso_exp=True, illuminant=False),
               "MetaISP (real_E): RAW → Pixel 6 Pro / Galaxy S22 / iPhone XR rendition, WB + ISO/exposure inputs"),
    "real_illuminants": ("MetaISPNet_real_illuminants.pth", MetaISPConfig(iso_exp=True, illuminant=True),
                         "MetaISP (real_illuminants): as real_E plus the illuminant head (estimates the WB scaler)"),
    "real_d": ("MetaISPNet_real_D.pth", MetaISPConfig(iso_exp=False, illuminant=False),
               "MetaISP (real_D): device rendition without the ISO/exposure module"),
}


def build_metaisp(variant: str) -> MetaISPNet:
    """A randomly initialised :class:`MetaISPNet` of a released variant (a key of :data:`METAISP_VARIANTS`)."""
    return MetaISPNet(METAISP_VARIANTS[variant][1])


def build_metaisp_real_e() -> MetaISPNet:
    """MetaISPNet as released in ``MetaISPNet_real_E.pth``."""
    return build_metaisp("real_e")


def build_metaisp_real_illuminants() -> MetaISPNet:
    """MetaISPNet as released in ``MetaISPNet_real_illuminants.pth``."""
    return build_metaisp("real_illuminants")


def build_metaisp_real_d() -> MetaISPNet:
    """MetaISPNet as released in ``MetaISPNet_real_D.pth``."""
    return build_metaisp("real_d")


_BUILDERS = {"real_e": build_metaisp_real_e, "real_illuminants": build_metaisp_real_illuminants,
             "real_d": build_metaisp_real_d}

for _variant, (_file, _cfg, _desc) in METAISP_VARIANTS.items():
    register_model(
        f"metaisp.{_variant}", _BUILDERS[_variant],
        WeightsSpec(paper=_PAPER, url=_URL.format(file=_file), license="MIT (vccimaging/MetaISP)",
                    source=_SOURCE, contract=METAISP_CONTRACT, key_remap=((r"^module\.", ""),), notes=_NOTES),
        description=_desc, family="metaisp",
    )
