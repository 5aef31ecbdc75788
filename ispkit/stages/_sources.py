"""Masks of light sources in frame (clipped lamp cores and the glow around them).

Shared by the estimators that must not look at lamps: illuminant estimation
(:func:`~ispkit.stages.white_balance.masked_bright_pixels`) and exposure
(:class:`~ispkit.stages.tone.AutoExposure` with ``exclude_lamps``).

References
----------
J. J. McCann, A. Rizzi, *The Art and Science of HDR Imaging*, Wiley 2012,
ch. 4 (veiling glare: the light spread around a bright source grows with its
size and brightness).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["glow_mask"]

#: at most this many clipped regions get their own glow disc (the largest ones).
MAX_SOURCES = 256


def glow_mask(clipped: np.ndarray, min_radius: float, scale: float = 6.0) -> np.ndarray:
    """Grow clipped regions by a disc sized to each one (its glow).

    Parameters
    ----------
    clipped : H×W bool or 0/1 array, True where a light source clipped.
    min_radius : smallest disc radius in pixels.
    scale : disc radius as a multiple of each region's equivalent radius
        ``sqrt(area / π)``.

    Returns
    -------
    H×W uint8, 1 on the clipped regions and their discs.

    Notes
    -----
    Regions are 8-connected; the :data:`MAX_SOURCES` largest get a disc, the
    rest keep only themselves.
    """
    sat = np.ascontiguousarray(clipped, dtype=np.uint8)
    if not sat.any():
        return sat
    _, _, stats, centroids = cv2.connectedComponentsWithStats(sat, connectivity=8)
    out = sat.copy()
    areas = stats[1:, cv2.CC_STAT_AREA]
    for k in np.argsort(areas)[::-1][:MAX_SOURCES]:
        r = max(float(min_radius), float(scale) * math.sqrt(float(areas[k]) / math.pi))
        cx, cy = centroids[k + 1]
        cv2.circle(out, (round(float(cx)), round(float(cy))), math.ceil(r), 1, thickness=-1)
    return out
