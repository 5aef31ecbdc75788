"""Lens shading: DNG GainMap opcodes (built here byte by byte), radial model, flat field, the stage."""

from __future__ import annotations

import logging
import pickle
import struct

import numpy as np
import pytest
import tifffile

from ispkit.errors import DomainError, InputError, ParameterError, RawReadError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import STAGES
from ispkit.io import parse_opcode_list, read_gain_maps
from ispkit.stages.lens_shading import (GainMap, LensShading, apply_flat_field, apply_gain_map, apply_gain_maps,
                                        apply_radial_shading, flat_field_gain, radial_gain)
from tests.conftest import data_path


# -- a writer for the DNG 1.4 §7 binary layout, independent of the parser ---------

def _opcode(op_id, params, flags=0):
    return struct.pack(">I", op_id) + bytes([1, 4, 0, 0]) + struct.pack(">II", flags, len(params)) + params


def _gain_map_params(area, plane, planes, pitch, points, spacing, origin, gains):
    gains = np.asarray(gains, np.float64)
    if gains.ndim == 2:
        gains = gains[..., None]
    pv, ph, mp = gains.shape
    head = struct.pack(">4I", *area) + struct.pack(">4I", plane, planes, *pitch)
    head += struct.pack(">2I", pv, ph) + struct.pack(">4d", *spacing, *origin) + struct.pack(">I", mp)
    return head + gains.astype(">f4").tobytes()  # row by row, planes interleaved


def _opcode_list(*opcodes):
    return struct.pack(">I", len(opcodes)) + b"".join(opcodes)


def _write_dng(path, opcode_list_bytes, tag=51009):
    tifffile.imwrite(path, np.zeros((8, 12), np.uint16),
                     extratags=[(50706, 1, 4, bytes([1, 4, 0, 0]), True),  # DNGVersion
                                (tag, 7, len(opcode_list_bytes), opcode_list_bytes, True)])


GAINS_2X2 = [[1.0, 2.0], [3.0, 4.0]]


def _hand_gain(row, col, h, w, gains=GAINS_2X2):
    """Bilinear gain of a 2×2 map spanning the image (spacing 1, origin 0) at a pixel centre, by hand."""
    v = (row + 0.5) / h  # relative vertical position of the pixel centre
    u = (col + 0.5) / w
    (a, b), (c, d) = gains
    return (1 - v) * ((1 - u) * a + u * b) + v * ((1 - u) * c + u * d)


def test_parse_write_read_and_apply_gain_map(tmp_path):
    params = _gain_map_params((0, 0, 8, 12), 0, 1, (1, 1), None, (1.0, 1.0), (0.0, 0.0), GAINS_2X2)
    other = _opcode(1, b"\x00" * 20)  # WarpRectilinear-sized junk: must be skipped by its byte count
    data = _opcode_list(other, _opcode(9, params, flags=1))
    path = tmp_path / "tiny.dng"
    _write_dng(path, data)
    maps = read_gain_maps(path)
    assert len(maps) == 1
    gm = maps[0]
    assert (gm.top, gm.left, gm.bottom, gm.right) == (0, 0, 8, 12)
    assert (gm.points_v, gm.points_h, gm.map_planes, gm.opcode_list, gm.flags) == (2, 2, 1, 2, 1)
    assert np.array_equal(gm.gains[..., 0], GAINS_2X2)
    assert gm == parse_opcode_list(data)[0]
    img = np.full((8, 12), 0.25, np.float32)
    out = apply_gain_map(img, gm)
    expected = np.array([[0.25 * _hand_gain(r, c, 8, 12) for c in range(12)] for r in range(8)])
    assert np.allclose(out, expected, rtol=1e-6)
    assert out[0, 0] == pytest.approx(0.25 * (1 + 0.5 / 12 + 2 * 0.5 / 8))  # 1 + u + 2v at the first centre
    assert np.allclose(apply_gain_map(img, gm, clip=True), np.minimum(expected, 1.0), rtol=1e-6)


