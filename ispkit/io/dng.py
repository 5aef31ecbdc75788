"""Write minimal Bayer DNGs and read the TIFF/DNG tags of RAW files.

:func:`write_dng` makes a valid single-IFD Bayer DNG (uncompressed, or
lossless-JPEG tiles) that LibRaw opens with the right CFA pattern, black and
white level, as-shot white balance and colour matrices — the test vehicle for
LibRaw-agreement tests and speed benchmarks. :func:`read_dng_tags` reads the
colour and EXIF tags of DNG and other TIFF-based RAW files with tifffile.

References
----------
Adobe, *Digital Negative (DNG) Specification* 1.4 / 1.6 (tags 50706–51110; DNG 1.6's third
calibration illuminant and IlluminantData, 52529–52538, as the DNG SDK 1.6 ``dng_illuminant_data``
lays them out).
Adobe, *TIFF Revision 6.0* (file structure, tag types).
CIPA DC-008 *Exif 2.3* (Orientation, LightSource codes).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError, MissingMetadataError, ParameterError, RawReadError
from ..frame import Domain, Frame, check_cfa_pattern
from ..pipeline.profiles import register_profile_reader
from ._files import atomic_write, check_output_path

__all__ = ["write_dng", "frame_to_counts", "read_dng_tags", "write_dcp", "read_dcp", "LIGHT_SOURCES", "DNG_TAGS"]

#: EXIF LightSource codes (CalibrationIlluminant1/2 values).
LIGHT_SOURCES: dict[int, str] = {
    0: "Unknown", 1: "Daylight", 2: "Fluorescent", 3: "Tungsten", 4: "Flash",
    9: "Fine weather", 10: "Cloudy", 11: "Shade", 12: "Daylight fluorescent",
    13: "Day white fluorescent", 14: "Cool white fluorescent", 15: "White fluorescent",
    16: "Warm white fluorescent", 17: "Standard light A", 18: "Standard light B",
    19: "Standard light C", 20: "D55", 21: "D65", 22: "D75", 23: "D50",
    24: "ISO studio tungsten", 255: "Other",
}

#: TIFF / TIFF-EP / DNG tag codes used here.
DNG_TAGS: dict[str, int] = {
    "NewSubfileType": 254, "ImageWidth": 256, "ImageLength": 257, "BitsPerSample": 258,
    "Compression": 259, "PhotometricInterpretation": 262, "Make": 271, "Model": 272,
    "StripOffsets": 273, "Orientation": 274, "SamplesPerPixel": 277, "RowsPerStrip": 278,
    "StripByteCounts": 279, "PlanarConfiguration": 284, "Software": 305,
    "TileWidth": 322, "TileLength": 323, "TileOffsets": 324, "TileByteCounts": 325,
    "SubIFDs": 330, "CFARepeatPatternDim": 33421, "CFAPattern": 33422,
    "ExposureTime": 33434, "ExifIFD": 34665, "ISOSpeedRatings": 34855,
    "DNGVersion": 50706, "DNGBackwardVersion": 50707, "UniqueCameraModel": 50708,
    "CFAPlaneColor": 50710, "CFALayout": 50711, "LinearizationTable": 50712,
    "BlackLevelRepeatDim": 50713, "BlackLevel": 50714, "BlackLevelDeltaH": 50715,
    "BlackLevelDeltaV": 50716, "WhiteLevel": 50717, "DefaultCropOrigin": 50719,
    "DefaultCropSize": 50720, "ColorMatrix1": 50721, "ColorMatrix2": 50722,
    "CameraCalibration1": 50723, "CameraCalibration2": 50724, "AnalogBalance": 50727,
    "AsShotNeutral": 50728, "AsShotWhiteXY": 50729, "BaselineExposure": 50730,
    "CalibrationIlluminant1": 50778, "CalibrationIlluminant2": 50779,
    "ActiveArea": 50829, "ForwardMatrix1": 50964, "ForwardMatrix2": 50965,
    "NoiseProfile": 51041, "ProfileHueSatMapDims": 50937, "ProfileHueSatMapData1": 50938,
    "ProfileHueSatMapData2": 50939, "ProfileHueSatMapEncoding": 51107,
    "BaselineExposureOffset": 51109, "DefaultBlackRender": 51110, "ShadowScale": 50739,
    "ProfileLookTableDims": 50981, "ProfileLookTableData": 50982, "ProfileLookTableEncoding": 51108,
    "ProfileToneCurve": 50940, "ProfileName": 50936, "ProfileEmbedPolicy": 50941,
    # DNG 1.6: the third calibration illuminant and custom illuminants
    "CalibrationIlluminant3": 52529, "CameraCalibration3": 52530, "ColorMatrix3": 52531,
    "ForwardMatrix3": 52532, "IlluminantData1": 52533, "IlluminantData2": 52534, "IlluminantData3": 52535,
    "ProfileHueSatMapData3": 52537, "ReductionMatrix3": 52538,
}

_CFA_CODE = {"R": 0, "G": 1, "B": 2}
_CFA_LETTER = {0: "R", 1: "G", 2: "B"}
_TILE = 256

# TIFF field types
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL, _FLOAT, _DOUBLE = 1, 2, 3, 4, 5, 7, 10, 11, 12
_TYPE_SIZE = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _SRATIONAL: 8, _FLOAT: 4, _DOUBLE: 8}


# ---------------------------------------------------------------------------
# writing


def _fraction(value: float, *, signed: bool, name: str) -> tuple[int, int]:
    frac = Fraction(float(value)).limit_denominator(1_000_000)
    num, den = frac.numerator, frac.denominator
    limit = 2**31 - 1 if signed else 2**32 - 1
    while abs(num) > limit and den > 1:  # very large value: trade precision for range
        frac = Fraction(float(value)).limit_denominator(max(1, den // 10))
        num, den = frac.numerator, frac.denominator
    if abs(num) > limit or (not signed and num < 0):
        raise ParameterError(f"write_dng: {name} value {value!r} does not fit a TIFF "
                             f"{'SRATIONAL' if signed else 'RATIONAL'}")
    return num, den


class _IFD:
    """Collect TIFF entries (code, type, count, value bytes) for one IFD."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[int, int, bytes]] = {}

    def add(self, code: int, ftype: int, values: Any) -> None:
        if ftype == _ASCII:
            raw = str(values).encode("ascii") + b"\0"
            self.entries[code] = (ftype, len(raw), raw)
            return
        if ftype == _UNDEFINED:
            raw = bytes(values)
            self.entries[code] = (ftype, len(raw), raw)
            return
        if ftype == _BYTE:
            raw = bytes(int(v) for v in values)
            self.entries[code] = (ftype, len(raw), raw)
            return
        vals = list(values) if isinstance(values, (list, tuple)) else [values]
        if ftype in (_RATIONAL, _SRATIONAL):
            fmt = "<" + ("iI" if ftype == _SRATIONAL else "II") * len(vals)
            flat = [x for pair in vals for x in pair]
            self.entries[code] = (ftype, len(vals), struct.pack(fmt, *flat))
            return
        fmt = {_SHORT: "H", _LONG: "I", _FLOAT: "f", _DOUBLE: "d"}[ftype]
        self.entries[code] = (ftype, len(vals), struct.pack("<" + fmt * len(vals), *vals))

    def rational(self, code: int, values: Any, *, signed: bool, name: str) -> None:
        arr = np.asarray(values, dtype=np.float64).ravel()
        self.add(code, _SRATIONAL if signed else _RATIONAL,
                 [_fraction(v, signed=signed, name=name) for v in arr])

    def build(self, offset: int) -> tuple[bytes, int]:
        """Serialise the IFD placed at ``offset``; return (bytes, offset just past it)."""
        codes = sorted(self.entries)
        table_size = 2 + 12 * len(codes) + 4
        extra_at = offset + table_size
        table = [struct.pack("<H", len(codes))]
        extra: list[bytes] = []
        for code in codes:
            ftype, count, raw = self.entries[code]
            if len(raw) <= 4:
                table.append(struct.pack("<HHI", code, ftype, count) + raw.ljust(4, b"\0"))
            else:
                if extra_at % 2:
                    extra.append(b"\0")
                    extra_at += 1
                table.append(struct.pack("<HHII", code, ftype, count, extra_at))
                extra.append(raw)
                extra_at += len(raw)
        table.append(struct.pack("<I", 0))
        blob = b"".join(table) + b"".join(extra)
        return blob, offset + len(blob)


