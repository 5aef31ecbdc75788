"""ispkit.render: writing into a caller's buffer (``out=``) gives the same result as a fresh array."""

import numpy as np
import pytest

import ispkit
from ispkit.errors import ParameterError
from ispkit.frame import Frame
from ispkit.io.synthetic import synthesize_capture


@pytest.fixture(scope="module")
def frame():
    return synthesize_capture(size=(64, 96), seed=3).frame


@pytest.mark.parametrize("bit_depth, dtype", [(8, np.uint8), (16, np.uint16), (None, np.float32)])
def test_out_buffer_receives_the_render(frame, bit_depth, dtype):
    fresh = ispkit.render(frame, bit_depth=bit_depth)
    buf = np.full((64, 96, 3), 7, dtype)
    got = ispkit.render(frame, bit_depth=bit_depth, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, fresh)
    assert fresh.dtype == dtype and fresh.mean() > 0.05 * (255 if bit_depth == 8 else 65535 if bit_depth else 1)


def test_out_buffer_on_the_unfused_path_and_rotated_frames(frame):
    rotated = Frame(frame.data, frame.domain, frame.meta.replace(orientation=6))
    fresh = ispkit.render(rotated, bit_depth=8)
    assert fresh.shape == (96, 64, 3)
    buf = np.empty((96, 64, 3), np.uint8)
    assert ispkit.render(rotated, bit_depth=8, out=buf) is buf
    np.testing.assert_array_equal(buf, fresh)
    menon = ispkit.render(frame, bit_depth=8, demosaic__method="menon2007")  # not fused
    buf2 = np.empty((64, 96, 3), np.uint8)
    ispkit.render(frame, bit_depth=8, demosaic__method="menon2007", out=buf2)
    np.testing.assert_array_equal(buf2, menon)


@pytest.mark.parametrize("bad", [np.empty((64, 96, 3), np.float32), np.empty((96, 64, 3), np.uint8),
                                 np.empty((64, 96, 3), np.uint8)[:, ::-1], [[0]]])
def test_out_buffer_mismatch_is_a_clear_error(frame, bad):
    with pytest.raises(ParameterError, match=r"render: out must be"):
        ispkit.render(frame, bit_depth=8, out=bad)


def test_pipeline_render_codes_come_from_the_fused_node_only(frame):
    """render() takes its 8-bit codes from Pipeline.render_codes; a pipeline fusion cannot compile declines."""
    pipe = ispkit.load_preset("default")
    codes, meta = pipe.render_codes(frame, 8)
    assert codes.dtype == np.uint8 and codes.shape == (64, 96, 3)
    stepwise = ispkit.stages.quantize(np.clip(pipe.run(frame, fuse=False).output.data, 0, 1), 8)
    assert np.abs(codes.astype(int) - stepwise.astype(int)).max() <= 1
    assert meta.color_space == "sRGB"
    assert pipe.render_codes(frame, 16) is None  # the kernel makes 8-bit codes only
    menon = pipe.set({"demosaic.method": "menon2007"})  # Menon is not fused: several compiled nodes
    assert len(menon.compiled_nodes()) > 1 and menon.render_codes(frame, 8) is None


def test_render_does_not_know_concrete_stages():
    """Fusion is the graph's business (design §9): render.py asks the Pipeline, never a stage class."""
    import ast
    import inspect
    import sys

    r = sys.modules["ispkit.render"]  # (the attribute ispkit.render is the function)
    source = inspect.getsource(r)
    assert "def render_frame" in source
    imported = [n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module]
    assert not any(m.endswith("fused") for m in imported) and "FusedRender" not in source, imported
