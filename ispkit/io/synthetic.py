"""Synthesise a physically modelled RAW capture of a test scene (the bundled demo sample).

ispkit ships no third-party image files. Its demo sample is made at run time
from measured spectra. The scene has five parts:

* a 6×4 ColorChecker on a black frame, using the "ColorChecker N Ohta"
  spectral reflectances from colour-science;
* a zone plate;
* black-and-white line gratings with periods of 2, 3, 4 and 6 px, running
  vertically, horizontally and diagonally;
* small coloured text-like glyphs;
* a neutral ramp that runs past the white patch into clipping, like a
  specular highlight, and a hue ramp of mixed red, yellow, green, cyan, blue
  and magenta patch spectra that fades into neutral grey.

Every pixel is a non-negative mixture of patch reflectance spectra. The
light is a CIE illuminant (D65, A, F2 …) or a correlated colour temperature.
Temperatures of 4000 K and above use CIE daylight, and lower ones a Planckian
radiator. The camera is modelled by real measured spectral sensitivities
(``colour.MSDS_CAMERA_SENSITIVITIES``, by default the NPL measurement of a
Nikon D5100). All spectra are sampled from 400 to 700 nm at 5 nm intervals.
The camera response is Σ reflectance · illuminant · sensitivity, and the
exposure puts the brightest channel of the white patch at 0.7 of full scale.

The full-RGB response is then sampled through the chosen Bayer layout. Shot
noise is drawn as Poisson on photo-electrons. The full well holds 10 000 e⁻
at ISO 100 and scales by 100/ISO. Gaussian read noise follows, 2.5 e⁻ before
the gain and 1.2 DN after it. The counts are offset by the black level,
rounded to integers and clipped at the white level, 2^bit_depth − 1.

The metadata is what a real raw file would carry. The white-balance gains
come from the illuminant's own camera response. The camera→XYZ matrix is a
least-squares fit that keeps the white point exact. It is fitted to the
camera responses and CIE 1931 tristimulus values, under the scene
illuminant, of 273 reflectances: the ColorChecker, the RAW-to-ACES training
set, the CIE and NIST CQS test colours, and the preferred-memory-colour
(PMC) chart. The frame also
carries the matching DNG ColorMatrix1, CalibrationIlluminant1 and
NoiseProfile, the ISO and the exposure time.

The ground truth comes with the frame:

* the ColorChecker's CIE Lab and display sRGB under D65, which is what a
  perfect render shows;
* the interior box of every patch;
* the noise-free full-RGB camera image;
* a perfect display render of the whole scene.

A fixed seed always gives the same capture.

References
----------
McCamy, C. S., Marcus, H., Davidson, J. G. (1976). A color-rendition chart.
*J. Applied Photographic Engineering* 2(3), 95–99.
Ohta, N. ColorChecker spectral reflectances, as distributed by colour-science.
Darrodi, M. M., Finlayson, G., Goodman, T., Mackiewicz, M. (2015). Reference
data set for camera spectral sensitivity estimation. *JOSA A* 32(3), 381–391
(the NPL camera sensitivities).
Adobe, *Digital Negative (DNG) Specification* 1.6 (ColorMatrix,
CalibrationIlluminant, NoiseProfile, BaselineExposure).
Foi, A., Trimeche, M., Katkovnik, V., Egiazarian, K. (2008). Practical
Poissonian-Gaussian noise modeling and fitting for single-image raw-data.
*IEEE TIP* 17(10), 1737–1754.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import ParameterError
from ..frame import CaptureMetadata, Domain, Frame, cfa_color_indices, check_cfa_pattern
from .spectral import NAMED_ILLUMINANTS, WAVELENGTHS
from .spectral import bradford_matrix as _bradford
from .spectral import camera_sensitivities as _camera_sensitivities
from .spectral import fit_white_preserving_matrix as _fit_cam_to_xyz
from .spectral import illuminant_spd as _illuminant_spd
from .spectral import import_colour as _colour
from .spectral import resample as _sample
from .spectral import resolve_illuminant as _resolve_illuminant
from .spectral import spectral_data as _spectral_data

#: Named scene illuminants (:data:`ispkit.io.spectral.NAMED_ILLUMINANTS`).
SYNTHETIC_ILLUMINANTS = NAMED_ILLUMINANTS

__all__ = [
    "SyntheticCapture",
    "synthesize_capture",
    "SYNTHETIC_ILLUMINANTS",
    "WAVELENGTHS",
    "FULL_WELL_ELECTRONS",
    "READ_NOISE_ELECTRONS",
    "READ_NOISE_DN",
    "chart_patch_boxes",
]

#: Full-well capacity in electrons at ISO 100 (scaled by 100 / ISO).
FULL_WELL_ELECTRONS = 10_000.0
#: Gaussian read noise before the ISO gain, in electrons.
READ_NOISE_ELECTRONS = 2.5
#: Gaussian read noise after the ISO gain (ADC, downstream), in DN.
READ_NOISE_DN = 1.2
#: Exposure time (s) of the default exposure at ISO 100.
_BASE_EXPOSURE_TIME = 1.0 / 125.0
_DEFAULT_LEVEL = 0.7

# ColorChecker patch indices (0-based, row-major from "dark skin").
_BLUE, _GREEN, _RED, _YELLOW, _MAGENTA, _CYAN = 12, 13, 14, 15, 16, 17
_WHITE, _NEUTRAL8, _NEUTRAL65, _BLACK = 18, 19, 20, 23
_PURPLISH_BLUE = 7
_FRAME_REFLECTANCE = 0.6   # the chart frame: 0.6 × the black patch spectrum

_MIN_SIZE = (64, 96)


@functools.lru_cache(maxsize=32)
def _colorimetry(camera: str, key: str, cct: float | None) -> dict:
    """Camera and XYZ responses of every chart spectrum plus the fitted colour matrix (cached)."""
    colour = _colour()
    data = _spectral_data()
    sens = _camera_sensitivities(camera)
    spd, name, exif, nominal_cct = _illuminant_spd(key, cct)
    cmfs = data["cmfs"]

    cam_white = spd @ sens
    cam_scale = 1.0 / cam_white.max()
    cam_white = cam_white * cam_scale                  # camera neutral, max = 1
    y_white = spd @ cmfs[:, 1]
    xyz_white = (spd @ cmfs) / y_white                 # illuminant XYZ, Y = 1

    def cam_of(refl: np.ndarray) -> np.ndarray:
        return (refl * spd) @ sens * cam_scale

    def xyz_of(refl: np.ndarray) -> np.ndarray:
        return (refl * spd) @ cmfs / y_white

    cam_to_xyz = _fit_cam_to_xyz(cam_of(data["training"]), xyz_of(data["training"]),
                                 cam_white, xyz_white)
    color_matrix = np.linalg.inv(cam_to_xyz)
    color_matrix /= (color_matrix @ xyz_white).max()   # DNG: illuminant Y=1 → neutral max 1
    cam_to_xyz = np.linalg.inv(color_matrix)

    wb_gains = cam_white[1] / cam_white

    srgb = colour.RGB_COLOURSPACES["sRGB"]
    d65_xyz = colour.xy_to_XYZ(srgb.whitepoint)
    xyz_to_srgb = np.asarray(srgb.matrix_XYZ_to_RGB)
    rgb_cam = xyz_to_srgb @ _bradford(xyz_white, d65_xyz) @ cam_to_xyz @ np.diag(1.0 / wb_gains)
    rgb_cam /= rgb_cam.sum(axis=1, keepdims=True)

    # The truth a perfect render shows: the chart under D65, sRGB-encoded.
    d65_sd = colour.SDS_ILLUMINANTS["D65"]
    d65 = _sample(d65_sd.wavelengths, d65_sd.values, zero_outside=False)
    y65 = d65 @ cmfs[:, 1]
    xyz65_white = (d65 @ cmfs) / y65
    to_srgb = xyz_to_srgb @ _bradford(xyz65_white, d65_xyz)

    chart = data["chart"]
    return {
        "name": name,
        "exif": exif,
        "cct": nominal_cct,
        "cam_table": cam_of(chart),                        # (24, 3), neutral max = 1
        "srgb_table": ((chart * d65) @ cmfs / y65) @ to_srgb.T,  # (24, 3) linear sRGB
        "cam_white": cam_white,
        "xyz_white": xyz_white,
        "wb_gains": wb_gains,
        "cam_to_xyz": cam_to_xyz,
        "color_matrix": color_matrix,
        "cam_to_srgb": rgb_cam,
    }


# -- the scene ---------------------------------------------------------------

def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


# 3×5 glyph bitmaps drawn from a fixed generator: the scene never depends on the noise seed.
_GLYPHS = np.random.default_rng(20_240_601).random((64, 5, 3)) < 0.55


@functools.lru_cache(maxsize=8)
def _build_scene(h: int, w: int):
    """Scene as per-pixel mixtures of up to three chart spectra.

    Returns ``idx`` (3, H, W) uint8 spectrum indices, ``wt`` (3, H, W)
    float32 weights, and the interior boxes of the 24 patches.
    """
    idx = np.zeros((3, h, w), dtype=np.uint8)
    wt = np.zeros((3, h, w), dtype=np.float32)
    idx[0] = _BLACK
    wt[0] = _FRAME_REFLECTANCE

    hc = _even(0.625 * h)
    wc = _even(2.0 * w / 3.0)

    # ColorChecker, 4 rows × 6 columns on the black frame.
    margin = max(1, int(round(0.03 * min(hc, wc))))
    ys = np.linspace(margin, hc - margin, 5).round().astype(int)
    xs = np.linspace(margin, wc - margin, 7).round().astype(int)
    boxes = []
    for r in range(4):
        for c in range(6):
            gy = max(1, int(round(0.1 * (ys[r + 1] - ys[r]))))
            gx = max(1, int(round(0.1 * (xs[c + 1] - xs[c]))))
            y0, y1, x0, x1 = ys[r] + gy, ys[r + 1] - gy, xs[c] + gx, xs[c + 1] - gx
            idx[0, y0:y1, x0:x1] = 6 * r + c
            wt[0, y0:y1, x0:x1] = 1.0
            qy = max(1, int(round(0.15 * (y1 - y0))))
            qx = max(1, int(round(0.15 * (x1 - x0))))
            boxes.append((int(y0 + qy), int(y1 - qy), int(x0 + qx), int(x1 - qx)))

    # Zone plate, local frequency 0.5 cycle/px at the far corners.
    hz = _even(0.6 * hc)
    zh, zw = hz, w - wc
    yy = np.arange(zh, dtype=np.float64)[:, None] - (zh - 1) / 2.0
    xx = np.arange(zw, dtype=np.float64)[None, :] - (zw - 1) / 2.0
    r_max2 = ((zh - 1) / 2.0) ** 2 + ((zw - 1) / 2.0) ** 2
    a = 0.5 + 0.5 * np.cos(np.pi / (2.0 * math.sqrt(r_max2)) * (yy ** 2 + xx ** 2))
    idx[0, :hz, wc:] = _WHITE
    idx[1, :hz, wc:] = _BLACK
    wt[0, :hz, wc:] = a
    wt[1, :hz, wc:] = 1.0 - a

    # Line gratings (left half of the strip under the zone plate): periods 2, 3, 4, 6;
    # vertical, horizontal and diagonal lines.
    bh, bw = hc - hz, (w - wc) // 2
    periods = (2, 3, 4, 6)
    rows = np.linspace(hz, hc, len(periods) + 1).round().astype(int)
    cols = np.linspace(wc, wc + bw, 4).round().astype(int)
    for k, p in enumerate(periods):
        y0, y1 = rows[k], rows[k + 1]
        gy = np.arange(y0, y1)[:, None]
        for j in range(3):
            x0, x1 = cols[j], cols[j + 1]
            gx = np.arange(x0, x1)[None, :]
            coord = (gx + 0 * gy, gy + 0 * gx, gx + gy)[j]
            on = (coord % p) < (p // 2)
            idx[0, y0:y1, x0:x1] = np.where(on, _WHITE, _BLACK)
            wt[0, y0:y1, x0:x1] = 1.0

    # Coloured text-like glyphs on neutral 8 (right half of the strip).
    tx0, tx1 = wc + bw, w
    idx[0, hz:hc, tx0:tx1] = _NEUTRAL8
    wt[0, hz:hc, tx0:tx1] = 1.0
    inks = (_BLACK, _RED, _BLUE, _GREEN, _PURPLISH_BLUE, _MAGENTA)
    y = hz + 2
    n = 0
    for scale in (2, 2, 1, 1, 1, 1, 1, 1, 1, 1):
        gh, gw = 5 * scale, 3 * scale
        if y + gh > hc - 1:
            break
        x = tx0 + 2
        while x + gw <= tx1 - 2:
            glyph = np.repeat(np.repeat(_GLYPHS[n % len(_GLYPHS)], scale, 0), scale, 1)
            region = (slice(y, y + gh), slice(x, x + gw))
            idx[0][region] = np.where(glyph, inks[n % len(inks)], idx[0][region])
            n += 1
            x += gw + scale + 1
        y += gh + 2 * scale + 1

    # Neutral ramp: white patch spectrum × 0 … 1.6 (quadratic, so darks are well sampled).
    hn = _even(0.25 * (h - hc))
    t = (np.arange(w, dtype=np.float64) / (w - 1)) ** 2 * 1.6
    idx[0, hc:hc + hn] = _WHITE
    wt[0, hc:hc + hn] = t[None, :]

    # Hue ramp: red → yellow → green → cyan → blue → magenta → red, fading to neutral 6.5.
    hues = (_RED, _YELLOW, _GREEN, _CYAN, _BLUE, _MAGENTA, _RED)
    y0 = hc + hn
    hh = h - y0
    if hh > 0:
        u = np.arange(w, dtype=np.float64) / w * 6.0
        seg = np.floor(u).astype(int)
        frac = u - seg
        v = np.arange(hh, dtype=np.float64)[:, None] / max(1, hh - 1)
        idx[0, y0:] = np.asarray(hues)[seg][None, :]
        idx[1, y0:] = np.asarray(hues)[seg + 1][None, :]
        idx[2, y0:] = _NEUTRAL65
        wt[0, y0:] = (1.0 - frac)[None, :] * (1.0 - v)
        wt[1, y0:] = frac[None, :] * (1.0 - v)
        wt[2, y0:] = np.broadcast_to(v, (hh, w))

    for arr in (idx, wt):
        arr.setflags(write=False)
    return idx, wt, tuple(boxes)


def chart_patch_boxes(height: int, width: int) -> tuple[tuple[int, int, int, int], ...]:
    """Return the interior ``(y0, y1, x0, x1)`` boxes of the 24 ColorChecker patches in a capture of ``height × width``.

    Notes
    -----
    Row-major from "dark skin", in frame pixels; the same boxes
    :attr:`SyntheticCapture.patch_boxes` reports for a capture of that size.
    """
    return _build_scene(int(height), int(width))[2]


def _render(idx: np.ndarray, wt: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mix the per-spectrum responses ``table`` (24, 3) into an H×W×3 float32 image."""
    table = np.asarray(table, dtype=np.float32)
    h, w = idx.shape[1:]
    out = np.empty((h, w, 3), dtype=np.float32)
    acc = np.empty((h, w), dtype=np.float32)
    tmp = np.empty((h, w), dtype=np.float32)
    for c in range(3):
        lut = np.ascontiguousarray(table[:, c])
        np.multiply(lut[idx[0]], wt[0], out=acc)
        for k in (1, 2):
            np.multiply(lut[idx[k]], wt[k], out=tmp)
            acc += tmp
        out[..., c] = acc
    return out


