"""Graph fusion: which runs fuse, and fused == unfused (pixels and metadata)."""

import numpy as np
import pytest

import ispkit
from ispkit.errors import InputError
from ispkit.frame import CFA_PATTERNS
from ispkit.io.synthetic import synthesize_capture
from ispkit.stages import Demosaic, FusedRender, WhiteBalance


def _meta_dict(m):
    d = m.to_dict()
    return {k: (np.round(np.asarray(v, dtype=float), 9).tolist() if isinstance(v, list) else v) for k, v in d.items()}


@pytest.mark.parametrize("preset", ["default", "libraw"])
@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_fused_equals_unfused(preset, pattern):
    cap = synthesize_capture(size=(96, 128), cfa_pattern=pattern, seed=4)
    pipe = ispkit.load_preset(preset)
    nodes = pipe.compiled_nodes()
    assert len(nodes) == 1 and isinstance(nodes[0][1], FusedRender)
    fused = pipe(cap.frame)
    plain = pipe.run(cap.frame, fuse=False).output
    np.testing.assert_allclose(fused.data, plain.data, atol=2e-5)
    assert _meta_dict(fused.meta) == _meta_dict(plain.meta)
    codes = ispkit.render(cap.frame, pipe, bit_depth=8)
    assert codes.dtype == np.uint8
    assert np.abs(codes.astype(int) - np.rint(plain.data * 255).astype(int)).max() <= 1


def test_bilinear_fuses_and_menon_does_not():
    pipe = ispkit.load_preset("default")
    assert isinstance(pipe.set({"demosaic.method": "bilinear"}).compiled_nodes()[0][1], FusedRender)
    menon = pipe.replace("demosaic", Demosaic(method="menon2007"))
    assert not any(isinstance(s, FusedRender) for _, s in menon.compiled_nodes())
    gw = pipe.replace("white_balance", WhiteBalance(method="gray_world"))
    assert not any(isinstance(s, FusedRender) for _, s in gw.compiled_nodes())
    assert pipe.to_config() == ispkit.load_preset("default").to_config()  # configs keep the stages


def test_odd_sizes_fall_back_to_the_stages():
    cap = synthesize_capture(size=(96, 128), seed=5)
    odd = cap.frame.replace(data=cap.frame.data[:95, :127])
    pipe = ispkit.load_preset("default")
    np.testing.assert_allclose(pipe(odd).data, pipe.run(odd, fuse=False).output.data, atol=1e-6)


def test_non_finite_input_raises_like_the_stages():
    cap = synthesize_capture(size=(96, 128), seed=6)
    data = cap.frame.data.copy()
    data[10, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ispkit.load_preset("default")(cap.frame.replace(data=data))
