"""``dictionary_isp.k8``: exact inverse, monotone tone curve, both stages, tiny training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.neural import DictionaryUnprocess, LearnedRawToRGB, create_model
from ispkit.neural.models.dictionary_isp import DictionaryISP, MonotoneToneCurve, packed_to_camera_rgb
from ispkit.stages.demosaic import mosaic


def _randomised(seed: int = 0) -> DictionaryISP:
    """A DictionaryISP with every parameter moved away from its initial value."""
    torch.manual_seed(seed)
    model = DictionaryISP()
    with torch.no_grad():
        model.tone.theta.normal_(0.0, 1.0)
        model.log_gamma_minus_1.fill_(0.4)
        model.ccms.add_(0.2 * torch.randn_like(model.ccms))
        model.log_gains.add_(0.2 * torch.randn_like(model.log_gains))
        for enc in (model.encoder_raw, model.encoder_rgb):
            for p in enc.parameters():
                p.normal_(0.0, 0.2)
    return model.eval()


def test_parameter_count():
    assert sum(p.numel() for p in create_model("dictionary_isp.k8").parameters()) == 30_961


def test_unrender_inverts_render_exactly():
    model = _randomised()
    g = torch.Generator().manual_seed(1)
    cam = torch.rand(2, 3, 24, 40, generator=g)
    cam[0, :, :4] = -0.05 * torch.rand(3, 4, 40, generator=g)  # below black (noise) inverts too
    cam[1, :, -4:] += 0.5  # above white
    with torch.no_grad():
        params = model.params_from_raw(cam)
        srgb = model.render(cam, params)
        back = model.unrender(srgb, params)
    assert float((srgb - cam).abs().max()) > 0.1  # the rendering is far from the identity
    torch.testing.assert_close(back, cam, rtol=0, atol=1e-5)


def test_tone_curve_is_monotone_onto_unit_interval_and_inverts():
    curve = MonotoneToneCurve(16)
    x = torch.linspace(-0.5, 1.5, 2001)
    with torch.no_grad():
        torch.testing.assert_close(curve(x), x, rtol=0, atol=1e-6)  # identity at initialisation
        curve.theta.copy_(torch.linspace(-3, 3, 16))
        y = curve(x)
        assert bool((y[1:] > y[:-1]).all())
        torch.testing.assert_close(curve(torch.tensor([0.0, 1.0])), torch.tensor([0.0, 1.0]), rtol=0, atol=1e-6)
        torch.testing.assert_close(curve.inverse(y), x, rtol=0, atol=1e-5)


def test_forward_runs_in_the_learned_raw_to_rgb_slot(tmp_path):
    model = _randomised(2)
    path = tmp_path / "dict.pth"
    torch.save(model.state_dict(), path)
    mosaic_ = np.random.default_rng(0).random((16, 24), dtype=np.float32)
    frame = Frame(mosaic_, Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    out = LearnedRawToRGB(model="dictionary_isp.k8", weights=str(path), device="cpu")(frame)
    assert out.domain is Domain.DISPLAY_RGB and out.data.shape == (16, 24, 3)
    packed = torch.from_numpy(np.stack([mosaic_[0::2, 0::2], mosaic_[0::2, 1::2], mosaic_[1::2, 0::2],
                                        mosaic_[1::2, 1::2]]))[None]
    with torch.no_grad():
        cam = packed_to_camera_rgb(packed)
        want = model.render(F.interpolate(cam, scale_factor=2, mode="bilinear", align_corners=False),
                            model.params_from_raw(cam))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out.data, want, atol=1e-5)


def test_unprocess_stage_writes_the_inverse_mosaic_and_its_metadata(tmp_path):
    model = _randomised(3)
    path = tmp_path / "dict.pth"
    torch.save(model.state_dict(), path)
    srgb = np.random.default_rng(1).random((20, 30, 3), dtype=np.float32)
    frame = Frame(srgb, Domain.DISPLAY_RGB, CaptureMetadata())
    out = DictionaryUnprocess(weights=str(path), device="cpu", cfa_pattern="GBRG")(frame)
    assert out.domain is Domain.RAW_MOSAIC and out.meta.cfa_pattern == "GBRG"
    x = torch.from_numpy(srgb).permute(2, 0, 1)[None]
    with torch.no_grad():
        params = model.params_from_rgb(x)
        cam = model.unrender(x, params)
        again = model.render(cam, params)
    cam_np = cam[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out.data, mosaic(cam_np, "GBRG"), atol=1e-6)
    torch.testing.assert_close(again, x, rtol=0, atol=1e-5)  # sRGB → RAW → sRGB
    # the metadata describe the same linear map: cam_to_srgb @ (wb_gains * cam) == M @ (g * cam)
    m = params.ccm[0].double().numpy() @ np.diag(params.wb_gains[0].double().numpy())
    np.testing.assert_allclose(out.meta.cam_to_srgb @ np.diag(out.meta.wb_gains), m, rtol=1e-5, atol=1e-6)
    assert out.meta.wb_gains[1] == 1.0


def test_unprocess_stage_refuses_other_models():
    from ispkit.errors import ParameterError

    with pytest.raises(ParameterError, match="dictionary ISP"):
        DictionaryUnprocess(model="mai.compact")


def test_inverse_learns_a_hidden_camera():
    # truth: one fixed camera (gains, matrix, gamma 2.2, smoothstep-like tone); the model learns to undo it
    g = torch.Generator().manual_seed(0)
    cam = F.interpolate(torch.rand(8, 3, 4, 4, generator=g), size=(32, 32), mode="bilinear", align_corners=False)
    cam = cam * torch.rand(8, 3, 1, 1, generator=g) * 0.8
    gains = torch.tensor([2.1, 1.0, 1.7])
    ccm = torch.tensor([[1.6, -0.5, -0.1], [-0.2, 1.5, -0.3], [0.0, -0.4, 1.4]])
    lin = torch.einsum("ij,njhw->nihw", ccm, cam * gains[:, None, None]).clamp(0, 1)
    srgb = lin ** (1 / 2.2)
    srgb = 3 * srgb ** 2 - 2 * srgb ** 3
    torch.manual_seed(0)
    model = DictionaryISP(k=4)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = (model.unrender(srgb) - cam).abs().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # here it settles at 0.20 of the first loss (the clipped highlights of the truth are not invertible)
    assert min(losses[-10:]) < 0.4 * losses[0], f"inverse loss {losses[0]:.4f} -> {min(losses[-10:]):.4f}"
