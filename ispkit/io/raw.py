"""Read camera RAW files into RAW_MOSAIC frames, and build frames from arrays.

:func:`read_raw` wraps rawpy/LibRaw for every 2×2 Bayer format LibRaw reads
(DNG, NEF, CR2/CR3, ARW, ORF, RW2, PEF, RAF Bayer…) and fills
:class:`~ispkit.frame.CaptureMetadata` from LibRaw and, for TIFF-based files,
from the DNG/EXIF tags. :func:`from_array` and :func:`load_bayer_raw` build
the same kind of frame from in-memory or headerless mosaics.

References
----------
LibRaw 0.22 documentation, "Data structures" (``libraw_colordata_t``:
``cblack``, ``maximum``, ``cam_mul``, ``pre_mul``, ``rgb_cam``, ``cam_xyz``).
Adobe, *Digital Negative (DNG) Specification* 1.6, chapter 6 "Mapping Camera
Color Space to CIE XYZ Space".
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ISPError, ParameterError, RawReadError, UnsupportedRawError, unknown_name
from ..frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame, check_cfa_pattern
from .dng import LIGHT_SOURCES, read_dng_tags
from .sidecar import offset_as_black, sidecar_cam_to_srgb, sidecar_wb_gains, split_white_balance

__all__ = ["read_raw", "from_array", "load_bayer_raw", "describe", "FLIP_TO_ORIENTATION"]

#: LibRaw ``sizes.flip`` → EXIF orientation (inverse of dcraw's "50132467" table).
FLIP_TO_ORIENTATION: dict[int, int] = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}

_WHAT_TO_PASS = ("pass a camera RAW file (DNG, NEF, CR2, CR3, ARW, ORF, RW2, PEF, RAF…); "
                 "for an RGB image use ispkit.io.read_image, for a headerless mosaic "
                 "ispkit.io.load_bayer_raw or ispkit.io.from_array")
_MIN_BITS_PER_PIXEL = 0.25  # below this a file cannot hold its declared raw data
_DAYLIGHT_ILLUMINANTS = (21, 20, 23, 22, 1, 9, 10, 11, 4)  # preference for cam_to_xyz


# ---------------------------------------------------------------------------
# small helpers


def _check_input_file(path: Any, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"{where}: path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise RawReadError(f"{where}: no such file {str(p)!r}; check the path")
    if p.is_dir():
        raise RawReadError(f"{where}: {str(p)!r} is a directory, not a file; pass one RAW file "
                           "(render a folder with `ispkit batch`)")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise RawReadError(f"{where}: cannot open {str(p)!r} ({exc.strerror or exc}); check its permissions") from None
    if size == 0:
        raise RawReadError(f"{where}: {str(p)!r} is empty (0 bytes); the copy or download is incomplete — "
                           "copy the file again")
    return p


def _sniff(path: Path) -> str | None:
    """Name what a non-RAW file looks like from its first bytes, if recognisable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image"
    if head.startswith(b"BM"):
        return "a BMP image"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "a TIFF file without RAW data LibRaw recognises"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return None