def _check_matrix(value: Any, name: str, *, required: bool = False) -> np.ndarray | None:
    if value is None:
        if required:
            raise ParameterError(f"write_dng: {name} is required (a 3×3 XYZ→camera matrix)")
        return None
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"write_dng: {name} must be a 3×3 matrix of numbers, got {value!r}") from None
    if arr.shape != (3, 3):
        raise ParameterError(f"write_dng: {name} must be 3×3, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or not np.any(arr):
        raise ParameterError(f"write_dng: {name} must be finite and non-zero, got {arr.tolist()}")
    return arr


def _check_illuminant(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 65535:
        raise ParameterError(
            f"write_dng: {name} must be an EXIF LightSource code (e.g. 17 = A, 21 = D65), got {value!r}")
    return int(value)


#: tag code → name, for messages
DNG_TAG_NAMES: dict[int, str] = {code: name for name, code in DNG_TAGS.items()}


def _positive_vector(value: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ParameterError(f"write_dng: {name} must be {n} positive numbers, got {value!r}")
    return arr


#: (prefix, Dims, Data1, Data2 or None, Encoding) codes of the profile's HSV tables
_HSV_TABLES = {"hue_sat_map": (50937, 50938, 50939, 51107), "look_table": (50981, 50982, None, 51108)}


def _hsv_table_tags(kind: str, dims: Any, data1: Any, data2: Any, encoding: Any,
                    has_cm2: bool) -> dict[int, tuple[int, Any]]:
    """ProfileHueSatMap* or ProfileLookTable* tags (Dims / Data / Encoding), checked against each other."""
    c_dims, c_data1, c_data2, c_enc = _HSV_TABLES[kind]
    n1 = f"{kind}_data1" if c_data2 is not None else f"{kind}_data"
    if dims is None:
        if data1 is not None or data2 is not None or encoding is not None:
            raise ParameterError(f"write_dng: {n1}, its encoding (and data2) need {kind}_dims")
        return {}
    try:
        d = [int(v) for v in np.asarray(dims).ravel()]
    except (TypeError, ValueError):
        d = []
    if len(d) != 3 or d[0] < 1 or d[1] < 2 or d[2] < 1:
        raise ParameterError(
            f"write_dng: {kind}_dims must be (hue ≥ 1, saturation ≥ 2, value ≥ 1) divisions, got {dims!r}")
    if data1 is None:
        raise ParameterError(f"write_dng: {kind}_dims needs {n1}")
    if data2 is not None and not has_cm2:
        raise ParameterError(f"write_dng: {kind}_data2 needs color_matrix2 and calibration_illuminant2")
    out: dict[int, tuple[int, Any]] = {c_dims: (_LONG, d)}
    for code, data, name in ((c_data1, data1, n1), (c_data2, data2, f"{kind}_data2")):
        if data is None or code is None:
            continue
        arr = np.asarray(data, dtype=np.float64).ravel()
        if arr.size != 3 * d[0] * d[1] * d[2] or not np.all(np.isfinite(arr)):
            raise ParameterError(f"write_dng: {name} must hold 3·{d[0]}·{d[1]}·{d[2]} = "
                                 f"{3 * d[0] * d[1] * d[2]} finite values, got {arr.size}")
        out[code] = (_FLOAT, arr.astype(np.float32).tolist())
    if encoding is not None:
        if isinstance(encoding, bool) or encoding not in (0, 1):
            raise ParameterError(f"write_dng: {kind}_encoding must be 0 (linear) or 1 (sRGB), got {encoding!r}")
        out[c_enc] = (_LONG, [int(encoding)])
    return out


def _check_tone_curve(points: Any) -> np.ndarray:
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        pts = np.zeros((0, 2))
    ok = (len(pts) >= 2 and np.all(np.isfinite(pts)) and np.all((pts >= 0) & (pts <= 1))
          and np.all(np.diff(pts[:, 0]) > 0) and tuple(pts[0]) == (0.0, 0.0) and tuple(pts[-1]) == (1.0, 1.0))
    if not ok:
        raise ParameterError(
            "write_dng: profile_tone_curve must be ≥ 2 points (x, y) in [0, 1] with x strictly increasing, "
            f"from (0, 0) to (1, 1) (DNG 1.6 ProfileToneCurve), got {np.asarray(points).tolist()!r}")
    return pts


def _profile_tags(*, has_cm2: bool, has_neutral: bool, camera_calibration1: Any, camera_calibration2: Any,
                  analog_balance: Any, as_shot_white_xy: Any, baseline_exposure_offset: Any,
                  default_black_render: Any, hue_sat_map_dims: Any, hue_sat_map_data1: Any,
                  hue_sat_map_data2: Any, hue_sat_map_encoding: Any, look_table_dims: Any = None,
                  look_table_data: Any = None, look_table_encoding: Any = None,
                  profile_tone_curve: Any = None, third: Any = None) -> dict[int, tuple[int, Any]]:
    """The optional colour-profile tags of :func:`write_dng` as {code: (TIFF type, values)}."""
    out: dict[int, tuple[int, Any]] = dict(third or {})
    cc1 = _check_matrix(camera_calibration1, "camera_calibration1")
    cc2 = _check_matrix(camera_calibration2, "camera_calibration2")
    if cc2 is not None and not has_cm2:
        raise ParameterError("write_dng: camera_calibration2 needs color_matrix2 and calibration_illuminant2")
    if cc1 is not None:
        out[50723] = (_SRATIONAL, cc1)
    if cc2 is not None:
        out[50724] = (_SRATIONAL, cc2)
    if analog_balance is not None:
        out[50727] = (_RATIONAL, _positive_vector(analog_balance, 3, "analog_balance"))
    if as_shot_white_xy is not None:
        if has_neutral:
            raise ParameterError("write_dng: give as_shot_neutral or as_shot_white_xy, not both "
                                 "(DNG 1.6: AsShotNeutral and AsShotWhiteXY are mutually exclusive)")
        xy = _positive_vector(as_shot_white_xy, 2, "as_shot_white_xy")
        if xy.sum() >= 1.0:
            raise ParameterError(f"write_dng: as_shot_white_xy must be a chromaticity (x + y < 1), got {xy.tolist()}")
        out[50729] = (_RATIONAL, xy)
    if baseline_exposure_offset is not None:
        if not np.isfinite(baseline_exposure_offset):
            raise ParameterError(f"write_dng: baseline_exposure_offset must be finite, got {baseline_exposure_offset!r}")
        out[51109] = (_SRATIONAL, [float(baseline_exposure_offset)])
    if default_black_render is not None:
        if isinstance(default_black_render, bool) or default_black_render not in (0, 1):
            raise ParameterError(
                f"write_dng: default_black_render must be 0 (Auto) or 1 (None), got {default_black_render!r}")
        out[51110] = (_LONG, [int(default_black_render)])
    out.update(_hsv_table_tags("hue_sat_map", hue_sat_map_dims, hue_sat_map_data1, hue_sat_map_data2,
                               hue_sat_map_encoding, has_cm2))
    out.update(_hsv_table_tags("look_table", look_table_dims, look_table_data, None, look_table_encoding, has_cm2))
    if profile_tone_curve is not None:
        out[50940] = (_FLOAT, _check_tone_curve(profile_tone_curve).astype(np.float32).ravel().tolist())
    return out


def _illuminant_data_bytes(data: Any, name: str) -> bytes:
    """Encode an IlluminantData record (DNG 1.6, little-endian): type 0 = xy, type 1 = spectrum."""
    if not isinstance(data, dict):
        raise ParameterError(f"write_dng: {name} must be {{'xy': (x, y)}} or {{'spectrum': values, "
                             f"'min_lambda': nm, 'spacing': nm}}, got {data!r}")

    def urational(v: float, what: str) -> bytes:
        return struct.pack("<II", *_fraction(v, signed=False, name=f"{name} {what}"))

    if "xy" in data:
        xy = _positive_vector(data["xy"], 2, f"{name}['xy']")
        if xy.sum() >= 1.0:
            raise ParameterError(f"write_dng: {name}['xy'] must be a chromaticity (x + y < 1), got {xy.tolist()}")
        return struct.pack("<H", 0) + urational(xy[0], "x") + urational(xy[1], "y")
    try:
        values = np.asarray(data["spectrum"], dtype=np.float64).ravel()
        start, step = float(data["min_lambda"]), float(data["spacing"])
    except (KeyError, TypeError, ValueError):
        raise ParameterError(f"write_dng: {name} needs 'xy', or 'spectrum' with 'min_lambda' and 'spacing'") from None
    if not (2 <= values.size <= 1000) or start <= 0 or step <= 0 or not np.all(np.isfinite(values)) \
            or np.any(values < 0):
        raise ParameterError(f"write_dng: {name} spectrum must hold 2–1000 finite non-negative samples with "
                             f"positive min_lambda and spacing, got {values.size} samples, {start}, {step}")
    return (struct.pack("<HI", 1, values.size) + urational(start, "min_lambda") + urational(step, "spacing")
            + b"".join(urational(v, "sample") for v in values))


def _third_illuminant_tags(*, calibration_illuminant3: Any, color_matrix3: Any, camera_calibration3: Any,
                           forward_matrix3: Any, reduction_matrix3: Any, hue_sat_map_data3: Any,
                           illuminant_data: Any, calibration_illuminants: tuple[Any, Any],
                           has_cm2: bool, has_fm: tuple[bool, bool], hue_sat_map: tuple[Any, Any, Any],
                           ) -> dict[int, tuple[int, Any]]:
    """The DNG 1.6 third-illuminant and IlluminantData tags, checked against each other and the first two sets."""
    out: dict[int, tuple[int, Any]] = {}
    cm3 = _check_matrix(color_matrix3, "color_matrix3")
    rest = {"camera_calibration3": camera_calibration3, "forward_matrix3": forward_matrix3,
            "reduction_matrix3": reduction_matrix3, "hue_sat_map_data3": hue_sat_map_data3}
    if (cm3 is None) != (calibration_illuminant3 is None):
        raise ParameterError("write_dng: give color_matrix3 and calibration_illuminant3 together (DNG 1.6)")
    if cm3 is None and any(v is not None for v in rest.values()):
        raise ParameterError(f"write_dng: {sorted(k for k, v in rest.items() if v is not None)} need "
                             "color_matrix3 and calibration_illuminant3")
    if cm3 is not None:
        if not has_cm2:
            raise ParameterError("write_dng: a third calibration (color_matrix3) needs color_matrix2 and "
                                 "calibration_illuminant2 (DNG 1.6 adds it to a dual-illuminant profile)")
        fm3 = _check_matrix(forward_matrix3, "forward_matrix3")
        if len({has_fm[0], has_fm[1], fm3 is not None}) != 1:
            raise ParameterError("write_dng: forward_matrix1/2/3 must be given for all three calibrations or "
                                 "none (DNG 1.6, requirements for three calibrations)")
        out[52529] = (_SHORT, [_check_illuminant(calibration_illuminant3, "calibration_illuminant3")])
        out[52531] = (_SRATIONAL, cm3)
        for code, value, name in ((52530, camera_calibration3, "camera_calibration3"), (52532, fm3, "forward_matrix3"),
                                  (52538, reduction_matrix3, "reduction_matrix3")):
            m = _check_matrix(value, name)
            if m is not None:
                out[code] = (_SRATIONAL, m)
        dims, data1, data2 = hue_sat_map
        if (hue_sat_map_data3 is None) != (data1 is None or data2 is None):
            raise ParameterError("write_dng: hue_sat_map_data1/2/3 must be given for all three calibrations or "
                                 "none when there is a third (DNG 1.6)")
        if hue_sat_map_data3 is not None:
            d = [int(v) for v in np.asarray(dims).ravel()]
            arr = np.asarray(hue_sat_map_data3, dtype=np.float64).ravel()
            if arr.size != 3 * d[0] * d[1] * d[2] or not np.all(np.isfinite(arr)):
                raise ParameterError(f"write_dng: hue_sat_map_data3 must hold {3 * d[0] * d[1] * d[2]} finite "
                                     f"values, got {arr.size}")
            out[52537] = (_FLOAT, arr.astype(np.float32).tolist())
    codes = (*calibration_illuminants, calibration_illuminant3)
    data = tuple(illuminant_data) if illuminant_data is not None else (None, None, None)
    if len(data) != 3:
        raise ParameterError("write_dng: illuminant_data must be a sequence of three entries "
                             "(IlluminantData1/2/3, None where absent)")
    for k, (code, entry) in enumerate(zip(codes, data), start=1):
        if entry is not None:
            if code is None or int(code) != 255:
                raise ParameterError(f"write_dng: illuminant_data{k} is only for calibration_illuminant{k} = 255 "
                                     f"(other), got {code!r}")
            out[52532 + k] = (_UNDEFINED, _illuminant_data_bytes(entry, f"illuminant_data{k}"))
        elif code is not None and int(code) == 255:
            raise ParameterError(f"write_dng: calibration_illuminant{k} = 255 (other) needs illuminant_data{k} "
                                 "(the light's xy or spectrum, DNG 1.6)")
    return out


def _check_mosaic(mosaic: Any) -> np.ndarray:
    arr = np.asarray(mosaic)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"write_dng: expected a non-empty H×W Bayer mosaic, got shape {arr.shape}")
    if arr.dtype == np.uint16:
        return np.ascontiguousarray(arr, dtype="<u2")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"write_dng: the mosaic must hold integer raw counts (uint16), got dtype {arr.dtype}; "
            "convert with np.rint(x).astype(np.uint16) after scaling to raw counts")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 65535:
        raise InputError(f"write_dng: raw counts must lie in [0, 65535], got [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype="<u2")


def _ascii(value: Any, name: str) -> str:
    s = str(value)
    if not s or not s.isascii() or not s.isprintable():
        raise ParameterError(f"write_dng: {name} must be a non-empty printable ASCII string, got {value!r}")
    return s


def _lj92_tiles(mosaic: np.ndarray, tile_length: int, tile_width: int) -> list[bytes]:
    """Encode the mosaic as lossless-JPEG tiles in row-major tile order (edge tiles padded)."""
    from ._ljpeg import encode_lj92  # numba: imported only when compressing

    h, w = mosaic.shape
    boxes = [(y, x) for y in range(0, h, tile_length) for x in range(0, w, tile_width)]

    def encode(box: tuple[int, int]) -> bytes:
        y, x = box
        t = mosaic[y:y + tile_length, x:x + tile_width]
        if t.shape != (tile_length, tile_width):
            t = np.pad(t, ((0, tile_length - t.shape[0]), (0, tile_width - t.shape[1])), mode="edge")
        return encode_lj92(t)

    workers = max(1, min(len(boxes), os.cpu_count() or 1, 8))
    if workers == 1:
        return [encode(b) for b in boxes]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # the kernels release the GIL
        return list(pool.map(encode, boxes))


def frame_to_counts(frame: Frame, black_level: Any = None, white_level: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, float]:
    """Map a RAW_MOSAIC frame's values to integer raw counts for a DNG.

    Returns ``(counts uint16, black (4,), white)``. A frame already in counts
    (``meta.white_level`` an integer ≥ 2, integer black levels) keeps its
    levels and is rounded; otherwise (e.g. normalised black 0 / white 1) each
    CFA position is mapped linearly from its ``[black, white]`` onto
    ``[black_level, white_level]`` (default 0 and 65535). Counts are clipped
    to [0, 65535].
    """
    m = frame.meta
    black_in = np.broadcast_to(np.asarray(m.black_level, dtype=np.float64).ravel(), (4,))
    white_in = float(m.white_level)
    is_counts = white_in >= 2 and white_in == int(white_in) and np.all(black_in == np.round(black_in))
    if black_level is None and white_level is None and is_counts:
        black_out, white_out, data = black_in.copy(), white_in, np.asarray(frame.data, dtype=np.float64)
    else:
        black_out = np.broadcast_to(np.asarray(0.0 if black_level is None else black_level, dtype=np.float64)
                                    .ravel(), (4,)).copy()
        white_out = 65535.0 if white_level is None else float(white_level)
        scale = (white_out - black_out) / (white_in - black_in)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ParameterError(f"write_dng: cannot map the frame's levels (black {black_in.tolist()}, white "
                                 f"{white_in:g}) onto black {black_out.tolist()}, white {white_out:g}")
        x = np.asarray(frame.data, dtype=np.float64)
        rows, cols = np.arange(x.shape[0])[:, None] % 2, np.arange(x.shape[1])[None, :] % 2
        pos = 2 * rows + cols
        data = black_out[pos] + (x - black_in[pos]) * scale[pos]
    if not np.all(np.isfinite(data)):
        raise InputError(f"write_dng: the frame ({m.source or 'in-memory'}) holds NaN or infinite values")
    return np.clip(np.rint(data), 0, 65535).astype(np.uint16), black_out, white_out


def _frame_color_tags(meta: Any) -> dict[str, Any]:
    """The DNG colour tags of a frame: its own DNG tags, else ColorMatrix1 = inverse of ``cam_to_xyz``."""
    out: dict[str, Any] = {}
    if meta.color_matrix1 is not None:
        out.update(color_matrix1=meta.color_matrix1, calibration_illuminant1=meta.calibration_illuminant1 or 21)
        if meta.color_matrix2 is not None and meta.calibration_illuminant2 is not None:
            out.update(color_matrix2=meta.color_matrix2, calibration_illuminant2=meta.calibration_illuminant2)
            for key in ("forward_matrix2", "camera_calibration2"):
                if getattr(meta, key) is not None:
                    out[key] = getattr(meta, key)
        for key in ("forward_matrix1", "camera_calibration1", "analog_balance"):
            if getattr(meta, key) is not None:
                out[key] = getattr(meta, key)
        if "forward_matrix2" in out and "forward_matrix1" not in out:
            del out["forward_matrix2"]
        return out
    if meta.cam_to_xyz is not None:
        return {"color_matrix1": np.linalg.inv(np.asarray(meta.cam_to_xyz, dtype=np.float64)),
                "calibration_illuminant1": meta.calibration_illuminant1 or 21}
    raise MissingMetadataError(
        f"write_dng: the frame ({meta.source or 'in-memory'}) carries no colour matrix (neither DNG "
        "color_matrix1 nor cam_to_xyz), and a DNG needs ColorMatrix1; set it with "
        "frame.replace(cam_to_xyz=...) or pass color_matrix1=...")


def _write_dng_frame(path: str | os.PathLike, frame: Frame, given: dict[str, Any]) -> Path:
    """The Frame form of :func:`write_dng`: arguments from the metadata, explicit ones override."""
    if frame.domain is not Domain.RAW_MOSAIC:
        raise InputError(f"write_dng: expected a RAW_MOSAIC frame, got a {frame.domain} frame; mosaic it first "
                         "(the Mosaic stage for camera RGB, UnpackBayer for RAW_PACKED)")
    m = frame.meta
    pattern = given.pop("cfa_pattern", None)
    if pattern is not None and check_cfa_pattern(pattern, "write_dng") != m.cfa_pattern:
        raise ParameterError(f"write_dng: cfa_pattern={pattern!r} contradicts the frame's {m.cfa_pattern!r}")
    counts, black, white = frame_to_counts(frame, given.pop("black_level", None), given.pop("white_level", None))
    kw: dict[str, Any] = dict(_frame_color_tags(m) if "color_matrix1" not in given else {})
    kw.update(black_level=black, white_level=white, orientation=m.orientation)
    if m.wb_gains is not None:
        kw["as_shot_neutral"] = 1.0 / np.asarray(m.wb_gains, dtype=np.float64)
    if m.make:
        kw["make"] = m.make
    if m.model:
        kw["model"] = m.model
    for key in ("baseline_exposure", "baseline_exposure_offset"):
        if m.extra.get(key) is not None:
            kw[key] = float(m.extra[key])
    if m.noise_profile is not None:
        kw["noise_profile"] = m.noise_profile
    kw.update(given)
    return write_dng(path, counts, m.cfa_pattern, **kw)


def write_dng(path: str | os.PathLike, mosaic_uint16: np.ndarray | Frame, cfa_pattern: str | None = None, *,
              black_level: float | Any = None, white_level: int | None = None, color_matrix1: Any = None,
              calibration_illuminant1: int = 21, color_matrix2: Any = None,
              calibration_illuminant2: int | None = None, forward_matrix1: Any = None,
              forward_matrix2: Any = None, as_shot_neutral: Any = None, make: str = "ispkit",
              model: str = "Synthetic", orientation: int = 1, compress: bool = False,
              baseline_exposure: float | None = None, opcode_list2: bytes | None = None,
              camera_calibration1: Any = None, camera_calibration2: Any = None, analog_balance: Any = None,
              as_shot_white_xy: Any = None, baseline_exposure_offset: float | None = None,
              default_black_render: int | None = None, hue_sat_map_dims: Any = None,
              hue_sat_map_data1: Any = None, hue_sat_map_data2: Any = None,
              hue_sat_map_encoding: int | None = None, look_table_dims: Any = None,
              look_table_data: Any = None, look_table_encoding: int | None = None,
              profile_tone_curve: Any = None, calibration_illuminant3: int | None = None,
              color_matrix3: Any = None, camera_calibration3: Any = None, forward_matrix3: Any = None,
              reduction_matrix3: Any = None, hue_sat_map_data3: Any = None,
              illuminant_data: Any = None, noise_profile: Any = None) -> Path:
    """Write a Bayer mosaic (or a RAW_MOSAIC Frame) as a minimal valid DNG 1.4 file (1.6 with a third illuminant).

    Parameters
    ----------
    path : output file (written atomically: temp file beside it, then rename).
    mosaic_uint16 : H×W integer raw counts in [0, 65535] (uint16 preferred),
        or a RAW_MOSAIC :class:`~ispkit.frame.Frame`: then the CFA pattern,
        black and white level, colour tags (its DNG ColorMatrix1/2 with their
        illuminants, ForwardMatrix, CameraCalibration, AnalogBalance, else
        ColorMatrix1 = inverse of ``cam_to_xyz``), AsShotNeutral
        (``1 / wb_gains``), orientation, make/model, BaselineExposure(Offset)
        and NoiseProfile come from its metadata, and the values become
        integer counts (:func:`frame_to_counts`; a normalised frame is mapped
        onto ``black_level``..``white_level``, default 0..65535). Keywords
        given explicitly (not None / not their default) override the metadata.
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG", read from the top-left pixel.
    black_level : scalar or (4,) per 2×2 position in raster order, raw counts.
    white_level : saturation level in raw counts (> every black level, ≤ 65535).
    color_matrix1, color_matrix2 : 3×3 XYZ→camera DNG ColorMatrix for
        ``calibration_illuminant1/2`` (EXIF LightSource codes, 21 = D65, 17 = A).
    forward_matrix1, forward_matrix2 : optional 3×3 camera→XYZ(D50) ForwardMatrix.
    as_shot_neutral : optional (3,) camera RGB of the scene white (1 / wb gains).
    make, model : written to Make, Model and UniqueCameraModel ("make model").
    orientation : EXIF orientation 1..8.
    compress : lossless-JPEG (Compression 7) 256×256 tiles — one strip for
        images narrower than 256 — instead of one uncompressed strip.
    baseline_exposure : optional DNG BaselineExposure in EV.
    opcode_list2 : optional raw bytes of an OpcodeList2 (tag 51009, e.g. a
        GainMap for lens shading), written as given (big-endian DNG layout).
    camera_calibration1, camera_calibration2 : optional 3×3 CameraCalibration
        (reference → individual camera) for each calibration illuminant.
    analog_balance : optional (3,) AnalogBalance gains.
    as_shot_white_xy : optional (2,) AsShotWhiteXY chromaticity of the white
        (instead of ``as_shot_neutral``; a DNG holds at most one of them).
    baseline_exposure_offset : optional BaselineExposureOffset in EV (DNG 1.4).
    default_black_render : optional DefaultBlackRender (0 = Auto, 1 = None).
    hue_sat_map_dims : (hue, saturation, value) divisions of the
        ProfileHueSatMap tables; ``hue_sat_map_data1/2`` hold
        ``hue·sat·value`` entries of (hue shift in degrees, saturation scale,
        value scale), value-major then hue then saturation, as the tags store
        them; ``hue_sat_map_encoding`` 0 = linear, 1 = sRGB (DNG 1.4).
    look_table_dims, look_table_data, look_table_encoding : the
        ProfileLookTable (one table, same layout and encoding values).
    profile_tone_curve : optional N×2 ProfileToneCurve points (x, y) in
        [0, 1], x strictly increasing, from (0, 0) to (1, 1).
    calibration_illuminant3, color_matrix3, camera_calibration3,
    forward_matrix3, reduction_matrix3, hue_sat_map_data3 : the DNG 1.6 third
        calibration (on top of a dual-illuminant profile; ForwardMatrix and
        HueSatMap data for all three or none).
    illuminant_data : optional three entries (IlluminantData1/2/3) for
        calibration illuminants 255 (other): ``{"xy": (x, y)}`` or
        ``{"spectrum": values, "min_lambda": nm, "spacing": nm}``, None where
        absent. Any third-illuminant tag or IlluminantData makes the file
        DNGVersion / DNGBackwardVersion 1.6.
    noise_profile : optional DNG NoiseProfile: (scale, offset) pairs (one,
        or one per CFA plane) of ``variance = scale · x + offset`` for the
        normalised signal ``x``.

    Returns
    -------
    The written path.

    Notes
    -----
    RAW_MOSAIC counts, H×W, uint16; odd sizes are allowed. The file holds one
    IFD (the raw image, NewSubfileType 0, PhotometricInterpretation 32803 CFA,
    BitsPerSample 16) with BlackLevelRepeatDim 2×2 when the four black levels
    differ. Rationals are stored exactly for decimals with ≤ 6 places.
    LibRaw refuses images smaller than 22×22 pixels, and for a Make/Model it
    knows it reports its own built-in ``rgb_xyz_matrix`` (its ``rgb_cam``
    still follows the file's ColorMatrix).

    References
    ----------
    Adobe, *Digital Negative (DNG) Specification* 1.4, chapters 4–6.
    """
    if isinstance(mosaic_uint16, Frame):
        args = dict(locals())
        given = {k: v for k, v in args.items() if k not in ("path", "mosaic_uint16")
                 and v is not None and not (k in _WRITE_DEFAULTS and _same(v, _WRITE_DEFAULTS[k]))}
        return _write_dng_frame(path, mosaic_uint16, given)
    missing = [k for k, v in (("cfa_pattern", cfa_pattern), ("black_level", black_level),
                              ("white_level", white_level), ("color_matrix1", color_matrix1)) if v is None]
    if missing:
        raise ParameterError(f"write_dng: writing an array needs {', '.join(missing)} (or pass a RAW_MOSAIC Frame, "
                             "whose metadata gives them)")
    # 1. check every argument before anything is written
    out = check_output_path(path, "write_dng")
    data = _check_mosaic(mosaic_uint16)
    pattern = check_cfa_pattern(cfa_pattern, "write_dng")
    black, white = _check_levels(black_level, white_level)
    cm1, cm2, fm1, fm2, ill1, ill2 = _check_calibration(color_matrix1, color_matrix2, forward_matrix1, forward_matrix2,
                                                        calibration_illuminant1, calibration_illuminant2)
    profile_tags = _profile_tags(
        has_cm2=cm2 is not None, has_neutral=as_shot_neutral is not None,
        camera_calibration1=camera_calibration1, camera_calibration2=camera_calibration2,
        analog_balance=analog_balance, as_shot_white_xy=as_shot_white_xy,
        baseline_exposure_offset=baseline_exposure_offset, default_black_render=default_black_render,
        hue_sat_map_dims=hue_sat_map_dims, hue_sat_map_data1=hue_sat_map_data1,
        hue_sat_map_data2=hue_sat_map_data2, hue_sat_map_encoding=hue_sat_map_encoding,
        look_table_dims=look_table_dims, look_table_data=look_table_data, look_table_encoding=look_table_encoding,
        profile_tone_curve=profile_tone_curve, third=_third_illuminant_tags(
            calibration_illuminant3=calibration_illuminant3, color_matrix3=color_matrix3,
            camera_calibration3=camera_calibration3, forward_matrix3=forward_matrix3,
            reduction_matrix3=reduction_matrix3, hue_sat_map_data3=hue_sat_map_data3,
            illuminant_data=illuminant_data, calibration_illuminants=(ill1, ill2), has_cm2=cm2 is not None,
            has_fm=(fm1 is not None, fm2 is not None),
            hue_sat_map=(hue_sat_map_dims, hue_sat_map_data1, hue_sat_map_data2)))
    neutral = _check_neutral(as_shot_neutral)
    make_s, model_s = _ascii(make, "make"), _ascii(model, "model")
    if isinstance(orientation, bool) or orientation not in range(1, 9):
        raise ParameterError(f"write_dng: orientation must be an EXIF orientation 1..8, got {orientation!r}")
    if not isinstance(compress, (bool, np.bool_)):
        raise ParameterError(f"write_dng: compress must be True or False, got {compress!r}")
    if baseline_exposure is not None and not np.isfinite(baseline_exposure):
        raise ParameterError(f"write_dng: baseline_exposure must be finite, got {baseline_exposure!r}")
    if opcode_list2 is not None and (not isinstance(opcode_list2, (bytes, bytearray)) or len(opcode_list2) < 4):
        raise ParameterError("write_dng: opcode_list2 must be the bytes of a DNG opcode list")
    # 2. the tags
    ifd = _IFD()
    dng16 = any(code >= 52529 for code in profile_tags)  # third illuminant / IlluminantData need a 1.6 reader
    _add_image_tags(ifd, data.shape, pattern, bool(compress), make_s, model_s, int(orientation), dng16)
    _add_level_tags(ifd, black, white)
    ifd.rational(50721, cm1, signed=True, name="color_matrix1")
    ifd.add(50778, _SHORT, ill1)
    if cm2 is not None:
        ifd.rational(50722, cm2, signed=True, name="color_matrix2")
        ifd.add(50779, _SHORT, ill2)
    if neutral is not None:
        ifd.rational(50728, neutral, signed=False, name="as_shot_neutral")
    if fm1 is not None:
        ifd.rational(50964, fm1, signed=True, name="forward_matrix1")
    if fm2 is not None:
        ifd.rational(50965, fm2, signed=True, name="forward_matrix2")
    if baseline_exposure is not None:
        ifd.rational(50730, [float(baseline_exposure)], signed=True, name="baseline_exposure")
    if noise_profile is not None:
        ifd.add(51041, _DOUBLE, _noise_profile_values(noise_profile))
    for code, (ftype, values) in profile_tags.items():
        if ftype in (_RATIONAL, _SRATIONAL):
            ifd.rational(code, values, signed=ftype == _SRATIONAL, name=DNG_TAG_NAMES[code])
        else:
            ifd.add(code, ftype, values)
    if opcode_list2 is not None:
        ifd.add(51009, _UNDEFINED, bytes(opcode_list2))
    # 3. the image data, then the file
    segments, counts, offsets_tag = _add_image_data(ifd, data, bool(compress))
    return _write_tiff(out, ifd, segments, counts, offsets_tag)


def _check_levels(black_level: Any, white_level: Any) -> tuple[np.ndarray, float]:
    """(4,) black levels and the white level, checked for :func:`write_dng`."""
    try:
        white = float(white_level)
        black = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,)).copy()
    except (TypeError, ValueError):
        raise ParameterError(f"write_dng: black_level must be a number or 4 numbers and white_level a "
                             f"number, got {black_level!r} and {white_level!r}") from None
    if not (np.isfinite(white) and white == int(white) and 0 < white <= 65535):
        raise ParameterError(f"write_dng: white_level must be an integer in (0, 65535], got {white_level!r}")
    if not np.all(np.isfinite(black)) or np.any(black < 0) or np.any(black >= white):
        raise ParameterError(f"write_dng: every black level must lie in [0, white_level={white:g}), "
                             f"got {black.tolist()}")
    return black, white


