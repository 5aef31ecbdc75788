"""Defective pixel detection and correction: synthetic defects on all CFA layouts, NumPy reference, real D750 pair."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from ispkit.errors import InputError, ParameterError, UnknownNameError
from ispkit.frame import CFA_PATTERNS, CaptureMetadata, Domain, Frame, cfa_color_indices, cfa_position_of
from ispkit.pipeline import STAGES
from ispkit.stages.defective_pixels import (DefectivePixelCorrection, correct_defective_pixels,
                                            detect_defective_pixels, estimate_noise_sigma, same_color_offsets)
from tests.conftest import data_path

D750 = dict(black=600.0, white=15520.0, shape=(512, 768))


def _scene(n=192, seed=0):
    """A clean RGB scene with gradients, hard edges, thin lines and texture, blurred like a lens would."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n
    img = np.stack([0.2 + 0.5 * xx, 0.3 + 0.4 * yy, 0.25 + 0.2 * np.sin(6 * xx + 3 * yy)], axis=-1)
    img[n // 4: n // 2, n // 5: n // 2] = (0.85, 0.6, 0.15)  # bright block: hard edges
    img[2 * n // 3:, : n // 3] *= 0.15  # dark corner
    img[:, n // 2 + 7] = 0.95  # thin lines
    img[n // 2 + 11, :] = 0.05
    img[np.arange(n), np.arange(n)] = 0.9
    img += 0.08 * np.sin(40 * xx)[..., None] * np.cos(35 * yy)[..., None]  # fine texture
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8)
    return np.clip(img, 0.01, 1.0), rng


def _mosaic(rgb, pattern, rng, gain=2e-4, read=0.002):
    idx = cfa_color_indices(pattern)
    h, w, _ = rgb.shape
    plane = np.take_along_axis(rgb, np.tile(idx, (h // 2, w // 2))[..., None], axis=2)[..., 0]
    noise = rng.standard_normal(plane.shape) * np.sqrt(gain * plane + read ** 2)
    return (plane + noise).astype(np.float32)


def _inject(clean, rng, n_each=40):
    """Stuck-at-white (1.0) pixels where the scene is below 0.55 and stuck-at-black (0) where it is above 0.08,
    i.e. defects that differ visibly from what they replace, at random places; returns (bad, truth)."""
    bad = clean.copy()
    h, w = clean.shape
    inner = np.zeros_like(clean, dtype=bool)
    inner[3:-3, 3:-3] = True
    hot = rng.choice(np.flatnonzero(inner & (clean < 0.55)), size=n_each, replace=False)
    dead = rng.choice(np.flatnonzero(inner & (clean > 0.08)), size=n_each, replace=False)
    truth = np.zeros_like(clean, dtype=bool)
    bad.flat[hot] = 1.0
    bad.flat[dead] = 0.0
    truth.flat[hot] = truth.flat[dead] = True
    # two hot pixels of one colour inside one 5×5 window, and a dead/hot pair side by side
    m = h // 2 + 4
    for (y, x, v) in ((20, 30, 1.0), (20, 32, 0.97), (m, m + 1, 0.0), (m, m + 2, 1.0)):
        bad[y, x] = v
        truth[y, x] = True
    truth &= bad != clean
    return bad, truth


def _detect_reference(x, pattern, k=8.0, ratio=0.25, black=0.0, sigma0=None, rel=0.02):
    """Plain NumPy version of the detection rule (float32 throughout, like the kernel)."""
    x = np.asarray(x, np.float32) - np.float32(black)
    sigma0 = np.float32(estimate_noise_sigma(x) if sigma0 is None else sigma0)
    colors = cfa_color_indices(pattern)
    padded = np.pad(x, 2, mode="reflect")
    h, w = x.shape
    flags = np.zeros(x.shape, bool)
    for py in (0, 1):
        for px in (0, 1):
            offs = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                    if (dy or dx) and colors[(py + dy) % 2, (px + dx) % 2] == colors[py, px]]
            n = np.stack([padded[2 + py + dy: 2 + h + dy: 2, 2 + px + dx: 2 + w + dx: 2][:(h - py + 1) // 2,
                                                                                           :(w - px + 1) // 2]
                          for dy, dx in offs], axis=-1)
            c = x[py::2, px::2]
            s = np.sort(n, axis=-1)
            up, down = c - s[..., -2], s[..., 1] - c
            e = np.maximum(up, down)
            m = len(offs)
            med = s[..., m // 2] if m % 2 else np.float32(0.5) * (s[..., m // 2 - 1] + s[..., m // 2])
            dev = np.sort(np.abs(s - med[..., None]), axis=-1)
            mad = dev[..., m // 2] if m % 2 else np.float32(0.5) * (dev[..., m // 2 - 1] + dev[..., m // 2])
            base = np.maximum(sigma0, np.float32(rel) * np.abs(med))
            rat = np.where(up > down, np.float32(ratio) * c > s[..., -2], c < np.float32(ratio) * s[..., 1])
            flags[py::2, px::2] = (e > k * base) & (rat | (e > k * np.maximum(np.float32(1.4826) * mad, base)))
    return flags


def test_same_color_neighbourhoods():
    for pattern in CFA_PATTERNS:
        offs = same_color_offsets(pattern)
        assert len(offs["R"]) == len(offs["B"]) == 8
        assert len(offs["Gr"]) == len(offs["Gb"]) == 12 and (1, 1) in offs["Gr"]
        assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in offs["R"])


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_synthetic_defects_found_and_fixed(pattern):
    rgb, rng = _scene()
    clean = _mosaic(rgb, pattern, rng)
    bad, truth = _inject(clean, rng)
    mask = detect_defective_pixels(bad, pattern)
    recall = (mask & truth).sum() / truth.sum()
    false_pos = (mask & ~truth).sum()
    # a few defects sitting on the thin lines / block edges hide in the local spread at threshold 8
    assert recall >= 0.95, f"recall {recall:.3f}"
    assert false_pos <= 3, f"{false_pos} false positives"
    smooth = truth.copy()
    smooth[90:115] = smooth[:, 90:110] = False  # away from the lines and the block corner
    assert (mask & smooth).sum() >= smooth.sum() - 1
    for method in ("median", "gradient"):
        fixed = correct_defective_pixels(bad, pattern, mask, method=method)
        assert np.abs(fixed - clean)[truth & mask].mean() < 0.03
        assert np.array_equal(fixed[~mask], bad[~mask])
        mse_before = np.mean((bad - clean) ** 2)
        missed = truth & ~mask
        mse_after = np.mean(((fixed - clean) ** 2)[~missed])  # the few missed ones are bounded above
        assert 10 * np.log10(mse_before / mse_after) > 20


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_false_positives_on_clean_image_are_rare(pattern):
    rgb, rng = _scene(256, seed=1)
    clean = _mosaic(rgb, pattern, rng)
    rate = detect_defective_pixels(clean, pattern).mean()
    assert rate < 1e-4, f"false-positive rate {rate:.2e}"
    noiseless = _mosaic(rgb, pattern, rng, gain=0.0, read=0.0)
    assert detect_defective_pixels(noiseless, pattern).mean() < 2e-4


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_kernel_matches_numpy_reference(pattern):
    rgb, rng = _scene(96, seed=2)
    clean = _mosaic(rgb, pattern, rng)
    bad, _ = _inject(clean, rng, n_each=20)
    bad = bad * 1000 + 64  # raw-count scale with a black level
    sigma0 = estimate_noise_sigma(bad)
    for k, ratio in ((8.0, 0.25), (4.0, 0.0), (3.0, 0.5)):
        ours = detect_defective_pixels(bad, pattern, k, ratio=ratio, black_level=64, noise_sigma=sigma0)
        ref = _detect_reference(bad, pattern, k, ratio, 64.0, sigma0)
        assert (ours != ref).sum() <= 1, (k, ratio, (ours != ref).sum())
        assert ours.sum() >= 20
    # median correction against a direct NumPy median of the unflagged same-colour neighbours
    mask = detect_defective_pixels(bad, pattern, black_level=64)
    fixed = correct_defective_pixels(bad, pattern, mask)
    offs = same_color_offsets(pattern)
    names = {(py, px): n for n, (py, px) in cfa_position_of(pattern).items()}
    for y, x in zip(*np.nonzero(mask)):
        vals = []
        for dy, dx in offs[names[(y % 2, x % 2)]]:
            yy, xx = abs(y + dy), abs(x + dx)
            yy = 2 * (bad.shape[0] - 1) - yy if yy >= bad.shape[0] else yy
            xx = 2 * (bad.shape[1] - 1) - xx if xx >= bad.shape[1] else xx
            if not mask[yy, xx]:
                vals.append(bad[yy, xx])
        assert fixed[y, x] == pytest.approx(np.median(np.float32(vals)), rel=1e-6)


def test_scale_and_black_invariance():
    rgb, rng = _scene(96, seed=3)
    clean = _mosaic(rgb, "GRBG", rng)
    bad, truth = _inject(clean, rng, n_each=15)
    m1 = detect_defective_pixels(bad, "GRBG")
    m2 = detect_defective_pixels(bad * 4000 + 200, "GRBG", black_level=(200, 200, 200, 200))
    assert (m1 != m2).sum() <= 1 and (m1 & truth).sum() >= 0.75 * truth.sum()


def _load(name):
    return np.fromfile(data_path("bayer", name), dtype="<u2").reshape(D750["shape"]).astype(np.float32)


def _psnr(a, ref, peak):
    return 10 * np.log10(peak ** 2 / np.mean((a - ref) ** 2))


def test_real_d750_injected_defects():
    clean = _load("d750_rose_768x512_rggb.raw")
    bad = _load("d750_rose_768x512_rggb_badpixels.raw")
    truth = bad != clean
    assert truth.sum() == 400
    mask = detect_defective_pixels(bad, "RGGB", black_level=D750["black"])
    tp = (mask & truth).sum()
    precision, recall = tp / mask.sum(), tp / truth.sum()
    peak = D750["white"] - D750["black"]
    before = _psnr(bad, clean, peak)
    after = {m: _psnr(correct_defective_pixels(bad, "RGGB", mask, method=m), clean, peak)
             for m in ("median", "gradient")}
    print(f"D750: precision {precision:.3f} recall {recall:.3f} PSNR {before:.2f} -> "
          f"median {after['median']:.2f} / gradient {after['gradient']:.2f} dB")
    assert recall >= 0.95
    assert precision >= 0.75
    assert after["median"] > before + 30 and after["gradient"] > before + 30


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_real_d750_clean_layouts_rarely_flagged(pattern):
    clean = _load(f"d750_rose_768x512_{pattern.lower()}.raw")
    rate = detect_defective_pixels(clean, pattern, black_level=D750["black"]).mean()
    assert rate < 5e-4, f"{pattern}: {rate:.2e} of the clean pixels flagged"


def test_stage_on_raw_counts():
    bad = _load("d750_rose_768x512_rggb_badpixels.raw")
    meta = CaptureMetadata(black_level=np.full(4, D750["black"]), white_level=D750["white"], cfa_pattern="RGGB",
                           source="d750")
    frame = Frame(bad, Domain.RAW_MOSAIC, meta)
    out = DefectivePixelCorrection()(frame)
    expected = correct_defective_pixels(bad, "RGGB", black_level=D750["black"])
    assert np.array_equal(out.data, expected)
    assert out.meta.extra["defective_pixel_count"] == detect_defective_pixels(bad, "RGGB", black_level=600).sum()


def test_stage_contract_and_validation():
    assert STAGES["defective_pixel_correction"] is DefectivePixelCorrection
    s = DefectivePixelCorrection(threshold=6.0, method="gradient", ratio=0.3)
    assert DefectivePixelCorrection.from_params(s.to_config()["params"]) == s
    assert pickle.loads(pickle.dumps(s)) == s
    f = Frame(np.random.default_rng(0).random((16, 16)).astype(np.float32), Domain.RAW_MOSAIC,
              CaptureMetadata(cfa_pattern="BGGR"))
    before = f.data.copy()
    out = DefectivePixelCorrection()(f)
    assert out.data.dtype == np.float32 and out.domain is Domain.RAW_MOSAIC and np.array_equal(f.data, before)
    with pytest.raises(ParameterError, match="'defective_pixel_correction'.*threshold.*-1"):
        DefectivePixelCorrection(threshold=-1.0)
    with pytest.raises(UnknownNameError, match="median"):
        DefectivePixelCorrection(method="mean")
    with pytest.raises(ParameterError, match="ratio"):
        DefectivePixelCorrection(ratio=1.0)


def test_bad_inputs():
    x = np.ones((8, 8), np.float32)
    x[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        detect_defective_pixels(x, "RGGB")
    with pytest.raises(InputError, match="at least"):
        detect_defective_pixels(np.ones((2, 8)), "RGGB")
    with pytest.raises(InputError, match="mask shape"):
        correct_defective_pixels(np.ones((8, 8)), "RGGB", np.zeros((4, 4), bool))
    with pytest.raises(UnknownNameError):
        detect_defective_pixels(np.ones((8, 8)), "RGBG")
    # a factory mask is honoured as given
    y = np.arange(64, dtype=np.float32).reshape(8, 8)
    m = np.zeros((8, 8), bool)
    m[4, 4] = True
    fixed = correct_defective_pixels(y, "RGGB", m)
    assert fixed[4, 4] == pytest.approx(36.0) and np.array_equal(fixed[~m], y[~m])