def _make_model_fallback(path: Path) -> tuple[str | None, str | None]:
    """Make and model of Fujifilm RAF files (not TIFF-based), else (None, None)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(0x3C)
    except OSError:
        return None, None
    if head.startswith(b"FUJIFILM") and len(head) >= 0x3C:
        model = head[0x1C:0x3C].split(b"\0")[0].decode("ascii", "replace").strip()
        return "FUJIFILM", model or None
    return None, None


def _meaningful(matrix: np.ndarray | None) -> np.ndarray | None:
    """The matrix, or None when it is absent, zero, identity or not finite ("no matrix")."""
    if matrix is None:
        return None
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)) or not np.any(m) or np.allclose(m, np.eye(3)):
        return None
    return m


def _inverse(matrix: np.ndarray | None) -> np.ndarray | None:
    if matrix is None:
        return None
    if not np.isfinite(np.linalg.cond(matrix)) or np.linalg.cond(matrix) > 1e8:
        return None
    return np.linalg.inv(matrix)


def _gains(values: Any, ridx: int, gidx: int, bidx: int) -> np.ndarray | None:
    """RGB multipliers normalised to G = 1, or None when not all positive."""
    try:
        v = np.asarray(values, dtype=np.float64).ravel()
        r, g, b = v[ridx], v[gidx], v[bidx]
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite([r, g, b]).all() and r > 0 and g > 0 and b > 0):
        return None
    return np.array([r / g, 1.0, b / g])


def _noise_pairs(values: Any) -> tuple[tuple[float, float], ...] | None:
    """DNG NoiseProfile (scale, offset) pairs, one per R, G, B (a single pair is shared)."""
    if values is None:
        return None
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0 or flat.size % 2 or not np.all(np.isfinite(flat)):
        return None
    pairs = [(float(flat[i]), float(flat[i + 1])) for i in range(0, flat.size, 2)]
    if len(pairs) == 1:
        pairs = pairs * 3
    return tuple(pairs) if len(pairs) == 3 else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _choose_color_matrix(tags: dict[str, Any]) -> tuple[np.ndarray | None, int | None]:
    """Pick the DNG XYZ→camera matrix closest to daylight and apply CC and AB to it.

    DNG §6: XYZtoCamera = AnalogBalance · CameraCalibration · ColorMatrix.
    """
    options = []
    for k in (1, 2):
        cm = tags.get(f"color_matrix{k}")
        if cm is not None:
            options.append((k, cm, tags.get(f"calibration_illuminant{k}")))
    if not options:
        return None, None

    def rank(opt: tuple[int, np.ndarray, int | None]) -> tuple[int, int]:
        k, _, ill = opt
        pref = _DAYLIGHT_ILLUMINANTS.index(ill) if ill in _DAYLIGHT_ILLUMINANTS else len(_DAYLIGHT_ILLUMINANTS)
        return pref, -k  # ties: ColorMatrix2 (by convention the higher colour temperature)

    k, cm, ill = min(options, key=rank)
    xyz_to_cam = cm
    cc = tags.get(f"camera_calibration{k}")
    if cc is not None:
        xyz_to_cam = cc @ xyz_to_cam
    ab = tags.get("analog_balance")
    if ab is not None:
        xyz_to_cam = np.diag(ab) @ xyz_to_cam
    return xyz_to_cam, ill


def _libraw_maximum(pos_max: np.ndarray, black_by_color: np.ndarray, color_idx: np.ndarray,
                    white: int, thr: float = 0.75) -> dict[str, int]:
    """Reproduce LibRaw's ``data_maximum`` and ``adjust_maximum`` (inline black subtraction).

    LibRaw (``adjust_bl``) moves the smallest per-colour black into a common
    ``black`` and ``maximum = white - black``; the data maximum is taken after
    the whole per-colour black is subtracted (``data_maximum = max(val -
    black - cblack[c])`` over the visible area), and when ``thr·maximum <
    data_maximum < maximum``, ``maximum = data_maximum``.
    """
    common = int(black_by_color.min())
    data_max = 0
    for p in range(4):
        c = int(color_idx.ravel()[p])
        data_max = max(data_max, int(pos_max[p]) - int(black_by_color[c]))
    maximum = int(white) - common
    adjusted = maximum
    if 0 < data_max < maximum and data_max > maximum * thr:
        adjusted = data_max
    return {"black_common": common, "data_maximum": int(data_max), "maximum": int(maximum),
            "maximum_adjusted": int(adjusted), "adjust_maximum_thr": thr}


def _gain_maps(path: Path) -> list[dict[str, Any]]:
    """DNG OpcodeList2 GainMaps as plain dicts for the LensShading stage (empty when none)."""
    from .dng_opcodes import read_gain_maps

    try:
        return [g.to_dict() for g in read_gain_maps(path)]
    except ISPError:
        return []


# ---------------------------------------------------------------------------
# read_raw


def _open_libraw(p: Path, tags: dict[str, Any]) -> Any:
    import rawpy

    raw = rawpy.RawPy()
    try:
        try:
            raw.open_file(str(p))
        except UnicodeEncodeError:  # a path LibRaw cannot take as UTF-8: hand it the bytes
            with open(p, "rb") as fh:
                raw.open_buffer(fh)
    except rawpy.LibRawFileUnsupportedError:
        raw.close()
        shape = tags.get("raw_shape")
        if shape and min(shape) < 22:
            raise UnsupportedRawError(
                f"read_raw: {str(p)!r} holds a {shape[1]}×{shape[0]} raw image; LibRaw refuses images "
                "smaller than 22×22 pixels — load tiny mosaics with ispkit.io.from_array") from None
        kind = _sniff(p)
        what = f"it looks like {kind}" if kind else "LibRaw does not recognise its format"
        raise RawReadError(f"read_raw: {str(p)!r} is not a camera RAW file ({what}); {_WHAT_TO_PASS}") from None
    except (rawpy.LibRawError, OSError, RuntimeError, ValueError, MemoryError) as exc:
        raw.close()
        raise RawReadError(
            f"read_raw: LibRaw could not open {str(p)!r} ({type(exc).__name__}: {exc}); the file is "
            f"probably truncated or damaged — copy it again from the camera card; {_WHAT_TO_PASS}") from None
    return raw


def read_raw(path: str | os.PathLike) -> Frame:
    """Read a 2×2 Bayer camera RAW file into a RAW_MOSAIC frame.

    Parameters
    ----------
    path : a RAW file LibRaw reads (DNG, NEF, CR2, CR3, ARW, ORF, RW2, PEF, RAF…).

    Returns
    -------
    Frame
        RAW_MOSAIC, the visible area (LibRaw ``raw_image_visible``) as float32
        raw counts — not black-subtracted (``BlackLevel`` does that) — with
        ``meta`` filled from LibRaw and the DNG/EXIF tags.

    Raises
    ------
    RawReadError
        Missing, empty, truncated, header-only or non-RAW file.
    UnsupportedRawError
        X-Trans, Foveon / linear DNG / film-scan RGB data, monochrome sensors,
        non-RGB (CMYG, RGBE) filters.

    Notes
    -----
    RAW_MOSAIC, H×W float32, raw counts in [0, white_level]. ``black_level``
    is per 2×2 position (LibRaw ``black_level_per_channel`` mapped through the
    CFA); ``wb_gains`` from ``camera_whitebalance`` (else daylight) with G = 1
    — None for a DNG whose white balance is AsShotWhiteXY (kept in
    ``extra["dng"]``; the white-balance stages take the neutral from it);
    ``cam_to_srgb`` is LibRaw's ``rgb_cam``; ``cam_to_xyz`` is the inverse of
    LibRaw's ``cam_xyz`` or, for DNGs, of AB·CC·ColorMatrix for the
    most daylight-like calibration illuminant. DNG LinearizationTables are
    applied by LibRaw (kept in ``extra["dng"]``, not in
    ``meta.linearization_table``). ``extra["libraw"]`` holds what a
    LibRaw-mirroring pipeline needs (raw ``cam_mul``, ``pre_mul``, maxima).

    References
    ----------
    LibRaw 0.22, ``LibRaw::adjust_bl``, ``copy_bayer``, ``adjust_maximum``.
    Adobe DNG Specification 1.6, chapter 6.
    """
    p = _check_input_file(path, "read_raw")
    tags = _check_before_decoding(p)
    lr = _decode(p, tags)
    wb, wb_source = _white_balance(lr, tags)
    colour = _colour(lr, tags)
    extra = _extra(p, tags, lr, wb_source, colour.xyz_source)
    iso, exposure, make, model = _exif(p, tags, lr.other)
    meta = CaptureMetadata(
        black_level=lr.black, white_level=float(lr.white), cfa_pattern=lr.letters, wb_gains=wb,
        cam_to_xyz=colour.cam_to_xyz, cam_to_srgb=colour.cam_to_srgb,
        noise_profile=_noise_pairs(tags.get("noise_profile")) if tags.get("is_dng") else None,
        iso=iso, exposure_time=exposure, make=make, model=model,
        orientation=FLIP_TO_ORIENTATION.get(int(lr.sizes.flip), 1), source=str(p), extra=extra,
        **colour.fields,
    )
    return Frame(data=lr.data, domain=Domain.RAW_MOSAIC, meta=meta)


# -- read_raw, step by step ---------------------------------------------------

@dataclass(frozen=True)
class _LibRawRead:
    """What :func:`read_raw` takes from LibRaw (the handle is closed by then)."""

    data: np.ndarray            # visible mosaic, float32 counts
    pos_max: np.ndarray         # maximum per 2×2 position
    blpc: np.ndarray            # black_level_per_channel (LibRaw colour order)
    black: np.ndarray           # black per 2×2 position
    white: int
    cam_white: Any
    cam_mul: list[float]
    pre_mul: list[float]
    rgb_cam_full: np.ndarray
    cam_xyz_full: np.ndarray
    other: Any
    num_colors: int
    desc: str                   # LibRaw colour letters, e.g. "RGBG"
    color_idx: np.ndarray       # 2×2 LibRaw colour index of the visible area
    letters: str                # CFA name read from the top-left pixel
    pattern: np.ndarray
    sizes: Any


@dataclass(frozen=True)
class _Colour:
    cam_to_srgb: np.ndarray | None
    cam_to_xyz: np.ndarray | None
    xyz_source: str | None
    fields: dict[str, Any]      # DNG colour tags for CaptureMetadata


def _check_before_decoding(p: Path) -> dict[str, Any]:
    """Step 1: the file's DNG/TIFF tags, after refusing truncated files and headerless mosaics."""
    size = p.stat().st_size
    tags = read_dng_tags(p)
    data_end = int(tags.get("data_end", 0) or 0)
    if data_end > size:
        raise RawReadError(
            f"read_raw: {str(p)!r} is truncated: its image data should run to byte {data_end} but the file "
            f"has {size} bytes (a header-only sample or an interrupted copy); copy the full file again")
    if p.suffix.lower() in (".raw", ".bin") and not tags and _find_sidecar(p) is not None:
        raise RawReadError(
            f"read_raw: {str(p)!r} is a headerless mosaic with a JSON sidecar ({_find_sidecar(p).name}); "
            "LibRaw would only guess a camera from its file size and misread it — load it with "
            "ispkit.io.load_bayer_raw(path) instead")
    return tags