def test_bayer_phase_maps_with_pitch_and_offset():
    h, w = 6, 8
    maps = []
    for k, (top, left) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):  # R, Gr, Gb, B of RGGB
        p = _gain_map_params((top, left, h, w), 0, 1, (2, 2), None, (1.0, 1.0), (0.0, 0.0),
                             [[1.0 + k, 1.0 + k], [1.0 + k, 1.0 + k]])
        maps.append(_opcode(9, p))
    gms = parse_opcode_list(_opcode_list(*maps))
    out = apply_gain_maps(np.ones((h, w), np.float32), gms)
    assert np.array_equal(out, np.tile([[1.0, 2.0], [3.0, 4.0]], (h // 2, w // 2)))
    # only the R phase, only inside rows 2..3
    p = _gain_map_params((2, 0, 4, w), 0, 1, (2, 2), None, (1.0, 1.0), (0.0, 0.0), [[5.0]])
    out = apply_gain_map(np.ones((h, w), np.float32), parse_opcode_list(_opcode_list(_opcode(9, p)))[0])
    assert out.sum() == h * w + 4 * (w // 2) and np.all(out[2, ::2] == 5) and np.all(out[3] == 1)


def test_gain_map_edges_clamp_and_partial_map():
    # map covering only the middle half of the image: outside it the edge gains hold (DNG SDK clamping)
    p = _gain_map_params((0, 0, 0, 0), 0, 1, (1, 1), None, (0.5, 0.5), (0.25, 0.25), [[1.0, 3.0], [1.0, 3.0]])
    gm = parse_opcode_list(_opcode_list(_opcode(9, p)))[0]
    out = apply_gain_map(np.ones((4, 16), np.float32), gm)  # empty area → whole image
    assert np.allclose(out[:, :4], 1.0) and np.allclose(out[:, 12:], 3.0)
    col = 7  # centre at 7.5/16 = 0.46875 → (0.46875 - 0.25) / 0.5 = 0.4375 of the way from 1 to 3
    assert out[0, col] == pytest.approx(1 + 2 * 0.4375)
    one = GainMap(0, 0, 4, 4, 0, 1, 1, 1, 1, 1, 0.0, 0.0, 7.0, 7.0, 1, np.array([2.0]))
    assert (one.spacing_v, one.origin_h) == (1.0, 0.0)  # single-point axes are normalised like the SDK
    assert np.allclose(apply_gain_map(np.ones((4, 4), np.float32), one), 2.0)


def test_multi_plane_gain_map():
    p = _gain_map_params((0, 0, 2, 2), 1, 2, (1, 1), None, (1.0, 1.0), (0.0, 0.0),
                         np.stack([np.full((2, 2), 2.0), np.full((2, 2), 3.0)], axis=-1))
    gm = parse_opcode_list(_opcode_list(_opcode(9, p)), opcode_list=3)[0]
    out = apply_gain_map(np.ones((2, 2, 3), np.float32), gm)
    assert np.allclose(out[..., 0], 1) and np.allclose(out[..., 1], 2) and np.allclose(out[..., 2], 3)
    assert gm.opcode_list == 3


def test_malformed_opcode_lists():
    p = _gain_map_params((0, 0, 2, 2), 0, 1, (1, 1), None, (1.0, 1.0), (0.0, 0.0), GAINS_2X2)
    good = _opcode_list(_opcode(9, p))
    with pytest.raises(RawReadError, match="truncated|claims"):
        parse_opcode_list(good[:-3])
    with pytest.raises(RawReadError, match="needs"):
        parse_opcode_list(_opcode_list(_opcode(9, p[:-4])))
    with pytest.raises(RawReadError):
        parse_opcode_list(b"\x00\x00")
    assert parse_opcode_list(_opcode_list()) == []


def test_gain_map_dict_round_trip():
    gm = GainMap(1, 0, 9, 8, 0, 1, 2, 2, 2, 3, 0.5, 0.25, 0.0, 0.1, 1, np.arange(6, dtype=np.float32) + 1)
    d = gm.to_dict()
    assert isinstance(d["gains"], list) and GainMap.from_dict(d) == gm
    with pytest.raises(ParameterError, match="unknown keys"):
        GainMap.from_dict({**d, "bogus": 1})
    with pytest.raises(ParameterError, match="gains"):
        GainMap(0, 0, 1, 1, 0, 1, 1, 1, 2, 2, 1.0, 1.0, 0.0, 0.0, 1, [1.0, 2.0])


def test_blackmagic_dng_has_no_gain_map(caplog):
    path = data_path("raw", "blackmagic_pocket4k.dng")
    assert read_gain_maps(path) == []
    frame = Frame(np.full((8, 8), 0.5, np.float32), Domain.RAW_MOSAIC,
                  CaptureMetadata(cfa_pattern="RGGB", source=str(path), extra={"gain_maps": read_gain_maps(path)}))
    with caplog.at_level(logging.INFO, logger="ispkit.stages.lens_shading"):
        out = LensShading()(frame)
    assert out is frame
    assert f"no GainMap opcode in {path}; lens shading skipped" in caplog.text


def test_read_gain_maps_errors(tmp_path):
    with pytest.raises(RawReadError, match="no file"):
        read_gain_maps(tmp_path / "missing.dng")
    junk = tmp_path / "junk.dng"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(RawReadError, match="not a readable"):
        read_gain_maps(junk)


# -- radial and flat field -----------------------------------------------------

def test_radial_gain_values():
    k = (0.3, 0.1, 0.05)
    g = radial_gain((5, 7), k)
    assert g[2, 3] == pytest.approx(1.0)  # centre
    assert g[0, 0] == pytest.approx(1 + sum(k), rel=1e-6) and g[4, 6] == pytest.approx(1 + sum(k), rel=1e-6)
    r2 = (2 ** 2 + 0 ** 2) / (2 ** 2 + 3 ** 2)  # pixel (0, 3): 2 rows above the centre
    assert g[0, 3] == pytest.approx(1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3, rel=1e-6)
    assert np.allclose(g, g[::-1, ::-1])
    rgb = np.ones((5, 7, 3), np.float32)
    assert np.allclose(apply_radial_shading(rgb, k), g[..., None])
    with pytest.raises(ParameterError, match="gain <= 0"):
        radial_gain((4, 4), (-1.5, 0.0, 0.0))


def test_flat_field_correction_flattens_vignetting(tmp_path):
    h, w = 64, 96
    vignette = 1.0 / radial_gain((h, w), (0.4, 0.1, 0.0))  # light fall-off a radial gain would undo
    white = np.tile([[0.8, 0.6], [0.55, 0.4]], (h // 2, w // 2)).astype(np.float32)  # per-phase levels
    flat = white * vignette
    gain = flat_field_gain(flat, "RGGB", sigma=0.0)
    assert gain.min() == pytest.approx(1.0, abs=1e-6)
    corrected = apply_flat_field(flat, flat, "RGGB", sigma=0.0)
    for dy in (0, 1):
        for dx in (0, 1):
            plane = corrected[dy::2, dx::2]
            assert plane.std() / plane.mean() < 1e-5
    # noisy flat with smoothing; flat field at half resolution is resized per phase
    rng = np.random.default_rng(0)
    noisy = flat * (1 + 0.01 * rng.standard_normal(flat.shape)).astype(np.float32)
    corrected = apply_flat_field(flat, noisy, "RGGB")
    assert corrected[0::2, 0::2].std() / corrected[0::2, 0::2].mean() < 0.01
    # a half-size capture of the same flat field (same field of view and CFA layout)
    half = white[: h // 2, : w // 2] / radial_gain((h // 2, w // 2), (0.4, 0.1, 0.0))
    resized = flat_field_gain(half, "RGGB", (h, w), sigma=0.0)
    assert resized.shape == (h, w) and np.allclose(resized, gain, rtol=0.03)
    with pytest.raises(InputError, match="<= 0"):
        flat_field_gain(np.zeros((8, 8), np.float32), "RGGB")
    # the stage reads a .npy flat field
    np.save(tmp_path / "flat.npy", flat)
    stage = LensShading(method="flat_field", flat_field_path=str(tmp_path / "flat.npy"))
    out = stage(Frame(flat, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB")))
    assert out.data[0::2, 1::2].std() / out.data[0::2, 1::2].mean() < 0.01


# -- the stage -------------------------------------------------------------------

def _frame(data=None, **extra):
    data = np.full((6, 8), 0.25, np.float32) if data is None else data
    return Frame(data, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB", source="mem.dng", extra=extra))


def test_stage_applies_gain_maps_from_metadata(caplog):
    p = _gain_map_params((0, 0, 6, 8), 0, 1, (1, 1), None, (1.0, 1.0), (0.0, 0.0), GAINS_2X2)
    gm = parse_opcode_list(_opcode_list(_opcode(9, p)))[0]
    f = _frame(gain_maps=[gm.to_dict()])
    before = f.data.copy()
    out = LensShading()(f)
    assert np.allclose(out.data, apply_gain_map(f.data, gm)) and np.array_equal(f.data, before)
    assert out.domain is Domain.RAW_MOSAIC and out.data.dtype == np.float32
    list3 = GainMap.from_dict({**gm.to_dict(), "opcode_list": 3})
    f3 = _frame(gain_maps=[list3.to_dict()])
    with caplog.at_level(logging.INFO, logger="ispkit.stages.lens_shading"):
        assert LensShading()(f3) is f3  # OpcodeList3 maps belong after demosaicing
    assert "not in OpcodeList2" in caplog.text


def test_stage_radial_and_checks(caplog):
    out = LensShading(method="radial", radial=(0.5, 0.0, 0.0))(_frame())
    assert np.allclose(out.data, 0.25 * radial_gain((6, 8), (0.5, 0.0, 0.0)))
    with caplog.at_level(logging.INFO, logger="ispkit.stages.lens_shading"):
        f = _frame()
        assert LensShading()(f) is f
    assert "no GainMap opcode in mem.dng; lens shading skipped" in caplog.text
    raw = Frame(np.full((6, 8), 700.0, np.float32), Domain.RAW_MOSAIC,
                CaptureMetadata(cfa_pattern="RGGB", black_level=np.full(4, 600.0), white_level=4095))
    with pytest.raises(DomainError, match="black_level"):
        LensShading(method="radial", radial=(0.1, 0, 0))(raw)
    with pytest.raises(UnknownNameError, match="gain_map"):
        LensShading(method="vignette")
    with pytest.raises(ParameterError, match="flat_field_path"):
        LensShading(method="flat_field")
    with pytest.raises(ParameterError, match="'lens_shading'.*radial"):
        LensShading(radial=(1.0, 2.0))


def test_stage_contract():
    assert STAGES["lens_shading"] is LensShading
    for s in (LensShading(), LensShading(method="radial", radial=(0.2, 0.05, 0.0), clip=True)):
        assert LensShading.from_params(s.to_config()["params"]) == s
        assert pickle.loads(pickle.dumps(s)) == s
        out = s(_frame())
        assert out.data.dtype == np.float32 and out.domain is Domain.RAW_MOSAIC


def test_non_finite_input_raises():
    x = np.ones((4, 4), np.float32)
    x[1, 1] = np.nan
    gm = GainMap(0, 0, 4, 4, 0, 1, 1, 1, 1, 1, 1.0, 1.0, 0.0, 0.0, 1, np.array([2.0]))
    for call in (lambda: apply_gain_map(x, gm), lambda: apply_radial_shading(x, (0.1, 0, 0)),
                 lambda: apply_flat_field(x, np.ones((4, 4)), "RGGB")):
        with pytest.raises(InputError, match="NaN"):
            call()
