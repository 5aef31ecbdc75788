"""Named colour spaces, chromatic adaptation, CCT ↔ xy and the 3×3 matrix kernel vs colour-science."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError, UnknownNameError
from ispkit.stages.colorspaces import (
    BRADFORD_MATRIX,
    CCT_TO_XY_METHODS,
    CHROMATIC_ADAPTATION_METHODS,
    COLOR_SPACE_ALIASES,
    COLOR_SPACE_PRIMARIES,
    COLOR_SPACES,
    ILLUMINANTS_XY,
    ROBERTSON1968_ISOTEMPERATURE_LINES,
    XY_TO_CCT_METHODS,
    apply_color_matrix,
    apply_color_matrix_reference,
    canonical_color_space,
    cct_to_xy,
    chromatic_adaptation_matrix,
    get_color_space,
    illuminant_xy,
    rgb_to_rgb_matrix,
    rgb_to_xyz_matrix,
    whitepoint_xyz,
    xy_to_cct,
    xyz_to_rgb_matrix,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

ILLUMINANTS = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]
RGB_SPACES = [name for name, (cname, _) in COLOR_SPACES.items() if cname is not None]


def _derived(name: str):
    """colour's colourspace with matrices derived from primaries + white (as ispkit uses)."""
    cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]].copy()
    cs.use_derived_transformation_matrices(True)
    return cs


# --- the table -----------------------------------------------------------------------------

def test_table_names_and_aliases():
    assert set(COLOR_SPACES) == {"sRGB", "Display P3", "Adobe RGB (1998)", "ProPhoto RGB",
                                 "ITU-R BT.2020", "XYZ"}
    expected = {"srgb": "sRGB", "p3": "Display P3", "adobe_rgb": "Adobe RGB (1998)",
                "prophoto": "ProPhoto RGB", "rec2020": "ITU-R BT.2020", "xyz": "XYZ"}
    for alias, name in expected.items():
        assert canonical_color_space(alias) == name
        assert COLOR_SPACE_ALIASES[alias] == name
        assert canonical_color_space(alias.upper()) == name
    for name in COLOR_SPACES:
        assert canonical_color_space(name) == name
        assert canonical_color_space(name.lower()) == name


def test_unknown_space_lists_valid_names():
    with pytest.raises(UnknownNameError, match="prophoto"):
        canonical_color_space("rec709x")
    with pytest.raises(UnknownNameError):
        canonical_color_space(3)
    with pytest.raises(ParameterError):  # UnknownNameError is a ParameterError
        xyz_to_rgb_matrix("cmyk")


def test_whitepoints_follow_colour():
    for name in RGB_SPACES:
        cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]]
        np.testing.assert_array_equal(get_color_space(name).whitepoint, cs.whitepoint)
    assert get_color_space("prophoto").whitepoint_name == "D50"
    assert get_color_space("srgb").whitepoint_name == "D65"
    np.testing.assert_array_equal(get_color_space("xyz").whitepoint, ILLUMINANTS["D50"])
    np.testing.assert_allclose(whitepoint_xyz("xyz"), [0.96429568, 1.0, 0.8251046], atol=1e-8)


@pytest.mark.parametrize("name", list(COLOR_SPACES))
def test_white_maps_to_ones_exactly(name):
    m = xyz_to_rgb_matrix(name)
    white = whitepoint_xyz(name) if name == "XYZ" else np.ones(3)  # XYZ's "RGB" white is the D50 XYZ
    np.testing.assert_allclose(m @ whitepoint_xyz(name), white, rtol=0, atol=1e-14)
    np.testing.assert_allclose(rgb_to_xyz_matrix(name) @ m, np.eye(3), rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", RGB_SPACES)
def test_matrices_match_colour(name):
    # exactly colour's derived normalised primary matrix ...
    np.testing.assert_allclose(rgb_to_xyz_matrix(name), _derived(name).matrix_RGB_to_XYZ, rtol=0, atol=1e-15)
    # ... and within the standards' printed rounding of colour's default matrices
    cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]]
    np.testing.assert_allclose(rgb_to_xyz_matrix(name), cs.matrix_RGB_to_XYZ, rtol=0, atol=2.1e-4)
    np.testing.assert_allclose(xyz_to_rgb_matrix(name), cs.matrix_XYZ_to_RGB, rtol=0, atol=3.8e-4)


