"""Black level / linearisation: Numba kernel vs NumPy reference, DNG semantics, stage contract."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.pipeline import Stage
from ispkit.stages.black_level import BLACK_LEVEL_PATTERN_KEY, BlackLevel, subtract_black_level
from tests.conftest import data_path


def reference(x, black4=None, white=1.0, lut=None, pattern=None, clip=False):
    """Plain NumPy version of the DNG mapping (float64)."""
    v = np.asarray(x, dtype=np.float64)
    if lut is not None:
        lut = np.asarray(lut, dtype=np.float32).astype(np.float64)
        idx = np.clip(np.floor(v + 0.5), 0, len(lut) - 1).astype(np.int64)
        v = lut[idx]
    pat = np.asarray(pattern, dtype=np.float64) if pattern is not None else \
        np.broadcast_to(np.asarray(black4, dtype=np.float64).ravel(), (4,)).reshape(2, 2)
    h, w = v.shape
    tile = np.tile(pat, (h // pat.shape[0] + 1, w // pat.shape[1] + 1))[:h, :w]
    out = (v - tile) / (white - tile)
    return np.clip(out, 0, 1) if clip else out


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32, np.float64])
@pytest.mark.parametrize("clip", [False, True])
def test_kernel_matches_numpy_per_position(rng, dtype, clip):
    x = rng.integers(0, 16384, size=(37, 54)).astype(dtype)
    black = [600.0, 611.5, 598.0, 640.25]
    got = subtract_black_level(x, black, 15520, clip=clip)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, reference(x, black, 15520, clip=clip), rtol=2e-6, atol=2e-7)


def test_scalar_black_level_and_saturation_is_one():
    x = np.full((4, 6), 1000, np.uint16)
    black = [100, 200, 300, 400]
    out = subtract_black_level(x, black, 1000)
    np.testing.assert_array_equal(out, np.ones_like(out))  # white maps to exactly 1 at every position
    out = subtract_black_level(np.full((2, 2), 64, np.uint16), 64, 1023)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (4, 2), (3, 5), (6, 6)])
def test_black_level_repeat_pattern(rng, shape):
    x = rng.integers(0, 4096, size=(23, 31)).astype(np.float32)
    pattern = rng.uniform(50, 300, size=shape)
    got = subtract_black_level(x, [0, 0, 0, 0], 4095, black_level_pattern=pattern)
    np.testing.assert_allclose(got, reference(x, white=4095, pattern=pattern), rtol=2e-6, atol=2e-7)


def test_linearization_table(rng):
    # a quadratic companding curve: stored 10-bit codes expand to 14-bit linear values
    codes = np.arange(1024)
    lut = np.round((codes / 1023.0) ** 2 * 16383)
    x = rng.integers(0, 1100, size=(20, 30)).astype(np.uint16)  # some codes past the table end
    got = subtract_black_level(x, [64, 64, 64, 64], 16383, linearization_table=lut)
    np.testing.assert_allclose(got, reference(x, [64] * 4, 16383, lut=lut), rtol=2e-6, atol=2e-7)
    # codes past the end use the last entry → saturate at exactly (16383 - 64) / (16383 - 64)
    assert got[x >= 1023].size and np.all(got[x >= 1023] == 1.0)
    # float input rounds to the nearest code; negative values use entry 0
    xf = np.array([[0.4, 0.6, -5.0, 2.49]], np.float32)
    xf = np.vstack([xf, xf])
    got = subtract_black_level(xf, 0, 16383, linearization_table=lut)
    np.testing.assert_allclose(got[0], np.array([lut[0], lut[1], lut[0], lut[2]]) / 16383, rtol=1e-6)


def test_lut_with_clip_and_pattern(rng):
    lut = np.linspace(0, 5000, 4096)
    pattern = rng.uniform(100, 200, size=(2, 4))
    x = rng.integers(0, 4096, size=(10, 12)).astype(np.uint16)
    got = subtract_black_level(x, 0, 4000, linearization_table=lut, black_level_pattern=pattern, clip=True)
    np.testing.assert_allclose(got, reference(x, white=4000, lut=lut, pattern=pattern, clip=True),
                               rtol=2e-6, atol=2e-7)
    assert got.max() == 1.0 and got.min() == 0.0


def test_out_buffer_is_used(rng):
    x = rng.integers(0, 1000, size=(8, 8)).astype(np.float32)
    out = np.empty((8, 8), np.float32)
    res = subtract_black_level(x, 10, 1000, out=out)
    assert res is out
    np.testing.assert_allclose(out, reference(x, 10, 1000), rtol=1e-6)
    with pytest.raises(ParameterError):
        subtract_black_level(x, 10, 1000, out=np.empty((8, 8), np.float64))


@pytest.mark.parametrize("white,black", [(600, [600] * 4), (500, [100, 200, 600, 300]), (0.0, 0)])
def test_white_not_above_black_raises_naming_values(white, black):
    with pytest.raises(ParameterError) as exc:
        subtract_black_level(np.zeros((4, 4), np.uint16), black, white)
    msg = str(exc.value)
    assert "black_level" in msg and f"{float(white):g}" in msg


def test_pattern_white_not_above_black_raises():
    with pytest.raises(ParameterError, match="white level 200"):
        subtract_black_level(np.zeros((4, 4)), 0, 200, black_level_pattern=np.full((3, 3), 250.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises(bad):
    x = np.ones((6, 8), np.float32)
    x[3, 5] = bad
    with pytest.raises(InputError, match="non-finite"):
        subtract_black_level(x, 0, 2)
    with pytest.raises(InputError, match="non-finite"):
        subtract_black_level(x, 0, 2, linearization_table=np.arange(4.0))


@pytest.mark.parametrize("kwargs", [
    dict(black_level=[1, 2, 3]),
    dict(black_level=[np.nan] * 4),
    dict(black_level_pattern=np.zeros(4)),
    dict(black_level_pattern=np.zeros((0, 2))),
    dict(linearization_table=[]),
    dict(linearization_table=[0, np.inf]),
    dict(white_level=np.inf),
])
def test_bad_parameters_raise(kwargs):
    args = dict(black_level=0, white_level=100)
    args.update(kwargs)
    with pytest.raises(ParameterError):
        subtract_black_level(np.zeros((4, 4)), args.pop("black_level"), args.pop("white_level"), **args)


@pytest.mark.parametrize("x", [np.zeros((4, 4, 3)), np.zeros(5), np.zeros((0, 4)), np.zeros((2, 2), complex)])
def test_bad_input_raises(x):
    with pytest.raises(InputError):
        subtract_black_level(x, 0, 1)


def _frame(data, **meta):
    meta.setdefault("cfa_pattern", "RGGB")
    return Frame(np.asarray(data, np.float32), Domain.RAW_MOSAIC, CaptureMetadata(**meta))


def test_stage_updates_metadata_and_keeps_input(rng):
    x = rng.integers(0, 4096, size=(16, 20)).astype(np.float32)
    lut = np.linspace(0, 8000, 4096)
    pattern = np.array([[100.0, 110, 120], [130, 140, 150]])
    f = _frame(x, black_level=[1, 2, 3, 4], white_level=7000.0, linearization_table=lut,
               extra={BLACK_LEVEL_PATTERN_KEY: pattern, "keep": 1})
    before = f.data.copy()
    out = BlackLevel()(f)
    np.testing.assert_array_equal(f.data, before)
    assert out.domain is Domain.RAW_MOSAIC and out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, reference(x, white=7000, lut=lut, pattern=pattern), rtol=2e-6, atol=2e-7)
    m = out.meta
    np.testing.assert_array_equal(m.white_point, [1, 1, 1])
    np.testing.assert_array_equal(m.black_level, [0, 0, 0, 0])
    assert m.white_level == 1.0 and m.linearization_table is None
    assert BLACK_LEVEL_PATTERN_KEY not in m.extra and m.extra["keep"] == 1
    # applying it again is the identity (everything has been consumed)
    np.testing.assert_array_equal(BlackLevel()(out).data, out.data)


def test_stage_clip_config_roundtrip_and_pickle():
    st = BlackLevel(clip=True)
    cfg = st.to_config()
    assert cfg["type"] == "black_level" and cfg["params"]["clip"] is True
    assert type(st).from_params(cfg["params"]) == st
    assert pickle.loads(pickle.dumps(st)) == st
    f = _frame([[0, 100], [50, 2000]], black_level=[10] * 4, white_level=1010.0)
    out = st(f)
    assert out.data.min() == 0.0 and out.data.max() == 1.0
    with pytest.raises(ParameterError):
        BlackLevel(clip="yes")  # type: ignore[arg-type]


def test_stage_error_names_stage_and_values():
    f = _frame(np.zeros((4, 4)), black_level=[600] * 4, white_level=500.0)
    with pytest.raises(ParameterError, match=r"black_level: white level 500 must exceed every black level \[600"):
        BlackLevel()(f)


def test_stage_spec():
    spec = BlackLevel().spec
    assert spec.in_domains == (Domain.RAW_MOSAIC,) and spec.pointwise
    assert "white_point" in spec.provides and isinstance(BlackLevel(), Stage)


def test_d750_real_mosaic_matches_sidecar():
    raw = data_path("bayer", "d750_rose_768x512_rggb.raw")
    meta = json.loads(data_path("bayer", "d750_rose_768x512.json").read_text())
    x = np.fromfile(raw, dtype="<u2").reshape(meta["height"], meta["width"])
    got = subtract_black_level(x, meta["black_level"], meta["white_level"])
    np.testing.assert_allclose(got, (x.astype(np.float64) - 600) / (15520 - 600), rtol=2e-6, atol=2e-7)
    # 14-bit codes: the sidecar white level is below the ADC ceiling, so values may exceed 1
    assert got.max() <= (16383 - 600) / 14920 and got.min() >= -600 / 14920


def test_blackmagic_dng_against_rawpy_levels():
    rawpy = pytest.importorskip("rawpy")
    with rawpy.imread(str(data_path("raw", "blackmagic_pocket4k.dng"))) as r:
        x = r.raw_image_visible[:512, :768].copy()
        per_channel = np.asarray(r.black_level_per_channel, dtype=np.float64)
        pattern = np.asarray(r.raw_pattern)
        white = float(r.white_level)
    black4 = per_channel[pattern.ravel()]  # colour index → raster order of the 2×2 block
    f = _frame(x, black_level=black4, white_level=white)
    out = BlackLevel()(f)
    np.testing.assert_allclose(out.data, reference(x, black4, white), rtol=2e-6, atol=2e-7)
    np.testing.assert_array_equal(out.meta.white_point, [1, 1, 1])


# --- LibRaw's white-level adjustment (adjust_maximum_thr) --------------------------------------


@pytest.mark.parametrize("black4, peak_pos, expected", [
    # black 512 everywhere, data reaching 15089: LibRaw's maximum = 15089 - 512 = 14577 > 0.75·15871
    ((512, 512, 512, 512), 0, 15089.0),
    # uneven blacks: the peak sits on a position whose black is 40 above the common 500;
    # data maximum after its whole black = 15089 - 540 = 14549, white = 500 + 14549
    ((500, 540, 520, 510), 1, 15049.0),
])
def test_adjusted_white_level_takes_data_maximum_after_whole_black(black4, peak_pos, expected):
    from ispkit.stages.black_level import adjusted_white_level

    x = np.full((8, 8), 3000, dtype=np.uint16)
    dy, dx = divmod(peak_pos, 2)
    x[2 + dy, 4 + dx] = 15089
    assert adjusted_white_level(x, black4, 16383, 0.75) == pytest.approx(expected)
    # below the threshold the file's white level stays
    x[2 + dy, 4 + dx] = 9000
    assert adjusted_white_level(x, black4, 16383, 0.75) == 16383.0
    assert adjusted_white_level(x, black4, 16383, 0.0) == 16383.0


def test_adjusted_white_level_matches_the_normalised_peak():
    """After the adjustment the brightest sample of a uniform-black mosaic maps to exactly 1."""
    x = np.full((6, 6), 700, dtype=np.uint16)
    x[3, 3] = 15089
    stage = BlackLevel(adjust_maximum_thr=0.75)
    out = stage(_frame(x, black_level=(512, 512, 512, 512), white_level=16383.0))
    assert out.data.max() == pytest.approx(1.0, abs=1e-6)
