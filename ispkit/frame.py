"""The data that flows through a pipeline: :class:`Frame` and its metadata.

A Frame is immutable: its pixel array is made read-only, and stages return
``frame.replace(...)`` instead of changing their input.

Conventions (see ``design.md`` §2):

* ``RAW_MOSAIC``: H×W float32 (raw counts before ``BlackLevel``, normalised
  ``[0, 1]`` after), with ``meta.cfa_pattern`` naming the 2×2 layout read
  from the top-left pixel.
* ``RAW_PACKED``: H/2×W/2×4 float32 in the fixed channel order R, Gr, Gb, B.
* ``CAMERA_RGB``: demosaiced, linear, camera primaries, H×W×3.
* ``LINEAR_RGB``: linear, in the working space named by ``meta.color_space``.
* ``DISPLAY_RGB``: encoded (OETF / tone applied), ready to quantise and save.
"""

from __future__ import annotations

import dataclasses
import math
import enum
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import numpy as np

from .errors import InputError, MissingMetadataError, ParameterError, unknown_name

__all__ = [
    "Domain",
    "CFAPattern",
    "CFA_PATTERNS",
    "CaptureMetadata",
    "Frame",
    "GainMap",
    "cfa_color_indices",
    "cfa_position_of",
    "check_cfa_pattern",
]


class Domain(str, enum.Enum):
    """What the pixels of a frame are."""

    RAW_MOSAIC = "raw_mosaic"
    RAW_PACKED = "raw_packed"
    CAMERA_RGB = "camera_rgb"
    LINEAR_RGB = "linear_rgb"
    DISPLAY_RGB = "display_rgb"

    def __str__(self) -> str:
        return self.name


CFAPattern = Literal["RGGB", "BGGR", "GRBG", "GBRG"]
CFA_PATTERNS: tuple[str, ...] = ("RGGB", "BGGR", "GRBG", "GBRG")

_COLOR_INDEX = {"R": 0, "G": 1, "B": 2}


def check_cfa_pattern(pattern: object, where: str = "") -> str:
    """Return ``pattern`` upper-cased if it names a 2×2 Bayer layout, else raise."""
    if isinstance(pattern, str) and pattern.upper() in CFA_PATTERNS:
        return pattern.upper()
    raise unknown_name("CFA pattern", pattern, CFA_PATTERNS, where)


def cfa_color_indices(pattern: str) -> np.ndarray:
    """Return the 2×2 array of colour indices (0=R, 1=G, 2=B) of a Bayer layout.

    Notes
    -----
    ``cfa_color_indices("GRBG") == [[1, 0], [2, 1]]``: row-major over the
    top-left 2×2 block.
    """
    p = check_cfa_pattern(pattern)
    return np.array([[_COLOR_INDEX[p[0]], _COLOR_INDEX[p[1]]],
                     [_COLOR_INDEX[p[2]], _COLOR_INDEX[p[3]]]], dtype=np.int64)


def cfa_position_of(pattern: str) -> dict[str, tuple[int, int]]:
    """Return the (row, col) offset of R, Gr, Gb and B inside the 2×2 block.

    ``Gr`` is the green sharing a row with red, ``Gb`` the one sharing a row
    with blue — the channel names of ``RAW_PACKED``.
    """
    p = check_cfa_pattern(pattern)
    pos = {"R": divmod(p.index("R"), 2), "B": divmod(p.index("B"), 2)}
    greens = [divmod(i, 2) for i, c in enumerate(p) if c == "G"]
    for g in greens:
        if g[0] == pos["R"][0]:
            pos["Gr"] = g
        else:
            pos["Gb"] = g
    return pos


def _as_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64)
    if arr.shape != shape:
        try:
            arr = np.broadcast_to(arr, shape).copy()
        except ValueError:
            raise ParameterError(
                f"CaptureMetadata.{name}: expected shape {shape}, got {np.shape(value)}"
            ) from None
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"CaptureMetadata.{name}: values must be finite, got {arr.tolist()}")
    arr.setflags(write=False)
    return arr