def _check_calibration(color_matrix1: Any, color_matrix2: Any, forward_matrix1: Any, forward_matrix2: Any,
                       calibration_illuminant1: Any, calibration_illuminant2: Any) -> tuple:
    """(cm1, cm2, fm1, fm2, ill1, ill2) of a one- or two-illuminant calibration, checked for :func:`write_dng`."""
    cm1 = _check_matrix(color_matrix1, "color_matrix1", required=True)
    cm2 = _check_matrix(color_matrix2, "color_matrix2")
    fm1 = _check_matrix(forward_matrix1, "forward_matrix1")
    fm2 = _check_matrix(forward_matrix2, "forward_matrix2")
    ill1 = _check_illuminant(calibration_illuminant1, "calibration_illuminant1")
    if (cm2 is None) != (calibration_illuminant2 is None):
        raise ParameterError("write_dng: give color_matrix2 and calibration_illuminant2 together "
                             f"(got color_matrix2={'set' if cm2 is not None else None}, "
                             f"calibration_illuminant2={calibration_illuminant2!r})")
    ill2 = None if calibration_illuminant2 is None else _check_illuminant(
        calibration_illuminant2, "calibration_illuminant2")
    if fm2 is not None and cm2 is None:
        raise ParameterError("write_dng: forward_matrix2 needs color_matrix2 and calibration_illuminant2")
    return cm1, cm2, fm1, fm2, ill1, ill2


