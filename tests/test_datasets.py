"""PhotoFolder: every image mode and orientation lands as upright RGB; bad files are
skipped with one warning naming them, never a crash."""
import warnings

import numpy as np
import pytest
from PIL import Image

from pipeline.photos.folder import PhotoFolder, load_photo
from pipeline.errors import UserError


def save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def halves(w=40, h=20, left=(255, 0, 0), right=(0, 0, 255)):
    """A landscape picture: red left half, blue right half."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2:] = right
    return Image.fromarray(arr)


def test_exif_orientation_is_applied(tmp_path):
    img = halves()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the red left half ends up on top
    p = save(tmp_path / "rot.jpg", img, exif=exif.tobytes(), quality=95)
    arr = load_photo(p, (40, 20))  # the displayed picture is 20 wide, 40 tall
    top, bottom = arr[:15].mean((0, 1)), arr[-15:].mean((0, 1))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16", "CMYK", "LA"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    base = halves(32, 32)
    if mode == "I;16":
        grey = (np.asarray(base.convert("L"), np.uint16) * 257).astype(np.uint16)
        img = Image.fromarray(grey)  # uint16 -> mode I;16
        ext = ".png"
    elif mode == "CMYK":
        img, ext = base.convert("CMYK"), ".tiff"
    else:
        img, ext = base.convert(mode), ".png"
    p = save(tmp_path / f"x{ext}", img)
    arr = load_photo(p, (16, 16))
    assert arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    if mode == "I;16":  # 16-bit range scaled down, not clipped to white
        assert 20 < arr.mean() < 200


def test_folder_is_recursive_and_case_insensitive(tmp_path):
    save(tmp_path / "a.JPG", halves())
    save(tmp_path / "sub" / "deeper" / "b.png", halves())
    save(tmp_path / "c.WebP", halves())
    save(tmp_path / "d.bmp", halves())
    save(tmp_path / "e.TIF", halves())
    (tmp_path / "notes.txt").write_text("not an image")
    ds = PhotoFolder(tmp_path, size=(16, 32))
    assert len(ds) == 5
    x = ds[0]
    assert x.shape == (3, 16, 32) and x.min() >= -1 and x.max() <= 1


def test_crop_keeps_the_aspect_and_centre(tmp_path):
    # A wide picture with a green centre stripe: the centred square crop is mostly green.
    arr = np.zeros((20, 80, 3), np.uint8)
    arr[:, 30:50] = (0, 255, 0)
    save(tmp_path / "wide.png", Image.fromarray(arr))
    ds = PhotoFolder(tmp_path, size=(8, 8), random_crop=False)
    x = ds[0]
    assert x[1].mean() > 0.0 and x[0].mean() < -0.9
    crops = {tuple(PhotoFolder(tmp_path, size=(8, 8), random_crop=True, seed=s)[0][1].mean(1).tolist().__iter__())
             for s in range(6)}
    assert len(crops) > 1  # random crops move


def test_garbage_and_truncated_files_are_skipped_with_one_warning(tmp_path):
    for i in range(3):
        save(tmp_path / f"good{i}.png", halves())
    (tmp_path / "garbage.jpg").write_bytes(b"this is not a jpeg at all" * 10)
    good = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = PhotoFolder(tmp_path, size=(8, 8))
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1, msgs
    assert "skipped 2" in msgs[0] and "garbage.jpg" in msgs[0] and "cut.png" in msgs[0]
    assert len(ds) == 3 and {p.name for p in ds.skipped} == {"garbage.jpg", "cut.png"}


def test_file_that_fails_later_is_replaced_not_fatal(tmp_path):
    # Both files pass the check at construction; then one is cut short on disk.
    save(tmp_path / "a_ok.jpg", halves(64, 64), quality=95)
    save(tmp_path / "b_ok.jpg", halves(64, 64), quality=95)
    ds = PhotoFolder(tmp_path, size=(8, 8))
    data = (tmp_path / "a_ok.jpg").read_bytes()
    (tmp_path / "a_ok.jpg").write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match="a_ok.jpg"):
        x = ds[0]
    assert x.shape == (3, 8, 8)
    assert ds[0].shape == (3, 8, 8)  # the bad file is remembered, no second warning needed


def test_empty_or_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path)):
        PhotoFolder(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        PhotoFolder(tmp_path / "missing")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="none readable"):
            PhotoFolder(tmp_path)


def test_reduced_jpeg_decode_matches_a_full_decode(tmp_path):
    """load_photo lets libjpeg decode a big JPEG at 1/8 scale; the training image it gives
    matches the one from a full decode, for a crop in either orientation."""
    from PIL import ImageOps

    from pipeline.photos.folder import crop_box

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:800, 0:1200].astype(np.float32)
    checker = ((xx // 8 + yy // 8) % 2)[..., None] * 0.3  # still visible at 1/4 scale, gone at 1/8
    arr = (np.stack([xx / 1200, yy / 800, 0.5 + 0.2 * np.sin(xx / 40)], 2) * 0.7 + checker) * 255
    arr = np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)
    p = save(tmp_path / "big.jpg", Image.fromarray(arr), quality=92)
    for size in [(32, 64), (100, 150)]:  # decoded at 1/8 and at 1/4 scale
        got = load_photo(p, size).astype(np.float64)
        with Image.open(p) as img:  # the same crop and resize from a full decode
            img = ImageOps.exif_transpose(img).convert("RGB")
            h, w = size
            full = np.asarray(img.crop(crop_box(img.width, img.height, w / h, None)).resize(
                (w, h), Image.Resampling.LANCZOS), np.float64)
        assert got.shape == full.shape == (*size, 3)
        mse = np.mean((got - full) ** 2)
        assert 10 * np.log10(255 ** 2 / mse) > 33, size  # 1/8 where 1/4 is needed: 21 dB


def test_gan_folder_images_are_upright_in_order_and_skip_bad_files(tmp_path):
    from pipeline.photos.folder import folder_images

    exif = Image.Exif()
    exif[0x0112] = 6  # displayed: red on top, blue below
    save(tmp_path / "a_rot.jpg", halves(), exif=exif.tobytes(), quality=95)
    for i in range(5):
        save(tmp_path / f"b{i}.png", Image.new("RGB", (30, 20), (i * 50, 0, 0)))
    (tmp_path / "c_bad.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="c_bad.jpg"):
        arr = folder_images(tmp_path, (16, 8))
    assert arr.shape == (6, 16, 8, 3) and arr.dtype == np.uint8
    assert arr[0, :5, :, 0].mean() > 200 and arr[0, -5:, :, 2].mean() > 200  # upright
    assert [int(a[..., 0].mean()) for a in arr[1:]] == [0, 50, 100, 150, 200]  # file order kept
    with pytest.warns(UserWarning, match="c_bad.jpg"):
        assert folder_images(tmp_path, (16, 8), limit=2).shape[0] == 2
