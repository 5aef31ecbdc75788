"""Input and output: camera RAW files, NTIRE captures, headerless mosaics, display images, DNG.

Classical layer: no torch. Readers return RAW_MOSAIC :class:`~ispkit.frame.Frame`\\ s
with raw counts (not black-subtracted) and metadata; writers are atomic.
"""

from .capture import capture_kind, read_capture
from .dng import write_dng
from .dng_opcodes import parse_opcode_list, read_gain_maps
from .image import apply_orientation, read_image, write_image
from .night import NightScene, darken_capture, photo_night_scene, synthetic_night_scene
from .ntire import read_ntire
from .raw import describe, from_array, load_bayer_raw, read_raw
from .synthetic import SyntheticCapture, synthesize_capture

__all__ = [
    "read_raw",
    "read_capture",
    "capture_kind",
    "from_array",
    "load_bayer_raw",
    "read_ntire",
    "write_image",
    "read_image",
    "write_dng",
    "read_gain_maps",
    "parse_opcode_list",
    "apply_orientation",
    "describe",
    "synthesize_capture",
    "SyntheticCapture",
    "darken_capture",
    "synthetic_night_scene",
    "photo_night_scene",
    "NightScene",
]
