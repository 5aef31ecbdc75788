"""write_dng: LibRaw (rawpy) and read_raw must read back every field; LJ92 tiles are lossless."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from ispkit.errors import InputError, ParameterError
from ispkit.frame import CFA_PATTERNS, cfa_color_indices
from ispkit.io import read_raw, write_dng
from ispkit.io._ljpeg import encode_lj92, huffman_table
from ispkit.io.dng import read_dng_tags

# XYZ→camera ColorMatrix values of real cameras (D65 unless stated)
D750_D65 = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
CANON_7D_D65 = np.array([[0.6844, -0.0996, -0.0856], [-0.3876, 1.1761, 0.2396], [-0.0593, 0.1772, 0.6198]])
CANON_7D_A = np.array([[1.162, -0.635, 0.0005], [-0.2558, 1.0146, 0.2813], [0.0024, 0.0858, 0.6926]])
BMPCC4K_A = np.array([[0.94953, -0.45496, 0.02829], [-0.35699, 1.32274, 0.19503], [-0.04625, 0.15492, 0.73498]])
BMPCC4K_D65 = np.array([[0.68795, -0.24747, -0.04866], [-0.39256, 1.20114, 0.15793], [-0.08916, 0.20063, 0.58148]])
BMPCC4K_FM1 = np.array([[0.40018, 0.46878, 0.09517], [0.03209, 0.99278, -0.02487], [-0.00228, -0.45168, 1.2794]])
BMPCC4K_FM2 = np.array([[0.61439, 0.34862, 0.00112], [0.20367, 0.95223, -0.1559], [0.01959, -0.22077, 1.02661]])

# sRGB (D65) → XYZ as LibRaw's xyz_rgb table (IEC 61966-2-1 primaries)
XYZ_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                    [0.019334, 0.119193, 0.950227]])
# dcraw/LibRaw flip for each EXIF orientation ("50132467"[orientation & 7])
EXIF_TO_FLIP = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}


def libraw_rgb_cam(xyz_to_cam: np.ndarray) -> np.ndarray:
    """LibRaw's rgb_cam from a D65 ColorMatrix (cam_xyz_coeff: normalise rows, invert)."""
    cam_rgb = xyz_to_cam @ XYZ_RGB
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_rgb)


def smooth_mosaic(h: int, w: int, seed: int = 0, black: float = 600, white: float = 15520) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = black + (white - black) * (0.3 + 0.2 * np.sin(xx / 17.0) * np.cos(yy / 11.0))
    img += rng.normal(0, 20, (h, w))
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16)


