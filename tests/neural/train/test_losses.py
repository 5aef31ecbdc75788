"""Training losses against references: scipy SSIM (Wang 2004), a NumPy MS-SSIM (Wang 2003),
colour-science CIEDE2000 and Sharma et al.'s published pairs, closed-form angles, VGG-19 by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from ispkit.errors import ParameterError, UnknownNameError, WeightsError
from ispkit.neural.train import losses

warnings.filterwarnings("ignore", message=".*Matplotlib.*")


def _ssim_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wang et al.'s Gaussian-window SSIM and contrast-structure maps of 2-D arrays (valid region)."""
    def f(z: np.ndarray) -> np.ndarray:
        return gaussian_filter(z, 1.5, truncate=3.5)[5:-5, 5:-5]  # the 11-tap window, borders dropped

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = f(a), f(b)
    vx, vy, cxy = f(a * a) - mx ** 2, f(b * b) - my ** 2, f(a * b) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs, cs


def _pool(z: np.ndarray) -> np.ndarray:
    h, w = z.shape[0] // 2 * 2, z.shape[1] // 2 * 2
    z = z[:h, :w]
    return 0.25 * (z[0::2, 0::2] + z[1::2, 0::2] + z[0::2, 1::2] + z[1::2, 1::2])


def _ms_ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    value = 1.0
    for j, w in enumerate(weights):
        s, cs = _ssim_maps(a, b)
        value *= max((s if j == 4 else cs).mean(), 0.0) ** w
        a, b = _pool(a), _pool(b)
    return value


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = gaussian_filter(rng.random((2, 3, 192, 180)), (0, 0, 2, 2))
    return x, np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)


def test_ssim_matches_a_scipy_gaussian_window_reference(pair):
    x, y = pair
    ref = np.mean([_ssim_maps(x[n, c], y[n, c])[0].mean() for n in range(2) for c in range(3)])
    got = losses.ssim(torch.from_numpy(x), torch.from_numpy(y))
    assert float(got) == pytest.approx(ref, abs=1e-10)
    assert float(losses.ssim_loss(torch.from_numpy(x), torch.from_numpy(x))) == pytest.approx(0.0, abs=1e-12)


def test_ms_ssim_matches_a_numpy_reference(pair):
    x, y = pair
    got = losses.ms_ssim(torch.from_numpy(x[:, :, :176, :176]), torch.from_numpy(y[:, :, :176, :176]))
    ref = np.mean([_ms_ssim_reference(x[n, c, :176, :176], y[n, c, :176, :176]) for n in range(2) for c in range(3)])
    assert float(got) == pytest.approx(ref, abs=1e-8)
    assert 0.5 < float(got) < 1.0
    with pytest.raises(ParameterError, match="176×176"):
        losses.ms_ssim(torch.from_numpy(x[:, :, :64, :64]), torch.from_numpy(y[:, :, :64, :64]))


def test_ms_ssim_loss_has_finite_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 48, 48, generator=g, requires_grad=True)
    y = torch.rand(1, 3, 48, 48, generator=g)  # unrelated images: some cs terms are near 0 or negative
    losses.ms_ssim_loss(x, y, scales=3).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_deltae2000_matches_colour_science_on_random_colours():
    import colour

    rng = np.random.default_rng(3)
    lab1 = np.c_[rng.uniform(0, 100, 400), rng.uniform(-100, 100, (400, 2))]
    lab2 = np.c_[rng.uniform(0, 100, 400), rng.uniform(-100, 100, (400, 2))]
    lab2[:100] = lab1[:100] + rng.normal(0, 1.0, (100, 3))  # small differences
    lab2[100:120, 1:] = 0.0  # achromatic partners
    got = losses.deltae2000(torch.from_numpy(lab1), torch.from_numpy(lab2)).numpy()
    np.testing.assert_allclose(got, colour.delta_E(lab1, lab2, method="CIE 2000"), atol=1e-5)


def test_deltae2000_on_published_pairs():
    # Sharma, Wu & Dalal (2005), Table 1, pairs 1, 7 and 17
    lab1 = torch.tensor([[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0]], dtype=torch.float64)
    lab2 = torch.tensor([[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0]], dtype=torch.float64)
    got = losses.deltae2000(lab1, lab2).numpy()
    np.testing.assert_allclose(got, [2.0425, 2.3669, 27.1492], atol=1e-4)


