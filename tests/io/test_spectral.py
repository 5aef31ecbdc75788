"""ispkit.io.spectral: the shared spectral data and helpers, against colour-science and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from ispkit.errors import ISPError
from ispkit.io import spectral


def test_grid_and_data_shapes():
    assert spectral.WAVELENGTHS[0] == 400.0 and spectral.WAVELENGTHS[-1] == 700.0 and len(spectral.WAVELENGTHS) == 61
    data = spectral.spectral_data()
    assert data["chart"].shape == (24, 61) and data["cmfs"].shape == (61, 3)
    assert data["training"].shape[1] == 61 and len(data["training"]) > 200
    assert not data["chart"].flags.writeable and data["names"][0] == "dark skin"


@pytest.mark.parametrize("name, xy", [("D65", (0.3127, 0.3290)), ("A", (0.4476, 0.4074)), ("F2", (0.3721, 0.3751))])
def test_named_illuminant_white_on_the_grid(name, xy):
    spd = spectral.illuminant_spd(*spectral.resolve_illuminant(name))[0]
    xyz = spd @ spectral.spectral_data()["cmfs"]
    np.testing.assert_allclose(xyz[:2] / xyz.sum(), xy, atol=2e-3)  # 5 nm, 400-700 nm truncation


def test_cct_illuminant_and_standard_spd():
    spd, label, exif, cct = spectral.illuminant_spd(*spectral.resolve_illuminant(3150))
    assert label == "3150K" and exif == 24 and cct == 3150.0 and spd.max() == 1.0
    led = spectral.standard_illuminant_spd("LED-B1")
    assert led.shape == (61,) and led.max() == 1.0
    with pytest.raises(ISPError, match="FL2"):
        spectral.standard_illuminant_spd("no such light")
    with pytest.raises(ISPError):
        spectral.resolve_illuminant(500.0)


def test_white_preserving_fit_recovers_exact_matrix():
    rng = np.random.default_rng(0)
    m = np.array([[0.6, 0.3, 0.05], [0.25, 0.8, -0.05], [0.0, -0.1, 1.1]])
    cam = rng.uniform(0.05, 1.0, (50, 3))
    white = np.array([0.7, 1.0, 0.8])
    fitted = spectral.fit_white_preserving_matrix(cam, cam @ m.T, white, m @ white)
    np.testing.assert_allclose(fitted, m, atol=1e-12)
    noisy = cam @ m.T + rng.normal(0, 0.01, (50, 3))
    fitted = spectral.fit_white_preserving_matrix(cam, noisy, white, np.array([0.96, 1.0, 0.82]))
    np.testing.assert_allclose(fitted @ white, [0.96, 1.0, 0.82], atol=1e-12)


def test_bradford_maps_white_to_white():
    src, dst = np.array([1.0985, 1.0, 0.3558]), np.array([0.9642, 1.0, 0.8251])
    np.testing.assert_allclose(spectral.bradford_matrix(src, dst) @ src, dst, atol=1e-12)