CAMERAS = {
    "d750": dict(color_matrix1=D750_D65, calibration_illuminant1=21),
    "canon7d": dict(color_matrix1=CANON_7D_A, calibration_illuminant1=17,
                    color_matrix2=CANON_7D_D65, calibration_illuminant2=21),
    "bmpcc4k": dict(color_matrix1=BMPCC4K_A, calibration_illuminant1=17, color_matrix2=BMPCC4K_D65,
                    calibration_illuminant2=21, forward_matrix1=BMPCC4K_FM1, forward_matrix2=BMPCC4K_FM2),
}
D65_MATRIX = {"d750": D750_D65, "canon7d": CANON_7D_D65, "bmpcc4k": BMPCC4K_D65}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "lj92"])
@pytest.mark.parametrize("camera", sorted(CAMERAS))
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_write_dng_rawpy_and_read_raw_agree(tmp_path, pattern, camera, compress):
    mosaic = smooth_mosaic(67, 91, seed=len(pattern + camera))
    black = np.array([600.0, 601.0, 602.0, 603.0])
    neutral = np.array([0.5, 1.0, 0.7])
    path = write_dng(tmp_path / "x.dng", mosaic, pattern, black_level=black, white_level=15520,
                     as_shot_neutral=neutral, make="Nikon", model="D750 test", compress=compress,
                     **CAMERAS[camera])
    assert path.exists()
    expected_rgb_cam = libraw_rgb_cam(D65_MATRIX[camera])
    letters = {"R": 0, "G": 1, "B": 2}
    with rawpy.imread(str(path)) as raw:
        assert np.array_equal(raw.raw_image_visible, mosaic)
        desc = raw.color_desc.decode()
        got_pattern = "".join(desc[c] for c in raw.raw_pattern.ravel())
        assert got_pattern == pattern
        blpc = raw.black_level_per_channel
        assert [blpc[c] for c in raw.raw_pattern.ravel()] == black.tolist()
        assert raw.white_level == 15520
        cam_mul = np.array(raw.camera_whitebalance[:3])
        np.testing.assert_allclose(cam_mul / cam_mul[1], 1 / neutral, rtol=1e-6)
        np.testing.assert_allclose(raw.color_matrix[:, :3], expected_rgb_cam, atol=2e-3)
        assert np.all(raw.rgb_xyz_matrix == 0) or np.any(raw.rgb_xyz_matrix)  # read without error
        assert sorted(letters) == sorted(set(got_pattern))

    frame = read_raw(path)
    m = frame.meta
    assert m.cfa_pattern == pattern
    assert np.array_equal(frame.data, mosaic.astype(np.float32))
    np.testing.assert_array_equal(m.black_level, black)
    assert m.white_level == 15520
    np.testing.assert_allclose(m.wb_gains, 1 / neutral, rtol=1e-6)
    np.testing.assert_allclose(m.cam_to_srgb, expected_rgb_cam, atol=2e-3)
    np.testing.assert_allclose(m.cam_to_xyz, np.linalg.inv(D65_MATRIX[camera]), rtol=1e-6, atol=1e-9)
    for key in ("color_matrix1", "color_matrix2", "forward_matrix1", "forward_matrix2"):
        want = CAMERAS[camera].get(key)
        if want is None:
            assert getattr(m, key) is None
        else:
            np.testing.assert_allclose(getattr(m, key), want, atol=1e-9)
    assert m.calibration_illuminant1 == CAMERAS[camera]["calibration_illuminant1"]
    assert m.calibration_illuminant2 == CAMERAS[camera].get("calibration_illuminant2")
    assert (m.make, m.model) == ("Nikon", "D750 test")
    assert m.extra["dng"]["unique_camera_model"] == "Nikon D750 test"
    assert m.extra["libraw"]["raw_maximum"] == int(mosaic.max())
    # the black of every 2×2 position is the one written for it
    for i in range(2):
        for j in range(2):
            assert m.black_level_2x2()[i, j] == black[2 * i + j]
    assert cfa_color_indices(pattern).shape == (2, 2)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_round_trip(tmp_path, orientation):
    mosaic = smooth_mosaic(24, 30)
    path = write_dng(tmp_path / "o.dng", mosaic, "RGGB", black_level=600, white_level=15520,
                     color_matrix1=D750_D65, orientation=orientation)
    with rawpy.imread(str(path)) as raw:
        assert raw.sizes.flip == EXIF_TO_FLIP[orientation]
    assert read_raw(path).meta.orientation == orientation
    assert read_dng_tags(path)["orientation"] == orientation


def test_scalar_black_and_no_neutral(tmp_path):
    mosaic = smooth_mosaic(32, 32)
    path = write_dng(tmp_path / "s.dng", mosaic, "GBRG", black_level=512, white_level=16383,
                     color_matrix1=D750_D65)
    tags = read_dng_tags(path)
    assert tags["black_level_repeat_dim"] == (1, 1)
    assert tags["black_level"] == [512.0]
    assert tags["white_level"] == [16383.0]
    assert tags["cfa_pattern"] == "GBRG"
    assert "as_shot_neutral" not in tags
    frame = read_raw(path)
    np.testing.assert_array_equal(frame.meta.black_level, [512] * 4)


def test_fractional_black_level_is_rational(tmp_path):
    path = write_dng(tmp_path / "f.dng", smooth_mosaic(8, 8), "RGGB", black_level=[64.5, 64.25, 64.75, 64.0],
                     white_level=1023, color_matrix1=D750_D65)
    assert read_dng_tags(path)["black_level"] == [64.5, 64.25, 64.75, 64.0]


