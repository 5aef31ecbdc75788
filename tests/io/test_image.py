"""write_image / read_image / apply_orientation."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from ispkit.errors import DomainError, InputError, ParameterError
from ispkit.frame import CaptureMetadata, Domain, Frame
from ispkit.io import apply_orientation, read_image, write_image
from ispkit.io import _files
from tests.conftest import data_path


def pil_exif_transpose(array: np.ndarray, orientation: int) -> np.ndarray:
    """Reference: Pillow's ImageOps.exif_transpose of a PNG carrying the EXIF orientation."""
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif.tobytes())
    buf.seek(0)
    return np.asarray(ImageOps.exif_transpose(Image.open(buf)))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation, rng):
    a = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(apply_orientation(a, orientation), pil_exif_transpose(a, orientation))
    grey = a[:, :, 0]
    np.testing.assert_array_equal(apply_orientation(grey, orientation), pil_exif_transpose(grey, orientation))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_opencv_exif(orientation, rng):
    """Second reference: OpenCV's imread applies a JPEG's EXIF orientation itself."""
    import struct

    a = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
    ok, jpg = cv2.imencode(".jpg", a)
    tiff = b"MM\0*" + struct.pack(">I", 8) + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    app1 = b"Exif\0\0" + tiff
    data = jpg.tobytes()
    data = data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    shown = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(apply_orientation(stored, orientation), shown)


def test_apply_orientation_named_cases():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(apply_orientation(a, 6), np.rot90(a, -1))  # 90° clockwise
    np.testing.assert_array_equal(apply_orientation(a, 8), np.rot90(a, 1))
    np.testing.assert_array_equal(apply_orientation(a, 3), np.rot90(a, 2))
    for bad in (0, 9, 1.0, True, "6"):
        with pytest.raises(ParameterError):
            apply_orientation(a, bad)
    with pytest.raises(InputError):
        apply_orientation(np.zeros(4), 1)


@pytest.mark.parametrize("ext, bits", [(".png", 8), (".png", 16), (".tif", 8), (".tiff", 16)])
def test_lossless_round_trip(tmp_path, rng, ext, bits):
    x = rng.random((9, 13, 3), dtype=np.float32)
    path = write_image(x, tmp_path / f"out{ext}", bits)
    assert path == tmp_path / f"out{ext}"
    maxv = 2**bits - 1
    expected = np.rint(np.clip(x, 0, 1) * np.float32(maxv)) / np.float32(maxv)
    np.testing.assert_array_equal(read_image(path), expected.astype(np.float32))
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(raw[:, :, ::-1], np.rint(x * maxv).astype(raw.dtype))


def test_jpeg_round_trip_quality(tmp_path):
    x = cv2.GaussianBlur(np.random.default_rng(1).random((64, 80, 3)).astype(np.float32), (0, 0), 3)
    hi = write_image(x, tmp_path / "hi.jpg", quality=95)
    lo = write_image(x, tmp_path / "lo.jpeg", quality=20)
    back = read_image(hi)
    mse = float(np.mean((back - x) ** 2))
    assert 10 * np.log10(1 / mse) > 35
    assert lo.stat().st_size < hi.stat().st_size


def test_quantisation_clips_and_rounds_half_to_even(tmp_path):
    scale = np.float32(255)
    halves = [k for k in range(1, 254) if np.float32((k + 0.5) / 255) * scale == np.float32(k + 0.5)]
    assert len(halves) > 20
    x = np.array([-0.5, 0.0, 1.0, 1.7] + [(k + 0.5) / 255 for k in halves], dtype=np.float32)
    img = np.repeat(x[None, :, None], 3, axis=2)
    path = write_image(img, tmp_path / "q.png")
    codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[0, :, 0]
    assert codes[:4].tolist() == [0, 0, 255, 255]
    for k, code in zip(halves, codes[4:]):
        assert code == (k if k % 2 == 0 else k + 1)  # half to even