def _check_neutral(as_shot_neutral: Any) -> np.ndarray | None:
    if as_shot_neutral is None:
        return None
    neutral = np.asarray(as_shot_neutral, dtype=np.float64).ravel()
    if neutral.shape != (3,) or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        raise ParameterError(f"write_dng: as_shot_neutral must be 3 positive numbers, got {as_shot_neutral!r}")
    return neutral


def _add_image_tags(ifd: "_IFD", shape: tuple[int, int], pattern: str, compress: bool, make_s: str, model_s: str,
                    orientation: int, dng16: bool) -> None:
    """The raw image's TIFF/EP and DNG identification tags (one IFD, CFA, 16 bits per sample)."""
    h, w = shape
    ifd.add(254, _LONG, 0)
    ifd.add(256, _LONG, w)
    ifd.add(257, _LONG, h)
    ifd.add(258, _SHORT, 16)
    ifd.add(259, _SHORT, 7 if compress else 1)
    ifd.add(262, _SHORT, 32803)
    ifd.add(271, _ASCII, make_s)
    ifd.add(272, _ASCII, model_s)
    ifd.add(274, _SHORT, orientation)
    ifd.add(277, _SHORT, 1)
    ifd.add(284, _SHORT, 1)
    ifd.add(305, _ASCII, "ispkit")
    ifd.add(33421, _SHORT, [2, 2])
    ifd.add(33422, _BYTE, [_CFA_CODE[c] for c in pattern])
    ifd.add(50706, _BYTE, [1, 6, 0, 0] if dng16 else [1, 4, 0, 0])
    ifd.add(50707, _BYTE, [1, 6, 0, 0] if dng16 else [1, 1, 0, 0])
    ifd.add(50708, _ASCII, f"{make_s} {model_s}")
    ifd.add(50710, _BYTE, [0, 1, 2])
    ifd.add(50711, _SHORT, 1)