def test_rationals_are_exact_for_decimal_matrices(tmp_path):
    path = write_dng(tmp_path / "r.dng", smooth_mosaic(8, 8), "RGGB", black_level=0, white_level=4095,
                     color_matrix1=CANON_7D_A, calibration_illuminant1=17, color_matrix2=CANON_7D_D65,
                     calibration_illuminant2=21, as_shot_neutral=[0.4533, 1.0, 0.53])
    tags = read_dng_tags(path)
    np.testing.assert_array_equal(tags["color_matrix1"], CANON_7D_A)
    np.testing.assert_array_equal(tags["color_matrix2"], CANON_7D_D65)
    np.testing.assert_array_equal(tags["as_shot_neutral"], [0.4533, 1.0, 0.53])
    assert (tags["calibration_illuminant1"], tags["calibration_illuminant2"]) == (17, 21)


@pytest.mark.parametrize("shape", [(22, 23), (31, 45), (40, 300), (255, 257), (300, 258), (513, 255), (256, 512), (24, 1024)])
def test_lj92_lossless_odd_and_edge_sizes(tmp_path, shape):
    rng = np.random.default_rng(7)
    mosaic = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    mosaic.flat[: min(4, mosaic.size)] = [0, 65535, 0, 65535][: min(4, mosaic.size)]  # ±32768 differences
    path = write_dng(tmp_path / "e.dng", mosaic, "BGGR", black_level=0, white_level=65535,
                     color_matrix1=D750_D65, compress=True)
    with rawpy.imread(str(path)) as raw:
        assert np.array_equal(raw.raw_image_visible, mosaic)


@pytest.mark.parametrize("shape", [(1, 2), (3, 5), (7, 300)])
def test_lj92_tiny_sizes_round_trip_through_tags(tmp_path, shape):
    """LibRaw refuses images under 22×22; the file is still a valid DNG (tifffile reads it back)."""
    import tifffile

    rng = np.random.default_rng(3)
    mosaic = rng.integers(0, 4096, size=shape, dtype=np.uint16)
    path = write_dng(tmp_path / "t.dng", mosaic, "GRBG", black_level=0, white_level=4095,
                     color_matrix1=D750_D65)
    np.testing.assert_array_equal(tifffile.imread(path), mosaic)
    assert read_dng_tags(path)["raw_shape"] == shape
    from ispkit.errors import UnsupportedRawError

    with pytest.raises(UnsupportedRawError, match="22×22"):
        read_raw(path)


def test_lj92_compresses_smooth_data(tmp_path):
    mosaic = smooth_mosaic(256, 512)
    plain = write_dng(tmp_path / "p.dng", mosaic, "RGGB", black_level=600, white_level=15520,
                      color_matrix1=D750_D65)
    packed = write_dng(tmp_path / "c.dng", mosaic, "RGGB", black_level=600, white_level=15520,
                       color_matrix1=D750_D65, compress=True)
    assert packed.stat().st_size < 0.7 * plain.stat().st_size
    with rawpy.imread(str(packed)) as raw:
        assert np.array_equal(raw.raw_image_visible, mosaic)


def test_lj92_stream_structure():
    tile = np.arange(16, dtype=np.uint16).reshape(4, 4)
    stream = encode_lj92(tile)
    assert stream[:2] == b"\xff\xd8" and stream[-2:] == b"\xff\xd9"
    sof = stream.index(b"\xff\xc3")
    # precision 16, 4 lines, 2 samples per line of 2 components
    assert stream[sof + 4] == 16
    assert int.from_bytes(stream[sof + 5:sof + 7], "big") == 4
    assert int.from_bytes(stream[sof + 7:sof + 9], "big") == 2
    assert stream[sof + 9] == 2
    with pytest.raises(ValueError):
        encode_lj92(np.zeros((4, 3), dtype=np.uint16))


@pytest.mark.parametrize("hist", [np.zeros(17), np.r_[10**9, np.zeros(16)], np.r_[np.ones(8), 10**8, np.ones(8)],
                                  2.0 ** np.arange(17), np.arange(17)[::-1] ** 6])