def _decode(p: Path, tags: dict[str, Any]) -> _LibRawRead:
    """Step 2: open the file with LibRaw, check it is a 2×2 Bayer RAW and read its fields."""
    raw = _open_libraw(p, tags)
    with raw:
        _check_declared_size(p, raw.sizes, tags)
        _unpack_bayer(p, raw, tags)
        pattern, desc, color_idx, letters = _bayer_layout(p, raw)
        fields = _libraw_fields(p, raw)
        sizes = raw.sizes
    data = fields.pop("data")
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise RawReadError(f"read_raw: {str(p)!r} has a visible area of {data.shape[1]}×{data.shape[0]} "
                           "pixels, too small for a 2×2 Bayer mosaic; the file is damaged")
    black = fields["blpc"][color_idx].astype(np.float64).ravel()
    if not fields["white"] > black.max():
        raise RawReadError(f"read_raw: {str(p)!r} reports white level {fields['white']} not above its black "
                           f"levels {black.tolist()}; the metadata is damaged")
    return _LibRawRead(data=data, black=black, desc=desc, color_idx=color_idx, letters=letters,
                       pattern=pattern, sizes=sizes, **fields)


def _check_declared_size(p: Path, s: Any, tags: dict[str, Any]) -> None:
    """Refuse empty or header-only files and linear (demosaiced) DNGs before unpacking."""
    size = p.stat().st_size
    npix = int(s.raw_height) * int(s.raw_width)
    if npix == 0:
        raise RawReadError(f"read_raw: {str(p)!r} declares an empty image ({s.raw_width}×{s.raw_height}); "
                           f"it is damaged or not a RAW file; {_WHAT_TO_PASS}")
    if size * 8 < _MIN_BITS_PER_PIXEL * npix:
        raise RawReadError(
            f"read_raw: {str(p)!r} has {size} bytes, too few for its declared "
            f"{s.raw_width}×{s.raw_height} sensor (under {_MIN_BITS_PER_PIXEL} bit per pixel): it holds "
            "only the header (a metadata sample) or was cut short; use the complete RAW file")
    if tags.get("is_dng") and tags.get("photometric") == 34892 and tags.get("samples_per_pixel") == 1:
        raise UnsupportedRawError(
            f"read_raw: {str(p)!r} is a monochrome DNG (LinearRaw, 1 sample per pixel, no colour "
            "filter); ispkit reads 2×2 Bayer colour mosaics only")
    if tags.get("is_dng") and tags.get("photometric") == 34892:
        raise UnsupportedRawError(
            f"read_raw: {str(p)!r} is a linear DNG (already demosaiced, "
            f"{tags.get('samples_per_pixel', 3)} samples per pixel, e.g. Apple ProRAW or a converted "
            "non-Bayer RAW); ispkit reads 2×2 Bayer mosaics only — render it with a DNG/LibRaw "
            "converter instead")