def _add_level_tags(ifd: "_IFD", black: np.ndarray, white: float) -> None:
    """BlackLevelRepeatDim (2×2 only when the four differ), BlackLevel and WhiteLevel."""
    blacks = black if np.ptp(black) > 0 else black[:1]
    ifd.add(50713, _SHORT, [2, 2] if blacks.size == 4 else [1, 1])
    if np.all(blacks == np.round(blacks)):
        ifd.add(50714, _LONG, [int(v) for v in blacks])
    else:
        ifd.rational(50714, blacks, signed=False, name="black_level")
    ifd.add(50717, _LONG, int(white))


def _add_image_data(ifd: "_IFD", data: np.ndarray, compress: bool) -> tuple[list, list[int], int]:
    """The image segments (one strip, or lossless-JPEG tiles) and their tags with placeholder offsets.

    Returns (segments, byte counts, the tag that will hold their offsets).
    """
    h, w = data.shape
    if compress and w < _TILE:
        # LibRaw wraps tile rows at the image width, so a tile wider than the image would be
        # misread: narrow images are one lossless-JPEG strip exactly as wide as the image
        from ._ljpeg import encode_lj92

        segments = [encode_lj92(data, components=2 if w % 2 == 0 else 1)]
        counts = [len(segments[0])]
    elif compress:
        # LibRaw (lossless_dng_load_raw) reads a tile row as two JPEG rows when
        # components × tile width == image width; 512-wide tiles avoid that for 512-wide images
        tile_width = _TILE if w != 2 * _TILE else 2 * _TILE
        segments = _lj92_tiles(data, _TILE, tile_width)
        counts = [len(seg) for seg in segments]
        ifd.add(322, _LONG, tile_width)
        ifd.add(323, _LONG, _TILE)
        ifd.add(324, _LONG, [0] * len(segments))
        ifd.add(325, _LONG, counts)
        return segments, counts, 324
    else:
        segments = [memoryview(data).cast("B")]
        counts = [data.nbytes]
    ifd.add(273, _LONG, [0])
    ifd.add(278, _LONG, h)
    ifd.add(279, _LONG, counts)
    return segments, counts, 273