def _encode_srgb(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB OETF of values clipped to [0, 1] (keeps a float32 input float32)."""
    x = np.clip(linear, 0.0, 1.0)
    a, b, c = (x.dtype.type(v) for v in (1.055, 1.0 / 2.4, 0.055))
    return np.where(x <= 0.0031308, x * x.dtype.type(12.92), a * np.power(x, b) - c)


# -- the capture -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SyntheticCapture:
    """A synthetic RAW capture and the ground truth it was made from.

    Attributes
    ----------
    frame : RAW_MOSAIC :class:`~ispkit.frame.Frame`, H×W float32 integer raw
        counts in [0, white_level], with full capture metadata.
    patch_boxes : 24 ``(y0, y1, x0, x1)`` interior boxes of the ColorChecker
        patches (row-major from "dark skin"), in frame pixel coordinates.
    patch_names : the 24 patch names.
    reference_lab : (24, 3) CIE Lab (D65 white) of ``reference_srgb``: the
        chart under D65 as a perfect sRGB render shows it (sRGB gamut clip
        included; a perfect white reflector is L* = 100).
    reference_srgb : (24, 3) display (encoded) sRGB in [0, 1] of the chart under D65.
    illuminant : the scene illuminant's name ("D65", "A", "F2", "5000K" …).
    illuminant_cct : its correlated colour temperature (K; nominal for named ones).
    illuminant_xyz : (3,) its CIE 1931 XYZ, Y = 1.
    illuminant_rgb : (3,) its camera-native response, green = 1 (= 1 / wb_gains).
    scene_camera_rgb : H×W×3 float32 noise-free camera-native RGB in the
        units ``BlackLevel`` produces (what a CFA-free sensor records, clipped at 1):
        the target of a perfect demosaic.
    reference_image : H×W×3 float32 display sRGB in [0, 1] of the whole
        scene under D65: what a perfect render (perfect colour constancy and
        exposure, no tone curve) shows.
    """

    frame: Frame
    patch_boxes: tuple[tuple[int, int, int, int], ...]
    patch_names: tuple[str, ...]
    reference_lab: np.ndarray
    reference_srgb: np.ndarray
    illuminant: str
    illuminant_cct: float
    illuminant_xyz: np.ndarray
    illuminant_rgb: np.ndarray
    scene_camera_rgb: np.ndarray
    reference_image: np.ndarray


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ParameterError(f"synthesize_capture: {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_positive(name: str, value: object) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ParameterError(f"synthesize_capture: {name} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def synthesize_capture(*, illuminant: Union[str, float] = "D65", camera: str = "Nikon 5100 (NPL)",
                       size: tuple[int, int] = (512, 768), cfa_pattern: str = "RGGB",
                       bit_depth: int = 12, black_level: Union[float, tuple[float, ...]] = 256,
                       exposure: Union[str, float] = "auto", iso: float = 100, noise: bool = True,
                       seed: int = 0) -> SyntheticCapture:
    """Synthesise a noisy Bayer RAW capture of a ColorChecker test scene from measured spectra.

    Parameters
    ----------
    illuminant : a name in :data:`SYNTHETIC_ILLUMINANTS` ("D65", "A", "F2", …)
        or a correlated colour temperature in kelvin (CIE daylight ≥ 4000 K,
        Planckian below).
    camera : a key of ``colour.MSDS_CAMERA_SENSITIVITIES``.
    size : (H, W), both even, at least (64, 96).
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG".
    bit_depth : ADC bits (8–16); the white level is ``2**bit_depth - 1``.
    black_level : raw black level in counts, a scalar or 4 values in 2×2 raster order.
    exposure : "auto" (the brightest channel of the white patch at 0.7 of
        the range white − black) or that level as a number (> 1 overexposes).
    iso : sensitivity; the full well (10 000 e⁻ at ISO 100) shrinks by 100/ISO.
    noise : add shot and read noise (False leaves only quantisation).
    seed : seed of the noise generator; the same seed gives the same capture.

    Returns
    -------
    SyntheticCapture

    Notes
    -----
    Output frame: RAW_MOSAIC, H×W float32 integer counts in [0, 2**bit_depth − 1].
    The noise variance in normalised units ``x = (raw − black) / (white − black)``
    is ``scale·x + offset`` with ``scale = ISO / (100 · 10 000)`` and ``offset``
    from 2.5 e⁻ and 1.2 DN read noise plus 1/12 DN² quantisation
    (``meta.noise_profile``). ``meta.extra["baseline_exposure"]`` is the gain
    in EV (``2**baseline_exposure``) that brings a perfect white reflector to
    Y = 1 through ``meta.cam_to_xyz``.

    References
    ----------
    Adobe, DNG Specification 1.6 (ColorMatrix, NoiseProfile); Foi et al. 2008;
    Darrodi et al. 2015 (NPL camera sensitivities).
    """
    key, cct = _resolve_illuminant(illuminant)
    pattern, (h, w), white_level, black, level, iso_value, seed_value = _check_capture_args(
        camera, cfa_pattern, size, bit_depth, black_level, exposure, iso, seed)
    col = _colorimetry(camera, key, cct)
    idx, wt, boxes = _build_scene(h, w)

    # Noise-free camera response, normalised so the white patch's brightest channel = level.
    exposure_scale = level / col["cam_table"][_WHITE].max()
    scene = _render(idx, wt, col["cam_table"] * exposure_scale)
    span = white_level - black.reshape(2, 2)          # per CFA position
    full_well = FULL_WELL_ELECTRONS * 100.0 / iso_value
    raw = _sensor_counts(scene, pattern, black, span, white_level, full_well, noise, seed_value)
    meta = _capture_metadata(col, camera, pattern, black, white_level, span, full_well, noise, iso_value,
                             level, exposure_scale, seed_value)
    frame = Frame(data=raw, domain=Domain.RAW_MOSAIC, meta=meta)
    arrays = _reference_arrays(col, idx, wt, scene)
    return SyntheticCapture(
        frame=frame,
        patch_boxes=boxes,
        patch_names=tuple(_spectral_data()["names"]),
        illuminant=col["name"],
        illuminant_cct=float(col["cct"]),
        **arrays,
    )


def _check_capture_args(camera: Any, cfa_pattern: Any, size: Any, bit_depth: Any, black_level: Any, exposure: Any,
                        iso: Any, seed: Any) -> tuple:
    """Checked arguments of :func:`synthesize_capture`: (pattern, (h, w), white level, (4,) black,
    exposure level, ISO, seed)."""
    if not isinstance(camera, str):
        raise ParameterError(f"synthesize_capture: camera must be a name, got {camera!r}")
    pattern = check_cfa_pattern(cfa_pattern, "synthesize_capture")
    try:
        h, w = (int(s) for s in size)
        if (h, w) != tuple(size):
            raise TypeError
    except (TypeError, ValueError):
        raise ParameterError(f"synthesize_capture: size must be (H, W) integers, got {size!r}") from None
    if h < _MIN_SIZE[0] or w < _MIN_SIZE[1] or h % 2 or w % 2:
        raise ParameterError(
            f"synthesize_capture: size must be even and at least {_MIN_SIZE}, got {size!r}")
    bits = _check_int("bit_depth", bit_depth, 8, 16)
    white_level = float(2 ** bits - 1)
    black = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,)) \
        if np.size(black_level) in (1, 4) else None
    if black is None or not np.all(np.isfinite(black)) or np.any(black < 0) or np.any(black >= white_level):
        raise ParameterError(
            f"synthesize_capture: black_level must be 1 or 4 values in [0, {white_level:.0f}), "
            f"got {black_level!r}")
    if isinstance(exposure, str):
        if exposure != "auto":
            raise ParameterError(f"synthesize_capture: exposure must be 'auto' or a level > 0, got {exposure!r}")
        level = _DEFAULT_LEVEL
    else:
        level = _check_positive("exposure", exposure)
    return (pattern, (h, w), white_level, black, level, _check_positive("iso", iso),
            _check_int("seed", seed, 0, 2 ** 63 - 1))


def _sensor_counts(scene: np.ndarray, pattern: str, black: np.ndarray, span: np.ndarray, white_level: float,
                   full_well: float, noise: bool, seed: int) -> np.ndarray:
    """Sample the scene through the CFA, add shot (Poisson) and read noise, quantise to raw counts."""
    h, w = scene.shape[:2]
    cfa = cfa_color_indices(pattern)
    signal = np.empty((h, w), dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            signal[dy::2, dx::2] = scene[dy::2, dx::2, cfa[dy, dx]]
    if noise:
        rng = np.random.default_rng(seed)
        np.clip(signal, 0.0, None, out=signal)
        electrons = rng.poisson(signal * np.float32(full_well))
        values = electrons.astype(np.float32)
        del electrons
        values *= np.float32(1.0 / full_well)
        read_dn = math.hypot(READ_NOISE_ELECTRONS * span.mean() / full_well, READ_NOISE_DN)
        read = rng.standard_normal((h, w), dtype=np.float32)
        read *= np.float32(read_dn / span.mean())
        values += read
        del read
    else:
        values = signal
    raw = np.empty((h, w), dtype=np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            sl = (slice(dy, None, 2), slice(dx, None, 2))
            np.multiply(values[sl], np.float32(span[dy, dx]), out=raw[sl])
            raw[sl] += np.float32(black[2 * dy + dx])
    np.rint(raw, out=raw)
    np.clip(raw, 0.0, white_level, out=raw)
    return raw


def _capture_metadata(col: dict, camera: str, pattern: str, black: np.ndarray, white_level: float,
                      span: np.ndarray, full_well: float, noise: bool, iso: float, level: float,
                      exposure_scale: float, seed: int) -> CaptureMetadata:
    """The capture's metadata: levels, colour calibration, noise profile, exposure, provenance."""
    span_mean = float(span.mean())
    shot = 1.0 / full_well
    read = ((READ_NOISE_ELECTRONS / full_well) ** 2
            + (READ_NOISE_DN ** 2 + 1.0 / 12.0) / span_mean ** 2)
    if not noise:
        shot, read = 0.0, 1.0 / 12.0 / span_mean ** 2
    return CaptureMetadata(
        black_level=black.copy(),
        white_level=white_level,
        cfa_pattern=pattern,
        wb_gains=col["wb_gains"],
        cam_to_xyz=col["cam_to_xyz"],
        cam_to_srgb=col["cam_to_srgb"],
        color_matrix1=col["color_matrix"],
        calibration_illuminant1=col["exif"],
        noise_profile=((shot, read),) * 3,
        iso=iso,
        exposure_time=_BASE_EXPOSURE_TIME * (level / _DEFAULT_LEVEL) * (100.0 / iso),
        make="ispkit",
        model=f"synthetic {camera}",
        source=f"synthetic:{col['name']}",
        extra={
            "baseline_exposure": float(-math.log2(exposure_scale)),
            "scene_illuminant": col["name"],
            "illuminant_cct": float(col["cct"]),
            "seed": seed,
        },
    )


def _reference_arrays(col: dict, idx: np.ndarray, wt: np.ndarray, scene: np.ndarray) -> dict[str, np.ndarray]:
    """The read-only references of a capture: patch Lab and sRGB, illuminant, scene and ideal image."""
    ref_lin = np.clip(col["srgb_table"], 0.0, 1.0)
    ref_srgb = _encode_srgb(ref_lin)
    colour = _colour()
    ref_lab = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(ref_srgb))
    image = _encode_srgb(_render(idx, wt, col["srgb_table"])).astype(np.float32)
    arrays = {
        "reference_lab": np.asarray(ref_lab, dtype=np.float64),
        "reference_srgb": np.asarray(ref_srgb, dtype=np.float64),
        "illuminant_xyz": col["xyz_white"].copy(),
        "illuminant_rgb": col["cam_white"] / col["cam_white"][1],
        "scene_camera_rgb": np.clip(scene, 0.0, 1.0, out=scene),
        "reference_image": image,
    }
    for v in arrays.values():
        v.setflags(write=False)
    return arrays

