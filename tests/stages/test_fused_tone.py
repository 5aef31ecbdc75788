"""Fusion of auto exposure → night tone → clipping OETF: which runs fuse, and fused == unfused."""

import numpy as np
import pytest

import ispkit
from ispkit.errors import InputError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.io.night import synthetic_night_scene
from ispkit.pipeline import Pipeline
from ispkit.stages import AutoExposure, FusedNightTail, Gamma, NightTone

from .test_fused import _meta_dict


def _tail(gamma=None):
    return Pipeline([("exposure", AutoExposure(percentile=97.0, target=0.5, max_gain=256.0, min_snr=20.0,
                                               exclude_lamps=True)),
                     ("tone", NightTone(shadows=2.0, highlights=0.35)),
                     ("gamma", gamma or Gamma(curve="srgb", clip=True))])


def _linear_frame(seed=0, shape=(64, 96)):
    rng = np.random.default_rng(seed)
    x = (rng.random(shape + (3,)) ** 3 * 0.05).astype(np.float32)
    x[10:14, 20:26] = 1.0                                   # a clipped lamp
    x[30:33, 40:44] = [3.0, 2.0, 0.5]                       # and a light far above white
    x[5, 5] = [-0.01, 0.002, 0.001]                         # negative noise
    meta = CaptureMetadata(white_point=np.ones(3), noise_profile=((1e-4, 1e-6),) * 3)
    return Frame(x, Domain.LINEAR_RGB, meta)


@pytest.mark.parametrize("curve", ["srgb", "rec709", "power"])
def test_fused_tail_equals_the_stages(curve):
    pipe = _tail(Gamma(curve=curve, gamma=2.4, clip=True))
    nodes = pipe.compiled_nodes()
    assert len(nodes) == 1 and isinstance(nodes[0][1], FusedNightTail)
    frame = _linear_frame()
    fused = pipe(frame)
    plain = pipe.run(frame, fuse=False).output
    assert fused.domain is Domain.DISPLAY_RGB and fused.data.dtype == np.float32
    np.testing.assert_allclose(fused.data, plain.data, rtol=0, atol=2e-6)
    assert _meta_dict(fused.meta) == _meta_dict(plain.meta)
    assert fused.meta.extra["exposure_gain"] > 1.0       # the dark frame was pushed


def test_night_classical_compiles_its_tail_and_renders_the_same():
    pipe = ispkit.load_preset("night-classical")
    names = [n for n, _ in pipe.compiled_nodes()]
    assert "exposure+tone+gamma" in names and "tone" not in names
    scene = synthetic_night_scene(stops=5.0, size=(96, 128), seed=2)
    fused = pipe(scene.frame)
    plain = pipe.run(scene.frame, fuse=False).output
    np.testing.assert_allclose(fused.data, plain.data, rtol=0, atol=2e-6)
    assert _meta_dict(fused.meta) == _meta_dict(plain.meta)


def test_runs_that_differ_do_not_fuse():
    assert not any(isinstance(s, FusedNightTail) for _, s in _tail(Gamma(clip=False)).compiled_nodes())
    assert not any(isinstance(s, FusedNightTail) for _, s in _tail(Gamma(curve="linear", clip=True)).compiled_nodes())
    swapped = Pipeline([("tone", NightTone()), ("exposure", AutoExposure()), ("gamma", Gamma(clip=True))])
    assert not any(isinstance(s, FusedNightTail) for _, s in swapped.compiled_nodes())


def test_non_finite_input_raises_as_the_stages_do():
    frame = _linear_frame()
    bad = frame.data.copy()
    bad[3, 3, 1] = np.nan
    with pytest.raises(InputError) as fused_err:
        _tail()(Frame(bad, Domain.LINEAR_RGB, frame.meta))
    with pytest.raises(InputError) as plain_err:
        _tail().run(Frame(bad, Domain.LINEAR_RGB, frame.meta), fuse=False)
    assert type(fused_err.value) is type(plain_err.value)
