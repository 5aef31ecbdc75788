"""DeviceRendition (stage ``device_rendition``): inputs from the frame, targets and mixes, fallbacks, tiling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ispkit.errors import MissingWeightsError, ParameterError, UnknownNameError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import DeviceRendition, RandomWeightsWarning
from ispkit.neural.device_rendition import (
    color_scaler_from_gains,
    estimate_color_scaler,
    global_view,
    normalize_target,
    render_device_rendition,
)
from ispkit.neural.models.metaisp import MetaISPConfig, MetaISPNet, global_view_size, receptive_radius
from ispkit.pipeline import Pipeline, get_stage_class, loads_config, pipeline_from_config, stage_names

TINY = MetaISPConfig(ch1=8, ch2=8, emb_dim=8, xcit_dim=16, xcit_depth=1, illum_width=8)
SITE = {"R": 0.1, "Gr": 0.2, "Gb": 0.3, "B": 0.4}  # constant value per CFA site


def _site_mosaic(pattern: str, h: int = 16, w: int = 24) -> np.ndarray:
    names = {"R": "R", "B": "B"}
    m = np.zeros((h, w), np.float32)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        c = pattern[k]
        if c == "G":  # green on a red row is Gr
            row = pattern[0:2] if dy == 0 else pattern[2:4]
            name = "Gr" if "R" in row else "Gb"
        else:
            name = names[c]
        m[dy::2, dx::2] = SITE[name]
    return m


def _frame(data: np.ndarray, **meta) -> Frame:
    base = dict(cfa_pattern="RGGB", wb_gains=[2.0, 1.0, 1.5], iso=200, exposure_time=0.008)
    base.update(meta)
    return Frame(np.asarray(data, np.float32), Domain.RAW_MOSAIC, CaptureMetadata(**base))


def _scene(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    return (0.2 + 0.5 * (0.5 + 0.5 * np.sin(7 * xx) * np.cos(5 * yy)) + 0.02 * rng.standard_normal((h, w))
            ).astype(np.float32)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A seeded real_e checkpoint, so several stage instances share weights."""
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("metaisp") / "metaisp.real_e.pth"
    torch.save(MetaISPNet().state_dict(), path)
    return path


def test_registered_and_listed():
    assert "device_rendition" in stage_names()
    assert get_stage_class("device_rendition") is DeviceRendition


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_inputs_follow_the_official_packing_and_metadata(pattern):
    stage = DeviceRendition(device="cpu")
    net = MetaISPNet(TINY)
    t, extra = stage._inputs(_frame(_site_mosaic(pattern), cfa_pattern=pattern), net)
    raw = t["raw"][0].numpy()
    # official order: B, Gb(authors) = green on the red row, R, Gr(authors) = green on the blue row
    np.testing.assert_allclose(raw.reshape(4, -1).mean(axis=1), [0.4, 0.2, 0.1, 0.3], atol=1e-7)
    assert t["raw"].shape == (1, 4, 8, 16)  # 8×12 packed, padded to multiples of 8
    # global view: B, mean(G), R
    np.testing.assert_allclose(t["raw_full"][0, :, 4:-4, 4:-4].numpy().reshape(3, -1).mean(axis=1),
                               [0.4, 0.25, 0.1], atol=1e-6)
    # colour scaler: 1/as-shot neutral in B, G, R, G; exposure ×100, ISO/100
    np.testing.assert_allclose(t["color_scaler"].reshape(-1).numpy(), [1.5, 1.0, 2.0, 1.0])
    assert t["exp"].item() == pytest.approx(0.8) and t["iso"].item() == pytest.approx(2.0)
    assert extra == {"color_scaler_source": "as_shot_neutral", "iso_exposure_source": "metadata"}


def test_color_scaler_and_global_view_helpers():
    np.testing.assert_allclose(color_scaler_from_gains([4.0, 2.0, 3.0]), [1.5, 1.0, 2.0, 1.0])
    assert global_view_size(2688, 2688) == (448, 448)  # the release's crop → its 448² view
    assert global_view_size(3000, 4000) == (384, 512)
    assert global_view_size(32, 48) == (32, 48)
    v = global_view(_site_mosaic("GRBG", 96, 128), "GRBG")
    assert v.shape == (96, 128, 3) and v.dtype == np.float32
    # shades of gray recovers the gains of a tinted grey scene (clipped pixels left out)
    rng = np.random.default_rng(1)
    grey = rng.uniform(0.05, 0.6, (32, 32, 1))
    packed = grey * np.array([0.5, 0.8, 0.4, 0.8])  # B, Gr, R, Gb illuminant
    packed[:4, :4] = 1.0
    np.testing.assert_allclose(estimate_color_scaler(packed), [1.6, 1.0, 2.0, 1.0], rtol=1e-6)


