"""Neural stage wrappers, the NumPy↔torch boundary, Bayer packing and devices."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from ispkit.errors import ConfigError, DomainError, InputError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame, cfa_position_of
from ispkit.neural import (
    Enhance,
    InputContract,
    LearnedRawToRGB,
    RandomWeightsWarning,
    SuperResolution,
    WeightsSpec,
    create_model,
    models_of_kind,
    pack_bayer,
    register_model,
    to_numpy,
    to_tensor,
    unpack_bayer,
)
from ispkit.neural.device import inference_context, resolve_device, resolve_dtype
from ispkit.neural.registry import MODELS
from ispkit.pipeline import Pipeline, get_stage_class

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
ORDERS = ("R,Gr,Gb,B", "B,Gr,R,Gb", "R,Gr,B,Gb", "B,Gb,R,Gr")


# -- packing ----------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("order", ORDERS)
def test_pack_unpack_are_exact_inverses(pattern, order, rng):
    mosaic = rng.random((6, 10)).astype(np.float32)
    packed = pack_bayer(mosaic, pattern, order)
    assert packed.shape == (3, 5, 4) and packed.dtype == np.float32
    np.testing.assert_array_equal(unpack_bayer(packed, pattern, order), mosaic)
    planes = rng.random((3, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(pack_bayer(unpack_bayer(planes, pattern, order), pattern, order), planes)
    # each plane holds the named site: R plane from the red pixels, Gr from the green on the red row
    pos = cfa_position_of(pattern)
    for c, name in enumerate(n.strip() for n in order.split(",")):
        dy, dx = pos[name]
        np.testing.assert_array_equal(packed[..., c], mosaic[dy::2, dx::2])
        assert pattern[2 * dy + dx] == name[0]


def test_packing_matches_pynet_extract_bayer_channels(rng):
    # PyNET / MW-ISPNet on an RGGB sensor: dstack(raw[1::2,1::2], raw[0::2,1::2], raw[0::2,0::2], raw[1::2,0::2]),
    # which in ispkit names (Gr = green on the red row) is "B,Gr,R,Gb"
    raw = rng.random((8, 12)).astype(np.float32)
    official = np.dstack((raw[1::2, 1::2], raw[0::2, 1::2], raw[0::2, 0::2], raw[1::2, 0::2]))
    np.testing.assert_array_equal(pack_bayer(raw, "RGGB", "B,Gr,R,Gb"), official)


def test_packing_errors():
    with pytest.raises(InputError, match="even"):
        pack_bayer(np.zeros((5, 6)), "RGGB")
    with pytest.raises(InputError, match="H×W"):
        pack_bayer(np.zeros((4, 6, 3)), "RGGB")
    with pytest.raises(ParameterError, match="permutation"):
        pack_bayer(np.zeros((4, 6)), "RGGB", "R,G,G,B")
    with pytest.raises(UnknownNameError):
        pack_bayer(np.zeros((4, 6)), "RGBG")
    with pytest.raises(InputError, match="4"):
        unpack_bayer(np.zeros((2, 3, 3)), "RGGB")


# -- numpy <-> torch ------------------------------------------------------------------------
def test_to_tensor_and_back(rng):
    hwc = rng.random((5, 7, 3)).astype(np.float32)
    t = to_tensor(hwc)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32 and t.is_contiguous()
    assert t[0, 2, 4, 6].item() == hwc[4, 6, 2]
    np.testing.assert_array_equal(to_numpy(t), hwc)
    hw = rng.random((4, 6))
    t2 = to_tensor(hw, dtype=torch.float64)
    assert t2.shape == (1, 1, 4, 6) and t2.dtype == torch.float64
    np.testing.assert_allclose(to_numpy(t2)[..., 0], hw.astype(np.float32))
    assert to_numpy(torch.zeros(2, 3, 4, dtype=torch.bfloat16)).dtype == np.float32
    bad = hwc.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        to_tensor(bad)
    with pytest.raises(InputError):
        to_tensor(np.zeros((2, 2, 2, 2)))
    with pytest.raises(InputError, match="batch of one"):
        to_numpy(torch.zeros(2, 3, 4, 4))


# -- devices and dtypes -------------------------------------------------------------------
def test_devices_and_dtypes():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ParameterError, match="no CUDA"):
                resolve_device(name)
    with pytest.raises(ParameterError, match="'auto'"):
        resolve_device("gpu0")
    assert resolve_dtype("bfloat16") is torch.bfloat16 and resolve_dtype(None) is torch.float32
    with pytest.raises(ParameterError):
        resolve_dtype("half")


def test_inference_context_autocasts_only_when_asked():
    conv = nn.Conv2d(3, 3, 3)
    x = torch.rand(1, 3, 8, 8)
    with inference_context(torch.device("cpu"), "float32"):
        y = conv(x)
        assert y.dtype == torch.float32 and torch.is_inference_mode_enabled()
    with inference_context(torch.device("cpu"), "bfloat16"):
        assert conv(x).dtype == torch.bfloat16
    with pytest.warns(RuntimeWarning, match="'float16' needs CUDA"):
        with inference_context(torch.device("cpu"), "float16"):
            assert conv(x).dtype == torch.float32


# -- tiny registered models to drive the wrappers -------------------------------------------------------
class NearestDemosaic(nn.Module):
    """Packed (B, Gr, R, Gb) → RGB at 2×: R, mean of greens, B, each repeated 2×2, times a gain."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = torch.stack([x[:, 2], 0.5 * (x[:, 1] + x[:, 3]), x[:, 0]], dim=1) * self.gain[None, :, None, None]
        return nn.functional.interpolate(rgb, scale_factor=2, mode="nearest")


