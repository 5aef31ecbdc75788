"""Dataset loaders on tiny fixture folders made here, and on broken ones (the error names the file)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from ispkit.errors import InputError, UnknownNameError
from ispkit.io import write_dng
from ispkit.neural.train.data import (AIMReverseISP, NTIRENight, PairedFolder, SyntheticUnprocessed, ZurichRAWToRGB,
                                      aligned_crop, open_dataset)

NTIRE_META = {"black_level": [64, 64, 64, 64], "white_level": [1023], "cfa_pattern": [0, 1, 1, 2],
              "as_shot_neutral": [0.5, 1.0, 0.8], "orientation": "Horizontal (normal)",
              "color_matrix_1": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "color_matrix_2": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
              "noise_profile": [0.0001, 1e-6]}


def _mosaic(seed: int, shape=(16, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(64, 1020, size=shape, dtype=np.uint16)


def _rgb(seed: int, shape=(16, 20)) -> np.ndarray:
    return np.random.default_rng(100 + seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _write_rgb(path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


@pytest.fixture
def zurich(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "huawei_raw").mkdir(parents=True)
        (tmp_path / split / "canon").mkdir()
    for i in range(3):
        assert cv2.imwrite(str(tmp_path / "train" / "huawei_raw" / f"{i}.png"), _mosaic(i))
        _write_rgb(tmp_path / "train" / "canon" / f"{i}.jpg", _rgb(i))
    assert cv2.imwrite(str(tmp_path / "test" / "huawei_raw" / "0.png"), _mosaic(9))
    _write_rgb(tmp_path / "test" / "canon" / "0.jpg", _rgb(9))
    return tmp_path


def test_zurich_packs_as_pynet(zurich):
    ds = ZurichRAWToRGB(zurich, "train")
    assert len(ds) == 3 and len(ZurichRAWToRGB(zurich, "test")) == 1
    raw = _mosaic(1).astype(np.float32)
    # PyNET's extract_bayer_channels: B = raw[1::2, 1::2], Gb = raw[0::2, 1::2], R = raw[0::2, 0::2],
    # Gr = raw[1::2, 0::2], stacked in that order and divided by 4 * 255
    pynet = np.stack([raw[1::2, 1::2], raw[0::2, 1::2], raw[0::2, 0::2], raw[1::2, 0::2]]) / 1020.0
    sample = ds[1]
    np.testing.assert_allclose(sample["input"].numpy(), pynet, rtol=1e-6)
    assert sample["target"].shape == (3, 16, 20) and sample["target"].dtype == torch.float32


def test_crops_keep_bayer_phase_and_alignment(zurich):
    full = ZurichRAWToRGB(zurich, "train")[2]
    ds = ZurichRAWToRGB(zurich, "train", crop=8, flip=False, seed=5)
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        s = ds[2]
        assert s["input"].shape == (4, 4, 4) and s["target"].shape == (3, 8, 8)
        # find the crop in the full sample: the packed offset is exactly half the RGB offset
        hits = [(y, x) for y in range(0, 9, 2) for x in range(0, 13, 2)
                if torch.equal(full["target"][:, y:y + 8, x:x + 8], s["target"])]
        assert len(hits) == 1
        y, x = hits[0]
        assert torch.equal(full["input"][:, y // 2:y // 2 + 4, x // 2:x // 2 + 4], s["input"])
        seen.add(hits[0])
    assert len(seen) > 1  # the epoch changes the crop
    ds.set_epoch(3)
    again = ZurichRAWToRGB(zurich, "train", crop=8, seed=5)
    again.set_epoch(3)
    assert torch.equal(ds[0]["input"], again[0]["input"])


def test_flips_move_input_and_target_together(zurich):
    ds = ZurichRAWToRGB(zurich, "train", flip=True, seed=1)
    full = ZurichRAWToRGB(zurich, "train")[0]
    flipped = 0
    for epoch in range(8):
        ds.set_epoch(epoch)
        s = ds[0]
        for dims in ([], [2], [1], [1, 2]):
            t = full["target"].flip(dims) if dims else full["target"]
            if torch.equal(t, s["target"]):
                assert torch.equal(full["input"].flip(dims) if dims else full["input"], s["input"])
                flipped += bool(dims)
                break
        else:
            pytest.fail("the target is no flip of the original")
    assert flipped > 0


def test_zurich_broken_folders_name_the_file(zurich):
    (zurich / "train" / "canon" / "1.jpg").unlink()
    with pytest.raises(InputError, match=r"1\.png.*no partner 1\.jpg"):
        ZurichRAWToRGB(zurich, "train")
    _write_rgb(zurich / "train" / "canon" / "1.jpg", _rgb(1, (16, 18)))
    with pytest.raises(InputError, match=r"1\.jpg.*18×16"):
        ZurichRAWToRGB(zurich, "train")
    _write_rgb(zurich / "train" / "canon" / "1.jpg", _rgb(1))
    (zurich / "train" / "huawei_raw" / "2.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"2\.png"):
        ZurichRAWToRGB(zurich, "train")
    with pytest.raises(InputError, match="huawei_raw"):
        ZurichRAWToRGB(zurich / "nowhere", "train")


def _sidecar_pair(folder, name: str, seed: int, cfa: str = "GRBG") -> np.ndarray:
    mosaic = _mosaic(seed)
    assert cv2.imwrite(str(folder / "raw" / f"{name}.png"), mosaic)
    side = {"width": 20, "height": 16, "black_level": 64, "white_level": 1023, "cfa_pattern": cfa}
    (folder / "raw" / f"{name}.json").write_text(json.dumps(side))
    _write_rgb(folder / "rgb" / f"{name}.png", _rgb(seed))
    return mosaic


@pytest.fixture
def paired(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "rgb").mkdir()
    _sidecar_pair(tmp_path, "a", 0)
    dng = _mosaic(1, (32, 40))  # LibRaw refuses images under 22×22
    write_dng(tmp_path / "raw" / "b.dng", dng, "RGGB", black_level=64, white_level=1023,
              color_matrix1=np.eye(3))
    _write_rgb(tmp_path / "rgb" / "b.png", _rgb(1, (32, 40)))
    return tmp_path


def test_paired_folder_normalises_and_packs_in_ispkit_order(paired):
    ds = PairedFolder(paired)
    assert [c.name for c, _, _ in ds.items] == ["a.png", "b.dng"]
    m = (_mosaic(0).astype(np.float32) - 64) / (1023 - 64)
    # GRBG: R at (0, 1), Gr at (0, 0), Gb at (1, 1), B at (1, 0); ispkit's order R, Gr, Gb, B
    expected = np.stack([m[0::2, 1::2], m[0::2, 0::2], m[1::2, 1::2], m[1::2, 0::2]])
    np.testing.assert_allclose(ds[0]["input"].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ds[0]["target"].numpy(), _rgb(0).transpose(2, 0, 1) / 255.0, atol=1e-6)
    d = (_mosaic(1, (32, 40)).astype(np.float32) - 64) / (1023 - 64)
    np.testing.assert_allclose(ds[1]["input"].numpy()[0], d[0::2, 0::2], atol=1e-6)


def test_paired_folder_broken(paired):
    (paired / "rgb" / "b.png").unlink()
    with pytest.raises(InputError, match=r"b\.dng.*no RGB partner"):
        PairedFolder(paired)
    _write_rgb(paired / "rgb" / "b.png", _rgb(1, (32, 40)))
    _write_rgb(paired / "rgb" / "a.png", _rgb(0, (16, 22)))
    with pytest.raises(InputError, match=r"a\.png.*22×16"):
        PairedFolder(paired)


def test_paired_camera_raw_of_another_size_is_named_when_read(paired):
    _write_rgb(paired / "rgb" / "b.png", _rgb(1, (32, 44)))
    ds = PairedFolder(paired)  # a camera RAW's size is known only once LibRaw decodes it
    with pytest.raises(InputError, match=r"b\.png.*44×32.*b\.dng"):
        ds[1]


def test_ntire_night_with_and_without_references(tmp_path):
    for i in range(2):
        assert cv2.imwrite(str(tmp_path / f"n{i}.png"), _mosaic(i))
        (tmp_path / f"n{i}.json").write_text(json.dumps(NTIRE_META))
    plain = NTIRENight(tmp_path)
    assert set(plain[0]) == {"input"} and plain[1]["input"].shape == (4, 8, 10)
    refs = tmp_path / "refs"
    refs.mkdir()
    _write_rgb(refs / "n0.jpg", _rgb(0, (8, 12)))  # references may be smaller than the mosaic
    with pytest.raises(InputError, match=r"n1\.png.*no RGB partner"):
        NTIRENight(tmp_path, refs)
    _write_rgb(refs / "n1.jpg", _rgb(1, (8, 12)))
    ds = NTIRENight(tmp_path, refs)
    assert ds[1]["target"].shape == (3, 8, 12)
    np.testing.assert_allclose(ds[0]["input"].numpy()[0], (_mosaic(0)[0::2, 0::2] - 64.0) / 959.0, atol=1e-6)
    with pytest.raises(InputError, match=r"n0\.jpg.*one size"):
        NTIRENight(tmp_path, refs, crop=4)[0]


def test_ntire_png_without_json_is_named(tmp_path):
    assert cv2.imwrite(str(tmp_path / "lonely.png"), _mosaic(0))
    with pytest.raises(InputError, match=r"lonely\.png"):
        NTIRENight(tmp_path)


@pytest.fixture
def aim(tmp_path):
    for i in range(2):
        _write_rgb(tmp_path / f"{i}.png", _rgb(i))
        packed = np.random.default_rng(i).integers(0, 1024, size=(8, 10, 4), dtype=np.uint16)
        np.save(tmp_path / f"{i}.npy", packed)
    return tmp_path


def test_aim_reverse_isp_pairs(aim):
    ds = AIMReverseISP(aim, crop=8, seed=2)
    s = ds[1]
    assert s["input"].shape == (3, 8, 8) and s["target"].shape == (4, 4, 4)
    whole = AIMReverseISP(aim)[1]
    packed = np.random.default_rng(1).integers(0, 1024, size=(8, 10, 4), dtype=np.uint16)
    np.testing.assert_allclose(whole["target"].numpy(), packed.transpose(2, 0, 1) / 1024.0, rtol=1e-6)
    hits = [(y, x) for y in range(0, 9, 2) for x in range(0, 13, 2)
            if torch.equal(whole["input"][:, y:y + 8, x:x + 8], s["input"])]
    (y, x), = hits
    assert torch.equal(whole["target"][:, y // 2:y // 2 + 4, x // 2:x // 2 + 4], s["target"])


def test_aim_broken(aim):
    (aim / "1.png").unlink()
    with pytest.raises(InputError, match=r"1\.npy.*no RGB partner"):
        AIMReverseISP(aim)
    _write_rgb(aim / "1.png", _rgb(1, (16, 16)))
    with pytest.raises(InputError, match=r"1\.png.*16×16"):
        AIMReverseISP(aim)
    np.save(aim / "1.npy", np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(InputError, match=r"1\.npy.*\(8, 8, 3\)"):
        AIMReverseISP(aim)


def test_synthetic_unprocessing_is_deterministic_and_paired(tmp_path):
    for i in range(2):
        _write_rgb(tmp_path / f"img{i}.png", _rgb(i, (24, 30)))
    ds = SyntheticUnprocessed(tmp_path, crop=16, seed=4)
    a, b = ds[0], ds[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["input"].shape == (4, 8, 8) and a["target"].shape == (3, 16, 16) and a["wb_gains"].shape == (3,)
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["input"], a["input"])
    clean = SyntheticUnprocessed(tmp_path, crop=16, seed=4, direction="rgb2raw", noise="none", flip=False)
    s = clean[1]
    src = torch.from_numpy(_rgb(1, (24, 30)).transpose(2, 0, 1) / 255.0).float()
    hits = [(y, x) for y in range(0, 9, 2) for x in range(0, 15, 2)
            if torch.equal(src[:, y:y + 16, x:x + 16], s["input"])]
    assert len(hits) == 1 and s["target"].shape == (4, 8, 8)
    assert float(s["target"].min()) >= 0.0 and float(s["target"].max()) <= 1.0


def test_synthetic_broken_folder(tmp_path):
    _write_rgb(tmp_path / "ok.png", _rgb(0, (24, 30)))
    _write_rgb(tmp_path / "small.png", _rgb(1, (8, 8)))
    with pytest.raises(InputError, match=r"small\.png.*smaller than the 16-pixel crop"):
        SyntheticUnprocessed(tmp_path, crop=16)
    (tmp_path / "small.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match=r"small\.png"):
        SyntheticUnprocessed(tmp_path, crop=16)


def test_open_dataset_by_name(zurich):
    assert len(open_dataset("zurich", zurich, split="test")) == 1
    with pytest.raises(UnknownNameError, match="'zurich'"):
        open_dataset("mit5k", zurich)


def test_aligned_crop_centres_without_rng():
    full = np.arange(12 * 16, dtype=np.float32).reshape(12, 16, 1)
    half = full[::2, ::2]
    a, b = aligned_crop([(full, 1), (half, 2)], 4, None, "t")
    assert a[0, 0, 0] == full[4, 6, 0] and b[0, 0, 0] == half[2, 3, 0]
    with pytest.raises(InputError, match="larger"):
        aligned_crop([(full, 1)], 14, None, "t")
