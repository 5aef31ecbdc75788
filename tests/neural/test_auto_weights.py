"""weights="auto": ISPKIT_WEIGHTS lookup, hashing, announced fallbacks and the meta.extra["models"] records."""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np
import pytest
import torch

from ispkit.errors import FallbackWarning, ParameterError, WeightsError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import Enhance, SuperResolution, create_model, denoise_bayer_deepflexisp, estimate_illuminant_fc4
from ispkit.neural.stages import FULL_SIZE_KEY
from ispkit.pipeline import models as auto
from ispkit.stages import BayerDenoise, IlluminantEstimation


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    """An empty ISPKIT_WEIGHTS folder and a process that has announced nothing yet."""
    monkeypatch.setattr(auto, "_ANNOUNCED", set())
    monkeypatch.setenv(auto.WEIGHTS_ENV, str(tmp_path))
    return tmp_path


def _save(model: str, folder, suffix: str = ".pth", seed: int = 0) -> str:
    torch.manual_seed(seed)
    path = os.path.join(folder, model + suffix)
    sd = create_model(model).state_dict()
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items()}, path)
    else:
        torch.save(sd, path)
    return path


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _mosaic_frame(h: int = 64, w: int = 64, seed: int = 0, cfa: str = "RGGB") -> Frame:
    rng = np.random.default_rng(seed)
    data = (0.05 + 0.02 * rng.standard_normal((h, w))).clip(0, None).astype(np.float32)
    data[8:12, 8:12] = 1.3  # a lamp above white
    return Frame(data, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern=cfa, noise_profile=((1e-4, 1e-6),)))


# -- resolution ---------------------------------------------------------------------------
def test_auto_finds_pth_then_safetensors_and_explains_a_miss(fresh, monkeypatch):
    assert auto.resolve_weights("fc4.cwp", "auto", "t") == (None, f"no fc4.cwp weights in ISPKIT_WEIGHTS={fresh}")
    st = _save("fc4.cwp", fresh, ".safetensors")
    assert auto.resolve_weights("fc4.cwp", "auto", "t") == (st, None)
    pth = _save("fc4.cwp", fresh, ".pth")
    assert auto.resolve_weights("fc4.cwp", "auto", "t") == (pth, None)  # .pth first
    assert auto.resolve_weights("fc4.cwp", None, "t") == (None, None)  # random weights stay explicit
    monkeypatch.delenv(auto.WEIGHTS_ENV)
    assert auto.resolve_weights("fc4.cwp", "auto", "t") == (None, "no fc4.cwp weights: ISPKIT_WEIGHTS is not set")


def test_a_missing_explicit_path_is_an_error_naming_the_file(fresh):
    with pytest.raises(WeightsError, match="nowhere/fc4_mine.pth"):
        auto.resolve_weights("fc4.cwp", "/nowhere/fc4_mine.pth", "stage 'illuminant_estimation'")
    with pytest.raises(WeightsError, match="fc4_mine.pth"):  # when the stage is built, before any frame
        IlluminantEstimation(method="fc4", weights="/nowhere/fc4_mine.pth")


def test_sha256_is_cached_by_path_and_mtime(fresh):
    p = fresh / "x.pth"
    p.write_bytes(b"first")
    assert auto.weights_sha256(p) == hashlib.sha256(b"first").hexdigest()
    key = next(k for k in auto._HASHES if k[0] == str(p.resolve()))
    auto._HASHES[key] = "cached"  # a second call must not read the file again
    assert auto.weights_sha256(p) == "cached"
    p.write_bytes(b"second, longer")  # new size and mtime: hashed again
    assert auto.weights_sha256(p) == hashlib.sha256(b"second, longer").hexdigest()


def test_records_are_appended_to_a_new_mapping():
    extra = {"models": [{"stage": "a"}], "other": 1}
    out = auto.add_model_record(extra, {"stage": "b"})
    assert [m["stage"] for m in out["models"]] == ["a", "b"] and out["other"] == 1
    assert extra == {"models": [{"stage": "a"}], "other": 1}