def _write_tiff(out: Path, ifd: "_IFD", segments: list, counts: list[int], offsets_tag: int) -> Path:
    """Lay out header, IFD and the word-aligned segments, set their offsets, and write ``out`` atomically."""
    blob, end = ifd.build(8)
    start = end + (-end % 16)
    offsets, pos = [], start
    for n in counts:
        offsets.append(pos)
        pos += n + (n % 2)  # word-align each segment
    if pos >= 2**32:
        raise ParameterError(f"write_dng: {pos} bytes exceed the 4 GiB limit of a classic TIFF/DNG")
    ifd.add(offsets_tag, _LONG, offsets)
    blob, _ = ifd.build(8)  # same layout: only the offset values changed

    def write(fh: Any) -> None:
        fh.write(b"II*\0" + struct.pack("<I", 8))
        fh.write(blob)
        fh.write(b"\0" * (start - end))
        for seg, n in zip(segments, counts):
            fh.write(seg)
            if n % 2:
                fh.write(b"\0")

    return atomic_write(out, write)


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def _noise_profile_values(noise_profile: Any) -> list[float]:
    try:
        pairs = np.asarray(noise_profile, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        pairs = np.zeros((0, 2))
    if pairs.shape[0] not in (1, 3, 4) or not np.all(np.isfinite(pairs)) or np.any(pairs[:, 0] <= 0) \
            or np.any(pairs[:, 1] < 0):
        raise ParameterError(f"write_dng: noise_profile must be 1, 3 or 4 (scale > 0, offset >= 0) pairs, "
                             f"got {noise_profile!r}")
    return pairs.ravel().tolist()


_WRITE_DEFAULTS = {name: p.default for name, p in inspect.signature(write_dng).parameters.items()
                   if p.default is not inspect.Parameter.empty}


# ---------------------------------------------------------------------------
# reading


class _ThreadQuiet(logging.Filter):
    """Drop tifffile log records emitted by a thread while it reads RAW tags."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "quiet", False)


_QUIET = _ThreadQuiet()


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's messages about maker-specific RAW variants (this thread only)."""
    log = logging.getLogger("tifffile")
    if _QUIET not in log.filters:
        log.addFilter(_QUIET)
    _QUIET.local.quiet = True
    try:
        yield
    finally:
        _QUIET.local.quiet = False


def _tag_values(tag: Any) -> list[float] | None:
    """Numeric values of a TIFF tag as floats (rationals divided out)."""
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, (bytes, str)):
        return None
    flat = np.asarray(value, dtype=np.float64).ravel() if np.ndim(value) else np.array([float(value)])
    if int(tag.dtype) in (_RATIONAL, _SRATIONAL):
        if flat.size % 2:
            return None
        num, den = flat[0::2], flat[1::2]
        with np.errstate(divide="ignore", invalid="ignore"):
            flat = np.where(den != 0, num / np.where(den == 0, 1, den), np.nan)
    return [float(v) for v in flat]


def _matrix(tag: Any) -> np.ndarray | None:
    vals = _tag_values(tag)
    if vals is None or len(vals) < 9:
        return None
    m = np.array(vals[:9]).reshape(3, 3)
    return m if np.all(np.isfinite(m)) and np.any(m) else None


def _vector(tag: Any, n: int) -> np.ndarray | None:
    vals = _tag_values(tag)
    if vals is None or len(vals) < n:
        return None
    v = np.array(vals[:n])
    return v if np.all(np.isfinite(v)) else None


def _scalar(tag: Any) -> float | None:
    vals = _tag_values(tag)
    return vals[0] if vals and np.isfinite(vals[0]) else None


