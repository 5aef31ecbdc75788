"""DCP camera profiles: write_dcp / read_dcp round trip, damaged files, the profile-reader registry (issue 12 §3)."""

from __future__ import annotations

import numpy as np
import pytest

from ispkit.errors import ParameterError, RawReadError, UnknownNameError
from ispkit.io.dng import read_dcp, write_dcp
from ispkit.pipeline.profiles import read_camera_profile

CM_A = np.array([[0.94953, -0.45496, 0.02829], [-0.35699, 1.32274, 0.19503], [-0.04625, 0.15492, 0.73498]])
CM_D65 = np.array([[0.68795, -0.24747, -0.04866], [-0.39256, 1.20114, 0.15793], [-0.08916, 0.20063, 0.58148]])
FM1 = np.array([[0.40018, 0.46878, 0.09517], [0.03209, 0.99278, -0.02487], [-0.00228, -0.45168, 1.2794]])
FM2 = np.array([[0.61439, 0.34862, 0.00112], [0.20367, 0.95223, -0.1559], [0.01959, -0.22077, 1.02661]])


def test_dcp_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    hsm1, hsm2, look = rng.normal(size=(3, 90 * 30 * 3))
    curve = [[0, 0], [0.25, 0.35], [1, 1]]
    path = write_dcp(tmp_path / "cam.dcp", color_matrix1=CM_A, calibration_illuminant1=17, color_matrix2=CM_D65,
                     calibration_illuminant2=21, forward_matrix1=FM1, forward_matrix2=FM2,
                     unique_camera_model="Blackmagic Pocket Cinema Camera 4K", profile_name="test profile",
                     baseline_exposure_offset=0.25, default_black_render=1, hue_sat_map_dims=(90, 30, 1),
                     hue_sat_map_data1=hsm1, hue_sat_map_data2=hsm2, hue_sat_map_encoding=1,
                     look_table_dims=(90, 30, 1), look_table_data=look, look_table_encoding=0,
                     profile_tone_curve=curve)
    assert path.read_bytes()[:4] == b"IIRC"
    for prof in (read_dcp(path), read_camera_profile(path)):
        np.testing.assert_allclose(prof["color_matrix1"], CM_A, atol=1e-6)
        np.testing.assert_allclose(prof["color_matrix2"], CM_D65, atol=1e-6)
        np.testing.assert_allclose(prof["forward_matrix1"], FM1, atol=1e-6)
        np.testing.assert_allclose(prof["forward_matrix2"], FM2, atol=1e-6)
        assert (prof["calibration_illuminant1"], prof["calibration_illuminant2"]) == (17, 21)
        assert prof["unique_camera_model"] == "Blackmagic Pocket Cinema Camera 4K"
        assert prof["profile_name"] == "test profile"
        assert prof["baseline_exposure_offset"] == 0.25 and prof["default_black_render"] == 1
        assert prof["hue_sat_map_dims"] == (90, 30, 1) and prof["hue_sat_map_encoding"] == 1
        np.testing.assert_array_equal(prof["hue_sat_map_data1"], hsm1.astype(np.float32))
        np.testing.assert_array_equal(prof["hue_sat_map_data2"], hsm2.astype(np.float32))
        np.testing.assert_array_equal(prof["look_table_data"], look.astype(np.float32))
        np.testing.assert_allclose(prof["profile_tone_curve"], curve, atol=1e-7)


def test_big_endian_dcp_is_read(tmp_path):
    """A hand-built big-endian ('MMCR') profile with ColorMatrix1 and CalibrationIlluminant1."""
    import struct

    entries = [(50721, 10, 9, None), (50778, 3, 1, 21)]
    table_end = 8 + 2 + 12 * len(entries) + 4
    body = struct.pack(">H", len(entries))
    body += struct.pack(">HHII", 50721, 10, 9, table_end)
    body += struct.pack(">HHIHH", 50778, 3, 1, 21, 0)
    body += struct.pack(">I", 0)
    values = b"".join(struct.pack(">iI", int(round(v * 10000)), 10000) for v in CM_D65.ravel())
    path = tmp_path / "be.dcp"
    path.write_bytes(b"MMCR" + struct.pack(">I", 8) + body + values)
    prof = read_dcp(path)
    np.testing.assert_allclose(prof["color_matrix1"], CM_D65, atol=1e-4)
    assert prof["calibration_illuminant1"] == 21


def test_damaged_or_foreign_files(tmp_path):
    bad = tmp_path / "x.dcp"
    bad.write_bytes(b"II*\0" + b"\0" * 20)
    with pytest.raises(RawReadError, match="not a DCP"):
        read_dcp(bad)
    good = write_dcp(tmp_path / "g.dcp", color_matrix1=CM_D65)
    (tmp_path / "t.dcp").write_bytes(good.read_bytes()[:40])
    with pytest.raises(RawReadError, match="truncated"):
        read_dcp(tmp_path / "t.dcp")
    with pytest.raises(UnknownNameError, match=".dcp"):
        read_camera_profile(tmp_path / "profile.icc")
    with pytest.raises(ParameterError):
        write_dcp(tmp_path / "y.dcp", color_matrix1=CM_D65, hue_sat_map_dim=(1, 2, 1))
    with pytest.raises(ParameterError):
        write_dcp(tmp_path / "y.dcp", color_matrix1=CM_D65, color_matrix2=CM_A)
