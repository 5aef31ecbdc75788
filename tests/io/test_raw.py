"""read_raw (rawpy/LibRaw), from_array, load_bayer_raw and describe."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import rawpy

from ispkit.errors import InputError, ISPError, ParameterError, RawReadError, UnsupportedRawError
from ispkit.frame import CFA_PATTERNS, Domain, cfa_position_of
from ispkit.io import describe, from_array, load_bayer_raw, read_raw, write_dng
from ispkit.io.raw import FLIP_TO_ORIENTATION
from tests.conftest import data_path

XYZ_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                    [0.019334, 0.119193, 0.950227]])
BMPCC4K_A = np.array([[0.94953, -0.45496, 0.02829], [-0.35699, 1.32274, 0.19503], [-0.04625, 0.15492, 0.73498]])
BMPCC4K_D65 = np.array([[0.68795, -0.24747, -0.04866], [-0.39256, 1.20114, 0.15793], [-0.08916, 0.20063, 0.58148]])
D750_D65 = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])


@pytest.fixture(scope="module")
def pocket4k():
    return read_raw(data_path("raw", "blackmagic_pocket4k.dng"))


# ---------------------------------------------------------------------------
# real files


def test_pocket4k_pixels_match_rawpy(pocket4k):
    path = data_path("raw", "blackmagic_pocket4k.dng")
    with rawpy.imread(str(path)) as raw:
        ref = raw.raw_image_visible.copy()
    assert pocket4k.domain is Domain.RAW_MOSAIC
    assert pocket4k.data.dtype == np.float32
    assert pocket4k.shape == (2176, 4128)
    assert np.array_equal(pocket4k.data, ref.astype(np.float32))  # raw counts, not black-subtracted
    assert not pocket4k.data.flags.writeable


def test_pocket4k_metadata(pocket4k):
    m = pocket4k.meta
    assert m.cfa_pattern == "RGGB"
    np.testing.assert_array_equal(m.black_level, [512, 512, 512, 512])
    assert m.white_level == 65535
    # AsShotNeutral (0.4533, 1, 0.53) → gains 1/neutral
    np.testing.assert_allclose(m.wb_gains, [1 / 0.4533, 1.0, 1 / 0.53], rtol=1e-5)
    np.testing.assert_allclose(m.color_matrix1, BMPCC4K_A, atol=1e-12)
    np.testing.assert_allclose(m.color_matrix2, BMPCC4K_D65, atol=1e-12)
    assert (m.calibration_illuminant1, m.calibration_illuminant2) == (17, 21)
    np.testing.assert_allclose(m.forward_matrix1[0], [0.40018, 0.46878, 0.09517])
    np.testing.assert_allclose(m.forward_matrix2[2], [0.01959, -0.22077, 1.02661])
    np.testing.assert_array_equal(m.camera_calibration1, np.eye(3))
    np.testing.assert_array_equal(m.analog_balance, [1, 1, 1])
    # cam_to_xyz: inverse of the D65 ColorMatrix (CameraCalibration = I, AnalogBalance = 1)
    np.testing.assert_allclose(m.cam_to_xyz, np.linalg.inv(BMPCC4K_D65), rtol=1e-10)
    # cam_to_srgb is LibRaw's rgb_cam, which LibRaw derives from the D65 ColorMatrix
    cam_rgb = BMPCC4K_D65 @ XYZ_RGB
    cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(m.cam_to_srgb, np.linalg.inv(cam_rgb), atol=1e-4)
    np.testing.assert_allclose(m.cam_to_srgb.sum(axis=1), 1.0, atol=1e-4)
    assert m.model == "Blackmagic Pocket Cinema Camera 4K"
    assert m.orientation == 1
    assert m.source.endswith("blackmagic_pocket4k.dng")
    assert m.extra["baseline_exposure"] == pytest.approx(2.65412)
    assert m.extra["black_level_repeat_dim"] == [1, 1]
    # LibRaw already applied the LinearizationTable: kept for reference, not as a pending step
    assert m.linearization_table is None
    assert len(m.extra["dng"]["linearization_table"]) == 4096
    assert m.extra["dng"]["linearization_table_applied_by_libraw"] is True


def test_pocket4k_libraw_extras(pocket4k):
    lib = pocket4k.meta.extra["libraw"]
    with rawpy.imread(str(data_path("raw", "blackmagic_pocket4k.dng"))) as raw:
        assert lib["camera_whitebalance"] == pytest.approx(raw.camera_whitebalance)
        assert lib["daylight_whitebalance"] == pytest.approx(raw.daylight_whitebalance)
        assert lib["raw_maximum"] == int(raw.raw_image_visible.max())
        assert lib["black_level_per_channel"] == list(raw.black_level_per_channel)
    assert lib["raw_maximum"] == 65472
    assert lib["color_desc"] == "RGBG"
    # LibRaw: maximum = white - common black; the data maximum after the whole black
    # (65472 - 512 = 64960) lies above 0.75·maximum, so adjust_maximum adopts it
    assert (lib["black_common"], lib["maximum"], lib["data_maximum"], lib["maximum_adjusted"]) == \
        (512, 65023, 64960, 64960)
    json.dumps(pocket4k.meta.extra)  # JSON-friendly


def test_kodak_dc50_has_no_matrix():
    path = data_path("raw", "kodak_dc50.kdc")
    frame = read_raw(path)
    m = frame.meta
    assert m.cfa_pattern == "GRBG"
    assert frame.shape == (512, 768)
    assert m.cam_to_xyz is None and m.cam_to_srgb is None
    assert m.color_matrix1 is None
    with rawpy.imread(str(path)) as raw:
        assert np.array_equal(frame.data, raw.raw_image_visible.astype(np.float32))
        assert m.white_level == raw.white_level
        assert not np.any(raw.color_matrix)  # LibRaw has no matrix: "no matrix", not zeros
    assert m.make == "Eastman Kodak Company"
    assert m.iso == pytest.approx(84.0)
    assert m.exposure_time == pytest.approx(0.00435, rel=1e-4)
    np.testing.assert_array_equal(m.wb_gains, [1, 1, 1])


@pytest.mark.parametrize("name", ["nikon_coolscan_filmscan.nef", "kodak_c330_yrgb.raw"])
def test_non_bayer_files_are_unsupported(name):
    path = data_path("raw", name)
    with pytest.raises(UnsupportedRawError, match=name.replace(".", r"\.")) as err:
        read_raw(path)
    assert "Bayer" in str(err.value)


@pytest.mark.parametrize("name", ["exiftool_CanonRaw.cr3", "exiftool_DNG.dng", "exiftool_FujiFilm.raf",
                                  "exiftool_Nikon.nef", "exiftool_Panasonic.rw2",
                                  "exiv2_Canon-R6-pruned.CR3", "exiv2_IMG_1361.dng"])
def test_header_only_stubs_raise_read_error(name):
    path = data_path("raw", "stubs", name)
    with pytest.raises(RawReadError) as err:
        read_raw(path)
    msg = str(err.value)
    assert name in msg
    assert "Traceback" not in msg and ("copy" in msg or "complete" in msg or "RAW" in msg)


@pytest.mark.parametrize("fraction", [0.0005, 0.01, 0.1, 0.5, 0.9, 0.9999])
def test_truncated_real_dng_raises_read_error(tmp_path, fraction):
    data = data_path("raw", "blackmagic_pocket4k.dng").read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(data[: max(8, int(len(data) * fraction))])
    with pytest.raises(RawReadError, match="cut.dng"):
        read_raw(cut)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_kdc_raises_read_error(tmp_path, fraction):
    data = data_path("raw", "kodak_dc50.kdc").read_bytes()
    cut = tmp_path / "cut.kdc"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(RawReadError, match="truncated|header|damaged"):
        read_raw(cut)


def test_headerless_bayer_file_is_refused_with_a_pointer():
    with pytest.raises(RawReadError, match="load_bayer_raw"):
        read_raw(data_path("bayer", "d750_rose_768x512_rggb.raw"))


# ---------------------------------------------------------------------------
# bad input files (synthetic)


def _synthetic_dng(tmp_path, name="s.dng", compress=False, shape=(48, 64)):
    rng = np.random.default_rng(5)
    mosaic = rng.integers(600, 15000, size=shape, dtype=np.uint16)
    path = write_dng(tmp_path / name, mosaic, "RGGB", black_level=600, white_level=15520,
                     color_matrix1=D750_D65, compress=compress)
    return path, mosaic


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
def test_truncated_synthetic_dng(tmp_path, compress, fraction):
    path, _ = _synthetic_dng(tmp_path, compress=compress, shape=(300, 520))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(RawReadError, match="truncated"):
        read_raw(path)


def test_missing_empty_directory_text_jpeg_png(tmp_path):
    with pytest.raises(RawReadError, match="no such file"):
        read_raw(tmp_path / "missing.dng")
    with pytest.raises(RawReadError, match="directory"):
        read_raw(tmp_path)
    empty = tmp_path / "empty.nef"
    empty.write_bytes(b"")
    with pytest.raises(RawReadError, match="empty"):
        read_raw(empty)
    text = tmp_path / "notes.cr2"
    text.write_text("this is not a raw file\n" * 50)
    with pytest.raises(RawReadError, match="text file"):
        read_raw(text)
    img = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", img)
    (tmp_path / "photo.dng").write_bytes(jpg.tobytes())
    with pytest.raises(RawReadError, match="JPEG.*read_image"):
        read_raw(tmp_path / "photo.dng")
    cv2.imwrite(str(tmp_path / "pic.png"), img)
    with pytest.raises(RawReadError, match="PNG"):
        read_raw(tmp_path / "pic.png")


@pytest.mark.parametrize("seed", range(6))
def test_garbage_bytes_never_crash(tmp_path, seed):
    rng = np.random.default_rng(seed)
    junk = rng.integers(0, 256, size=int(rng.integers(1, 200_000)), dtype=np.uint8).tobytes()
    if seed % 2:
        junk = b"II*\0\x08\0\0\0" + junk  # a TIFF header over garbage
    p = tmp_path / f"junk{seed}.nef"
    p.write_bytes(junk)
    with pytest.raises(ISPError):
        read_raw(p)


def test_corrupted_dng_header_never_crashes(tmp_path):
    path, _ = _synthetic_dng(tmp_path, shape=(64, 96))
    good = bytearray(path.read_bytes())
    rng = np.random.default_rng(11)
    for i in range(20):
        bad = bytearray(good)
        for pos in rng.integers(8, 400, size=8):
            bad[pos] = int(rng.integers(0, 256))
        p = tmp_path / f"bad{i}.dng"
        p.write_bytes(bytes(bad))
        try:
            frame = read_raw(p)
        except ISPError:
            continue
        assert frame.domain is Domain.RAW_MOSAIC  # still read: damage hit a harmless tag


def test_wrong_path_type():
    with pytest.raises(ParameterError):
        read_raw(12345)


# ---------------------------------------------------------------------------
# unsupported sensor layouts (synthetic DNGs)


def _custom_dng(path, data, photometric, samples, extra_tags):
    """A minimal uncompressed DNG with arbitrary CFA tags (to provoke unsupported layouts)."""
    import struct

    from ispkit.io.dng import _ASCII, _BYTE, _IFD, _LONG, _SHORT

    h, w = data.shape[:2]
    ifd = _IFD()
    for code, ftype, value in [(254, _LONG, 0), (256, _LONG, w), (257, _LONG, h), (258, _SHORT, [16] * samples),
                               (259, _SHORT, 1), (262, _SHORT, photometric), (277, _SHORT, samples),
                               (284, _SHORT, 1), (50706, _BYTE, [1, 4, 0, 0]), (50708, _ASCII, "Test"),
                               (50717, _LONG, 4095), (273, _LONG, [0]), (278, _LONG, h),
                               (279, _LONG, data.nbytes)] + extra_tags:
        ifd.add(code, ftype, value)
    blob, end = ifd.build(8)
    start = end + (-end % 16)
    ifd.add(273, _LONG, [start])
    blob, _ = ifd.build(8)
    with open(path, "wb") as fh:
        fh.write(b"II*\0" + struct.pack("<I", 8) + blob + b"\0" * (start - end))
        fh.write(np.ascontiguousarray(data, dtype="<u2").tobytes())
    return path


XTRANS = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
          1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]


@pytest.mark.parametrize("case, match", [
    ("xtrans", "X-Trans"),
    ("mono", "monochrome"),
    ("linear", "linear"),
    ("cmyg", "colour-filter block"),
    ("quad", "colour-filter block"),
])
def test_unsupported_layouts(tmp_path, case, match):
    from ispkit.io.dng import _BYTE, _SHORT

    m = np.random.default_rng(0).integers(0, 4000, size=(60, 90)).astype(np.uint16)
    spec = {
        "xtrans": (m, 32803, 1, [(33421, _SHORT, [6, 6]), (33422, _BYTE, XTRANS)]),
        "mono": (m, 34892, 1, []),
        "linear": (np.stack([m, m, m], -1), 34892, 3, []),
        "cmyg": (m, 32803, 1, [(33421, _SHORT, [2, 2]), (33422, _BYTE, [3, 4, 5, 6]), (50710, _BYTE, [3, 4, 5, 6])]),
        "quad": (m, 32803, 1, [(33421, _SHORT, [4, 4]),
                               (33422, _BYTE, [0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 2, 2, 1, 1, 2, 2])]),
    }[case]
    path = _custom_dng(tmp_path / f"{case}.dng", *spec)
    with pytest.raises(UnsupportedRawError, match=match) as err:
        read_raw(path)
    assert f"{case}.dng" in str(err.value)


def test_dng_noise_profile_calibration_and_analog_balance(tmp_path):
    from ispkit.io.dng import _ASCII, _BYTE, _DOUBLE, _IFD, _RATIONAL, _SHORT, _SRATIONAL, _fraction

    def srat(m):
        return [_fraction(v, signed=True, name="m") for v in np.ravel(m)]

    cc = np.diag([1.05, 1.0, 0.95])
    ab = np.array([1.1, 1.0, 0.9])
    noise = [2e-5, 1e-7, 3e-5, 2e-7, 4e-5, 3e-7]
    m = np.random.default_rng(2).integers(0, 4000, size=(40, 60)).astype(np.uint16)
    path = _custom_dng(tmp_path / "n.dng", m, 32803, 1, [
        (33421, _SHORT, [2, 2]), (33422, _BYTE, [1, 0, 2, 1]), (271, _ASCII, "Maker"), (272, _ASCII, "Cam 1"),
        (50721, _SRATIONAL, srat(D750_D65)), (50778, _SHORT, 21), (50723, _SRATIONAL, srat(cc)),
        (50727, _RATIONAL, [_fraction(v, signed=False, name="ab") for v in ab]),
        (50730, _SRATIONAL, [(-1, 2)]), (51041, _DOUBLE, noise)])
    frame = read_raw(path)
    meta = frame.meta
    assert meta.cfa_pattern == "GRBG"
    assert (meta.make, meta.model) == ("Maker", "Cam 1")
    assert meta.noise_profile == ((2e-5, 1e-7), (3e-5, 2e-7), (4e-5, 3e-7))
    np.testing.assert_allclose(meta.camera_calibration1, cc)
    np.testing.assert_allclose(meta.analog_balance, ab)
    assert meta.extra["baseline_exposure"] == -0.5
    # DNG §6: XYZ→camera = AnalogBalance · CameraCalibration · ColorMatrix
    np.testing.assert_allclose(meta.cam_to_xyz, np.linalg.inv(np.diag(ab) @ cc @ D750_D65), rtol=1e-9)


def test_flip_table_inverts_dcraw():
    dcraw = "50132467"  # dcraw/LibRaw: flip = dcraw[exif_orientation & 7]
    for exif in range(1, 9):
        assert FLIP_TO_ORIENTATION[int(dcraw[exif & 7])] == exif


# ---------------------------------------------------------------------------
# from_array


def test_from_array_defaults_and_copy():
    mosaic = np.arange(24, dtype=np.uint16).reshape(4, 6)
    frame = from_array(mosaic, "BGGR", black_level=[1, 2, 3, 4], iso=100, make="X")
    mosaic[0, 0] = 999
    assert frame.data[0, 0] == 0  # copied
    assert frame.data.dtype == np.float32
    assert frame.meta.white_level == 65535
    assert frame.meta.cfa_pattern == "BGGR"
    np.testing.assert_array_equal(frame.meta.black_level, [1, 2, 3, 4])
    assert frame.meta.iso == 100 and frame.meta.make == "X"
    assert from_array(np.zeros((4, 4), np.uint8)).meta.white_level == 255
    assert from_array(np.zeros((4, 4), np.float32)).meta.white_level == 1.0
    odd = from_array(np.zeros((5, 7), np.float64), "gbrg", black_level=0.01, white_level=0.9)
    assert odd.shape == (5, 7) and odd.meta.cfa_pattern == "GBRG"
    np.testing.assert_allclose(odd.meta.black_level, [0.01] * 4)


def test_from_array_metadata_fields():
    frame = from_array(np.ones((4, 4)), wb_gains=[2, 1, 1.5], cam_to_xyz=np.eye(3), color_matrix1=D750_D65,
                       calibration_illuminant1=21, noise_profile=[(1e-4, 1e-6)] * 3, orientation=6)
    np.testing.assert_array_equal(frame.meta.wb_gains, [2, 1, 1.5])
    assert frame.meta.orientation == 6
    assert frame.meta.noise_profile[0] == (1e-4, 1e-6)


@pytest.mark.parametrize("kwargs, error", [
    (dict(mosaic=np.zeros((4, 4, 3))), InputError),
    (dict(mosaic=np.zeros(16)), InputError),
    (dict(mosaic=np.zeros((1, 4))), InputError),
    (dict(mosaic=np.array([[1.0, np.nan], [0, 0]])), InputError),
    (dict(mosaic=np.array([[1.0, np.inf], [0, 0]])), InputError),
    (dict(mosaic=np.zeros((4, 4), bool)), InputError),
    (dict(mosaic=np.array([["a", "b"], ["c", "d"]])), InputError),
    (dict(cfa_pattern="RGBW"), ParameterError),
    (dict(black_level=2.0, white_level=1.0), ParameterError),
    (dict(black_level=[0, 0, 0]), ParameterError),
    (dict(white_level=float("nan")), ParameterError),
    (dict(white_level="high"), ParameterError),
    (dict(colour_space="sRGB"), ParameterError),
    (dict(wb_gains=[1, 2]), ParameterError),
    (dict(orientation=0), ParameterError),
])
def test_from_array_rejects(kwargs, error):
    args = dict(mosaic=np.zeros((4, 4), np.float32))
    args.update(kwargs)
    mosaic = args.pop("mosaic")
    with pytest.raises(error):
        from_array(mosaic, **args)


# ---------------------------------------------------------------------------
# load_bayer_raw


def test_d750_phases_load_with_their_patterns():
    frames = {p: load_bayer_raw(data_path("bayer", f"d750_rose_768x512_{p.lower()}.raw")) for p in CFA_PATTERNS}
    ref = frames["RGGB"]
    rp = cfa_position_of("RGGB")
    for pattern, frame in frames.items():
        m = frame.meta
        assert m.cfa_pattern == pattern
        assert frame.shape == (512, 768)
        np.testing.assert_array_equal(m.black_level, [600] * 4)
        assert m.white_level == 15520
        np.testing.assert_allclose(m.wb_gains, [1.94921875, 1.0, 1.34375])
        np.testing.assert_allclose(m.color_matrix2, D750_D65)
        assert m.calibration_illuminant2 == 21
        np.testing.assert_allclose(m.cam_to_xyz, np.linalg.inv(D750_D65))
        pos = cfa_position_of(pattern)
        # the same scene: R and B planes identical, the two green planes the same set
        for ch in ("R", "B"):
            np.testing.assert_array_equal(frame.data[pos[ch][0]::2, pos[ch][1]::2],
                                          ref.data[rp[ch][0]::2, rp[ch][1]::2])
        greens = {frame.data[pos[g][0]::2, pos[g][1]::2].tobytes() for g in ("Gr", "Gb")}
        assert greens == {ref.data[rp[g][0]::2, rp[g][1]::2].tobytes() for g in ("Gr", "Gb")}
        assert 0 < frame.data.min() and frame.data.max() <= 16383


def test_d750_bad_pixel_file_and_sidecar_extra():
    frame = load_bayer_raw(data_path("bayer", "d750_rose_768x512_rggb_badpixels.raw"))
    assert frame.meta.cfa_pattern == "RGGB"
    assert frame.meta.extra["sidecar"]["bit_depth"] == 14
    clean = load_bayer_raw(data_path("bayer", "d750_rose_768x512_rggb.raw"))
    assert 0 < np.count_nonzero(frame.data != clean.data) < 0.01 * frame.data.size


def test_n900_png_and_openisp_raw():
    n900 = load_bayer_raw(data_path("bayer", "n900_dog_256x344_grbg.png"))
    assert n900.meta.cfa_pattern == "GRBG"
    assert n900.shape == (344, 256)
    # black 25 plus the calibration matrices' offset column folded in (M·c + o = M·(c + M⁻¹o))
    assert n900.meta.extra["sidecar_black_level"] == 25
    np.testing.assert_allclose(n900.meta.black_level, [50.68, 53.93, 37.29, 50.68], atol=0.01)
    assert n900.meta.white_level == 1023
    raw16 = cv2.imread(str(data_path("bayer", "n900_dog_256x344_grbg.png")), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(n900.data, raw16.astype(np.float32))
    chart = load_bayer_raw(data_path("bayer", "openisp_chart_1920x1080_rggb.raw"))
    assert chart.meta.cfa_pattern == "RGGB" and chart.shape == (1080, 1920)
    assert chart.data.max() == 1020 and chart.meta.white_level == 1023


def test_load_bayer_raw_errors(tmp_path):
    src = data_path("bayer", "d750_rose_768x512_rggb.raw")
    side = data_path("bayer", "d750_rose_768x512.json")
    cut = tmp_path / "cut_rggb.raw"
    cut.write_bytes(src.read_bytes()[:1000])
    with pytest.raises(RawReadError, match="sidecar"):
        load_bayer_raw(cut)  # no JSON beside it
    with pytest.raises(RawReadError, match="truncated"):
        load_bayer_raw(cut, json_sidecar=side)
    nocfa = tmp_path / "plain.raw"
    nocfa.write_bytes(src.read_bytes())
    (tmp_path / "plain.json").write_text(json.dumps({"width": 768, "height": 512, "white_level": 15520}))
    with pytest.raises(RawReadError, match="CFA"):
        load_bayer_raw(nocfa)
    (tmp_path / "plain.json").write_text(json.dumps({"width": 768, "height": 512, "cfa_pattern": "gbrg",
                                                     "bit_depth": 14}))
    frame = load_bayer_raw(nocfa)
    assert frame.meta.cfa_pattern == "GBRG" and frame.meta.white_level == 16383


# ---------------------------------------------------------------------------
# describe


def test_describe_is_json_friendly(pocket4k):
    info = describe(pocket4k)
    text = json.dumps(info)
    assert json.loads(text)["cfa_pattern"] == "RGGB"
    assert info["width"] == 4128 and info["height"] == 2176
    assert info["black_level"] == [512.0] * 4 and info["white_level"] == 65535
    assert info["calibration_illuminant2"] == {"code": 21, "name": "D65"}
    np.testing.assert_allclose(info["as_shot_neutral"], [0.4533, 1.0, 0.53], rtol=1e-5)
    assert info["value_range"] == [0.0, 65472.0]
    assert info["model"] == "Blackmagic Pocket Cinema Camera 4K"
    small = describe(from_array(np.ones((4, 4)), iso=200, exposure_time=0.01))
    assert small["iso"] == 200 and small["exposure_time"] == 0.01 and small["cam_to_xyz"] is None
    with pytest.raises(ParameterError):
        describe(np.ones((4, 4)))


def test_dng_gain_maps_reach_the_lens_shading_stage(tmp_path):
    """A DNG carrying an OpcodeList2 GainMap: read_raw exposes it and LensShading applies it."""
    import struct

    from ispkit.io import read_raw, write_dng
    from ispkit.stages import BlackLevel, LensShading

    h, w = 64, 96
    # one GainMap (opcode 9) over the whole image, all planes, 2×2 points of gain 2
    params = struct.pack(">10I", 0, 0, h, w, 0, 1, 1, 1, 2, 2) + struct.pack(">4d", 1.0, 1.0, 0.0, 0.0)
    params += struct.pack(">I", 1) + struct.pack(">4f", 2.0, 2.0, 2.0, 2.0)
    opcodes = struct.pack(">I", 1) + struct.pack(">I", 9) + bytes([1, 4, 0, 0]) + struct.pack(">II", 0, len(params))
    path = write_dng(tmp_path / "gm.dng", np.full((h, w), 1000, np.uint16), "RGGB", black_level=0,
                     white_level=4095, color_matrix1=np.eye(3), as_shot_neutral=(1, 1, 1),
                     opcode_list2=opcodes + params, baseline_exposure=0.5)
    frame = read_raw(path)
    assert len(frame.meta.extra["gain_maps"]) == 1
    assert frame.meta.extra["baseline_exposure"] == pytest.approx(0.5)
    out = LensShading()(BlackLevel()(frame))
    np.testing.assert_allclose(out.data, 2 * 1000 / 4095, rtol=1e-5)