def test_published_srgb_matrix():
    # IEC 61966-2-1 XYZ→sRGB, 4 decimals
    iec = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])
    np.testing.assert_allclose(xyz_to_rgb_matrix("srgb"), iec, atol=4e-4)


# --- RGB → RGB and chromatic adaptation ---------------------------------------------------

@pytest.mark.parametrize("src,dst", list(itertools.permutations(RGB_SPACES, 2)))
def test_rgb_to_rgb_matches_colour(src, dst, rng):
    rgb = rng.uniform(-0.1, 1.5, (64, 3))
    ref = colour.RGB_to_RGB(rgb, _derived(src), _derived(dst), chromatic_adaptation_transform="Bradford")
    ours = rgb @ rgb_to_rgb_matrix(src, dst).T
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rgb_to_rgb_matrix(src, dst) @ np.ones(3), np.ones(3), atol=1e-14)


@pytest.mark.parametrize("name", RGB_SPACES)
def test_rgb_to_xyz_space_matches_colour(name, rng):
    rgb = rng.uniform(0, 1, (32, 3))
    d50 = ILLUMINANTS["D50"]
    ref = colour.RGB_to_XYZ(rgb, _derived(name), illuminant=d50, chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(rgb @ rgb_to_rgb_matrix(name, "xyz").T, ref, rtol=0, atol=1e-12)
    back = colour.XYZ_to_RGB(ref, _derived(name), illuminant=d50, chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(ref @ rgb_to_rgb_matrix("xyz", name).T, back, rtol=0, atol=1e-12)


def test_rgb_to_rgb_without_adaptation():
    m = rgb_to_rgb_matrix("srgb", "prophoto", cat=None)
    np.testing.assert_allclose(m, xyz_to_rgb_matrix("prophoto") @ rgb_to_xyz_matrix("srgb"), atol=1e-15)
    assert np.abs(m @ np.ones(3) - 1).max() > 0.01  # D65 white is not ProPhoto's D50 white


@pytest.mark.parametrize("method", sorted(CHROMATIC_ADAPTATION_METHODS))
def test_chromatic_adaptation_matches_colour(method, rng):
    src, dst = ILLUMINANTS["A"], ILLUMINANTS["D65"]
    xyz = rng.uniform(0.05, 1.0, (16, 3))
    ref = colour.chromatic_adaptation(xyz, colour.xy_to_XYZ(src), colour.xy_to_XYZ(dst), method="Von Kries",
                                      transform=CHROMATIC_ADAPTATION_METHODS[method])
    m = chromatic_adaptation_matrix(src, dst, method)
    np.testing.assert_allclose(xyz @ m.T, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m @ colour.xy_to_XYZ(src), colour.xy_to_XYZ(dst), atol=1e-13)


def test_bradford_published_d65_to_d50():
    # Lindbloom's Bradford D65→D50 (whites 0.95047/1.08883 → 0.96422/0.82521)
    lindbloom = np.array([[1.0478112, 0.0228866, -0.0501270],
                          [0.0295424, 0.9904844, -0.0170491],
                          [-0.0092345, 0.0150436, 0.7521316]])
    d65 = colour.XYZ_to_xy([0.95047, 1.0, 1.08883])
    d50 = colour.XYZ_to_xy([0.96422, 1.0, 0.82521])
    np.testing.assert_allclose(chromatic_adaptation_matrix(d65, d50, "Bradford"), lindbloom, atol=1e-7)
    # by hand from Lam's (1985) cone matrix, with colour-science's D65/D50 whites
    cone = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    gain = (cone @ colour.xy_to_XYZ(ILLUMINANTS["D50"])) / (cone @ colour.xy_to_XYZ(ILLUMINANTS["D65"]))
    m = chromatic_adaptation_matrix(ILLUMINANTS["D65"], ILLUMINANTS["D50"], "Bradford")
    np.testing.assert_allclose(m, np.linalg.inv(cone) @ np.diag(gain) @ cone, rtol=0, atol=1e-14)
    # colour-science spellings and case are accepted; unknown names list the valid ones
    np.testing.assert_array_equal(chromatic_adaptation_matrix(ILLUMINANTS["D65"], ILLUMINANTS["D50"], "BRADFORD"), m)
    von_kries = chromatic_adaptation_matrix(ILLUMINANTS["D65"], ILLUMINANTS["D50"], "Von Kries")
    assert not np.allclose(von_kries, m)
    with pytest.raises(UnknownNameError, match="bradford"):
        chromatic_adaptation_matrix(ILLUMINANTS["D65"], ILLUMINANTS["D50"], "bradfurd")
    with pytest.raises(ParameterError):
        chromatic_adaptation_matrix([0.3, 0.0], ILLUMINANTS["D50"])


# --- CCT ↔ xy ----------------------------------------------------------------------------

XY_SAMPLES = np.array([ILLUMINANTS[k] for k in ("A", "D50", "D55", "D65", "D75", "FL2", "FL11")])


def test_xy_to_cct_matches_colour():
    uv = colour.xy_to_UCS_uv(XY_SAMPLES)
    refs = {
        "robertson1968": colour.temperature.uv_to_CCT_Robertson1968(uv)[:, 0],
        "ohno2013": colour.temperature.uv_to_CCT_Ohno2013(uv)[:, 0],
        "mccamy1992": colour.xy_to_CCT(XY_SAMPLES, method="McCamy 1992"),
        "hernandez1999": colour.xy_to_CCT(XY_SAMPLES, method="Hernandez 1999"),
    }
    assert set(refs) == set(XY_TO_CCT_METHODS)
    for method, ref in refs.items():
        np.testing.assert_allclose(xy_to_cct(XY_SAMPLES, method), ref, rtol=1e-12, atol=1e-5)
    assert isinstance(xy_to_cct(XY_SAMPLES[0]), float)


def test_xy_to_cct_published_values():
    # CIE 15:2004 CCTs: A 2856 K, D65 6504 K, D50 5003 K, D75 7504 K
    assert xy_to_cct(ILLUMINANTS["A"]) == pytest.approx(2856, abs=1.0)
    assert xy_to_cct(ILLUMINANTS["D65"]) == pytest.approx(6504, abs=1.0)
    assert xy_to_cct(ILLUMINANTS["D50"]) == pytest.approx(5003, abs=3.0)
    assert xy_to_cct(ILLUMINANTS["D75"]) == pytest.approx(7504, abs=1.5)


def test_cct_to_xy_matches_colour_and_round_trips():
    cct = np.array([2000.0, 2856.0, 3500.0, 4300.0, 5003.0, 6504.0, 9000.0, 15000.0])
    zeros = np.zeros_like(cct)
    refs = {
        "robertson1968": colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Robertson1968(np.stack([cct, zeros], -1))),
        "ohno2013": colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Ohno2013(np.stack([cct, zeros], -1))),
        "krystek1985": colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Krystek1985(cct)),
        "kang2002": colour.temperature.CCT_to_xy_Kang2002(cct),
    }
    assert set(refs) == set(CCT_TO_XY_METHODS)
    for method, ref in refs.items():
        np.testing.assert_allclose(cct_to_xy(cct, method), ref, rtol=0, atol=1e-12)
    # Robertson both ways (table interpolation differs slightly each way): within 1e-5 relative
    np.testing.assert_allclose(xy_to_cct(cct_to_xy(cct)), cct, rtol=1e-5)
    # the methods agree on the Planckian locus
    np.testing.assert_allclose(cct_to_xy(cct, "robertson1968"), cct_to_xy(cct, "ohno2013"), atol=3e-4)
    assert cct_to_xy(6504.0).shape == (2,)


