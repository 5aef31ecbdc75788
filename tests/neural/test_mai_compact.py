"""``mai.compact``: size, shapes, trainability, pipeline stage, ONNX FP32/FP16/int8 export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ispkit.errors import InputError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import LearnedRawToRGB, create_model
from ispkit.neural.models.mai_compact import MAICompact

from ._training import fit_mse


def _randomised(seed: int = 0) -> MAICompact:
    """The zoo model with every convolution random (the zero-initialised residual convs too)."""
    torch.manual_seed(seed)
    model = create_model("mai.compact")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0.0, (2.0 / (m.in_channels * 9)) ** 0.5 * 0.5)
                m.bias.uniform_(-0.05, 0.05)
    return model


def test_parameter_count_is_well_under_a_million():
    model = create_model("mai.compact")
    assert sum(p.numel() for p in model.parameters()) == 311_804


def test_output_is_twice_the_packed_size_and_sizes_are_checked():
    model = _randomised()
    with torch.inference_mode():
        y = model(torch.rand(2, 4, 12, 20))
    assert y.shape == (2, 3, 24, 40)
    with pytest.raises(InputError, match="multiples of 4"):
        model(torch.rand(1, 4, 10, 20))


def test_trains_on_a_tiny_batch():
    # target: a smooth colour rendering of the packed planes, unshuffled to twice the size
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(2, 4, 4, 4, generator=g), size=(16, 16), mode="bilinear", align_corners=False)
    rgb = torch.stack([x[:, 0], 0.5 * (x[:, 1] + x[:, 2]), x[:, 3]], 1).clamp(0, 1) ** 0.5
    target = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False)
    torch.manual_seed(0)
    model = MAICompact()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, best = fit_mse(model, x, target, opt, 300, goal=0.05)
    assert best <= 0.05 * first, f"mai.compact did not learn: lowest loss {best:.4g}, first {first:.4g}"


def test_runs_as_a_learned_raw_to_rgb_stage(tmp_path):
    model = _randomised(1)
    path = tmp_path / "mai.pth"
    torch.save(model.state_dict(), path)
    rng = np.random.default_rng(0)
    mosaic = rng.random((24, 40), dtype=np.float32)
    frame = Frame(mosaic, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    out = LearnedRawToRGB(model="mai.compact", weights=str(path), device="cpu")(frame)
    assert out.domain is Domain.DISPLAY_RGB and out.data.shape == (24, 40, 3)
    packed = np.stack([mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2]])
    with torch.inference_mode():
        want = model(torch.from_numpy(packed)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out.data, want, atol=1e-5)


class TestOnnx:
    ort = pytest.importorskip("onnxruntime")

    @pytest.fixture(scope="class")
    def exported(self, tmp_path_factory):
        from ispkit.neural.export import export_onnx, quantize_onnx_int8

        d = tmp_path_factory.mktemp("mai")
        model = _randomised(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no fallback to a fixed size
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            fp32 = export_onnx(model, d / "fp32.onnx", input_shape=(1, 4, 32, 32))
            fp16 = export_onnx(model, d / "fp16.onnx", input_shape=(1, 4, 32, 32), dtype="float16")
        rng = np.random.default_rng(3)
        calib = [rng.random((1, 4, 32, 32), dtype=np.float32) for _ in range(8)]
        int8 = quantize_onnx_int8(fp32, d / "int8.onnx", calib)
        return model, fp32, fp16, int8

    def _run(self, path, x):
        sess = self.ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.float32)

    @pytest.fixture(scope="class")
    def probe(self, exported):
        x = np.random.default_rng(4).random((2, 4, 20, 44), dtype=np.float32)  # not the traced 32×32
        with torch.inference_mode():
            return x, exported[0](torch.from_numpy(x)).numpy()

    def test_fp32_equals_torch_at_another_size(self, exported, probe):
        x, want = probe
        got = self._run(exported[1], x)
        assert got.shape == (2, 3, 40, 88)
        np.testing.assert_allclose(got, want, atol=1e-4)

    def test_fp16_equals_torch_within_half_precision(self, exported, probe):
        x, want = probe
        got = self._run(exported[2], x.astype(np.float16))
        assert got.shape == want.shape
        scale = float(np.abs(want).max())
        assert np.abs(got - want).max() <= 1e-2 * scale

    def test_int8_is_quantised_and_close(self, exported, probe):
        import onnx

        ops = {n.op_type for n in onnx.load(str(exported[3])).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        x, want = probe
        got = self._run(exported[3], x)
        assert got.shape == want.shape
        spread = float(want.max() - want.min())
        # 8-bit activations: errors of a few quantisation steps, far below the signal's spread
        assert np.abs(got - want).mean() <= 0.02 * spread
        assert np.abs(got - want).mean() > 0.0  # really quantised, not a float copy

    def test_quantiser_refuses_an_empty_calibration_set(self, exported, tmp_path):
        from ispkit.errors import ParameterError
        from ispkit.neural.export import quantize_onnx_int8

        with pytest.raises(ParameterError, match="calibration"):
            quantize_onnx_int8(exported[1], tmp_path / "q.onnx", [])