def test_huffman_table_is_valid_and_length_limited(hist):
    bits, huffval = huffman_table(np.asarray(hist, dtype=np.int64))
    assert len(bits) == 16
    assert sorted(huffval) == list(range(17))  # every category is codable
    assert sum(bits) == 17
    kraft = sum(n * 2.0 ** -(length + 1) for length, n in enumerate(bits))
    assert kraft < 1.0  # the all-ones code word stays reserved (T.81 K.2)


def test_more_frequent_categories_get_shorter_codes():
    hist = np.zeros(17, dtype=np.int64)
    hist[3] = 10**6
    hist[9] = 10
    bits, huffval = huffman_table(hist)
    lengths = {}
    k = 0
    for length, n in enumerate(bits, start=1):
        for _ in range(n):
            lengths[huffval[k]] = length
            k += 1
    assert lengths[3] == min(lengths.values())
    assert lengths[3] < lengths[9]


def test_write_dng_replaces_atomically(tmp_path):
    target = tmp_path / "a.dng"
    target.write_bytes(b"old")
    write_dng(target, smooth_mosaic(8, 8), "RGGB", black_level=0, white_level=4095, color_matrix1=D750_D65)
    assert target.read_bytes()[:4] == b"II*\0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dng"]


@pytest.mark.parametrize("kwargs, error", [
    (dict(mosaic=np.zeros((4, 4), np.float32)), InputError),
    (dict(mosaic=np.zeros((4, 4, 3), np.uint16)), InputError),
    (dict(mosaic=np.full((4, 4), 70000, np.int32)), InputError),
    (dict(mosaic=np.zeros((0, 4), np.uint16)), InputError),
    (dict(cfa_pattern="RGBG"), ParameterError),
    (dict(black_level=5000, white_level=4095), ParameterError),
    (dict(black_level=[1, 2, 3]), ParameterError),
    (dict(white_level=70000), ParameterError),
    (dict(color_matrix1=np.eye(2)), ParameterError),
    (dict(color_matrix1=None), ParameterError),
    (dict(color_matrix1=np.zeros((3, 3))), ParameterError),
    (dict(color_matrix2=D750_D65), ParameterError),
    (dict(calibration_illuminant1="D65"), ParameterError),
    (dict(forward_matrix2=D750_D65), ParameterError),
    (dict(as_shot_neutral=[1, 0, 1]), ParameterError),
    (dict(orientation=9), ParameterError),
    (dict(make=""), ParameterError),
    (dict(compress="yes"), ParameterError),
    (dict(camera_calibration2=np.eye(3)), ParameterError),
    (dict(analog_balance=[1, 0, 1]), ParameterError),
    (dict(as_shot_white_xy=[0.6, 0.5]), ParameterError),
    (dict(as_shot_white_xy=[0.35, 0.36], as_shot_neutral=[0.5, 1, 0.6]), ParameterError),
    (dict(baseline_exposure_offset=float("nan")), ParameterError),
    (dict(default_black_render=2), ParameterError),
    (dict(hue_sat_map_dims=(6, 1, 1), hue_sat_map_data1=np.zeros(18)), ParameterError),
    (dict(hue_sat_map_dims=(6, 2, 1), hue_sat_map_data1=np.zeros(35)), ParameterError),
    (dict(hue_sat_map_dims=(6, 2, 1)), ParameterError),
    (dict(hue_sat_map_data1=np.zeros(36)), ParameterError),
    (dict(hue_sat_map_dims=(6, 2, 1), hue_sat_map_data1=np.zeros(36), hue_sat_map_data2=np.zeros(36)),
     ParameterError),
    (dict(hue_sat_map_dims=(6, 2, 1), hue_sat_map_data1=np.zeros(36), hue_sat_map_encoding=2), ParameterError),
    (dict(look_table_data=np.zeros(36)), ParameterError),
    (dict(look_table_dims=(6, 2, 1), look_table_data=np.zeros(30)), ParameterError),
    (dict(profile_tone_curve=[[0, 0], [0.5, 0.6], [0.4, 0.7], [1, 1]]), ParameterError),
    (dict(profile_tone_curve=[[0, 0.1], [1, 1]]), ParameterError),
])
def test_write_dng_rejects_bad_input(tmp_path, kwargs, error):
    args = dict(mosaic=np.zeros((4, 4), np.uint16), cfa_pattern="RGGB", black_level=0, white_level=4095,
                color_matrix1=D750_D65)
    args.update(kwargs)
    mosaic, pattern = args.pop("mosaic"), args.pop("cfa_pattern")
    with pytest.raises(error):
        write_dng(tmp_path / "bad.dng", mosaic, pattern, **args)
    assert list(tmp_path.iterdir()) == []