def test_cct_bad_input():
    with pytest.raises(UnknownNameError):
        xy_to_cct([0.31, 0.33], "robertson")
    with pytest.raises(UnknownNameError):
        cct_to_xy(5000, "mccamy1992")  # xy → CCT only
    with pytest.raises(ParameterError):
        cct_to_xy(-10)
    with pytest.raises(ParameterError):
        xy_to_cct([np.nan, 0.3])


# --- the literal tables equal colour-science's, and so do the closed forms -------------------

def test_illuminant_table_equals_colour():
    assert {"A", "B", "C", "D50", "D55", "D65", "D75", "E"} <= set(ILLUMINANTS_XY)
    assert {f"FL{i}" for i in range(1, 13)} <= set(ILLUMINANTS_XY)
    for name, xy in ILLUMINANTS_XY.items():
        np.testing.assert_array_equal(np.array(xy), ILLUMINANTS[name], err_msg=name)
        assert illuminant_xy(name) == xy
    # names outside the table come from colour-science; unknown ones list the valid names
    np.testing.assert_array_equal(illuminant_xy("FL3.1"), ILLUMINANTS["FL3.1"])
    with pytest.raises(UnknownNameError, match="D65"):
        illuminant_xy("D66")


def test_primaries_table_equals_colour():
    assert set(COLOR_SPACE_PRIMARIES) == set(RGB_SPACES)
    for name, (primaries, white) in COLOR_SPACE_PRIMARIES.items():
        cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]]
        np.testing.assert_array_equal(np.array(primaries), cs.primaries, err_msg=name)
        assert white == cs.whitepoint_name
        np.testing.assert_array_equal(np.array(ILLUMINANTS_XY[white]), cs.whitepoint, err_msg=name)


