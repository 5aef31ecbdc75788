"""ONNX export: onnxruntime reproduces torch, at sizes other than the export example."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ispkit.errors import ParameterError
from ispkit.neural import create_model, export_onnx, list_models
from ispkit.neural.export import default_input_shape
from ispkit.neural.registry import get_model_entry

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _run_onnx(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _torch(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def test_fc4_exports_with_dynamic_size(tmp_path):
    torch.manual_seed(0)
    weights = create_model("fc4.cwp").state_dict()
    weights["final_convs.4.bias"] = torch.tensor([0.3, 0.5, 0.2, 0.1])  # no dead output maps
    path = export_onnx("fc4.cwp", tmp_path / "fc4.onnx", weights=weights)
    onnx.checker.check_model(onnx.load(str(path)))
    model = create_model("fc4.cwp", weights=weights)
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 128, 128), (2, 3, 96, 160)):
        x = rng.random(shape, dtype=np.float32)
        got, want = _run_onnx(path, x), _torch(model, x)
        assert got.shape == (shape[0], 3)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_unet_exports_and_matches(tmp_path):
    torch.manual_seed(1)
    model = create_model("unet.raw")
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
    path = export_onnx(model, tmp_path / "unet.onnx", input_shape=(1, 5, 64, 64), opset=17)
    x = np.random.default_rng(1).random((1, 5, 48, 80), dtype=np.float32)
    out = _run_onnx(path, x)
    assert out.shape == (1, 4, 48, 80)
    np.testing.assert_allclose(out, _torch(model, x), atol=1e-4)
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_export_from_a_stage_uses_its_weights(tmp_path):
    from ispkit.neural import LearnedRawToRGB

    if "mwispnet.aim2020" not in list_models():
        pytest.skip("MW-ISPNet is not registered yet")
    torch.manual_seed(2)
    model = create_model("mwispnet.aim2020")
    wpath = tmp_path / "mw.pth"
    torch.save(model.state_dict(), wpath)
    stage = LearnedRawToRGB(model="mwispnet.aim2020", weights=str(wpath), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to a fixed input size
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        path = export_onnx(stage, tmp_path / "mw.onnx", input_shape=(1, 4, 16, 16))
    dims = [d.dim_value or d.dim_param for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and isinstance(dims[2], str) and isinstance(dims[3], str)  # dynamic N, H, W
    shape = (2, 4, 24, 16)  # another size than the one exported with
    x = np.random.default_rng(2).random(shape, dtype=np.float32)
    out = _run_onnx(path, x)
    assert out.shape == (2, 3, 2 * shape[2], 2 * shape[3])
    np.testing.assert_allclose(out, _torch(model, x), atol=1e-4)


def test_static_fallback_for_size_dependent_graphs(tmp_path):
    class SizeKernel(torch.nn.Module):
        """Builds its kernel from x.size(1), which the TorchScript exporter cannot make dynamic."""

        def forward(self, x):
            k = torch.ones(1, 1, 2, 2).repeat(x.size(1), 1, 1, 1)
            return torch.nn.functional.conv2d(x, k, stride=2, groups=x.size(1))

    with pytest.warns(RuntimeWarning, match="fixed input shape"):
        path = export_onnx(SizeKernel(), tmp_path / "k.onnx", input_shape=(1, 2, 8, 8))
    x = np.random.default_rng(3).random((1, 2, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(_run_onnx(path, x), _torch(SizeKernel(), x), atol=1e-5)


def test_default_shapes_and_errors(tmp_path):
    assert default_input_shape(get_model_entry("unet.raw").weights.contract) == (1, 5, 64, 64)
    assert default_input_shape(get_model_entry("fc4.sum").weights.contract) == (1, 3, 128, 128)
    with pytest.raises(ParameterError, match="input_shape"):
        export_onnx(torch.nn.Identity(), tmp_path / "x.onnx")
    with pytest.raises(ParameterError, match="N×C×H×W"):
        export_onnx("unet.raw", tmp_path / "x.onnx", input_shape=(1, 5, 64))
    with pytest.raises(ParameterError, match="model name"):
        export_onnx(42, tmp_path / "x.onnx")


def test_haar_wavelet_networks_export_with_dynamic_size(tmp_path):
    """The Deep-FlexISP enhancer (Haar DWT/IDWT layers, as MW-ISPNet) runs from ONNX at another size."""
    from ispkit.neural.models.deepflexisp import DeepFlexISPEnhancer

    torch.manual_seed(4)
    net = DeepFlexISPEnhancer(channels=(8, 16, 16), num_blocks=1, reduction=4).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to a fixed input size
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        path = export_onnx(net, tmp_path / "dfx.onnx", input_shape=(1, 3, 64, 64))
    x = np.random.default_rng(4).random((2, 3, 96, 128), dtype=np.float32)
    out = _run_onnx(path, x)
    assert out.shape == (2, 3, 24, 32)  # the enhancer works at a quarter of the size
    np.testing.assert_allclose(out, _torch(net, x), atol=1e-4)
