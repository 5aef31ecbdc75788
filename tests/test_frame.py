"""Frame and CaptureMetadata: immutability, validation, CFA helpers."""

import numpy as np
import pytest

from ispkit.errors import InputError, MissingMetadataError, ParameterError, UnknownNameError
from ispkit.frame import (CFA_PATTERNS, CaptureMetadata, Domain, Frame, cfa_color_indices,
                          cfa_position_of, check_cfa_pattern)


def test_frame_is_read_only_and_float32():
    src = np.arange(16, dtype=np.uint16).reshape(4, 4)
    f = Frame(src, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    assert f.data.dtype == np.float32
    with pytest.raises(ValueError):
        f.data[0, 0] = 5
    g = Frame(np.zeros((2, 2, 3), np.float32), Domain.CAMERA_RGB)
    arr = np.zeros((2, 2, 3), np.float32)
    h = Frame(arr, Domain.CAMERA_RGB)
    arr[0, 0, 0] = 1  # the caller's array stays writable
    assert arr.flags.writeable and not h.data.flags.writeable
    assert g.replace(color_space="sRGB").meta.color_space == "sRGB"
    assert g.meta.color_space is None  # replace does not touch the original


def test_frame_shape_checks():
    with pytest.raises(InputError, match="3 channels"):
        Frame(np.zeros((4, 4, 4)), Domain.CAMERA_RGB)
    with pytest.raises(InputError, match="2-D"):
        Frame(np.zeros((4, 4, 3)), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    with pytest.raises(MissingMetadataError, match="cfa_pattern"):
        Frame(np.zeros((4, 4)), Domain.RAW_MOSAIC)
    with pytest.raises(InputError, match="R, Gr, Gb, B"):
        Frame(np.zeros((4, 4, 3)), Domain.RAW_PACKED)


def test_metadata_validation_and_replace():
    m = CaptureMetadata(black_level=64, white_level=1023, cfa_pattern="grbg", wb_gains=[2, 1, 1.5])
    assert m.cfa_pattern == "GRBG"
    np.testing.assert_array_equal(m.black_level, [64, 64, 64, 64])
    assert m.wb_gains.tolist() == [2.0, 1.0, 1.5]
    with pytest.raises(ValueError):
        m.wb_gains[0] = 3
    with pytest.raises(ParameterError, match="shape"):
        CaptureMetadata(cam_to_xyz=np.eye(4))
    with pytest.raises(ParameterError, match="finite"):
        CaptureMetadata(wb_gains=[np.nan, 1, 1])
    with pytest.raises(UnknownNameError, match="valid metadata fields"):
        m.replace(no_such_field=1)
    with pytest.raises(MissingMetadataError, match="'demosaic'.*cam_to_xyz"):
        m.require("cam_to_xyz", "demosaic")
    assert m.replace(iso=200).iso == 200 and m.iso is None
    d = m.to_dict()
    assert d["black_level"] == [64.0] * 4 and d["cfa_pattern"] == "GRBG"


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_cfa_helpers(pattern):
    idx = cfa_color_indices(pattern)
    letters = "".join("RGB"[i] for i in idx.ravel())
    assert letters == pattern
    pos = cfa_position_of(pattern)
    assert pattern[pos["R"][0] * 2 + pos["R"][1]] == "R"
    assert pattern[pos["B"][0] * 2 + pos["B"][1]] == "B"
    assert pos["Gr"][0] == pos["R"][0] and pos["Gb"][0] == pos["B"][0]
    assert {pos[k] for k in ("R", "Gr", "Gb", "B")} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_bad_cfa_name_lists_valid():
    with pytest.raises(UnknownNameError, match="'RGGB'"):
        check_cfa_pattern("BG")