@pytest.mark.parametrize("name", RGB_SPACES)
def test_derived_matrices_equal_colour_to_the_bit(name):
    cs = colour.RGB_COLOURSPACES[COLOR_SPACES[name][0]]
    npm = colour.normalised_primary_matrix(cs.primaries, cs.whitepoint)
    np.testing.assert_allclose(rgb_to_xyz_matrix(name), npm, rtol=0, atol=1e-16)
    np.testing.assert_allclose(xyz_to_rgb_matrix(name), np.linalg.inv(npm), rtol=0, atol=1e-15)
    np.testing.assert_allclose(whitepoint_xyz(name), colour.xy_to_XYZ(cs.whitepoint), rtol=0, atol=1e-16)


def test_bradford_table_and_adaptation_equal_colour(rng):
    np.testing.assert_array_equal(np.array(BRADFORD_MATRIX),
                                  colour.adaptation.CHROMATIC_ADAPTATION_TRANSFORMS["Bradford"])
    xy = np.column_stack([rng.uniform(0.22, 0.52, 200), rng.uniform(0.22, 0.44, 200)])
    for src, dst in zip(xy[::2], xy[1::2]):
        ref = colour.adaptation.matrix_chromatic_adaptation_VonKries(
            colour.xy_to_XYZ(src), colour.xy_to_XYZ(dst), transform="Bradford")
        np.testing.assert_allclose(chromatic_adaptation_matrix(src, dst), ref, rtol=0, atol=1e-15)


def test_robertson_table_equals_colour():
    from colour.temperature.robertson1968 import DATA_ISOTEMPERATURE_LINES_ROBERTSON1968 as ref

    assert len(ROBERTSON1968_ISOTEMPERATURE_LINES) == 31
    np.testing.assert_array_equal(np.array(ROBERTSON1968_ISOTEMPERATURE_LINES), np.array(ref))
    assert ROBERTSON1968_ISOTEMPERATURE_LINES[19] == (325, 0.24792, 0.34655, -2.4681)  # Lindbloom's fix
    np.testing.assert_array_equal(np.array(ROBERTSON1968_ISOTEMPERATURE_LINES)[:, 0],
                                  list(range(0, 100, 10)) + list(range(100, 625, 25)))