# -- Bayer denoise: deepflexisp.raw_denoise ------------------------------------------------------
def _official_denoise(mosaic: np.ndarray, net: torch.nn.Module, offsets) -> np.ndarray:
    """Deep-FlexISP stage1 semantics written out: pack by offsets, clip, ceiling, residual, clip."""
    packed = np.stack([mosaic[r::2, c::2] for r, c in offsets], axis=-1).clip(0, 1)
    ceiling = max(3 * packed.mean(), 0.9)
    with torch.no_grad():
        res = net(torch.from_numpy(np.minimum(packed, ceiling)).permute(2, 0, 1)[None].float())
    out = (packed + res[0].permute(1, 2, 0).numpy()).clip(0, 1)
    m = np.empty_like(mosaic)
    for i, (r, c) in enumerate(offsets):
        m[r::2, c::2] = out[..., i]
    return m


# utils.bayer_to_offsets of the official code (R, G, B, G); for RGGB and GRBG its greens are R, Gr, B, Gb
OFFICIAL_OFFSETS = {"RGGB": [(0, 0), (0, 1), (1, 1), (1, 0)], "GRBG": [(0, 1), (0, 0), (1, 0), (1, 1)]}


@pytest.mark.parametrize("pattern", sorted(OFFICIAL_OFFSETS))
@pytest.mark.parametrize("level", [0.05, 0.45])  # ceiling 0.9 (lamp clipped for the net) / 1.35
def test_deepflexisp_denoise_matches_the_official_semantics(fresh, pattern, level):
    path = _save("deepflexisp.raw_denoise", fresh, seed=1)
    net = create_model("deepflexisp.raw_denoise", weights=path).eval()
    rng = np.random.default_rng(2)
    m = (level + 0.03 * rng.standard_normal((48, 64))).astype(np.float32)
    m[10:14, 20:26] = 1.4
    m[30:32, 4:8] = 0.95
    got = denoise_bayer_deepflexisp(m, pattern, None, weights=path, device="cpu")
    want = _official_denoise(m, net, OFFICIAL_OFFSETS[pattern])
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.abs(got - m.clip(0, 1)).max() > 1e-3  # the residual did something


def test_bayer_denoise_stage_records_the_weights_and_falls_back_once(fresh):
    frame = _mosaic_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        path = _save("deepflexisp.raw_denoise", fresh)
        out = BayerDenoise(method="deepflexisp", weights="auto", fallback="nlm", device="cpu")(frame)
    direct = denoise_bayer_deepflexisp(frame.data, "RGGB", None, weights=path, device="cpu")
    np.testing.assert_array_equal(out.data, direct)
    assert out.meta.extra["models"] == [{"stage": "bayer_denoise", "model": "deepflexisp.raw_denoise",
                                        "weights": path, "sha256": _sha(path), "fallback": None,
                                        "random_weights": False}]
    assert "models" not in frame.meta.extra  # input left alone

    os.remove(path)
    stage = BayerDenoise(method="deepflexisp", weights="auto", fallback="nlm", strength=1.4)
    with pytest.warns(FallbackWarning, match="nlm") as rec:
        a = stage(frame)
        b = stage(frame)  # said once per process
    assert len([w for w in rec if issubclass(w.category, FallbackWarning)]) == 1
    np.testing.assert_array_equal(a.data, BayerDenoise(method="nlm", strength=1.4)(frame).data)
    np.testing.assert_array_equal(a.data, b.data)
    (r,) = a.meta.extra["models"]
    assert r["weights"] is None and r["sha256"] is None and r["fallback"].startswith("nlm (no deepflexisp")

    with pytest.raises(WeightsError, match="ISPKIT_WEIGHTS"):
        BayerDenoise(method="deepflexisp", weights="auto")(frame)
    with pytest.raises(ParameterError, match="classical"):
        BayerDenoise(method="deepflexisp", fallback="unet")