def _unpack_bayer(p: Path, raw: Any, tags: dict[str, Any]) -> None:
    """Decode the image data; refuse data that is not one sample per pixel."""
    import rawpy

    try:
        raw.unpack()
        raw_type = raw.raw_type
    except (rawpy.LibRawError, OSError, RuntimeError, ValueError, MemoryError) as exc:
        raise RawReadError(
            f"read_raw: LibRaw could not decode the image data of {str(p)!r} "
            f"({type(exc).__name__}: {exc}); the file is truncated or damaged — copy it again") from None
    if raw_type != rawpy.RawType.Flat:
        try:
            channels = int(raw.raw_image.shape[-1])
        except Exception:
            channels = 3
        kind = ("a linear (demosaiced) DNG" if tags.get("is_dng")
                else "full-colour data such as a film scan, Foveon (Sigma) or sRAW/mRAW file")
        raise UnsupportedRawError(
            f"read_raw: {str(p)!r} is not a colour-filter mosaic: LibRaw decoded {channels} samples per "
            f"pixel ({kind}); ispkit reads 2×2 Bayer RAWs only")


def _bayer_layout(p: Path, raw: Any) -> tuple[np.ndarray, str, np.ndarray, str]:
    """(raw_pattern, LibRaw colour letters, 2×2 colour index of the visible area, CFA name)."""
    s = raw.sizes
    try:
        pattern = raw.raw_pattern
    except RuntimeError as exc:  # rawpy raises a RuntimeError subclass for unknown filters
        raise UnsupportedRawError(f"read_raw: {str(p)!r} has a colour-filter layout LibRaw reports as "
                                  f"{exc}; ispkit reads 2×2 Bayer RAWs only") from None
    if pattern is None or pattern.shape != (2, 2):
        n = None if pattern is None else pattern.shape[0]
        kind = {None: "no colour filter", 1: "a monochrome sensor (no colour filter)",
                6: "a Fujifilm X-Trans 6×6 colour filter", 16: "a 16×16 (Leaf) colour filter"}.get(
                    n, f"a {n}×{n} colour filter")
        raise UnsupportedRawError(f"read_raw: {str(p)!r} has {kind}; ispkit reads 2×2 Bayer RAWs only "
                                  "(R, G, B in a 2×2 repeat)")
    desc = bytes(raw.color_desc).decode("ascii", "replace")
    color_idx = np.array([[pattern[(s.top_margin + i) % 2, (s.left_margin + j) % 2] for j in (0, 1)]
                          for i in (0, 1)], dtype=np.int64)
    try:
        letters = "".join(desc[c] for c in color_idx.ravel())
    except IndexError:
        letters = "?"
    if letters not in CFA_PATTERNS:
        raise UnsupportedRawError(
            f"read_raw: {str(p)!r} has a {letters!r} colour-filter block (LibRaw colours {desc!r}); "
            "ispkit reads R/G/B Bayer layouts only (RGGB, BGGR, GRBG, GBRG)")
    return pattern, desc, color_idx, letters


def _libraw_fields(p: Path, raw: Any) -> dict[str, Any]:
    """Step 3: the visible mosaic as float32 counts and the LibRaw fields ispkit maps."""
    import rawpy

    try:
        visible = raw.raw_image_visible
        if np.issubdtype(visible.dtype, np.unsignedinteger) and visible.ndim == 2 and visible.shape[1] > 1:
            from ._convert import mosaic_to_float32
            data, pos_max = mosaic_to_float32(visible)
        else:
            data = np.asarray(visible, dtype=np.float32)
            pos_max = np.array([int(visible[i::2, j::2].max()) if visible[i::2, j::2].size else 0
                                for i in (0, 1) for j in (0, 1)])
        return {
            "data": data, "pos_max": pos_max,
            "blpc": np.asarray(raw.black_level_per_channel, dtype=np.int64),
            "white": int(raw.white_level),
            "cam_white": raw.camera_white_level_per_channel,
            "cam_mul": [float(v) for v in raw.camera_whitebalance],
            "pre_mul": [float(v) for v in raw.daylight_whitebalance],
            "rgb_cam_full": np.asarray(raw.color_matrix, dtype=np.float64),
            "cam_xyz_full": np.asarray(raw.rgb_xyz_matrix, dtype=np.float64),
            "other": raw.other,
            "num_colors": int(raw.num_colors),
        }
    except (rawpy.LibRawError, OSError, RuntimeError, ValueError, MemoryError) as exc:
        raise RawReadError(f"read_raw: LibRaw failed reading {str(p)!r} ({type(exc).__name__}: {exc}); "
                           "the file is damaged — copy it again") from None


def _rgb_columns(lr: _LibRawRead) -> list[int]:
    return [lr.desc.index("R"), lr.desc.index("G"), lr.desc.index("B")]


