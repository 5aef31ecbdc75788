"""Classical stages (NumPy/Numba; never import torch). Importing registers them.

One stage family per module; each exposes pure functions plus thin Stage
classes (design.md §3).
"""

from .bayer_denoise import (BAYER_DENOISE_METHODS, BayerDenoise, denoise_bayer,
                            register_bayer_denoise_method)
from .black_level import BlackLevel, subtract_black_level
from .chroma_denoise import ChromaDenoise, chroma_denoise
from .color_matrix import (CameraProfile, ColorConvert, ColorimetryWarning, ColorMatrix, camera_to_working_matrix,
                           dng_camera_to_xyz)
from .colorspaces import (COLOR_SPACES, apply_color_matrix, cct_to_xy, chromatic_adaptation_matrix,
                          rgb_to_rgb_matrix, xy_to_cct, xyz_to_rgb_matrix)
from .defective_pixels import DefectivePixelCorrection, correct_defective_pixels, detect_defective_pixels
from .demosaic import DEMOSAIC_METHODS, Demosaic, demosaic, mosaic
from .display_transform import SigmoidToneMap, sigmoid_tone_map
from .dng_render import (BlackRender, HueSatMap, LookTable, ProfileToneCurve, apply_hue_sat_map,
                         exposure_ramp)
from .exposure import Exposure, apply_exposure
from .fused import FusedRender, fuse_render_chain
from .fused_tone import FusedNightTail, fuse_night_tail
from .gamma import Gamma, GammaExpand, gamma_compress, gamma_expand
from .highlights import HighlightReconstruction, HighlightRecovery, reconstruct_opposed, recover_highlights
from .inverses import (Identity, InverseBlackLevel, InverseColorMatrix, InverseExposure, InverseFilmic,
                       InverseHighlightReconstruction, InverseSigmoidToneMap, InverseToneCurve, InverseWhiteBalance,
                       Mosaic, invert_black_level, invert_color_matrix, invert_filmic, invert_highlight_reconstruction,
                       invert_sigmoid_tone_map, invert_tone_curve, invert_white_balance)
from .lens_shading import LensShading, apply_gain_map
from .packing import PackBayer, UnpackBayer, pack_bayer, unpack_bayer
from .quantize import Quantize, quantize
from .resize import Resize, resize
from .sharpen import Sharpen, unsharp_mask
from .tone import (AutoExposure, Filmic, LocalContrast, NightTone, Reinhard, ToneCurve, apply_tone_curve,
                   auto_exposure, filmic, local_contrast, night_tone, reinhard)
from .unprocess import (CameraSample, UnprocessResult, add_noise, sample_camera, unprocess)
from ._kernels.scratch import set_recycle_limit
from .white_balance import (ILLUMINANT_METHODS, IlluminantEstimation, WhiteBalance, apply_white_balance,
                            estimate_illuminant, register_illuminant_method, white_balance_gains)

__all__ = [
    "BlackLevel", "subtract_black_level",
    "Exposure", "apply_exposure",
    "LensShading", "apply_gain_map",
    "DefectivePixelCorrection", "detect_defective_pixels", "correct_defective_pixels",
    "BayerDenoise", "denoise_bayer", "BAYER_DENOISE_METHODS", "register_bayer_denoise_method",
    "WhiteBalance", "IlluminantEstimation", "estimate_illuminant", "white_balance_gains",
    "apply_white_balance", "ILLUMINANT_METHODS", "register_illuminant_method",
    "Demosaic", "demosaic", "mosaic", "DEMOSAIC_METHODS",
    "HighlightRecovery", "recover_highlights", "HighlightReconstruction", "reconstruct_opposed",
    "ColorMatrix", "ColorConvert", "ColorimetryWarning", "camera_to_working_matrix", "dng_camera_to_xyz",
    "HueSatMap", "LookTable", "ProfileToneCurve", "BlackRender", "apply_hue_sat_map", "exposure_ramp",
    "CameraProfile",
    "COLOR_SPACES", "apply_color_matrix", "rgb_to_rgb_matrix", "xyz_to_rgb_matrix",
    "chromatic_adaptation_matrix", "xy_to_cct", "cct_to_xy",
    "ToneCurve", "Reinhard", "Filmic", "AutoExposure", "LocalContrast", "NightTone",
    "apply_tone_curve", "reinhard", "filmic", "auto_exposure", "local_contrast", "night_tone",
    "SigmoidToneMap", "sigmoid_tone_map",
    "Gamma", "GammaExpand", "gamma_compress", "gamma_expand",
    "Sharpen", "unsharp_mask", "ChromaDenoise", "chroma_denoise", "Resize", "resize",
    "Quantize", "quantize",
    "set_recycle_limit",
    "Identity", "Mosaic", "InverseBlackLevel", "InverseWhiteBalance", "InverseColorMatrix", "InverseToneCurve",
    "InverseFilmic", "InverseExposure", "InverseSigmoidToneMap", "invert_sigmoid_tone_map", "InverseHighlightReconstruction", "invert_highlight_reconstruction", "invert_black_level", "invert_white_balance", "invert_color_matrix", "invert_tone_curve",
    "invert_filmic", "PackBayer", "UnpackBayer", "pack_bayer", "unpack_bayer",
    "CameraSample", "UnprocessResult", "sample_camera", "unprocess", "add_noise",
    "FusedRender", "fuse_render_chain", "FusedNightTail", "fuse_night_tail",
]
