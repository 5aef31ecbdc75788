"""Illuminant estimators ignore clipped pixels: a clipped sky does not pull the estimate."""

import cv2
import numpy as np
import pytest

from ispkit.metrics import angular_error
from ispkit.stages.white_balance import estimate_illuminant


def _scene_with_clipped_sky(seed=3):
    """A grey textured scene under a bluish-green camera illuminant, its top 40 % a sky clipped at 1."""
    rng = np.random.default_rng(seed)
    h, w = 256, 256
    refl = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 3) * 0.6 + 0.1
    refl = np.repeat(refl[..., None], 3, axis=2)
    light = np.array([0.5, 1.0, 0.7], np.float32)
    img = refl * light * 0.8
    img[:100] = np.minimum(3.0 * light * (0.9 + 0.1 * refl[:100]), 1.0)
    return img, light


@pytest.mark.parametrize("method", ["gray_edge", "gray_world", "shades_of_gray", "max_rgb", "white_patch"])
def test_clipped_sky_does_not_pull_the_estimate(method):
    img, light = _scene_with_clipped_sky()
    est = estimate_illuminant(img, method=method, white_point=np.ones(3))
    # gray_edge: 20.6 degrees off (a cyan render) when only a 1-pixel rim around the clip was left out
    assert angular_error(est, light) < 0.5


def test_gray_edge_sees_the_clip_edge_without_the_white_point():
    """Told nothing about saturation (white point far above the data), the clip edge dominates."""
    img, light = _scene_with_clipped_sky()
    est = estimate_illuminant(img, method="gray_edge", white_point=np.full(3, 10.0))
    assert angular_error(est, light) > 5.0