def _white_balance(lr: _LibRawRead, tags: dict[str, Any]) -> tuple[np.ndarray | None, str | None]:
    """Step 4a: as-shot gains (G = 1) and where they came from."""
    ridx, gidx, bidx = _rgb_columns(lr)
    wb = _gains(lr.cam_mul, ridx, gidx, bidx)
    if wb is not None:
        return wb, "camera_whitebalance"
    if tags.get("is_dng") and "as_shot_white_xy" in tags and "as_shot_neutral" not in tags:
        # LibRaw ignores AsShotWhiteXY; the WB stages derive the neutral from it (DNG 1.6 ch. 6)
        return None, "dng_as_shot_white_xy"
    wb = _gains(lr.pre_mul, ridx, gidx, bidx)
    return wb, "daylight_whitebalance" if wb is not None else None


def _colour(lr: _LibRawRead, tags: dict[str, Any]) -> _Colour:
    """Step 4b: camera → sRGB / XYZ matrices, the file's own ColorMatrix winning for DNGs."""
    cols = _rgb_columns(lr)
    cam_to_srgb = _meaningful(lr.rgb_cam_full[:3][:, cols])
    libraw_xyz_to_cam = _meaningful(lr.cam_xyz_full[cols])
    cam_to_xyz = _inverse(libraw_xyz_to_cam)
    xyz_source = "libraw_cam_xyz" if cam_to_xyz is not None else None
    fields: dict[str, Any] = {}
    if tags.get("is_dng"):
        for key in ("color_matrix1", "color_matrix2", "calibration_illuminant1", "calibration_illuminant2",
                    "forward_matrix1", "forward_matrix2", "camera_calibration1", "camera_calibration2",
                    "analog_balance"):
            if tags.get(key) is not None:
                fields[key] = tags[key]
        # the file's own ColorMatrix wins: LibRaw's cam_xyz may come from its built-in table for
        # the make/model, while its rgb_cam (cam_to_srgb) follows the DNG tags
        xyz_to_cam, ill = _choose_color_matrix(tags)
        dng_cam_to_xyz = _inverse(_meaningful(xyz_to_cam))
        if dng_cam_to_xyz is not None:
            cam_to_xyz, xyz_source = dng_cam_to_xyz, f"dng_color_matrix_illuminant_{ill}"
    elif libraw_xyz_to_cam is not None:
        # LibRaw's built-in (Adobe) matrices are the D65 ColorMatrix2 of DNG Converter
        fields.update(color_matrix1=libraw_xyz_to_cam, calibration_illuminant1=21)
    return _Colour(cam_to_srgb, cam_to_xyz, xyz_source, fields)


def _exif(p: Path, tags: dict[str, Any], other: Any) -> tuple[Any, Any, Any, Any]:
    """Step 4c: ISO, exposure time, make and model (LibRaw first, then the tags, then the file name)."""
    iso = float(other.iso_speed) if other.iso_speed and other.iso_speed > 0 else tags.get("iso")
    exposure = (float(other.shutter_speed) if other.shutter_speed and other.shutter_speed > 0
                else tags.get("exposure_time"))
    make, model = tags.get("make"), tags.get("model")
    if make is None and model is None:
        make, model = _make_model_fallback(p)
    if model is None and tags.get("unique_camera_model"):
        model = tags["unique_camera_model"]
    return iso, exposure, make, model


def _extra(p: Path, tags: dict[str, Any], lr: _LibRawRead, wb_source: str | None,
           xyz_source: str | None) -> dict[str, Any]:
    """Step 5: ``meta.extra`` — LibRaw's own numbers and the DNG tags CaptureMetadata has no field for."""
    s = lr.sizes
    libraw_extra = {
        "camera_whitebalance": lr.cam_mul,
        "daylight_whitebalance": lr.pre_mul,
        "black_level_per_channel": lr.blpc.tolist(),
        "white_level": lr.white,
        "camera_white_level_per_channel": list(lr.cam_white) if lr.cam_white is not None else None,
        "raw_maximum": int(lr.pos_max.max()),
        "max_per_position": lr.pos_max.tolist(),
        "color_desc": lr.desc,
        "num_colors": lr.num_colors,
        "color_indices": lr.color_idx.tolist(),
        "raw_pattern": np.asarray(lr.pattern).tolist(),
        "color_matrix": lr.rgb_cam_full.tolist(),
        "rgb_xyz_matrix": lr.cam_xyz_full.tolist(),
        "flip": int(s.flip),
        "sizes": {k: (float(v) if isinstance(v, float) else int(v)) for k, v in s._asdict().items()},
        "wb_source": wb_source,
        "cam_to_xyz_source": xyz_source,
    }
    libraw_extra.update(_libraw_maximum(lr.pos_max, lr.blpc, lr.color_idx, lr.white))
    extra: dict[str, Any] = {"libraw": libraw_extra, "reader": "rawpy " + _rawpy_version()}
    if lr.cam_white is not None:
        extra["camera_white_level_per_channel"] = [int(v) for v in lr.cam_white]
    if tags.get("is_dng"):
        extra.update(_dng_extra(p, tags))
    return extra


_DNG_EXTRA_KEYS = (
    "as_shot_neutral", "baseline_exposure", "black_level", "black_level_repeat_dim",
    "white_level", "active_area", "default_crop_origin", "default_crop_size",
    "unique_camera_model", "cfa_pattern", "orientation", "noise_profile",
    "black_level_delta_h", "black_level_delta_v", "as_shot_white_xy",
    "baseline_exposure_offset", "default_black_render", "shadow_scale", "hue_sat_map_dims",
    "hue_sat_map_encoding", "hue_sat_map_data1", "hue_sat_map_data2", "look_table_dims",
    "look_table_data", "look_table_encoding", "profile_tone_curve",
    # DNG 1.6 third calibration and custom illuminants (CaptureMetadata has fields for two)
    "color_matrix3", "calibration_illuminant3", "camera_calibration3", "forward_matrix3",
    "reduction_matrix3", "hue_sat_map_data3", "illuminant_data1", "illuminant_data2",
    "illuminant_data3",
)


