"""write_dng(path, frame): a RAW_MOSAIC Frame and its metadata read back through rawpy and read_raw unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from ispkit.errors import InputError, MissingMetadataError, ParameterError
from ispkit.frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame
from ispkit.io import read_raw, write_dng
from ispkit.io.dng import frame_to_counts, read_dng_tags
from tests.conftest import data_path

D750 = np.array([[0.902, -0.289, -0.0715], [-0.4535, 1.2436, 0.2348], [-0.0934, 0.1919, 0.7086]])
XYZ_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                    [0.019334, 0.119193, 0.950227]])
# dcraw/LibRaw flip for each EXIF orientation
EXIF_TO_FLIP = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}


def _counts_frame(pattern: str, orientation: int = 1, **meta_kw) -> Frame:
    """Gains whose as-shot neutral (1/gain) is a short decimal and whose value is exact in float32,
    since LibRaw keeps its multipliers as float32."""
    rng = np.random.default_rng(len(pattern) + orientation)
    counts = rng.integers(590, 15520, (40, 56)).astype(np.float32)
    meta = dict(black_level=[600, 601, 590, 603], white_level=15520, cfa_pattern=pattern, wb_gains=[2.0, 1.0, 1.25],
                cam_to_xyz=np.linalg.inv(D750), calibration_illuminant1=21, orientation=orientation,
                make="Nikon", model="D750", noise_profile=((2.5e-4, 1.25e-6), (2e-4, 1e-6), (3e-4, 1.5e-6)),
                extra={"baseline_exposure": 0.25})
    meta.update(meta_kw)
    return Frame(counts, Domain.RAW_MOSAIC, CaptureMetadata(**meta))


@pytest.mark.parametrize("orientation", [1, 6, 8])
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_frame_round_trips_through_rawpy_bit_for_bit(tmp_path, pattern, orientation):
    frame = _counts_frame(pattern, orientation)
    path = write_dng(tmp_path / "f.dng", frame)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image, frame.data.astype(np.uint16))
        desc = raw.color_desc.decode()
        assert "".join(desc[c] for c in raw.raw_pattern.ravel()) == pattern
        blpc = raw.black_level_per_channel
        assert [blpc[c] for c in raw.raw_pattern.ravel()] == [600, 601, 590, 603]
        assert raw.white_level == 15520
        cam_mul = np.array(raw.camera_whitebalance[:3], dtype=np.float32)
        np.testing.assert_array_equal(cam_mul / cam_mul[1], np.float32([2.0, 1.0, 1.25]))
        # LibRaw knows the Nikon D750: its built-in matrix is the one written (Adobe's)
        np.testing.assert_array_equal(raw.rgb_xyz_matrix[:3], D750.astype(np.float32))
        # and its rgb_cam follows the file's ColorMatrix1 (cam_xyz_coeff: normalise rows, invert)
        cam_rgb = D750 @ XYZ_RGB
        expected = np.linalg.inv(cam_rgb / cam_rgb.sum(axis=1, keepdims=True))
        np.testing.assert_allclose(raw.color_matrix[:, :3], expected, atol=2e-3)
        assert raw.sizes.flip == EXIF_TO_FLIP[orientation]


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_frame_round_trips_through_read_raw_with_identical_metadata(tmp_path, pattern):
    frame = _counts_frame(pattern, 3)
    back = read_raw(write_dng(tmp_path / "f.dng", frame, compress=True))
    np.testing.assert_array_equal(back.data, frame.data)
    a, b = frame.meta, back.meta
    assert b.cfa_pattern == a.cfa_pattern and b.orientation == a.orientation
    np.testing.assert_array_equal(b.black_level, a.black_level)
    assert b.white_level == a.white_level
    np.testing.assert_array_equal(b.wb_gains, a.wb_gains)
    np.testing.assert_array_equal(b.cam_to_xyz, a.cam_to_xyz)
    np.testing.assert_array_equal(b.color_matrix1, D750)
    assert b.calibration_illuminant1 == 21
    assert b.noise_profile == a.noise_profile
    assert (b.make, b.model) == (a.make, a.model)
    assert read_dng_tags(tmp_path / "f.dng")["baseline_exposure"] == 0.25


def test_a_normalised_frame_is_mapped_to_16_bit_counts(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.01, 1.0, (32, 48)).astype(np.float32)
    cam_to_xyz = np.linalg.inv(D750) * 1.000123  # not a short decimal: rationals approximate it
    frame = Frame(x, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="BGGR", wb_gains=[2.17, 1.0, 1.73],
                                                        cam_to_xyz=cam_to_xyz))
    counts, black, white = frame_to_counts(frame)
    assert counts.dtype == np.uint16 and white == 65535 and not black.any()
    back = read_raw(write_dng(tmp_path / "n.dng", frame))
    assert back.meta.white_level == 65535 and not back.meta.black_level.any()
    np.testing.assert_allclose(back.data / 65535.0, np.clip(x, 0, 1), atol=0.5 / 65535 + 1e-9)
    np.testing.assert_allclose(back.meta.cam_to_xyz, cam_to_xyz, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(back.meta.wb_gains, [2.17, 1.0, 1.73], rtol=1e-6)
    # explicit levels: a 14-bit camera with a black offset keeps the noise below black
    lo = read_raw(write_dng(tmp_path / "b.dng", frame, black_level=512, white_level=16383))
    assert lo.meta.white_level == 16383 and lo.data.min() < 512
    np.testing.assert_allclose((lo.data - 512) / (16383 - 512), x, atol=0.5 / (16383 - 512) + 1e-9)


def test_dng_colour_tags_of_a_real_capture_are_written_back(tmp_path):
    frame = read_raw(data_path("raw", "blackmagic_pocket4k.dng"))
    crop = frame.replace(data=np.ascontiguousarray(frame.data[:64, :96]))
    back = read_raw(write_dng(tmp_path / "bm.dng", crop))
    np.testing.assert_array_equal(back.data, crop.data)
    for key in ("color_matrix1", "color_matrix2", "forward_matrix1", "forward_matrix2", "black_level", "wb_gains"):
        np.testing.assert_allclose(getattr(back.meta, key), getattr(crop.meta, key), rtol=1e-6, atol=1e-9,
                                   err_msg=key)
    assert back.meta.calibration_illuminant1 == crop.meta.calibration_illuminant1
    assert back.meta.calibration_illuminant2 == crop.meta.calibration_illuminant2
    assert back.meta.white_level == crop.meta.white_level and back.meta.cfa_pattern == crop.meta.cfa_pattern


def test_the_inverse_pipeline_output_writes_back_the_original_counts(tmp_path):
    from ispkit.pipeline import Pipeline
    from ispkit.stages import BlackLevel, ColorMatrix, Demosaic, Gamma, WhiteBalance

    frame = _counts_frame("GBRG")
    fwd = Pipeline([BlackLevel(), WhiteBalance(), Demosaic(), ColorMatrix(), Gamma()])
    raw = fwd.inverse()(fwd(frame))
    back = read_raw(write_dng(tmp_path / "inv.dng", raw))
    np.testing.assert_array_equal(back.data, frame.data)
    np.testing.assert_array_equal(back.meta.black_level, frame.meta.black_level)


def test_frame_form_errors(tmp_path):
    frame = _counts_frame("RGGB")
    rgb = Frame(np.zeros((24, 24, 3), np.float32), Domain.CAMERA_RGB, frame.meta)
    with pytest.raises(InputError, match="RAW_MOSAIC"):
        write_dng(tmp_path / "x.dng", rgb)
    bare = frame.replace(cam_to_xyz=None)
    with pytest.raises(MissingMetadataError, match="ColorMatrix1"):
        write_dng(tmp_path / "x.dng", bare)
    with pytest.raises(ParameterError, match="contradicts"):
        write_dng(tmp_path / "x.dng", frame, "BGGR")
    with pytest.raises(ParameterError, match="needs black_level, white_level, color_matrix1"):
        write_dng(tmp_path / "x.dng", frame.data.astype(np.uint16), "RGGB")
    with pytest.raises(InputError, match="NaN"):
        write_dng(tmp_path / "x.dng", frame.replace(data=np.full((24, 24), np.nan, np.float32)))
    with pytest.raises(ParameterError, match="noise_profile"):
        write_dng(tmp_path / "x.dng", frame, noise_profile=[(0.0, 1.0)])