def test_targets_names_mixes_and_errors():
    assert normalize_target("galaxy_s22") == {"galaxy_s22": 1.0}
    assert normalize_target({"iphone_xr": 1, "pixel_6_pro": 3}) == {"iphone_xr": 0.25, "pixel_6_pro": 0.75}
    with pytest.raises(UnknownNameError) as info:
        DeviceRendition(target="pixel_7")
    for name in ("pixel_6_pro", "galaxy_s22", "iphone_xr"):
        assert name in str(info.value)
    with pytest.raises(UnknownNameError):
        DeviceRendition(target={"iphone_xr": 0.5, "nokia": 0.5})
    for bad in ({"iphone_xr": -0.1, "galaxy_s22": 1.1}, {"iphone_xr": 0.0}, {}, {"iphone_xr": float("nan")}):
        with pytest.raises(ParameterError):
            DeviceRendition(target=bad)
    with pytest.raises(UnknownNameError):
        DeviceRendition(model="mwispnet.aim2020")
    with pytest.raises(ParameterError):
        DeviceRendition(tile=4)
    net = MetaISPNet(TINY)
    emb = DeviceRendition(target={"iphone_xr": 0.3, "pixel_6_pro": 0.7}).embedding(net)
    want = 0.3 * net.emb.weight[2] + 0.7 * net.emb.weight[0]
    torch.testing.assert_close(emb.reshape(-1), want, rtol=1e-6, atol=1e-7)


def test_config_round_trip_with_a_mix():
    stage = DeviceRendition(target={"iphone_xr": 0.3, "pixel_6_pro": 0.7}, tile=64)
    toml = Pipeline([stage]).to_toml()
    back = pipeline_from_config(loads_config(toml)).stages[0]
    assert back == stage and hash(back) == hash(stage)


def test_render_records_target_and_sources(weights_file):
    frame = _frame(_scene())
    with pytest.raises(MissingWeightsError, match="metaisp.real_e"):
        DeviceRendition(device="cpu")(_frame(_scene(32, 32)))  # no silent random weights
    with pytest.warns(RandomWeightsWarning):
        rand = DeviceRendition(device="cpu", random_weights=True)(_frame(_scene(32, 32)))
    assert rand.meta.extra["models"][-1]["random_weights"] is True
    a = DeviceRendition(weights=str(weights_file), device="cpu", target="galaxy_s22")(frame)
    assert a.domain is Domain.DISPLAY_RGB and a.data.shape == (64, 96, 3) and a.data.dtype == np.float32
    assert a.meta.device == "galaxy_s22" and a.meta.color_space == "sRGB"
    assert a.meta.extra["color_scaler_source"] == "as_shot_neutral"
    assert a.meta.extra["models"][-1]["weights"] == str(weights_file)
    b = DeviceRendition(weights=str(weights_file), device="cpu", target="iphone_xr")(frame)
    assert np.abs(a.data - b.data).max() > 1e-3  # the embedding changes the render
    mix = DeviceRendition(weights=str(weights_file), device="cpu", target={"iphone_xr": 1, "galaxy_s22": 1})(frame)
    assert mix.meta.device == "galaxy_s22:0.5+iphone_xr:0.5"
    # no as-shot WB: shades of gray fills in and says so
    nowb = DeviceRendition(weights=str(weights_file), device="cpu")(_frame(_scene(), wb_gains=None, iso=None))
    assert nowb.meta.extra["color_scaler_source"] == "shades_of_gray"
    assert nowb.meta.extra["iso_exposure_source"].startswith("default")
    assert np.isfinite(nowb.data).all()


def test_illuminant_head_estimates_the_scaler():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        out = DeviceRendition(model="metaisp.real_illuminants", device="cpu", random_weights=True)(
            _frame(_scene(32, 48), wb_gains=None))
    assert out.meta.extra["color_scaler_source"] == "illuminant_head"
    assert len(out.meta.extra["color_scaler"]) == 4 and np.isfinite(out.data).all()