def _dng_extra(p: Path, tags: dict[str, Any]) -> dict[str, Any]:
    """The DNG part of ``meta.extra``: ``extra["dng"]`` plus exposure, black pattern and gain maps."""
    dng = {key: _jsonable(tags[key]) for key in _DNG_EXTRA_KEYS if key in tags}
    if "linearization_table" in tags:
        dng["linearization_table"] = _jsonable(tags["linearization_table"])
        dng["linearization_table_applied_by_libraw"] = True
    extra: dict[str, Any] = {"dng": dng}
    if "baseline_exposure" in tags:
        extra["baseline_exposure"] = float(tags["baseline_exposure"])
    if "baseline_exposure_offset" in tags:  # the profile's EV on top of BaselineExposure (DNG 1.4)
        extra["baseline_exposure_offset"] = float(tags["baseline_exposure_offset"])
    if "black_level_repeat_dim" in tags:
        extra["black_level_repeat_dim"] = list(tags["black_level_repeat_dim"])
        rows, cols = (int(v) for v in tags["black_level_repeat_dim"][:2])
        levels = np.asarray(tags.get("black_level", ()), dtype=np.float64).ravel()
        if (rows, cols) not in ((1, 1), (2, 2), (1, 2), (2, 1)) and levels.size == rows * cols:
            # a repeat pattern larger than the CFA block: BlackLevel applies it tile by tile
            extra["black_level_pattern"] = levels.reshape(rows, cols).tolist()
    gain_maps = _gain_maps(p)
    if gain_maps:
        extra["gain_maps"] = gain_maps
    return extra


def _rawpy_version() -> str:
    import rawpy

    return str(getattr(rawpy, "__version__", "?"))


# ---------------------------------------------------------------------------
# from_array / load_bayer_raw


_META_FIELDS = {
    "cam_to_srgb", "color_matrix1", "color_matrix2", "calibration_illuminant1", "calibration_illuminant2",
    "forward_matrix1", "forward_matrix2", "camera_calibration1", "camera_calibration2", "analog_balance",
    "linearization_table", "noise_profile", "iso", "exposure_time", "make", "model", "orientation",
    "source", "illuminant_rgb", "white_point", "color_space", "device", "extra",
}