_ARRAY_FIELDS: dict[str, tuple[int, ...]] = {
    "black_level": (4,),
    "wb_gains": (3,),
    "cam_to_xyz": (3, 3),
    "cam_to_srgb": (3, 3),
    "color_matrix1": (3, 3),
    "color_matrix2": (3, 3),
    "forward_matrix1": (3, 3),
    "forward_matrix2": (3, 3),
    "camera_calibration1": (3, 3),
    "camera_calibration2": (3, 3),
    "analog_balance": (3,),
    "illuminant_rgb": (3,),
    "white_point": (3,),
}


@dataclass(frozen=True, eq=False)
class CaptureMetadata:
    """Everything known about how a frame was captured and what stages learnt.

    Field names follow rawpy / DNG. Arrays are float64 and read-only.

    Attributes
    ----------
    black_level : (4,) black level per 2×2 CFA position in raster order
        (top-left, top-right, bottom-left, bottom-right), in raw counts.
    white_level : saturation level in raw counts.
    cfa_pattern : "RGGB" | "BGGR" | "GRBG" | "GBRG", read from the top-left pixel.
    wb_gains : (3,) as-shot RGB white-balance multipliers (green = 1); the
        as-shot neutral is ``1 / wb_gains``.
    cam_to_xyz : (3, 3) camera-native linear RGB → CIE XYZ (the inverse of the
        DNG ColorMatrix of ``color_matrix_illuminant``); None when unknown.
    cam_to_srgb : (3, 3) LibRaw's ``rgb_cam``: white-balanced camera RGB →
        linear sRGB (rows sum to 1).
    color_matrix1/2, forward_matrix1/2, camera_calibration1/2, analog_balance,
    calibration_illuminant1/2 : the DNG colour tags (XYZ→camera ColorMatrix,
        EXIF LightSource codes), for dual-illuminant interpolation.
    illuminant_rgb : (3,) estimated scene illuminant in camera RGB (stages).
    white_point : (3,) per-channel saturation after normalisation (stages).
    """

    black_level: np.ndarray = field(default_factory=lambda: np.zeros(4))
    white_level: float = 1.0
    cfa_pattern: str | None = None
    wb_gains: np.ndarray | None = None
    cam_to_xyz: np.ndarray | None = None
    cam_to_srgb: np.ndarray | None = None
    color_matrix1: np.ndarray | None = None
    color_matrix2: np.ndarray | None = None
    calibration_illuminant1: int | None = None
    calibration_illuminant2: int | None = None
    forward_matrix1: np.ndarray | None = None
    forward_matrix2: np.ndarray | None = None
    camera_calibration1: np.ndarray | None = None
    camera_calibration2: np.ndarray | None = None
    analog_balance: np.ndarray | None = None
    linearization_table: np.ndarray | None = None
    noise_profile: tuple[tuple[float, float], ...] | None = None
    iso: float | None = None
    exposure_time: float | None = None
    make: str | None = None
    model: str | None = None
    orientation: int = 1
    source: str | None = None
    # learnt by stages
    illuminant_rgb: np.ndarray | None = None
    white_point: np.ndarray | None = None
    color_space: str | None = None
    device: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, shape in _ARRAY_FIELDS.items():
            object.__setattr__(self, name, _as_array(getattr(self, name), shape, name))
        if self.linearization_table is not None:
            lut = np.array(self.linearization_table, dtype=np.float64).ravel()
            lut.setflags(write=False)
            object.__setattr__(self, "linearization_table", lut)
        if self.cfa_pattern is not None:
            object.__setattr__(self, "cfa_pattern", check_cfa_pattern(self.cfa_pattern, "CaptureMetadata"))
        wl = float(self.white_level)
        if not np.isfinite(wl):
            raise ParameterError(f"CaptureMetadata.white_level must be finite, got {self.white_level!r}")
        object.__setattr__(self, "white_level", wl)
        if self.orientation not in range(1, 9):
            raise ParameterError(
                f"CaptureMetadata.orientation must be an EXIF orientation 1..8, got {self.orientation!r}"
            )
        if self.noise_profile is not None:
            object.__setattr__(
                self, "noise_profile", tuple((float(a), float(b)) for a, b in self.noise_profile)
            )
        object.__setattr__(self, "extra", dict(self.extra))

    def replace(self, **changes: Any) -> "CaptureMetadata":
        """Return a copy with ``changes`` applied (unknown names raise)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise unknown_name("metadata field", bad[0], names, "CaptureMetadata.replace")
        return dataclasses.replace(self, **changes)

    def has(self, key: str) -> bool:
        """Whether metadata field ``key`` is set (not None)."""
        return getattr(self, key, None) is not None

    def require(self, key: str, stage: str = "") -> Any:
        """Return field ``key`` or raise :class:`MissingMetadataError` naming ``stage``."""
        value = getattr(self, key, None)
        if value is None:
            where = f"stage {stage!r} " if stage else ""
            raise MissingMetadataError(
                f"{where}needs metadata {key!r}, which this frame (source: {self.source or 'in-memory'}) "
                f"does not carry; set it with from_array(..., {key}=...) or add a stage that provides it"
            )
        return value

    def black_level_2x2(self) -> np.ndarray:
        """Black level as a 2×2 array over the CFA block."""
        return np.asarray(self.black_level).reshape(2, 2)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the set fields (arrays as nested lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None or (f.name == "extra" and not v):
                continue
            if isinstance(v, np.ndarray):
                v = v.tolist()
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out


_NDIM = {
    Domain.RAW_MOSAIC: 2,
    Domain.RAW_PACKED: 3,
    Domain.CAMERA_RGB: 3,
    Domain.LINEAR_RGB: 3,
    Domain.DISPLAY_RGB: 3,
}


@dataclass(frozen=True, eq=False)
class Frame:
    """An immutable image plus what it is (``domain``) and how it was made (``meta``).

    Notes
    -----
    ``data`` is float32 and read-only; see the module docstring for the
    shape of each domain.
    """

    data: np.ndarray
    domain: Domain
    meta: CaptureMetadata = field(default_factory=CaptureMetadata)

    def __post_init__(self) -> None:
        domain = Domain(self.domain)
        object.__setattr__(self, "domain", domain)
        data = self.data
        if not isinstance(data, np.ndarray):
            data = np.asarray(data)
        if data.dtype != np.float32:
            if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
                raise InputError(f"Frame data must be numeric, got dtype {data.dtype}")
            data = data.astype(np.float32)
        if data.ndim != _NDIM[domain]:
            raise InputError(
                f"a {domain} frame needs a {_NDIM[domain]}-D array, got shape {data.shape}"
            )
        if domain is Domain.RAW_PACKED and data.shape[2] != 4:
            raise InputError(f"a RAW_PACKED frame needs 4 channels (R, Gr, Gb, B), got shape {data.shape}")
        if domain in (Domain.CAMERA_RGB, Domain.LINEAR_RGB, Domain.DISPLAY_RGB) and data.shape[2] != 3:
            raise InputError(f"a {domain} frame needs 3 channels, got shape {data.shape}")
        if domain is Domain.RAW_MOSAIC and self.meta.cfa_pattern is None:
            raise MissingMetadataError("a RAW_MOSAIC frame needs meta.cfa_pattern (e.g. 'RGGB')")
        if data.flags.writeable:
            # hold a read-only view: the caller's own array keeps its flags
            data = data.view()
            data.setflags(write=False)
        object.__setattr__(self, "data", data)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def replace(self, *, data: np.ndarray | None = None, domain: Domain | None = None,
                meta: CaptureMetadata | None = None, **meta_changes: Any) -> "Frame":
        """Return a new frame; keyword metadata changes are applied to ``meta``."""
        new_meta = meta if meta is not None else self.meta
        if meta_changes:
            new_meta = new_meta.replace(**meta_changes)
        return Frame(
            data=self.data if data is None else data,
            domain=self.domain if domain is None else domain,
            meta=new_meta,
        )

    def __repr__(self) -> str:
        d = self.data
        return (f"Frame({self.domain}, shape={d.shape}, dtype={d.dtype}, "
                f"cfa={self.meta.cfa_pattern}, source={self.meta.source!r})")


# -- DNG GainMap opcodes carried as metadata ---------------------------------

@dataclass(frozen=True, eq=False)
class GainMap:
    """One DNG GainMap opcode: a grid of gains over (part of) the image, as metadata.

    Parsed from a DNG by :func:`ispkit.io.read_gain_maps`; carried as plain
    dicts (:meth:`to_dict`) in ``meta.extra["gain_maps"]``; applied by the
    lens-shading stage.

    Attributes
    ----------
    top, left, bottom, right : the area it applies to (bottom/right
        exclusive; all zero means the whole image).
    plane, planes : the first image plane and how many (a mosaic has 1).
    row_pitch, col_pitch : apply to every ``row_pitch``-th row and
        ``col_pitch``-th column of the area, starting at ``top``/``left``.
    points_v, points_h : map size; ``gains`` is (points_v, points_h, map_planes).
    spacing_v, spacing_h, origin_v, origin_h : map grid in coordinates
        relative to the image (0 = top/left edge, 1 = bottom/right edge).
    map_planes : planes of the map (plane ``p`` uses map plane
        ``min(p - plane, map_planes - 1)``).
    gains : float32 array of gains.
    opcode_list : 1, 2 or 3 (which DNG OpcodeList it came from).
    flags : the opcode flags (bit 0 optional, bit 1 skippable for previews).
    """

    top: int
    left: int
    bottom: int
    right: int
    plane: int
    planes: int
    row_pitch: int
    col_pitch: int
    points_v: int
    points_h: int
    spacing_v: float
    spacing_h: float
    origin_v: float
    origin_h: float
    map_planes: int
    gains: np.ndarray
    opcode_list: int = 2
    flags: int = 0

    def __post_init__(self) -> None:
        for name in ("top", "left", "bottom", "right", "plane", "planes", "row_pitch", "col_pitch",
                     "points_v", "points_h", "map_planes", "opcode_list", "flags"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ParameterError(f"GainMap.{name} must be an int, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("spacing_v", "spacing_h", "origin_v", "origin_h"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ParameterError(f"GainMap.{name} must be finite, got {v!r}")
            object.__setattr__(self, name, v)
        if self.points_v < 1 or self.points_h < 1 or self.map_planes < 1:
            raise ParameterError(
                f"GainMap: points_v, points_h and map_planes must be >= 1, got "
                f"{self.points_v}, {self.points_h}, {self.map_planes}")
        if self.points_v == 1:  # as the DNG SDK does
            object.__setattr__(self, "spacing_v", 1.0)
            object.__setattr__(self, "origin_v", 0.0)
        if self.points_h == 1:
            object.__setattr__(self, "spacing_h", 1.0)
            object.__setattr__(self, "origin_h", 0.0)
        if self.spacing_v <= 0 or self.spacing_h <= 0:
            raise ParameterError(f"GainMap: spacing must be > 0, got ({self.spacing_v}, {self.spacing_h})")
        if self.row_pitch < 1 or self.col_pitch < 1 or self.planes < 1:
            raise ParameterError(f"GainMap: row_pitch, col_pitch and planes must be >= 1, got "
                                 f"{self.row_pitch}, {self.col_pitch}, {self.planes}")
        g = np.asarray(self.gains, dtype=np.float32)
        expected = (self.points_v, self.points_h, self.map_planes)
        if g.size != math.prod(expected):
            raise ParameterError(f"GainMap: gains must hold {expected} = {math.prod(expected)} values, "
                                 f"got shape {g.shape}")
        g = g.reshape(expected).copy()
        if not np.all(np.isfinite(g)):
            raise ParameterError("GainMap: gains must be finite")
        g.setflags(write=False)
        object.__setattr__(self, "gains", g)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict (``gains`` as nested lists); :meth:`from_dict` inverts it."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["gains"] = self.gains.tolist()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GainMap":
        """Build from :meth:`to_dict` output (unknown keys raise ParameterError)."""
        names = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - names)
        if bad:
            raise ParameterError(f"GainMap.from_dict: unknown keys {bad}; valid keys are {sorted(names)}")
        try:
            return cls(**dict(d))
        except TypeError as exc:
            raise ParameterError(f"GainMap.from_dict: {exc}") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GainMap):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) if f.name == "gains"
            else getattr(self, f.name) == getattr(other, f.name)
            for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]