class QuarterBGR(nn.Module):
    """BGR in → BGR out at ¼ scale, channel k scaled by k + 1 (so the order is visible)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, 4) * self.scale[None, :, None, None]


class DoubleNearest(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x * self.w, scale_factor=2, mode="nearest")


def _spec(**contract) -> WeightsSpec:
    return WeightsSpec(paper="test", url="", license="MIT", source="tests", contract=InputContract(**contract))


@pytest.fixture
def tiny_models():
    names = {
        "stagetest.raw": (NearestDemosaic, _spec(domain="raw_packed", channel_order="B,Gr,R,Gb", normalization="[0,1]",
                                                 gamma=None, size_multiple=4, scale=2.0, in_channels=4, out_channels=3)),
        "stagetest.enhance": (QuarterBGR, _spec(domain="rgb_display", channel_order="BGR", normalization="[0,1]",
                                                gamma="sRGB", size_multiple=8, scale=0.25, in_channels=3,
                                                out_channels=3)),
        "stagetest.sr": (DoubleNearest, _spec(domain="rgb_linear", channel_order="RGB", normalization="[0,1]",
                                              gamma=None, size_multiple=2, scale=2.0, in_channels=3, out_channels=3)),
    }
    for name, (builder, spec) in names.items():
        register_model(name, builder, spec, description="test model")
    yield list(names)
    for name in names:
        MODELS.pop(name, None)


def _quiet(stage, frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return stage(frame)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_learned_raw_to_rgb_packs_in_the_model_order(tiny_models, pattern, rng):
    mosaic = rng.random((38, 54)).astype(np.float32)  # packed 19×27: padded to 20×28, then cropped
    frame = Frame(mosaic, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern=pattern))
    before = frame.data.copy()
    stage = LearnedRawToRGB(model="stagetest.raw", device="cpu", random_weights=True, tile=16, overlap=2)
    out = _quiet(stage, frame)
    assert out.domain is Domain.DISPLAY_RGB and out.data.shape == (38, 54, 3) and out.data.dtype == np.float32
    assert out.meta.color_space == "sRGB"
    p = pack_bayer(mosaic, pattern)  # R, Gr, Gb, B
    expected = np.stack([p[..., 0], 0.5 * (p[..., 1] + p[..., 2]), p[..., 3]], -1).repeat(2, 0).repeat(2, 1)
    np.testing.assert_allclose(out.data, expected, atol=1e-6)
    np.testing.assert_array_equal(frame.data, before)


def test_enhance_respects_bgr_order_and_quarter_scale(tiny_models, rng):
    data = rng.random((40, 56, 3)).astype(np.float32)
    stage = Enhance(model="stagetest.enhance", device="cpu", random_weights=True)
    assert stage.spec.in_domains == (Domain.DISPLAY_RGB,)
    out = _quiet(stage, Frame(data, Domain.DISPLAY_RGB))
    assert out.data.shape == (10, 14, 3) and out.domain is Domain.DISPLAY_RGB
    pooled = data.reshape(10, 4, 14, 4, 3).mean(axis=(1, 3))
    # the model multiplies B by 1, G by 2, R by 3 (in its BGR order)
    np.testing.assert_allclose(out.data, pooled * np.array([3.0, 2.0, 1.0]), rtol=1e-5)


def test_super_resolution_scales_and_keeps_the_linear_domain(tiny_models, rng):
    data = rng.random((9, 13, 3)).astype(np.float32)
    stage = SuperResolution(model="stagetest.sr", device="cpu", random_weights=True, tile=None, overlap=0)
    assert set(stage.spec.in_domains) == {Domain.LINEAR_RGB, Domain.CAMERA_RGB}
    out = _quiet(stage, Frame(data, Domain.LINEAR_RGB, CaptureMetadata(color_space="sRGB")))
    assert out.data.shape == (18, 26, 3) and out.domain is Domain.LINEAR_RGB and out.meta.color_space == "sRGB"
    np.testing.assert_array_equal(out.data, data.repeat(2, 0).repeat(2, 1))
    with pytest.raises(DomainError):
        stage(Frame(data, Domain.DISPLAY_RGB))


def test_model_is_built_once_and_not_pickled(tiny_models, rng):
    stage = LearnedRawToRGB(model="stagetest.raw", device="cpu", random_weights=True)
    with pytest.warns(RandomWeightsWarning, match="stagetest.raw"):
        net, dev = stage.network()
    assert dev == torch.device("cpu")
    assert stage.network()[0] is net
    frame = Frame(rng.random((8, 8)).astype(np.float32), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    _quiet(stage, frame)
    assert stage.network()[0] is net
    clone = pickle.loads(pickle.dumps(stage))
    assert clone == stage and "_neural_cache" not in clone.__dict__ and "_neural_cache" in stage.__dict__
    assert hash(clone) == hash(stage)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)  # said once per process, not once per stage
        assert stage.with_params(overlap=4).network()[0] is not net  # a new stage builds its own


def test_weights_are_loaded_by_the_stage(tiny_models, tmp_path, rng):
    model = create_model("stagetest.sr")
    with torch.no_grad():
        model.w.fill_(0.5)
    path = tmp_path / "sr.pth"
    torch.save({"params_ema": model.state_dict()}, path)
    stage = SuperResolution(model="stagetest.sr", weights=path, device="cpu")  # a Path becomes a str
    assert stage.weights == str(path)
    data = rng.random((4, 6, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)
        out = stage(Frame(data, Domain.CAMERA_RGB))
    np.testing.assert_allclose(out.data, 0.5 * data.repeat(2, 0).repeat(2, 1), rtol=1e-6)


def test_bfloat16_runs_close_to_float32(tiny_models, rng):
    data = rng.random((16, 16, 3)).astype(np.float32)
    f32 = _quiet(SuperResolution(model="stagetest.sr", device="cpu", random_weights=True),
                 Frame(data, Domain.LINEAR_RGB))
    bf16 = _quiet(SuperResolution(model="stagetest.sr", device="cpu", random_weights=True, dtype="bfloat16"),
                  Frame(data, Domain.LINEAR_RGB))
    assert bf16.data.dtype == np.float32
    np.testing.assert_allclose(bf16.data, f32.data, atol=1e-2)


def test_config_round_trip_and_registry(tiny_models, tmp_path):
    w = tmp_path / "w.pth"
    w.write_bytes(b"")  # only its existence is checked when the stage is built
    stage = LearnedRawToRGB(model="stagetest.raw", weights=str(w), device="cpu", dtype="bfloat16", tile=64,
                            overlap=8)
    cfg = stage.to_config()
    assert cfg["type"] == "learned_raw_to_rgb"
    assert cfg["params"] == {"model": "stagetest.raw", "weights": str(w), "device": "cpu", "dtype": "bfloat16",
                             "tile": 64, "overlap": 8}
    assert LearnedRawToRGB.from_params(cfg["params"]) == stage
    toml = Pipeline([stage]).to_toml()
    from ispkit.pipeline import loads_config, pipeline_from_config
    assert pipeline_from_config(loads_config(toml)).stages[0] == stage
    for name, cls in (("learned_raw_to_rgb", LearnedRawToRGB), ("enhance", Enhance),
                      ("super_resolution", SuperResolution)):
        assert get_stage_class(name) is cls


def test_unknown_models_list_the_valid_ones_of_the_right_kind(tiny_models):
    with pytest.raises(UnknownNameError) as info:
        LearnedRawToRGB(model="fc4.cwp")
    msg = str(info.value)
    assert "'stagetest.raw'" in msg and "'fc4.cwp'" in msg.split("valid")[0] and "'unet.raw'" not in msg
    assert "'stagetest.raw'" in models_of_kind("raw-to-RGB").__repr__()
    with pytest.raises(UnknownNameError) as info:
        SuperResolution(model="stagetest.enhance")
    assert "'stagetest.sr'" in str(info.value) and "'stagetest.enhance'" not in str(info.value).split("are:")[1]
    assert "stagetest.enhance" in models_of_kind("enhancement")
    with pytest.raises(ConfigError, match="unknown"):
        Enhance.from_params({"model": "nope.model"})


@pytest.mark.parametrize("params, field", [
    ({"device": "gpu"}, "device"),
    ({"dtype": "float64"}, "dtype"),
    ({"tile": 8}, "tile"),
    ({"tile": 64.0}, "tile"),
    ({"overlap": -1}, "overlap"),
    ({"tile": 48, "overlap": 16}, "3·overlap"),
    ({"weights": 3}, "weights"),
])
def test_bad_parameters_name_stage_and_field(tiny_models, params, field):
    with pytest.raises(ParameterError, match=field) as info:
        SuperResolution(model="stagetest.sr", **params)
    assert "super_resolution" in str(info.value)


def test_cuda_without_cuda_fails_at_run_time_with_parameter_error(tiny_models, rng):
    stage = SuperResolution(model="stagetest.sr", device="cuda", random_weights=True)  # a GPU config still loads
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ParameterError, match="CUDA"):
        stage(Frame(rng.random((4, 4, 3)).astype(np.float32), Domain.LINEAR_RGB))


def test_odd_mosaic_and_non_finite_input_raise(tiny_models, rng):
    stage = LearnedRawToRGB(model="stagetest.raw", device="cpu", random_weights=True)
    with pytest.raises(InputError, match="even"):
        _quiet(stage, Frame(np.zeros((7, 8), np.float32), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB")))
    data = rng.random((8, 8, 3)).astype(np.float32)
    data[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        _quiet(Enhance(model="stagetest.enhance", device="cpu", random_weights=True),
               Frame(data, Domain.DISPLAY_RGB))


# -- input levels of the official raw-to-RGB checkpoints -----------------------------------
@pytest.mark.parametrize("model, expected", [
    # PyNET's load_data.py: raw / (4 * 255), the black pedestal kept
    ("pynet.level0", lambda raw: raw / 1020.0),
    # MW-ISPNet's loader: max(raw - 63, 0) / (1020 - 63)
    ("mwispnet.aim2020", lambda raw: np.maximum(raw - 63.0, 0.0) / 957.0),
])
def test_raw_to_rgb_feeds_the_official_input_levels(monkeypatch, model, expected):
    """A P20-like mosaic (black 63, white 1020) after BlackLevel reaches each network as its loader scaled it."""
    from ispkit.stages import BlackLevel

    rng = np.random.default_rng(0)
    raw = rng.integers(40, 1021, size=(16, 16)).astype(np.float32)  # some below black (noise)
    meta = CaptureMetadata(cfa_pattern="RGGB", black_level=np.full(4, 63.0), white_level=1020.0)
    frame = BlackLevel()(Frame(raw, Domain.RAW_MOSAIC, meta))
    seen = {}

    def fake_run(self, x):
        seen["x"] = x.numpy()[0]
        return torch.zeros(1, 3, 16, 16)

    monkeypatch.setattr(LearnedRawToRGB, "run_network", fake_run)
    LearnedRawToRGB(model=model, device="cpu")(frame)
    want = pack_bayer(expected(raw.astype(np.float64)), "RGGB", "B,Gr,R,Gb")  # both use B,Gr,R,Gb
    np.testing.assert_allclose(np.moveaxis(seen["x"], 0, -1), want, atol=1e-6)  # CHW → HWC


def test_input_contract_rejects_inverted_raw_levels():
    with pytest.raises(ParameterError, match="raw_black_white"):
        InputContract(domain="raw_packed", channel_order="R,Gr,Gb,B", normalization="x", gamma=None,
                      size_multiple=1, scale=1.0, in_channels=4, out_channels=3, raw_black_white=(1.0, 0.5))