def test_deltae2000_loss_follows_the_metric_and_has_gradients():
    from ispkit.metrics import delta_e2000

    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 3, 5, 4, generator=g, dtype=torch.float64)
    b = torch.rand(2, 3, 5, 4, generator=g, dtype=torch.float64)
    ref = delta_e2000(a.permute(0, 2, 3, 1).numpy(), b.permute(0, 2, 3, 1).numpy()).mean()
    a.requires_grad_(True)
    loss = losses.deltae2000_loss(a, b)
    assert float(loss.detach()) == pytest.approx(ref, abs=1e-5)
    loss.backward()
    assert torch.isfinite(a.grad).all()
    same = b.clone().requires_grad_(True)
    losses.deltae2000_loss(same, b).backward()  # zero difference and grey pixels: still finite
    assert torch.isfinite(same.grad).all()


def test_angular_error_closed_form():
    a = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 1.0], [0.2, 0.5, 0.3]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0, 0], [0, 2.0, 0], [2.0, 2.0, 2.0], [0.3, 0.4, 0.2]], dtype=torch.float64)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    expected = np.degrees(np.arccos(cos.numpy()[3]))
    got = losses.angular_error(a, b).numpy()
    np.testing.assert_allclose(got, [45.0, 90.0, 0.0, expected], atol=1e-4)
    img = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    losses.angular_loss(img, img.detach() * 2.0).backward()  # 0° everywhere: finite gradient
    assert torch.isfinite(img.grad).all()


def _fake_vgg(path, drop: str | None = None) -> dict[str, torch.Tensor]:
    from ispkit.neural.train.losses_vgg import vgg19_features

    torch.manual_seed(0)
    sd = {f"features.{k}": v for k, v in vgg19_features(36).state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    if drop:
        sd.pop(drop)
    torch.save(sd, path)
    return sd


def test_vgg_perceptual_reads_torchvision_layout(tmp_path):
    sd = _fake_vgg(tmp_path / "vgg19.pth")
    loss = losses.VGGPerceptual(tmp_path / "vgg19.pth", layers=("relu1_2",))
    x = torch.rand(1, 3, 16, 16)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    xn = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    by_hand = F.relu(F.conv2d(F.relu(F.conv2d(xn, sd["features.0.weight"], sd["features.0.bias"], padding=1)),
                              sd["features.2.weight"], sd["features.2.bias"], padding=1))
    torch.testing.assert_close(loss._feats(x)[0], by_hand)
    y = torch.rand(1, 3, 16, 16, requires_grad=True)
    value = loss(y, x)
    value.backward()
    assert float(value) > 0 and y.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    assert float(loss(x, x)) == 0.0


def test_vgg_perceptual_refuses_wrong_weights_and_layers(tmp_path):
    _fake_vgg(tmp_path / "bad.pth", drop="features.2.weight")
    with pytest.raises(WeightsError, match="features.2.weight"):
        losses.VGGPerceptual(tmp_path / "bad.pth")
    with pytest.raises(UnknownNameError, match="relu2_2"):
        losses.VGGPerceptual(tmp_path / "bad.pth", layers=("relu9_9",))


def test_pixel_losses_and_weighting():
    p, t = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]])
    assert float(losses.l1(p, t)) == pytest.approx(0.5)
    assert float(losses.charbonnier(p, t, eps=1e-3)) == pytest.approx((np.sqrt(1 + 1e-6) + 1e-3) / 2)
    assert float(losses.weighted({losses.l1: 2.0, losses.mse: 1.0})(p, t)) == pytest.approx(1.5)
    batch = {"target": t}
    assert float(losses.on_target(losses.l1)(p, batch)) == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="'gt'"):
        losses.on_target(losses.l1, key="gt")(p, batch)


@pytest.mark.parametrize("side", [11, 21, 22, 64, 128, 176])
def test_generic_recipe_fits_ms_ssim_scales_to_the_crop(side):
    from ispkit.neural.train.recipe_generic import ms_ssim_scales

    s = ms_ssim_scales(side)
    assert 11 * 2 ** (s - 1) <= side and (s == 5 or 11 * 2 ** s > side)
    x = torch.rand(1, 3, side, side, dtype=torch.float64)
    assert float(losses.ms_ssim(x, x, scales=s)) == pytest.approx(1.0)