def from_array(mosaic: Any, cfa_pattern: str = "RGGB", black_level: Any = 0, white_level: float | None = None,
               wb_gains: Any = None, cam_to_xyz: Any = None, **meta: Any) -> Frame:
    """Build a RAW_MOSAIC frame from an in-memory H×W Bayer mosaic (copied).

    Parameters
    ----------
    mosaic : H×W array of raw counts (any real dtype; even or odd sizes).
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG", read from the top-left pixel.
    black_level : scalar or (4,) per 2×2 position in raster order.
    white_level : saturation level; default the dtype maximum for integer
        input (65535 for uint16) or 1.0 for float input.
    wb_gains : optional (3,) RGB multipliers (G = 1).
    cam_to_xyz : optional (3, 3) camera RGB → XYZ.
    **meta : any other :class:`~ispkit.frame.CaptureMetadata` field
        (``iso``, ``color_matrix1``, ``noise_profile``, ``extra``…).

    Notes
    -----
    RAW_MOSAIC, H×W float32 raw counts (values kept as given, never rescaled).
    """
    arr = np.asarray(mosaic)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"from_array: mosaic must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        hint = " (an RGB image? a RAW_MOSAIC holds one value per pixel)" if arr.ndim == 3 else ""
        raise InputError(f"from_array: mosaic must be 2-D (H×W), got shape {arr.shape}{hint}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"from_array: mosaic must be at least 2×2 (one CFA block), got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InputError(f"from_array: mosaic holds {bad} NaN/inf values; replace them (e.g. np.nan_to_num) first")
    pattern = check_cfa_pattern(cfa_pattern, "from_array")
    if white_level is None:
        white_level = float(np.iinfo(arr.dtype).max) if np.issubdtype(arr.dtype, np.integer) else 1.0
    try:
        white = float(white_level)
        black = np.asarray(black_level, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ParameterError(f"from_array: black_level must be a number or 4 numbers and white_level a number, "
                             f"got {black_level!r} and {white_level!r}") from None
    if black.size not in (1, 4):
        raise ParameterError(f"from_array: black_level must be a scalar or 4 values (2×2 raster order), "
                             f"got {black.size} values")
    black = np.broadcast_to(black, (4,)).copy()
    if not (np.isfinite(white) and np.all(np.isfinite(black))):
        raise ParameterError(f"from_array: black/white levels must be finite, got {black.tolist()} / {white_level!r}")
    if not white > black.max():
        raise ParameterError(f"from_array: white_level {white:g} must exceed every black level {black.tolist()}")
    unknown = sorted(set(meta) - _META_FIELDS)
    if unknown:
        raise unknown_name("metadata field", unknown[0], _META_FIELDS, "from_array")
    data = np.array(arr, dtype=np.float32, copy=True)
    try:
        md = CaptureMetadata(black_level=black, white_level=white, cfa_pattern=pattern, wb_gains=wb_gains,
                             cam_to_xyz=cam_to_xyz, **meta)
    except TypeError as exc:
        raise ParameterError(f"from_array: bad metadata ({exc})") from None
    return Frame(data=data, domain=Domain.RAW_MOSAIC, meta=md)


def _find_sidecar(path: Path) -> Path | None:
    """The JSON beside ``path`` with the longest matching stem prefix (a_b_c.raw → a_b_c.json, a_b.json…)."""
    parts = path.stem.split("_")
    for n in range(len(parts), 0, -1):
        cand = path.with_name("_".join(parts[:n]) + ".json")
        if cand.is_file():
            return cand
    return None


def _cfa_from_text(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    m = re.match(r"\s*([RGB]{4})\b", text.upper())
    return m.group(1) if m and m.group(1) in CFA_PATTERNS else None


def _cfa_from_name(path: Path) -> str | None:
    for token in reversed(path.stem.split("_")):
        if token.upper() in CFA_PATTERNS:
            return token.upper()
    return None


def _first_matrix(side: dict[str, Any], pattern: str) -> tuple[str, np.ndarray] | None:
    for key, value in side.items():
        if re.search(pattern, key, flags=re.IGNORECASE):
            try:
                m = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if m.shape == (3, 3) and np.all(np.isfinite(m)):
                return key, m
    return None


def load_bayer_raw(path: str | os.PathLike, json_sidecar: str | os.PathLike | None = None) -> Frame:
    """Load a headerless uint16 ``.raw`` or 16-bit PNG Bayer mosaic with its JSON sidecar.

    Parameters
    ----------
    path : little-endian uint16 row-major ``.raw`` file, or a greyscale 8/16-bit PNG.
    json_sidecar : the JSON describing it; default the JSON beside it whose
        name is the longest prefix of the file's (``a_b_rggb.raw`` → ``a_b_rggb.json``
        or ``a_b.json``).

    Notes
    -----
    RAW_MOSAIC, H×W float32 raw counts. Sidecar keys read: ``width``,
    ``height``, ``black_level`` (scalar or 4 in 2×2 raster order),
    ``white_level``, ``cfa``/``cfa_pattern`` (or ``cfa_by_file`` keyed by this
    file's name, else a ``_rggb``-style token in the file name),
    ``wb_gains``/``wb_gains_R_G_B`` or an openISP ``…awb_gains`` table, a key
    naming ``ColorMatrix1/2`` (XYZ→camera; ColorMatrix2 taken as D65), else
    camera→sRGB calibrations keyed by colour temperature (FCam/Halide: white
    balance split out, an offset column folded into the black level; see
    :mod:`ispkit.io.sidecar`). The whole sidecar is kept in ``extra["sidecar"]``.
    """
    p = _check_input_file(path, "load_bayer_raw")
    side, side_path = _read_sidecar(p, json_sidecar)
    mosaic = _read_mosaic(p, side, side_path)
    pattern = _sidecar_cfa_pattern(p, side)
    black = side.get("black_level", 0)
    white = side.get("white_level")
    if white is None:
        bits = side.get("bit_depth")
        white = (2 ** int(bits) - 1) if bits else float(np.iinfo(mosaic.dtype).max)
    wb = sidecar_wb_gains(side, str(side_path))
    fields: dict[str, Any] = {}
    cm2 = _first_matrix(side, r"color_?matrix_?2|ColorMatrix2")
    cm1 = _first_matrix(side, r"color_?matrix_?1|ColorMatrix1")
    cam_to_xyz = None
    if cm1 is not None:
        fields["color_matrix1"] = cm1[1]
    if cm2 is not None:
        fields["color_matrix2"] = cm2[1]
        fields["calibration_illuminant2"] = 21
        cam_to_xyz = _inverse(cm2[1])
    elif cm1 is not None:
        cam_to_xyz = _inverse(cm1[1])
    extra: dict[str, Any] = {"sidecar": side, "sidecar_path": str(side_path)}
    if cm1 is None and cm2 is None:
        black, wb = _apply_cam_to_srgb(side, str(side_path), black, wb, pattern, fields, extra)
    make = side.get("make")
    model = side.get("model") or side.get("camera_name")
    return from_array(mosaic, cfa_pattern=pattern, black_level=black, white_level=white, wb_gains=wb,
                      cam_to_xyz=cam_to_xyz, source=str(p),
                      make=make if isinstance(make, str) else None,
                      model=model if isinstance(model, str) else None,
                      extra=extra, **fields)


def _read_sidecar(p: Path, json_sidecar: str | os.PathLike | None) -> tuple[dict, Path]:
    """The JSON object describing a headerless mosaic (given, or found beside it) and its path."""
    side_path = Path(os.fspath(json_sidecar)) if json_sidecar is not None else _find_sidecar(p)
    if side_path is None:
        raise RawReadError(f"load_bayer_raw: no JSON sidecar found beside {str(p)!r}; pass json_sidecar=... "
                           "(a JSON with width, height, black_level, white_level and the CFA pattern)")
    try:
        side = json.loads(Path(side_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RawReadError(f"load_bayer_raw: cannot read the JSON sidecar {str(side_path)!r} ({exc})") from None
    if not isinstance(side, dict):
        raise RawReadError(f"load_bayer_raw: sidecar {str(side_path)!r} must hold a JSON object")
    return side, Path(side_path)


def _read_mosaic(p: Path, side: dict, side_path: Path) -> np.ndarray:
    """The H×W integer mosaic of a grey PNG or a headerless little-endian uint16 file, checked against its sidecar."""
    if p.suffix.lower() == ".png":
        import cv2

        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise RawReadError(f"load_bayer_raw: OpenCV cannot decode {str(p)!r} as a PNG; the file is damaged")
        if img.ndim != 2:
            raise RawReadError(f"load_bayer_raw: {str(p)!r} has shape {img.shape}; a Bayer PNG must be one "
                               "grey channel")
        if "width" in side and "height" in side and img.shape != (int(side["height"]), int(side["width"])):
            raise RawReadError(f"load_bayer_raw: {str(p)!r} is {img.shape[1]}×{img.shape[0]} but its "
                               f"sidecar says {side['width']}×{side['height']}")
        return img
    try:
        width, height = int(side["width"]), int(side["height"])
    except (KeyError, TypeError, ValueError):
        raise RawReadError(f"load_bayer_raw: sidecar {str(side_path)!r} must give integer 'width' and "
                           "'height' for a headerless file") from None
    size = p.stat().st_size
    if size != width * height * 2:
        raise RawReadError(
            f"load_bayer_raw: {str(p)!r} has {size} bytes but {width}×{height} uint16 needs "
            f"{width * height * 2}; the file is truncated or the sidecar does not belong to it")
    return np.fromfile(p, dtype="<u2").reshape(height, width)


def _sidecar_cfa_pattern(p: Path, side: dict) -> str:
    """The CFA pattern from the sidecar (``cfa_pattern``, ``cfa``, ``cfa_by_file``) or the file name."""
    pattern = _cfa_from_text(side.get("cfa_pattern")) or _cfa_from_text(side.get("cfa"))
    by_file = side.get("cfa_by_file")
    if pattern is None and isinstance(by_file, dict):
        pattern = _cfa_from_text(by_file.get(p.name))
    if pattern is None:
        pattern = _cfa_from_name(p)
    if pattern is None:
        raise RawReadError(f"load_bayer_raw: cannot tell the CFA pattern of {str(p)!r}: its sidecar has no "
                           "'cfa' entry for it and the file name has no _rggb/_bggr/_grbg/_gbrg token; "
                           "use from_array(..., cfa_pattern=...)")
    return pattern


def _apply_cam_to_srgb(side: dict[str, Any], where: str, black: Any, wb: np.ndarray | None, pattern: str,
                       fields: dict[str, Any], extra: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
    """Use colour-temperature-keyed camera → sRGB calibrations (FCam/Halide) when the sidecar has them."""
    found = sidecar_cam_to_srgb(side, where)
    if found is None:
        return black, wb
    matrix, offset, cct = found
    gains, balanced = split_white_balance(matrix)
    fields["cam_to_srgb"] = balanced
    extra["cam_to_srgb_cct"] = cct
    if offset is not None:  # M·c + o = M·(c + M⁻¹o): the offset is a black-level shift
        extra["sidecar_black_level"] = black
        black = offset_as_black(offset, matrix, np.broadcast_to(np.asarray(black, np.float64), (4,)), pattern)
    return black, (wb if wb is not None else gains)


# ---------------------------------------------------------------------------
# describe


def describe(frame: Frame) -> dict[str, Any]:
    """Summarise a frame as a JSON-friendly dict (for ``ispkit info``).

    Keys: source, domain, width, height, dtype, value_range, cfa_pattern,
    black_level, white_level, wb_gains, as_shot_neutral, cam_to_xyz,
    cam_to_srgb, color matrices with illuminant names, noise_profile, iso,
    exposure_time, make, model, orientation, extra_keys.
    """
    if not isinstance(frame, Frame):
        raise ParameterError(f"describe: expected a Frame, got {type(frame).__name__}")
    m = frame.meta
    data = frame.data
    value_range = None
    if data.size:
        lo, hi = float(np.min(data)), float(np.max(data))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = data[np.isfinite(data)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (None, None)
        value_range = [lo, hi] if lo is not None else None
    out: dict[str, Any] = {
        "source": m.source,
        "domain": frame.domain.name,
        "width": frame.width,
        "height": frame.height,
        "shape": list(frame.shape),
        "dtype": str(data.dtype),
        "value_range": value_range,
        "cfa_pattern": m.cfa_pattern,
        "black_level": _jsonable(m.black_level),
        "white_level": m.white_level,
        "wb_gains": _jsonable(m.wb_gains),
        "as_shot_neutral": _jsonable(1.0 / m.wb_gains) if m.wb_gains is not None else None,
        "cam_to_xyz": _jsonable(m.cam_to_xyz),
        "cam_to_srgb": _jsonable(m.cam_to_srgb),
        "iso": m.iso,
        "exposure_time": m.exposure_time,
        "make": m.make,
        "model": m.model,
        "orientation": m.orientation,
    }
    for k in (1, 2):
        for key in (f"color_matrix{k}", f"forward_matrix{k}", f"camera_calibration{k}"):
            value = getattr(m, key)
            if value is not None:
                out[key] = _jsonable(value)
        ill = getattr(m, f"calibration_illuminant{k}")
        if ill is not None:
            out[f"calibration_illuminant{k}"] = {"code": ill, "name": LIGHT_SOURCES.get(ill, "Unknown")}
    if m.analog_balance is not None:
        out["analog_balance"] = _jsonable(m.analog_balance)
    if m.noise_profile is not None:
        out["noise_profile"] = [list(pair) for pair in m.noise_profile]
    if m.linearization_table is not None:
        out["linearization_table_entries"] = int(m.linearization_table.size)
    for key in ("color_space", "device"):
        if getattr(m, key) is not None:
            out[key] = getattr(m, key)
    if m.extra:
        out["extra_keys"] = sorted(str(k) for k in m.extra)
        for key in ("baseline_exposure", "baseline_exposure_offset"):
            if key in m.extra:
                out[key] = m.extra[key]
    return out