def test_write_dng_missing_folder(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        write_dng(tmp_path / "nope" / "x.dng", np.zeros((4, 4), np.uint16), "RGGB", black_level=0,
                  white_level=4095, color_matrix1=D750_D65)


def test_read_dng_tags_of_non_tiff_is_empty(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("not a tiff")
    assert read_dng_tags(p) == {}


def test_write_dng_profile_tags_round_trip(tmp_path):
    """Issue 12 §3: CameraCalibration, AnalogBalance, AsShotWhiteXY, BaselineExposureOffset,
    DefaultBlackRender and ProfileHueSatMap written by write_dng come back from read_dng_tags and read_raw."""
    cc1, cc2 = np.diag([1.03, 1.0, 0.96]), np.diag([0.98, 1.0, 1.04])
    hsm1 = np.random.default_rng(0).uniform(-5, 5, (2, 6, 3, 3))
    hsm1[..., 1:] = 1 + hsm1[..., 1:] / 50
    hsm2 = hsm1 * 0.5
    path = write_dng(tmp_path / "profile.dng", smooth_mosaic(32, 48), "RGGB", black_level=600, white_level=15520,
                     color_matrix1=BMPCC4K_A, calibration_illuminant1=17, color_matrix2=BMPCC4K_D65,
                     calibration_illuminant2=21, camera_calibration1=cc1, camera_calibration2=cc2,
                     analog_balance=[1.05, 1.0, 0.95], as_shot_white_xy=[0.3805, 0.3768],
                     baseline_exposure=0.5, baseline_exposure_offset=-0.25, default_black_render=1,
                     hue_sat_map_dims=(6, 3, 2), hue_sat_map_data1=hsm1, hue_sat_map_data2=hsm2,
                     hue_sat_map_encoding=1)
    tags = read_dng_tags(path)
    np.testing.assert_allclose(tags["camera_calibration1"], cc1)
    np.testing.assert_allclose(tags["camera_calibration2"], cc2)
    np.testing.assert_allclose(tags["analog_balance"], [1.05, 1.0, 0.95])
    np.testing.assert_allclose(tags["as_shot_white_xy"], [0.3805, 0.3768])
    assert tags["baseline_exposure_offset"] == -0.25 and tags["default_black_render"] == 1
    assert tags["hue_sat_map_dims"] == (6, 3, 2) and tags["hue_sat_map_encoding"] == 1
    np.testing.assert_array_equal(tags["hue_sat_map_data1"], hsm1.astype(np.float32).ravel())
    np.testing.assert_array_equal(tags["hue_sat_map_data2"], hsm2.astype(np.float32).ravel())
    frame = read_raw(path)
    dng = frame.meta.extra["dng"]
    assert dng["baseline_exposure_offset"] == -0.25 and dng["default_black_render"] == 1
    assert dng["as_shot_white_xy"] == pytest.approx([0.3805, 0.3768])
    assert frame.meta.wb_gains is None  # the white balance is the xy, not LibRaw's daylight fallback
    np.testing.assert_allclose(frame.meta.camera_calibration2, cc2)
    with rawpy.imread(str(path)) as raw:  # LibRaw still reads the file
        np.testing.assert_array_equal(raw.raw_image_visible, smooth_mosaic(32, 48))