# -- illuminant: FC4 in the Bayer domain -----------------------------------------------------------
def test_fc4_illuminant_auto_and_its_fallback(fresh):
    frame = _mosaic_frame(96, 96, seed=3)
    stage = IlluminantEstimation(method="fc4", weights="auto", fallback="masked_bright_pixels", device="cpu")
    with pytest.warns(FallbackWarning, match="masked_bright_pixels"):
        fb = stage(frame)
    ref = IlluminantEstimation(method="masked_bright_pixels")(frame).meta.illuminant_rgb
    np.testing.assert_allclose(fb.meta.illuminant_rgb, ref)
    assert fb.meta.extra["models"][0]["fallback"].startswith("masked_bright_pixels (no fc4.cwp weights")

    path = _save("fc4.cwp", fresh, seed=4)
    got = stage(frame)
    want = estimate_illuminant_fc4(frame.data, "RGGB", weights=path, device="cpu")
    np.testing.assert_allclose(got.meta.illuminant_rgb, want, rtol=1e-6)
    assert got.meta.extra["models"] == [{"stage": "illuminant_estimation", "model": "fc4.cwp",
                                        "weights": path, "sha256": _sha(path), "fallback": None,
                                        "random_weights": False}]
    with pytest.raises(ParameterError, match="fallback"):
        IlluminantEstimation(method="gray_world", fallback="max_rgb")


# -- Enhance / SuperResolution -----------------------------------------------------------------------
def _rgb(h, w, seed=0) -> Frame:
    rng = np.random.default_rng(seed)
    return Frame(rng.random((h, w, 3), dtype=np.float32), Domain.DISPLAY_RGB, CaptureMetadata())


def test_enhance_and_sr_skip_announced_and_sr_returns_to_the_full_size(fresh):
    f = _rgb(32, 48)
    with pytest.warns(FallbackWarning, match="skipped"):
        out = Enhance(weights="auto", fallback="skip")(f)
    np.testing.assert_array_equal(out.data, f.data)
    assert out.meta.extra["models"][0]["fallback"].startswith("skipped (no deepflexisp.enhance_2023 weights")
    with pytest.raises(WeightsError, match="deepflexisp.enhance_2023"):
        Enhance(weights="auto")(f)

    small = _rgb(8, 12).replace(extra={FULL_SIZE_KEY: (32, 48)})
    with pytest.warns(FallbackWarning, match="bicubic"):
        up = SuperResolution(model="hat_s.srx4", weights="auto", fallback="skip", size="full")(small)
    assert up.data.shape == (32, 48, 3)
    assert up.meta.extra["models"][-1]["fallback"].startswith("bicubic resize to 48x32")
    with pytest.raises(ParameterError):
        SuperResolution(size="double")


def test_hat_restores_the_full_size_an_enhancer_recorded(fresh):
    h_path = _save("hat_s.srx4", fresh, seed=6)
    small = _rgb(8, 8, seed=1).replace(extra={FULL_SIZE_KEY: (32, 32)})  # as Enhance leaves it (×1/4)
    sr = SuperResolution(model="hat_s.srx4", weights="auto", fallback="skip", size="full", device="cpu")
    out = sr(small)
    assert out.data.shape == (32, 32, 3)
    assert out.meta.extra["models"] == [{"stage": "super_resolution", "model": "hat_s.srx4", "weights": h_path,
                                        "sha256": _sha(h_path), "fallback": None, "random_weights": False}]
    # without an enhancer's record the input is area-downscaled ×1/4 first and comes back at its own
    # size: a 4×4-block image downscales to exactly ``small``, so HAT sees the same input
    blocky = Frame(np.repeat(np.repeat(small.data, 4, axis=0), 4, axis=1), Domain.DISPLAY_RGB, CaptureMetadata())
    again = sr(blocky)
    assert again.data.shape == (32, 32, 3)
    np.testing.assert_allclose(again.data, out.data, atol=1e-4)
    assert np.abs(out.data - blocky.data).mean() > 1e-3  # random weights: not an identity