def test_grey_image_and_integer_pass_through(tmp_path, rng):
    grey = rng.random((6, 5)).astype(np.float32)
    back = read_image(write_image(grey, tmp_path / "g.png", 16))
    assert back.shape == (6, 5, 3)
    np.testing.assert_array_equal(back[:, :, 0], np.rint(grey * 65535) / 65535)
    codes = rng.integers(0, 65536, size=(4, 4, 3), dtype=np.uint16)
    write_image(codes, tmp_path / "c.png", 16)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "c.png"), cv2.IMREAD_UNCHANGED)[:, :, ::-1], codes)
    with pytest.raises(InputError, match="uint8"):
        write_image(codes, tmp_path / "c8.png", 8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_frame_orientation_is_applied(tmp_path, rng, orientation):
    x = rng.random((4, 6, 3)).astype(np.float32)
    frame = Frame(x, Domain.DISPLAY_RGB, CaptureMetadata(orientation=orientation))
    path = write_image(frame, tmp_path / "o.png")
    codes = np.rint(x * 255).astype(np.uint8)
    np.testing.assert_array_equal(cv2.imread(str(path))[:, :, ::-1], pil_exif_transpose(codes, orientation))
    # an explicit orientation overrides the frame's
    path2 = write_image(frame, tmp_path / "o1.png", orientation=1)
    np.testing.assert_array_equal(cv2.imread(str(path2))[:, :, ::-1], codes)


def test_domains(tmp_path, rng):
    x = rng.random((4, 4, 3)).astype(np.float32)
    with pytest.raises(DomainError, match="[Gg]amma"):
        write_image(Frame(x, Domain.LINEAR_RGB), tmp_path / "l.png")
    with pytest.raises(DomainError):
        write_image(Frame(x, Domain.CAMERA_RGB), tmp_path / "c.png")
    with pytest.raises(DomainError):
        write_image(Frame(rng.random((4, 4, 4)), Domain.RAW_PACKED), tmp_path / "p.png", allow_linear=True)
    mosaic = Frame(rng.random((4, 4)), Domain.RAW_MOSAIC, CaptureMetadata(cfa_pattern="RGGB"))
    with pytest.raises(DomainError):
        write_image(mosaic, tmp_path / "m.png")
    assert list(tmp_path.iterdir()) == []
    write_image(Frame(x, Domain.LINEAR_RGB), tmp_path / "l.png", allow_linear=True)
    write_image(mosaic, tmp_path / "m.png", 16, allow_linear=True)
    assert cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED).shape == (4, 4)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(path="x.bmp"), ParameterError, "extension"),
    (dict(path="x"), ParameterError, "extension"),
    (dict(path="x.jpg", bit_depth=16), ParameterError, "8-bit"),
    (dict(bit_depth=12), ParameterError, "8 or 16"),
    (dict(quality=0), ParameterError, "quality"),
    (dict(quality=101), ParameterError, "quality"),
    (dict(image=np.full((4, 4, 3), np.nan, np.float32)), InputError, "NaN"),
    (dict(image=np.zeros((4, 4, 4), np.float32)), InputError, "RGB"),
    (dict(image=np.zeros((0, 4, 3), np.float32)), InputError, "empty"),
    (dict(image=np.zeros((4, 4, 3), np.int32)), InputError, "uint8"),
    (dict(image=np.zeros((4, 4, 3), bool)), InputError, "boolean"),
    (dict(orientation=9), ParameterError, "orientation"),
])
def test_write_image_rejects(tmp_path, kwargs, error, match):
    args = dict(image=np.zeros((4, 4, 3), np.float32), path="x.png", bit_depth=8)
    args.update(kwargs)
    image, path, bits = args.pop("image"), tmp_path / args.pop("path"), args.pop("bit_depth")
    with pytest.raises(error, match=match):
        write_image(image, path, bits, **args)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_directory_target(tmp_path):
    x = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(ParameterError, match="does not exist"):
        write_image(x, tmp_path / "no" / "x.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ParameterError, match="directory"):
        write_image(x, tmp_path / "d.png")


def test_atomic_failure_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "keep.png"
    write_image(np.zeros((2, 2, 3), np.float32), target)
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_image(np.ones((2, 2, 3), np.float32), target)
    assert target.read_bytes() == before  # old file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]  # no temp file
    monkeypatch.undo()

    def failing_writer(fh):
        fh.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        _files.atomic_write(tmp_path / "new.png", failing_writer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_written_file_mode_follows_umask(tmp_path):
    import os
    import stat

    path = write_image(np.zeros((2, 2, 3), np.float32), tmp_path / "m.png")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_read_image_kodak():
    path = data_path("rgb", "kodak24", "kodim01.png")
    img = read_image(path)
    ref = cv2.imread(str(path))[:, :, ::-1].astype(np.float32) / 255
    assert img.shape == (512, 768, 3) and img.dtype == np.float32
    np.testing.assert_array_equal(img, ref)
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_read_image_alpha_and_errors(tmp_path):
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 2] = 255  # red in BGRA
    rgba[..., 3] = 7
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    img = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(img[0, 0], [1.0, 0.0, 0.0])
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="decode"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(ParameterError):
        read_image(3)


def test_webp_is_written_where_opencv_can(tmp_path, rng):
    import cv2

    yy, xx = np.mgrid[0:24, 0:40].astype(np.float32)
    img = np.stack([xx / 39, yy / 23, 0.5 + 0 * xx], axis=-1)  # smooth: WebP subsamples chroma
    if not cv2.haveImageWriter("x.webp"):
        with pytest.raises(ParameterError, match="extension '.webp'"):
            write_image(img, tmp_path / "a.webp")
        return
    back = read_image(write_image(img, tmp_path / "a.webp", quality=100))
    assert back.shape == img.shape and np.abs(back - img).mean() < 0.02
    with pytest.raises(ParameterError, match="write 16 bits to .png, .tif, .tiff"):
        write_image(img, tmp_path / "b.webp", bit_depth=16)


def test_check_image_path_refuses_before_any_work(tmp_path):
    from ispkit.io.image import check_image_path

    assert check_image_path(tmp_path / "ok.tif", 16) == tmp_path / "ok.tif"
    with pytest.raises(ParameterError, match=r"extension '\.bmpx'.*use one of \.png"):
        check_image_path(tmp_path / "x.bmpx", where="ispkit render")
    assert not list(tmp_path.iterdir())