def _text(tag: Any) -> str | None:
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, bytes):
        value = value.decode("latin-1", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\0", "").strip()
    return value or None


def _exif_number(value: Any) -> float | None:
    try:
        if isinstance(value, (tuple, list)):
            if len(value) == 2 and float(value[1]) != 0:
                return float(value[0]) / float(value[1])
            value = value[0]
        v = float(value)
        return v if np.isfinite(v) and v > 0 else None
    except (TypeError, ValueError, IndexError):
        return None


def _pages(tf: Any) -> list[Any]:
    """Every IFD of the file: the top-level pages and their SubIFDs."""
    out: list[Any] = []
    for page in tf.pages:
        out.append(page)
        with contextlib.suppress(Exception):
            for sub in page.pages or []:
                out.append(sub)
    return out


def _illuminant_data(tag: Any, byteorder: str) -> dict[str, Any] | None:
    """Decode an IlluminantData tag (DNG 1.6): ``{"xy": [x, y]}`` or ``{"spectrum", "min_lambda", "spacing"}``."""
    if tag is None:
        return None
    value = tag.value
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else bytes(int(v) & 0xFF for v in np.ravel(value))
    try:
        (kind,) = struct.unpack_from(byteorder + "H", raw, 0)
        if kind == 0:
            xn, xd, yn, yd = struct.unpack_from(byteorder + "4I", raw, 2)
            return {"xy": [xn / xd, yn / yd]} if xd and yd else None
        if kind == 1:
            (n,) = struct.unpack_from(byteorder + "I", raw, 2)
            if not 2 <= n <= 1000:
                return None
            vals = struct.unpack_from(byteorder + f"{2 * (n + 2)}I", raw, 6)
            num, den = np.array(vals[0::2], np.float64), np.array(vals[1::2], np.float64)
            if np.any(den == 0):
                return None
            ratio = num / den
            return {"min_lambda": float(ratio[0]), "spacing": float(ratio[1]), "spectrum": ratio[2:].tolist()}
    except struct.error:
        return None
    return None


def _third_illuminant_values(tags: Any, byteorder: str) -> dict[str, Any]:
    """The DNG 1.6 third calibration set and IlluminantData1–3 of an IFD (keys ``color_matrix3`` …)."""
    out: dict[str, Any] = {}
    for key, code in (("color_matrix3", 52531), ("camera_calibration3", 52530), ("forward_matrix3", 52532),
                      ("reduction_matrix3", 52538)):
        m = _matrix(tags.get(code))
        if m is not None:
            out[key] = m
    v = _scalar(tags.get(52529))
    if v is not None:
        out["calibration_illuminant3"] = int(v)
    for k in (1, 2, 3):
        data = _illuminant_data(tags.get(52532 + k), byteorder)
        if data is not None:
            out[f"illuminant_data{k}"] = data
    return out


def _profile_tag_values(tags: Any, byteorder: str = "<") -> dict[str, Any]:
    """AsShotWhiteXY, BaselineExposureOffset, DefaultBlackRender, the ProfileHueSatMap tags and the third illuminant of an IFD."""
    out: dict[str, Any] = _third_illuminant_values(tags, byteorder)
    xy = _vector(tags.get(50729), 2)
    if xy is not None and np.all(xy > 0) and xy.sum() < 1:
        out["as_shot_white_xy"] = xy
    v = _scalar(tags.get(51109))
    if v is not None:
        out["baseline_exposure_offset"] = v
    v = _scalar(tags.get(51110))
    if v is not None:
        out["default_black_render"] = int(v)
    v = _scalar(tags.get(50739))
    if v is not None and v > 0:
        out["shadow_scale"] = v
    curve = _tag_values(tags.get(50940))
    if curve and len(curve) >= 4 and len(curve) % 2 == 0:
        out["profile_tone_curve"] = np.asarray(curve, dtype=np.float64).reshape(-1, 2)
    for kind, (c_dims, c_data1, c_data2, c_enc) in _HSV_TABLES.items():
        dims = _tag_values(tags.get(c_dims))
        if not dims or len(dims) < 3:
            continue
        d = tuple(int(x) for x in dims[:3])
        n = 3 * d[0] * d[1] * d[2]
        data = {}
        names = (((f"{kind}_data1", c_data1), (f"{kind}_data2", c_data2), (f"{kind}_data3", 52537)) if c_data2
                 else ((f"{kind}_data", c_data1),))
        for key, code in names:
            vals = _tag_values(tags.get(code))
            if vals is not None and len(vals) == n and n > 0:
                data[key] = np.asarray(vals, dtype=np.float64)
        if data:
            out[f"{kind}_dims"] = d
            out.update(data)
            enc = _scalar(tags.get(c_enc))
            out[f"{kind}_encoding"] = int(enc) if enc is not None else 0
    return out


def read_dng_tags(path: str | os.PathLike) -> dict[str, Any]:
    """Read the DNG colour tags, EXIF fields and image-data extent of a TIFF-based file.

    Returns an empty dict for files tifffile cannot parse (CR3, RAF, garbage).
    Keys (present when found): ``is_dng``, ``make``, ``model``,
    ``unique_camera_model``, ``orientation``, ``iso``, ``exposure_time``,
    ``color_matrix1/2``, ``camera_calibration1/2``, ``forward_matrix1/2``
    (3×3 arrays), ``calibration_illuminant1/2``, ``analog_balance``,
    ``as_shot_neutral`` (3,), ``as_shot_white_xy`` (2,), ``baseline_exposure``,
    ``baseline_exposure_offset``, ``default_black_render``, ``shadow_scale``,
    ``hue_sat_map_dims`` (3 ints), ``hue_sat_map_data1/2`` (flat float64),
    ``hue_sat_map_encoding``, ``look_table_dims`` / ``look_table_data`` /
    ``look_table_encoding``, ``profile_tone_curve`` (N×2), the DNG 1.6 third
    calibration ``color_matrix3`` / ``camera_calibration3`` /
    ``forward_matrix3`` / ``reduction_matrix3`` (3×3), ``calibration_illuminant3``,
    ``hue_sat_map_data3``, ``illuminant_data1/2/3`` (``{"xy": [x, y]}`` or
    ``{"spectrum": [...], "min_lambda": nm, "spacing": nm}``), ``noise_profile``
    (flat list), ``linearization_table``, ``black_level`` (flat list),
    ``black_level_repeat_dim``, ``white_level``, ``cfa_pattern`` (from
    CFAPattern), ``raw_shape``, ``samples_per_pixel``, ``photometric``,
    ``data_end`` (largest offset + byte count over the big image IFDs).

    Notes
    -----
    For DNGs the raw IFD is the one with NewSubfileType 0 and a CFA (32803)
    or LinearRaw (34892) photometric interpretation.
    """
    import tifffile

    out: dict[str, Any] = {}
    try:
        with _quiet_tifffile(), tifffile.TiffFile(os.fspath(path)) as tf:
            page0 = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            tags0 = page0.tags
            out["is_dng"] = tags0.get(50706) is not None
            _read_identity(tags0, out)
            _read_exposure(tags0, out)
            _read_calibration(tags0, out)
            out.update(_profile_tag_values(tags0, "<" if tf.byteorder == "<" else ">"))
            noise = _tag_values(tags0.get(51041))
            if noise:
                out["noise_profile"] = noise
            pages = _pages(tf)
            raw = next((page for page in pages if int(getattr(page, "photometric", 0) or 0) in (32803, 34892)
                        and int(getattr(page, "subfiletype", 0) or 0) == 0), None)
            if raw is not None:
                _read_raw_ifd(raw, out)
            end = _image_data_end(pages)
            if end is not None:
                out["data_end"] = end
    except Exception:  # not TIFF-based, or damaged beyond what tifffile parses
        return out
    return out


def _read_identity(tags0: Any, out: dict[str, Any]) -> None:
    """Make, Model, UniqueCameraModel and Orientation of the first IFD."""
    for key, code in (("make", 271), ("model", 272), ("unique_camera_model", 50708)):
        text = _text(tags0.get(code))
        if text:
            out[key] = text
    orient = _scalar(tags0.get(274))
    if orient is not None and 1 <= int(orient) <= 8:
        out["orientation"] = int(orient)


def _read_exposure(tags0: Any, out: dict[str, Any]) -> None:
    """ISO and exposure time: from the EXIF IFD, else the TIFF/EP tags of the first IFD."""
    exif = tags0.get(34665)
    exif = exif.value if exif is not None and isinstance(exif.value, dict) else {}
    iso = None
    for key in ("PhotographicSensitivity", "ISOSpeedRatings", "ISOSpeed"):
        if key in exif:
            iso = _exif_number(exif[key])
            if iso:
                break
    if iso is None:
        iso = _scalar(tags0.get(34855))
    if iso:
        out["iso"] = iso
    exposure = _exif_number(exif.get("ExposureTime")) if "ExposureTime" in exif else None
    if exposure is None:
        exposure = _scalar(tags0.get(33434))
    if exposure:
        out["exposure_time"] = exposure


def _read_calibration(tags0: Any, out: dict[str, Any]) -> None:
    """The dual-illuminant colour tags, AnalogBalance, AsShotNeutral and BaselineExposure."""
    for key, code in (("color_matrix1", 50721), ("color_matrix2", 50722),
                      ("camera_calibration1", 50723), ("camera_calibration2", 50724),
                      ("forward_matrix1", 50964), ("forward_matrix2", 50965)):
        m = _matrix(tags0.get(code))
        if m is not None:
            out[key] = m
    for key, code in (("calibration_illuminant1", 50778), ("calibration_illuminant2", 50779)):
        v = _scalar(tags0.get(code))
        if v is not None:
            out[key] = int(v)
    for key, code in (("analog_balance", 50727), ("as_shot_neutral", 50728)):
        v = _vector(tags0.get(code), 3)
        if v is not None:
            out[key] = v
    v = _scalar(tags0.get(50730))
    if v is not None:
        out["baseline_exposure"] = v


def _read_raw_ifd(raw: Any, out: dict[str, Any]) -> None:
    """Shape, levels, linearisation, areas and CFA pattern of the raw image's IFD."""
    rt = raw.tags
    out["photometric"] = int(raw.photometric)
    out["samples_per_pixel"] = int(raw.samplesperpixel)
    out["raw_shape"] = (int(raw.imagelength), int(raw.imagewidth))
    lut = rt.get(50712)
    if lut is not None:
        out["linearization_table"] = np.asarray(lut.value, dtype=np.float64).ravel()
    vals = _tag_values(rt.get(50714))
    if vals:
        out["black_level"] = vals
    dim = _tag_values(rt.get(50713))
    if dim:
        out["black_level_repeat_dim"] = tuple(int(d) for d in dim[:2])
    for key, code in (("black_level_delta_h", 50715), ("black_level_delta_v", 50716)):
        if rt.get(code) is not None:
            out[key] = True
    white = _tag_values(rt.get(50717))
    if white:
        out["white_level"] = white
    for key, code in (("active_area", 50829), ("default_crop_origin", 50719), ("default_crop_size", 50720)):
        vals = _tag_values(rt.get(code))
        if vals:
            out[key] = tuple(vals)
    dims = _tag_values(rt.get(33421))
    cfa = rt.get(33422)
    if dims and [int(d) for d in dims[:2]] == [2, 2] and cfa is not None:
        codes = bytes(cfa.value) if isinstance(cfa.value, (bytes, bytearray)) else bytes(
            int(c) for c in np.ravel(cfa.value))
        if len(codes) == 4 and all(c in _CFA_LETTER for c in codes):
            out["cfa_pattern"] = "".join(_CFA_LETTER[c] for c in codes)


def _image_data_end(pages: list) -> int | None:
    """The end of the large image IFDs' data (the raw data and full-size previews), None without images."""
    areas = []
    for page in pages:
        with contextlib.suppress(Exception):
            areas.append((int(page.imagelength) * int(page.imagewidth), page))
    if not areas:
        return None
    biggest = max(a for a, _ in areas)
    end = 0
    for area, page in areas:
        if area * 4 < biggest:
            continue
        with contextlib.suppress(Exception):
            offs, counts = page.dataoffsets, page.databytecounts
            if offs and counts:
                end = max(end, max(int(o) + int(c) for o, c in zip(offs, counts)))
    return end


# ---------------------------------------------------------------------------
# DCP camera profiles (Adobe's ".dcp": the DNG profile tags in a TIFF-like file with magic "IIRC")

_DCP_PROFILE_KEYS = ("color_matrix1", "color_matrix2", "calibration_illuminant1", "calibration_illuminant2",
                     "forward_matrix1", "forward_matrix2", "color_matrix3", "calibration_illuminant3",
                     "forward_matrix3", "reduction_matrix3", "hue_sat_map_data3", "illuminant_data1",
                     "illuminant_data2", "illuminant_data3", "baseline_exposure_offset", "default_black_render",
                     "hue_sat_map_dims", "hue_sat_map_data1", "hue_sat_map_data2", "hue_sat_map_encoding",
                     "look_table_dims", "look_table_data", "look_table_encoding", "profile_tone_curve",
                     "unique_camera_model", "profile_name")


def write_dcp(path: str | os.PathLike, *, color_matrix1: Any, calibration_illuminant1: int = 21,
              color_matrix2: Any = None, calibration_illuminant2: int | None = None, forward_matrix1: Any = None,
              forward_matrix2: Any = None, unique_camera_model: str = "ispkit Synthetic",
              profile_name: str = "ispkit", **profile_tags: Any) -> Path:
    """Write a DNG camera profile as a DCP file (Adobe's format, read by ACR, RawTherapee, darktable).

    Parameters
    ----------
    path : output file (written atomically).
    color_matrix1, calibration_illuminant1, color_matrix2, calibration_illuminant2,
    forward_matrix1, forward_matrix2 : as for :func:`write_dng`.
    unique_camera_model, profile_name : UniqueCameraModel and ProfileName.
    **profile_tags : ``baseline_exposure_offset``, ``default_black_render``,
        ``hue_sat_map_dims`` / ``_data1`` / ``_data2`` / ``_encoding``,
        ``look_table_dims`` / ``_data`` / ``_encoding``, ``profile_tone_curve``,
        and the DNG 1.6 third calibration ``calibration_illuminant3``,
        ``color_matrix3``, ``forward_matrix3``, ``reduction_matrix3``,
        ``hue_sat_map_data3`` with ``illuminant_data`` (checked as in
        :func:`write_dng`; the DNG SDK's profile tag set holds them too).

    Returns
    -------
    The written path.

    Notes
    -----
    Little-endian header ``IIRC`` + offset 8, one IFD; ProfileEmbedPolicy 3
    (no restrictions).

    References
    ----------
    Adobe, *DNG Specification* 1.6, chapter 6 (camera profiles) and the DNG
    SDK's ``dng_camera_profile::ParseExtended`` (DCP file layout).
    """
    out = check_output_path(path, "write_dcp")
    allowed = {"baseline_exposure_offset", "default_black_render", "hue_sat_map_dims", "hue_sat_map_data1",
               "hue_sat_map_data2", "hue_sat_map_encoding", "look_table_dims", "look_table_data",
               "look_table_encoding", "profile_tone_curve", "calibration_illuminant3", "color_matrix3",
               "forward_matrix3", "reduction_matrix3", "hue_sat_map_data3", "illuminant_data"}
    unknown = sorted(set(profile_tags) - allowed)
    if unknown:
        raise ParameterError(f"write_dcp: unknown profile tags {unknown}; valid: {sorted(allowed)}")
    cm1 = _check_matrix(color_matrix1, "color_matrix1", required=True)
    cm2 = _check_matrix(color_matrix2, "color_matrix2")
    fm1, fm2 = _check_matrix(forward_matrix1, "forward_matrix1"), _check_matrix(forward_matrix2, "forward_matrix2")
    if (cm2 is None) != (calibration_illuminant2 is None) or (fm2 is not None and cm2 is None):
        raise ParameterError("write_dcp: color_matrix2 needs calibration_illuminant2 (and forward_matrix2 both)")
    tags = _profile_tags(has_cm2=cm2 is not None, has_neutral=False, camera_calibration1=None,
                         camera_calibration2=None, analog_balance=None, as_shot_white_xy=None,
                         baseline_exposure_offset=profile_tags.get("baseline_exposure_offset"),
                         default_black_render=profile_tags.get("default_black_render"),
                         hue_sat_map_dims=profile_tags.get("hue_sat_map_dims"),
                         hue_sat_map_data1=profile_tags.get("hue_sat_map_data1"),
                         hue_sat_map_data2=profile_tags.get("hue_sat_map_data2"),
                         hue_sat_map_encoding=profile_tags.get("hue_sat_map_encoding"),
                         look_table_dims=profile_tags.get("look_table_dims"),
                         look_table_data=profile_tags.get("look_table_data"),
                         look_table_encoding=profile_tags.get("look_table_encoding"),
                         profile_tone_curve=profile_tags.get("profile_tone_curve"),
                         third=_third_illuminant_tags(
                             calibration_illuminant3=profile_tags.get("calibration_illuminant3"),
                             color_matrix3=profile_tags.get("color_matrix3"), camera_calibration3=None,
                             forward_matrix3=profile_tags.get("forward_matrix3"),
                             reduction_matrix3=profile_tags.get("reduction_matrix3"),
                             hue_sat_map_data3=profile_tags.get("hue_sat_map_data3"),
                             illuminant_data=profile_tags.get("illuminant_data"),
                             calibration_illuminants=(calibration_illuminant1, calibration_illuminant2),
                             has_cm2=cm2 is not None, has_fm=(fm1 is not None, fm2 is not None),
                             hue_sat_map=(profile_tags.get("hue_sat_map_dims"), profile_tags.get("hue_sat_map_data1"),
                                          profile_tags.get("hue_sat_map_data2"))))
    ifd = _IFD()
    ifd.add(50708, _ASCII, _ascii(unique_camera_model, "unique_camera_model"))
    ifd.add(50936, _ASCII, _ascii(profile_name, "profile_name"))
    ifd.add(50941, _LONG, [3])
    ifd.rational(50721, cm1, signed=True, name="color_matrix1")
    ifd.add(50778, _SHORT, _check_illuminant(calibration_illuminant1, "calibration_illuminant1"))
    if cm2 is not None:
        ifd.rational(50722, cm2, signed=True, name="color_matrix2")
        ifd.add(50779, _SHORT, _check_illuminant(calibration_illuminant2, "calibration_illuminant2"))
    for code, m, name in ((50964, fm1, "forward_matrix1"), (50965, fm2, "forward_matrix2")):
        if m is not None:
            ifd.rational(code, m, signed=True, name=name)
    for code, (ftype, values) in tags.items():
        if ftype in (_RATIONAL, _SRATIONAL):
            ifd.rational(code, values, signed=ftype == _SRATIONAL, name=DNG_TAG_NAMES[code])
        else:
            ifd.add(code, ftype, values)
    blob, _ = ifd.build(8)
    return atomic_write(out, lambda fh: fh.write(b"IIRC" + struct.pack("<I", 8) + blob))


class _RawTag:
    """A parsed IFD entry shaped like a tifffile tag (``value``, ``dtype``) for the tag helpers."""

    def __init__(self, dtype: int, value: Any) -> None:
        self.dtype, self.value = dtype, value


_STRUCT = {1: "B", 2: "s", 3: "H", 4: "I", 5: "I", 6: "b", 7: "B", 8: "h", 9: "i", 10: "i", 11: "f", 12: "d"}
_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def _parse_ifd0(data: bytes, where: str) -> dict[int, _RawTag]:
    """Parse the first IFD of a DCP into {code: tag}; the byte order is in ``tags[0]`` ("<" or ">")."""
    if data[:4] == b"IIRC":
        end = "<"
    elif data[:4] == b"MMCR":
        end = ">"
    else:
        raise RawReadError(f"read_dcp: {where} is not a DCP camera profile (header {data[:4]!r}, expected b'IIRC')")
    try:
        (offset,) = struct.unpack_from(end + "I", data, 4)
        (count,) = struct.unpack_from(end + "H", data, offset)
        tags: dict[int, _RawTag] = {}
        for k in range(count):
            code, ftype, n, inline = struct.unpack_from(end + "HHI4s", data, offset + 2 + 12 * k)
            if ftype not in _SIZE:
                continue
            size = _SIZE[ftype] * n
            raw = inline[:size] if size <= 4 else data[struct.unpack(end + "I", inline)[0]:][:size]
            if len(raw) < size:
                raise struct.error("truncated value")
            if ftype == 2:
                value: Any = raw.split(b"\0", 1)[0].decode("latin-1")
            else:
                per = 2 if ftype in (5, 10) else 1
                value = struct.unpack(end + _STRUCT[ftype] * (n * per), raw)
            tags[code] = _RawTag(ftype, value)
        tags[0] = _RawTag(2, end)
    except struct.error:
        raise RawReadError(f"read_dcp: {where} is truncated or damaged; copy the profile again") from None
    return tags


def read_dcp(path: str | os.PathLike) -> dict[str, Any]:
    """Read a DCP camera profile into the keys :func:`read_dng_tags` uses for the same tags.

    Returns
    -------
    dict with ``color_matrix1/2``, ``calibration_illuminant1/2``,
    ``forward_matrix1/2``, ``baseline_exposure_offset``,
    ``default_black_render``, the ``hue_sat_map_*`` / ``look_table_*``
    tables, ``profile_tone_curve``, ``unique_camera_model``,
    ``profile_name`` (each when present) and ``source``.

    Raises
    ------
    RawReadError : not a DCP (header other than ``IIRC`` / ``MMCR``), truncated,
        or without ColorMatrix1.

    References
    ----------
    Adobe, *DNG Specification* 1.6, chapter 6; DNG SDK ``dng_camera_profile``.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RawReadError(f"read_dcp: cannot read {str(p)!r} ({exc.strerror or exc})") from None
    tags = _parse_ifd0(data, repr(str(p)))
    out: dict[str, Any] = {"source": str(p)}
    for key, code in (("color_matrix1", 50721), ("color_matrix2", 50722),
                      ("forward_matrix1", 50964), ("forward_matrix2", 50965)):
        m = _matrix(tags.get(code))
        if m is not None:
            out[key] = m
    for key, code in (("calibration_illuminant1", 50778), ("calibration_illuminant2", 50779)):
        v = _scalar(tags.get(code))
        if v is not None:
            out[key] = int(v)
    for key, code in (("unique_camera_model", 50708), ("profile_name", 50936)):
        tag = tags.get(code)
        if tag is not None and isinstance(tag.value, str):
            out[key] = tag.value
    out.update({k: v for k, v in _profile_tag_values(tags, tags[0].value).items()
                if k not in ("as_shot_white_xy", "shadow_scale", "camera_calibration3")})
    if "color_matrix1" not in out:
        raise RawReadError(f"read_dcp: {str(p)!r} holds no ColorMatrix1; it is not a usable camera profile")
    return out


register_profile_reader(".dcp", read_dcp)
