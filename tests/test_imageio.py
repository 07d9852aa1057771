"""Photo I/O: orientation, metadata, modes, bit depth, and clear errors for bad files."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from pipeline.photos.imageio import Photo, PhotoError, encode_photo, read_photo, write_photo

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def noise(h, w, c=3, seed=0):
    return (np.random.default_rng(seed).random((h, w, c)) * 255).astype(np.uint8)


def save_with_orientation(path, arr, orientation, fmt):
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make: must survive the round trip
    im.save(path, format=fmt, exif=exif.tobytes(), icc_profile=SRGB_ICC, dpi=(300, 150))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    path = tmp_path / "o.png"
    save_with_orientation(path, noise(20, 36), orientation, "PNG")
    reference = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert np.array_equal(read_photo(path).rgb, reference)


def test_exif_rotated_jpeg_round_trip_is_upright_with_metadata(tmp_path):
    src, dst = tmp_path / "r.jpg", tmp_path / "r.out.jpg"
    save_with_orientation(src, noise(40, 64), 6, "JPEG")
    photo = read_photo(src)
    assert photo.rgb.shape == (64, 40, 3)  # upright: the visual size, portrait
    write_photo(dst, photo)
    back = Image.open(dst)
    assert back.size == (40, 64)
    assert back.getexif().get(0x0112) == 1 and back.getexif().get(0x010F) == "TestCam"
    assert back.info.get("icc_profile") == SRGB_ICC
    assert tuple(round(v) for v in back.info["dpi"]) == (150, 300)  # swapped with the rotation


def test_modes_become_rgb_plus_untouched_alpha(tmp_path):
    rgba = noise(10, 12, 4)
    cases = {
        "l.png": (Image.fromarray(rgba[..., 0], "L"), False),
        "la.png": (Image.fromarray(rgba[..., :2], "LA"), True),
        "rgba.png": (Image.fromarray(rgba, "RGBA"), True),
        "cmyk.jpg": (Image.fromarray(rgba, "RGBA").convert("RGB").convert("CMYK"), False),
    }
    pal = Image.fromarray(rgba[..., :3]).quantize(16)
    pal.info["transparency"] = 3
    cases["p.png"] = (pal, True)
    for name, (im, has_alpha) in cases.items():
        im.save(tmp_path / name)
        photo = read_photo(tmp_path / name)
        assert photo.rgb.shape == (10, 12, 3) and photo.rgb.dtype == np.uint8, name
        assert (photo.alpha is not None) == has_alpha, name
    assert np.array_equal(read_photo(tmp_path / "rgba.png").alpha, rgba[..., 3])
    assert any("CMYK" in n for n in read_photo(tmp_path / "cmyk.jpg").notes)
    p = read_photo(tmp_path / "p.png")
    assert set(np.unique(p.alpha)) <= {0, 255} and (p.alpha == 0).any()


def test_16_bit_png_round_trips_at_16_bits_with_icc(tmp_path):
    rgb16 = (np.random.default_rng(1).random((24, 30, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), np.ascontiguousarray(rgb16[..., ::-1]))
    photo = read_photo(tmp_path / "in.png")
    assert photo.rgb.dtype == np.uint16 and np.array_equal(photo.rgb, rgb16)
    photo.icc = SRGB_ICC
    write_photo(tmp_path / "out.png", photo)
    back = read_photo(tmp_path / "out.png")
    assert back.rgb.dtype == np.uint16 and np.array_equal(back.rgb, rgb16) and back.icc == SRGB_ICC
    grey = Image.fromarray((np.arange(200, dtype=np.uint16) * 300).reshape(10, 20))
    grey.save(tmp_path / "g16.png")
    assert read_photo(tmp_path / "g16.png").rgb.dtype == np.uint16
    notes = write_photo(tmp_path / "out.jpg", back)
    assert "8-bit" in notes[0] and Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_animated_gif_gives_first_frame_and_a_warning(tmp_path):
    frames = [Image.fromarray(noise(8, 8, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    photo = read_photo(tmp_path / "a.gif")
    assert photo.rgb.shape == (8, 8, 3) and "3 frames" in photo.notes[0]


@pytest.mark.parametrize("content, needle", [
    (b"", "empty file"),
    (b"this is not an image\n", "not an image"),
])
def test_unreadable_files_name_the_file(tmp_path, content, needle):
    path = tmp_path / "bad photo é.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=needle) as e:
        read_photo(path)
    assert str(path) in str(e.value)


def test_truncated_jpeg_and_pixel_limit(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(PhotoError, match="truncated"):
        read_photo(tmp_path / "t.jpg")
    (tmp_path / "ok.jpg").write_bytes(buf.getvalue())
    with pytest.raises(PhotoError, match=r"64x64 = 4,096 pixels exceeds the limit of 1,000 \(--max-pixels"):
        read_photo(tmp_path / "ok.jpg", max_pixels=1000)


def test_failed_write_leaves_nothing(tmp_path):
    photo = Photo(rgb=noise(5, 5))
    with pytest.raises(PhotoError, match="unknown output extension"):
        write_photo(tmp_path / "x.xyz", photo)
    blocker = tmp_path / "notafolder"
    blocker.write_text("")
    with pytest.raises(PhotoError, match="cannot write to folder"):
        write_photo(blocker / "x.png", photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notafolder"]
    assert encode_photo(photo, "PNG").startswith(b"\x89PNG")


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    # 20000x20000 RGB claimed by a 60-byte file: 1.2 GB if decoded.
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(bomb)
    expected = r"bomb.png: 20000x20000 = 400,000,000 pixels exceeds the limit of 200,000,000"
    with pytest.raises(PhotoError, match=expected):
        read_photo(tmp_path / "bomb.png")