def test_robertson_xy_to_cct_equals_colour_everywhere(rng):
    # chromaticities all over the locus region, including past both ends of the table
    # (below 1667 K and above infinity-mired 0) and exactly on isotemperature lines
    xy = np.column_stack([rng.uniform(0.18, 0.62, 3000), rng.uniform(0.12, 0.46, 3000)])
    on_lines = colour.UCS_uv_to_xy(np.array(ROBERTSON1968_ISOTEMPERATURE_LINES)[:, 1:3])
    xy = np.vstack([xy, on_lines, [[0.62, 0.36], [0.2, 0.18], [0.25, 0.25]]])
    ref = colour.temperature.uv_to_CCT_Robertson1968(colour.xy_to_UCS_uv(xy))[:, 0]
    np.testing.assert_allclose(xy_to_cct(xy), ref, rtol=1e-14, atol=0)
    # shapes: one xy → float, (..., 2) → (...)
    assert xy_to_cct(xy[0]) == pytest.approx(ref[0], rel=1e-14)
    assert isinstance(xy_to_cct(list(xy[0])), float)
    assert xy_to_cct(xy[:12].reshape(3, 4, 2)).shape == (3, 4)
    assert xy_to_cct(np.zeros((0, 2))).shape == (0,)


def test_robertson_cct_to_xy_equals_colour_everywhere():
    cct = np.concatenate([np.geomspace(500.0, 1e6, 2000),
                          1e6 / np.array(ROBERTSON1968_ISOTEMPERATURE_LINES)[1:, 0]])
    zeros = np.zeros_like(cct)
    ref = colour.UCS_uv_to_xy(colour.temperature.CCT_to_uv_Robertson1968(np.stack([cct, zeros], -1)))
    np.testing.assert_allclose(cct_to_xy(cct), ref, rtol=0, atol=1e-15)
    assert cct_to_xy(5000).shape == (2,)
    assert cct_to_xy(cct[:6].reshape(2, 3)).shape == (2, 3, 2)


# --- the kernel --------------------------------------------------------------------------

MATRIX = np.array([[1.62, -0.43, -0.19], [-0.21, 1.38, -0.17], [0.03, -0.52, 1.49]])


def test_kernel_equals_numpy_reference(rng):
    img = rng.uniform(-0.2, 2.0, (37, 53, 3)).astype(np.float32)
    ours = apply_color_matrix(img, MATRIX)
    ref = apply_color_matrix_reference(img, MATRIX)
    assert ours.dtype == np.float32 and ours.shape == img.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours, np.einsum("ij,hwj->hwi", MATRIX, img.astype(np.float64)), rtol=1e-6, atol=1e-6)
    clipped = apply_color_matrix(img, MATRIX, clip=True)
    np.testing.assert_allclose(clipped, apply_color_matrix_reference(img, MATRIX, clip=True), rtol=1e-6, atol=1e-6)
    assert clipped.min() >= 0.0 and clipped.max() <= 1.0


def test_kernel_out_in_place_and_strides(rng):
    img = rng.uniform(0, 1, (20, 30, 3)).astype(np.float32)
    ref = apply_color_matrix_reference(img, MATRIX)
    buf = np.empty_like(img)
    assert apply_color_matrix(img, MATRIX, out=buf) is buf
    np.testing.assert_allclose(buf, ref, rtol=1e-6, atol=1e-6)
    inplace = img.copy()
    apply_color_matrix(inplace, MATRIX, out=inplace)
    np.testing.assert_allclose(inplace, ref, rtol=1e-6, atol=1e-6)
    view = img[::2, 1::3]  # non-contiguous, read-only input also works
    view.flags.writeable = False
    np.testing.assert_allclose(apply_color_matrix(view, MATRIX), ref[::2, 1::3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(apply_color_matrix(img.astype(np.float64), MATRIX), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(apply_color_matrix(img, np.eye(3)), img)


def test_kernel_bad_input():
    img = np.ones((4, 5, 3), np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        x = img.copy()
        x[2, 3, 1] = bad
        with pytest.raises(InputError, match="NaN or infinite"):
            apply_color_matrix(x, MATRIX)
    with pytest.raises(InputError):
        apply_color_matrix(np.ones((4, 5)), MATRIX)
    with pytest.raises(InputError):
        apply_color_matrix(np.ones((4, 5, 3), np.uint8), MATRIX)
    with pytest.raises(ParameterError):
        apply_color_matrix(img, np.eye(4))
    with pytest.raises(ParameterError):
        apply_color_matrix(img, MATRIX, out=np.empty((4, 5, 3), np.float64))
    assert apply_color_matrix(np.ones((0, 5, 3), np.float32), MATRIX).shape == (0, 5, 3)
