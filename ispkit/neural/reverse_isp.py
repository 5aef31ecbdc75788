"""The reverse ISP stage (display sRGB → RAW mosaic) and the AIM 2022 evaluation protocol.

:class:`ReverseISP` (stage type ``reverse_isp``) runs a ``reverse_isp.*``
network (sRGB → demosaiced linear camera RAW), clips at the sensor's
saturation, mosaics in the chosen CFA layout and scales to raw counts, so the
result is a ``RAW_MOSAIC`` frame with the metadata a DNG needs::

    raw = ReverseISP(weights="reverse.pth", cfa_pattern="RGGB")(srgb_frame)
    ispkit.io.write_dng("out.dng", raw)

:func:`aim_metrics` scores packed 4-channel RAW as the AIM 2022 Reversed
ISP challenge did (PSNR and per-channel Gaussian SSIM, averaged), optionally
restricted to a mask (e.g. the clipped regions); :data:`AIM_TRACKS` records
both tracks' layouts.

References
----------
J. Kim, J. Jiang, J. Gu, "Overexposure Mask Fusion: Generalizable Reverse
ISP Multi-Step Refinement", ECCV Workshops (AIM 2022), arXiv:2210.11511.
M. V. Conde, R. Timofte et al., "Reversed Image Signal Processing and RAW
Reconstruction. AIM 2022 Challenge Report", ECCV Workshops 2022; starter
code and scorer: github.com/mv-lab/AISP (``aim22-reverseisp/scoring/evaluation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError, unknown_name
from ..frame import CaptureMetadata, Domain, Frame, check_cfa_pattern
from ..pipeline import StageSpec, register_stage
from ..stages.demosaic import mosaic
from ._io import pack_bayer, to_numpy, to_tensor
from .stages import MODEL_KINDS, _NeuralStage
from .weights import InputContract
from .zoo.reverse_isp import REVERSE_ISP_CONTRACT

__all__ = ["ReverseISP", "reverse_isp", "AIM_TRACKS", "AimTrack", "aim_pack", "aim_metrics", "ssim_map",
           "overexposed_pixels", "DEFAULT_WB_GAINS"]

#: As-shot gains recorded when none are given: the middle of the training range of
#: :class:`~ispkit.neural.train.reverse_data.ReverseCamera` (R 1.6–2.4, B 1.2–2.0).
DEFAULT_WB_GAINS = (2.0, 1.0, 1.6)


@dataclass(frozen=True)
class AimTrack:
    """One AIM 2022 Reversed ISP track's RAW layout.

    Attributes
    ----------
    camera : the phone.
    packed_order : channel order of the ``.npy`` files (ispkit names; RGGB packed R, Gr, Gb, B).
    max_value : the scorer divides the uint16 values by this (``2**10``).
    source_cfa : the sensor's own layout before the organisers re-phased it to RGGB.
    notes : what else a loader must know.
    """

    camera: str
    packed_order: str
    max_value: float
    source_cfa: str
    notes: str = ""


#: Both tracks: RAW as H/2×W/2×4 uint16 ``.npy`` (R, Gr, Gb, B — the starter code's
#: ``pack_raw`` takes (0,0), (0,1), (1,0), (1,1) of an RGGB mosaic), RGB as ``.jpg``;
#: the scorer reads both tracks as ``np.load(f) / 1024`` and asserts values in [0, 1].
AIM_TRACKS: dict[str, AimTrack] = {
    "s7": AimTrack("Samsung Galaxy S7 (DeepISP dataset, Schwartz et al.)", "R,Gr,Gb,B", 1024.0, "GRBG",
                   "track 1; mostly well-aligned pairs, PSNR and SSIM both meaningful"),
    "p20": AimTrack("Huawei P20 (Zurich RAW-to-RGB, Ignatov et al.)", "R,Gr,Gb,B", 1024.0, "RGGB",
                    "track 2; pairs mostly not aligned (SSIM is the main metric); the starter notebook "
                    "loads P20 RAW / (4·255) = 1020 as PyNET does, the scorer / 1024"),
}

_SSIM_SIGMA, _SSIM_RADIUS, _SSIM_K1, _SSIM_K2 = 1.5, 5, 0.01, 0.03


def aim_pack(raw_mosaic: np.ndarray, cfa_pattern: str, track: str = "s7") -> np.ndarray:
    """Pack a normalised mosaic (black 0, white 1) into a track's H/2×W/2×4 channel order.

    Notes
    -----
    RAW_MOSAIC H×W float32 → H/2×W/2×4 float32, values unchanged (clip and
    multiply by ``AIM_TRACKS[track].max_value`` to write a submission).
    """
    if track not in AIM_TRACKS:
        raise unknown_name("AIM 2022 track", track, AIM_TRACKS, "aim_pack")
    return pack_bayer(np.asarray(raw_mosaic, dtype=np.float32), cfa_pattern, AIM_TRACKS[track].packed_order)


def _gauss_1d() -> np.ndarray:
    t = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    g = np.exp(-(t * t) / (2 * _SSIM_SIGMA ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate1d

    g = _gauss_1d()
    y = correlate1d(correlate1d(x, g, axis=0, mode="nearest"), g, axis=1, mode="nearest")
    r = _SSIM_RADIUS
    return y[r:-r, r:-r]


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Return the SSIM map of two H×W images over the 'valid' region ((H−10)×(W−10)).

    Notes
    -----
    11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, population
    statistics — scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=False)``, which the AIM scorer calls per channel;
    its mean equals :func:`ispkit.metrics.ssim`.

    References
    ----------
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error
    visibility to structural similarity", IEEE TIP 13(4), 2004.
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 2 or min(x.shape) <= 2 * _SSIM_RADIUS:
        raise InputError(f"ssim_map: expected two equal H×W images larger than 10×10, got {x.shape} and {y.shape}")
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    mx, my = _filter_valid(x), _filter_valid(y)
    vx = _filter_valid(x * x) - mx * mx
    vy = _filter_valid(y * y) - my * my
    cxy = _filter_valid(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def aim_metrics(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """PSNR and SSIM of packed RAW as the AIM 2022 scorer computes them, optionally on a mask.

    Parameters
    ----------
    pred, true : H×W×4 packed RAW in [0, 1] (``aim_pack``); ``pred`` is clipped to [0, 1] as a
        uint16 submission would be.
    mask : optional H×W bool; PSNR then averages the squared error over the masked pixels
        (all 4 channels) and SSIM the per-channel SSIM map over the masked pixels of the
        valid region.

    Returns
    -------
    ``{"psnr": dB, "ssim": mean of the 4 channels, "pixels": masked pixel count}``;
    NaN where the mask is empty.
    """
    p = np.clip(np.asarray(pred, np.float64), 0.0, 1.0)
    t = np.asarray(true, np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[2] != 4:
        raise InputError(f"aim_metrics: expected two H×W×4 packed RAW arrays, got {p.shape} and {t.shape}")
    m = np.ones(p.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if m.shape != p.shape[:2]:
        raise InputError(f"aim_metrics: mask shape {m.shape} differs from the packed size {p.shape[:2]}")
    n = int(m.sum())
    if n == 0:
        return {"psnr": float("nan"), "ssim": float("nan"), "pixels": 0}
    mse = float(np.mean((p[m] - t[m]) ** 2))
    psnr = float("inf") if mse == 0 else float(-10.0 * np.log10(mse))
    r = _SSIM_RADIUS
    mv = m[r:-r, r:-r]
    if mv.any():
        ssim = float(np.mean([ssim_map(p[..., c], t[..., c])[mv].mean() for c in range(4)]))
    else:
        ssim = float("nan")
    return {"psnr": psnr, "ssim": ssim, "pixels": n}


def overexposed_pixels(srgb: np.ndarray, threshold: float = 0.98, packed: bool = False) -> np.ndarray:
    """Return the clipped-region mask of display RGB: any channel ≥ ``threshold``.

    Notes
    -----
    H×W×3 → H×W bool; ``packed=True`` gives the H/2×W/2 mask of 2×2 blocks
    holding any clipped pixel (for :func:`aim_metrics` on packed RAW).
    """
    m = np.asarray(srgb).max(axis=2) >= threshold
    if packed:
        h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
        m = m[:h, :w].reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
    return m


def reverse_isp(camera_rgb: np.ndarray, cfa_pattern: str = "RGGB", black_level: float = 0.0,
                white_level: float = 1023.0) -> np.ndarray:
    """Turn a network's demosaiced linear camera RGB into integer-valued raw counts.

    Notes
    -----
    H×W×3 float32 (black 0, white 1) → RAW_MOSAIC H×W float32 counts
    ``round(black + clip(x, 0, 1)·(white − black))``: the sensor saturates at white.
    """
    x = np.clip(np.asarray(camera_rgb, dtype=np.float32), 0.0, 1.0)
    m = mosaic(x, cfa_pattern)
    return np.round(np.float32(black_level) + m * np.float32(white_level - black_level)).astype(np.float32)


def _is_reverse_isp_contract(contract: InputContract) -> bool:
    return contract == REVERSE_ISP_CONTRACT


def _not_reverse_isp(test):
    def kind(contract: InputContract) -> bool:
        return test(contract) and not _is_reverse_isp_contract(contract)

    kind.__qualname__ = f"{getattr(test, '__qualname__', 'kind')}_without_reverse_isp"
    kind._excludes_reverse_isp = True  # type: ignore[attr-defined]
    return kind


#: the wrappers' model kinds learn this one: models with the reverse-ISP contract; sRGB in,
#: linear camera RAW out, so they are not image enhancers even though their tensors look alike
MODEL_KINDS.setdefault("reverse-ISP", _is_reverse_isp_contract)
if not getattr(MODEL_KINDS["enhancement"], "_excludes_reverse_isp", False):
    MODEL_KINDS["enhancement"] = _not_reverse_isp(MODEL_KINDS["enhancement"])


@register_stage
@dataclass(frozen=True)
class ReverseISP(_NeuralStage):
    """Recover a RAW mosaic from a display sRGB image with a learned reverse ISP.

    Parameters
    ----------
    model : a ``reverse_isp.*`` model (``"reverse_isp.unet_fusion"``: mask fusion + refinement).
    weights : checkpoint path (train one with ``ispkit train reverse_isp``); None refuses to run
        unless ``random_weights=True`` (then an untrained model returns linearised sRGB, with a warning).
    device, dtype, tile, overlap : as for :class:`~ispkit.neural.stages.LearnedRawToRGB` (pixels).
    cfa_pattern : Bayer layout of the output mosaic.
    black_level, white_level : raw counts of black and of saturation in the output.
    wb_gains : (3,) as-shot gains recorded in the metadata (default :data:`DEFAULT_WB_GAINS`).
    cam_to_xyz : (3, 3) camera RGB → XYZ recorded (default: the training camera of the
        benchmark, the Nikon D750 matrix).

    Notes
    -----
    DISPLAY_RGB H×W×3 float32 in [0, 1] → RAW_MOSAIC H×W float32 raw counts
    (integers in [black, white]) with ``cfa_pattern``, ``black_level``,
    ``white_level``, ``wb_gains`` and ``cam_to_xyz`` set, so
    ``ispkit.io.write_dng(path, frame)`` writes it and the ``default``
    preset renders it. The network's output is clipped at white (sensor
    saturation) before mosaicing.

    References
    ----------
    Kim, Jiang & Gu, AIM 2022 (arXiv:2210.11511); Conde et al., AIM 2022
    Reversed ISP Challenge Report.
    """

    type_name = "reverse_isp"
    kind = "reverse-ISP"
    model: str = "reverse_isp.unet_fusion"
    weights: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    tile: int | None = None
    overlap: int = 32
    cfa_pattern: str = "RGGB"
    black_level: float = 0.0
    white_level: float = 1023.0
    wb_gains: tuple[float, float, float] | None = None
    cam_to_xyz: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        self._validate()
        object.__setattr__(self, "cfa_pattern", check_cfa_pattern(self.cfa_pattern, f"stage {self.type_name!r}"))
        if not (0 <= float(self.black_level) < float(self.white_level) <= 65535):
            raise ParameterError(f"stage {self.type_name!r}: expected 0 <= black_level < white_level <= 65535, "
                                 f"got {self.black_level!r}, {self.white_level!r}")
        if self.wb_gains is not None:
            g = np.asarray(self.wb_gains, dtype=np.float64)
            if g.shape != (3,) or not np.all(np.isfinite(g)) or np.any(g <= 0):
                raise ParameterError(f"stage {self.type_name!r} parameter 'wb_gains': expected 3 positive gains, "
                                     f"got {self.wb_gains!r}")
            object.__setattr__(self, "wb_gains", tuple(float(v) for v in g))
        if self.cam_to_xyz is not None:
            m = np.asarray(self.cam_to_xyz, dtype=np.float64)
            if m.shape != (3, 3) or not np.all(np.isfinite(m)) or abs(np.linalg.det(m)) < 1e-12:
                raise ParameterError(f"stage {self.type_name!r} parameter 'cam_to_xyz': expected an invertible "
                                     f"3×3 matrix, got {self.cam_to_xyz!r}")
            object.__setattr__(self, "cam_to_xyz", tuple(tuple(float(v) for v in row) for row in m))

    @property
    def spec(self) -> StageSpec:
        return StageSpec(in_domains=(Domain.DISPLAY_RGB,), out_domain=Domain.RAW_MOSAIC,
                         provides=("cfa_pattern", "wb_gains", "cam_to_xyz"))

    def metadata(self, meta: CaptureMetadata) -> dict[str, Any]:
        """The metadata fields the output frame gets."""
        from .train.reverse_data import D750_CAM_TO_XYZ

        gains = self.wb_gains if self.wb_gains is not None else DEFAULT_WB_GAINS
        c2x = np.asarray(self.cam_to_xyz) if self.cam_to_xyz is not None else D750_CAM_TO_XYZ
        return dict(cfa_pattern=self.cfa_pattern, black_level=np.full(4, float(self.black_level)),
                    white_level=float(self.white_level), wb_gains=np.asarray(gains, dtype=np.float64),
                    cam_to_xyz=np.asarray(c2x, dtype=np.float64), color_space=None)

    def process(self, frame: Frame) -> Frame:
        data = np.asarray(frame.data, dtype=np.float32)
        if data.ndim != 3 or data.shape[2] != 3:
            raise InputError(f"stage {self.type_name!r}: expected an H×W×3 sRGB image, got shape {data.shape}")
        if data.shape[0] % 2 or data.shape[1] % 2:
            raise InputError(f"stage {self.type_name!r}: the mosaic needs an even height and width, got "
                             f"{data.shape[0]}×{data.shape[1]}; crop a row/column first")
        x = np.clip(data, 0.0, 1.0)
        cam = np.ascontiguousarray(to_numpy(self.run_network(to_tensor(x))), dtype=np.float32)
        counts = reverse_isp(cam, self.cfa_pattern, float(self.black_level), float(self.white_level))
        return self.with_record(frame, counts, domain=Domain.RAW_MOSAIC, **self.metadata(frame.meta))
