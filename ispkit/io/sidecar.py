"""Colour metadata from the JSON sidecars of headerless Bayer mosaics.

A sidecar names its keys as its author chose; this module maps the ones
ispkit understands to :class:`~ispkit.frame.CaptureMetadata` fields:

* white balance: ``wb_gains`` / ``wb_gains_R_G_B`` / ``wb_gains_rgb`` (R, G, B),
  or a table of gains keyed ``r``, ``gr``, ``gb``, ``b`` (also ``g``) under a
  key naming ``awb_gains`` (openISP's configuration);
* ``ColorMatrix1/2`` (XYZ → camera, DNG convention) under any key naming them;
* camera → sRGB matrices calibrated at colour temperatures, 3×3 or 3×4 with an
  offset column in raw counts, keyed by ``"3200K"``-style names under a key
  naming ``cam_to_sRGB`` (FCam / Halide ``camera_pipe``): interpolated in
  reciprocal colour temperature at the sidecar's suggested temperature.

References
----------
Halide ``apps/camera_pipe`` (colour correction between the 3200 K and 7000 K
matrices by ``1/T``); Adobe DNG Specification 1.6, chapter 6.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ..errors import RawReadError
from ..frame import cfa_color_indices

__all__ = ["sidecar_wb_gains", "sidecar_cam_to_srgb", "interpolate_by_mired", "split_white_balance", "offset_as_black"]

_WB_KEYS = ("wb_gains", "wb_gains_R_G_B", "wb_gains_rgb")
_CCT_KEY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*K\s*$", re.IGNORECASE)


def _gain_table(table: Mapping[str, Any], where: str) -> np.ndarray:
    """(R, G, B) from a ``{r, g | gr, gb, b}`` gain table; absent channels have gain 1."""
    t = {str(k).lower(): float(v) for k, v in table.items()}
    greens = [t[k] for k in ("g", "gr", "gb") if k in t]
    if "r" not in t and "b" not in t:
        raise RawReadError(f"{where}: a gain table needs 'r' and/or 'b' entries, got {sorted(t)}")
    return np.array([t.get("r", 1.0), float(np.mean(greens)) if greens else 1.0, t.get("b", 1.0)])


def sidecar_wb_gains(side: Mapping[str, Any], where: str = "sidecar") -> np.ndarray | None:
    """The as-shot white-balance gains a sidecar records, normalised to green = 1 (None when absent).

    Notes
    -----
    openISP-style tables keep per-CFA-position green gains (``gr``, ``gb``);
    ispkit's white balance has one green gain, so the two are averaged. A
    missing ``b`` entry is a gain of 1.
    """
    gains = None
    for key in _WB_KEYS:
        if key in side:
            gains = np.asarray(side[key], dtype=np.float64).reshape(-1)[:3]
            break
    if gains is None:
        for key, value in side.items():
            if "awb_gains" in key.lower() and isinstance(value, Mapping):
                gains = _gain_table(value, f"{where}: {key}")
                break
    if gains is None:
        return None
    if gains.shape != (3,) or not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise RawReadError(f"{where}: white-balance gains must be three positive numbers, got {gains.tolist()}")
    return gains / gains[1]


def interpolate_by_mired(matrices: Mapping[float, np.ndarray], cct: float) -> np.ndarray:
    """Interpolate matrices calibrated at colour temperatures linearly in ``1/T`` (clamped at the ends)."""
    temps = sorted(matrices)
    if cct <= temps[0]:
        return matrices[temps[0]]
    if cct >= temps[-1]:
        return matrices[temps[-1]]
    hi = next(t for t in temps if t >= cct)
    lo = temps[temps.index(hi) - 1]
    w = (1.0 / cct - 1.0 / lo) / (1.0 / hi - 1.0 / lo)
    return (1.0 - w) * matrices[lo] + w * matrices[hi]


def split_white_balance(cam_to_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a camera → RGB matrix that includes white balance into gains and a balanced matrix.

    Returns ``(wb_gains, balanced)`` with ``cam_to_rgb = balanced @ diag(wb_gains)`` up
    to scale: the camera neutral ``n = M⁻¹·(1, 1, 1)`` gives the gains ``1/n``
    (green = 1) and ``balanced = M·diag(n)`` with rows normalised to sum to 1
    (LibRaw's ``rgb_cam`` convention, so white stays white).
    """
    m = np.asarray(cam_to_rgb, dtype=np.float64)
    neutral = np.linalg.solve(m, np.ones(3))
    if not np.all(neutral > 0):
        raise RawReadError(f"the camera → RGB matrix maps no positive camera colour to white (neutral "
                           f"{neutral.tolist()}); it cannot be split into white balance and colour")
    neutral = neutral / neutral[1]
    balanced = m @ np.diag(neutral)
    return 1.0 / neutral, balanced / balanced.sum(axis=1, keepdims=True)


def sidecar_cam_to_srgb(side: Mapping[str, Any], where: str = "sidecar"
                        ) -> tuple[np.ndarray, np.ndarray | None, float] | None:
    """A camera → sRGB matrix from colour-temperature-keyed calibrations (None when absent).

    Returns ``(matrix 3×3, offset (3,) in raw counts or None, the temperature used)``.
    The temperature is the sidecar's ``color_temp`` (also under a
    ``suggested_params…`` table), else the reciprocal-temperature midpoint.
    """
    for key, value in side.items():
        if "cam_to_srgb" not in key.lower() or not isinstance(value, Mapping):
            continue
        mats: dict[float, np.ndarray] = {}
        for name, rows in value.items():
            m = _CCT_KEY.match(str(name))
            arr = np.asarray(rows, dtype=np.float64)
            if m is None or arr.shape not in ((3, 3), (3, 4)) or not np.all(np.isfinite(arr)):
                raise RawReadError(f"{where}: {key}[{name!r}] must be a 3×3 or 3×4 matrix keyed by a colour "
                                   "temperature like '3200K'")
            mats[float(m.group(1))] = arr
        if not mats:
            continue
        cct = _suggested_temperature(side)
        if cct is None:
            temps = sorted(mats)
            cct = 2.0 / (1.0 / temps[0] + 1.0 / temps[-1])
        full = interpolate_by_mired(mats, cct)
        offset = full[:, 3].copy() if full.shape[1] == 4 else None
        return full[:, :3].copy(), offset, float(cct)
    return None


def _suggested_temperature(side: Mapping[str, Any]) -> float | None:
    tables = [side] + [v for k, v in side.items() if isinstance(v, Mapping) and "suggested" in k.lower()]
    for t in tables:
        v = t.get("color_temp")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v)
    return None


def offset_as_black(offset: np.ndarray, matrix: np.ndarray, black_level: np.ndarray, cfa_pattern: str
                    ) -> np.ndarray:
    """Fold an output-space offset ``o`` of ``M·c + o`` into the per-position black level.

    ``M·c + o = M·(c + M⁻¹·o)``, so each CFA position's black level drops by
    its colour's component of ``M⁻¹·o`` (raw counts).
    """
    shift = np.linalg.solve(np.asarray(matrix, dtype=np.float64), np.asarray(offset, dtype=np.float64))
    colors = cfa_color_indices(cfa_pattern).reshape(-1)
    return np.asarray(black_level, dtype=np.float64) - shift[colors]