def test_illuminant_patch_tiles_the_head_only():
    """``illuminant_patch=n``: the recorded colour scaler is the network's n×n-tiled estimate (not the
    whole-frame one), so a head trained on crops sees crops; bad values are refused up front."""
    frame = _frame(_scene(32, 48), wb_gains=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        stage = DeviceRendition(model="metaisp.real_illuminants", device="cpu", random_weights=True,
                                illuminant_patch=8)
        net, _ = stage.network()
        out = stage(frame)
    raw = torch.from_numpy(_inputs_raw(frame))
    with torch.no_grad():
        tiled = net.estimate_color_scaler(raw, stage.embedding(net), 8).reshape(-1)
        full = net.estimate_color_scaler(raw, stage.embedding(net), 0).reshape(-1)
    np.testing.assert_allclose(out.meta.extra["color_scaler"], tiled.numpy(), rtol=1e-5, atol=1e-6)
    assert float((tiled - full).abs().max()) > 1e-4
    with pytest.raises(ParameterError, match="illuminant_patch"):
        DeviceRendition(model="metaisp.real_illuminants", illuminant_patch=4)


def _inputs_raw(frame: Frame) -> np.ndarray:
    """The 1×4×h×w packed (B, Gr, R, Gb) RAW the stage feeds (sizes here are multiples of 16)."""
    from ispkit.neural._io import pack_bayer
    from ispkit.neural.device_rendition import METAISP_ORDER

    return np.ascontiguousarray(pack_bayer(frame.data, frame.meta.cfa_pattern, METAISP_ORDER).transpose(2, 0, 1))[None]


def test_tiled_equals_untiled_tiny_network():
    # 96×512 packed: tiles of 96 with 144 of context are cut on both sides in the middle
    torch.manual_seed(0)
    net = MetaISPNet(TINY).eval()
    raw = torch.rand(1, 4, 96, 512)
    d = net.default_inputs(raw)
    with torch.inference_mode():
        whole, _ = render_device_rendition(net, raw, d["raw_full"], d["color_scaler"], net.embed(1), d["exp"], d["iso"])
        tiled, _ = render_device_rendition(net, raw, d["raw_full"], d["color_scaler"], net.embed(1), d["exp"], d["iso"],
                                           tile=96, overlap=receptive_radius())
        short, _ = render_device_rendition(net, raw, d["raw_full"], d["color_scaler"], net.embed(1), d["exp"], d["iso"],
                                           tile=96, overlap=8)
    assert float(whole.abs().max()) > 0.05
    assert float((tiled - whole).abs().max()) < 1e-3
    assert float((short - whole).abs().max()) > 1e-3  # too little context does show: the test can fail


def test_tiled_stage_equals_untiled(weights_file):
    frame = _frame(_scene(64, 96))
    whole = DeviceRendition(weights=str(weights_file), device="cpu")(frame)
    tiled = DeviceRendition(weights=str(weights_file), device="cpu", tile=16)(frame)
    assert np.abs(tiled.data - whole.data).max() < 1e-3


def test_onnx_export_reproduces_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ispkit.neural import create_model, export_onnx

    torch.manual_seed(4)
    weights = create_model("metaisp.real_e").state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx("metaisp.real_e", tmp_path / "metaisp.onnx", input_shape=(1, 4, 32, 48), weights=weights)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]  # device 0 and the stand-in inputs are constants
    x = np.random.default_rng(4).random((1, 4, 32, 48), dtype=np.float32)
    got = sess.run(None, {"input": x})[0]
    with torch.inference_mode():
        want = create_model("metaisp.real_e", weights=weights)(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (1, 3, 64, 96)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_metaisp_preset_renders_a_dng_from_the_cli(tmp_path, weights_file):
    from ispkit.cli import main
    from ispkit.io import read_image, write_dng
    from ispkit.presets import list_presets, load_preset

    assert "metaisp" in list_presets()
    assert [s.type_name for s in load_preset("metaisp").stages] == ["black_level", "device_rendition"]
    counts = np.round(64 + _scene(32, 48) * 900).astype(np.uint16)
    dng = write_dng(tmp_path / "s.dng", counts, "RGGB", black_level=[64] * 4, white_level=1023,
                    color_matrix1=np.eye(3), as_shot_neutral=[0.5, 1.0, 0.7])
    out = tmp_path / "galaxy.png"
    assert main(["render", str(dng), "-o", str(out), "--preset", "metaisp", "--set", "device_rendition.target=galaxy_s22",
                 "--set", f"device_rendition.weights={weights_file}"]) == 0
    img = read_image(out)
    import ispkit

    want = ispkit.render(dng, preset="metaisp", device_rendition__target="galaxy_s22",
                         device_rendition__weights=str(weights_file))
    assert img.shape == want.shape == (32, 48, 3)
    assert np.abs(img - np.clip(want, 0, 1)).max() <= 1 / 255 + 1e-6


def test_generic_raw_wrapper_refuses_metaisp():
    """MetaISP needs side inputs only DeviceRendition builds: LearnedRawToRGB must not accept it."""
    from ispkit.errors import UnknownNameError
    from ispkit.neural.stages import LearnedRawToRGB, models_of_kind

    assert not any(n.startswith("metaisp.") for n in models_of_kind("raw-to-RGB"))
    with pytest.raises(UnknownNameError, match="metaisp.real_e"):
        LearnedRawToRGB(model="metaisp.real_e")
