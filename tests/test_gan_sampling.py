"""Sample shards (--z order, const-noise repeatability, resume), SWD sanity, and the gan CLI verbs."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan.checkpoint import save_generator
from gan.networks import Generator, GeneratorConfig
from gan.images import to_uint8
from gan.sampling import SampleError, read_samples, z_from_seeds
from gan.swd import swd
from pipeline.commands import sample as sample_cmd
from pipeline.commands import train_gan as train_cmd
from pipeline.errors import UserError



@pytest.fixture
def gan_file(tmp_path):
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=(16, 32), mapping_layers=2,
                                  channel_base=64, channel_max=8))
    for p in G.parameters():
        if p.ndim == 0:
            p.data.fill_(0.3)  # make the noise inputs matter
    return save_generator(G, tmp_path / "g.safetensors"), G


def png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_sample_z_file_order_and_const_noise_repeatable(tmp_path, gan_file):
    path, G = gan_file
    z = np.random.RandomState(1).randn(5, 8).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "z_rev.npy", z[::-1].copy())
    for name, zf in (("a", "z.npy"), ("b", "z.npy"), ("rev", "z_rev.npy")):
        assert sample_cmd.main(["--gan", str(path), "--z", str(tmp_path / zf), "--noise", "const",
                                "--batch", "2", "--out", str(tmp_path / name)]) == 0
    got = read_samples(tmp_path / "a")
    np.testing.assert_array_equal(got["z"], z)
    assert got["w"].shape == (5, 8) and (got["seeds"] == -1).all()
    with torch.no_grad():
        expected = to_uint8(G(torch.from_numpy(z), noise_mode="const"))
    for i in range(5):
        a = png(tmp_path / "a" / "images" / f"{i:06d}.png")
        np.testing.assert_array_equal(a, expected[i])  # row i -> image i, independent of batching
        np.testing.assert_array_equal(a, png(tmp_path / "b" / "images" / f"{i:06d}.png"))
        np.testing.assert_array_equal(a, png(tmp_path / "rev" / "images" / f"{4 - i:06d}.png"))
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["noise_mode"] == "const" and len(manifest["gan_sha256"]) == 64


def test_sample_seeds_resume_and_mismatch(tmp_path, gan_file):
    path, _ = gan_file
    out = tmp_path / "s"
    args = ["--gan", str(path), "--n", "10", "--seed", "100", "--noise", "random", "--set", "sample.chunk=4",
            "--out", str(out)]
    assert sample_cmd.main(args) == 0
    first = read_samples(out)
    np.testing.assert_array_equal(first["seeds"], np.arange(100, 110))
    np.testing.assert_array_equal(first["z"], z_from_seeds(np.arange(100, 110), 8))
    img5 = png(out / "images" / "000005.png")
    # Simulate a crash in chunk 1: its arrays and an image are gone; the rerun redoes just that.
    (out / "chunks" / "000001.npz").unlink()
    (out / "images" / "000005.png").unlink()
    with pytest.raises(SampleError, match="000001.npz"):
        read_samples(out)
    assert sample_cmd.main(args) == 0
    again = read_samples(out)
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])
    np.testing.assert_array_equal(img5, png(out / "images" / "000005.png"))  # random noise seeded per chunk
    with pytest.raises(UserError, match="truncation"):
        sample_cmd.main(args + ["--truncation", "0.5"])


def test_shard_arrays_located_in_place_match_np_load(tmp_path, gan_file):
    """`photoedit boundary` reads w straight out of the chunk files (gan.shards, no torch):
    the located bytes are the arrays np.load returns, and an odd chunk is parsed, not assumed."""
    from gan.shards import chunk_paths, locate_chunk_arrays

    path, _ = gan_file
    out = tmp_path / "s"
    assert sample_cmd.main(["--gan", str(path), "--n", "17", "--no-images", "--set", "sample.chunk=4",
                            "--out", str(out)]) == 0
    paths = chunk_paths(out)
    # Chunk 1 rewritten with its arrays in another order (w first), chunk 2 compressed: neither
    # may be read at chunk 0's offsets; chunk 3 may; chunk 4 is short.
    with np.load(paths[1], allow_pickle=False) as c1:
        arrays = {k: c1[k] for k in c1.files}
    np.savez(paths[1], w=arrays["w"], seeds=arrays["seeds"], z=arrays["z"])
    with np.load(paths[2], allow_pickle=False) as c2:
        np.savez_compressed(paths[2], **{k: c2[k] for k in c2.files})
    expected = read_samples(out)
    for key in ("w", "z"):
        locs = locate_chunk_arrays(paths, key)
        assert locs[2] is None and None not in locs[:2] + locs[3:]
        assert locs[3].offset == locs[0].offset and locs[1].offset != locs[0].offset
        assert locs[4].shape == (1, 8)
        for i, loc in enumerate(locs):
            if loc is not None:
                rows = np.fromfile(loc.path, loc.dtype, int(np.prod(loc.shape)), offset=loc.offset)
                np.testing.assert_array_equal(rows.reshape(loc.shape), expected[key][4 * i:4 * i + 4])
    # a truncated chunk (headers intact) is not read at the template's offsets: it is a named error
    with open(paths[3], "r+b") as f:
        f.truncate(paths[3].stat().st_size - 10)
    with pytest.raises(SampleError, match="000003.npz"):
        locate_chunk_arrays(paths, "w")


def test_sample_bad_inputs_name_the_file(tmp_path, gan_file):
    path, _ = gan_file
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    with pytest.raises(UserError, match=r"bad.npy.*\[N, 8\]"):
        sample_cmd.main(["--gan", str(path), "--z", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o")])
    with pytest.raises(UserError, match="nope.safetensors"):
        sample_cmd.main(["--gan", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "o")])


def test_swd_ranks_image_sets():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")

    def smooth(n):  # random smooth gradients: a stand-in for "real" images
        a = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
        b = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
        return (a * yy + b * xx).clamp(-1, 1)

    real1, real2 = smooth(32), smooth(32)
    noise = torch.rand(32, 3, 32, 32, generator=g) * 2 - 1
    near, far = swd(real1, real2)["swd"], swd(real1, noise)["swd"]
    assert far > 3 * near, (near, far)
    assert len(swd(real1, real2)["levels"]) == 2  # 32 px band-pass + 16 px low-pass


def test_train_gan_cli_dry_run_and_bad_data(tmp_path, capsys):
    assert train_cmd.main(["--dry-run", "--set", "train_gan.minutes=2"]) == 0
    assert "minutes: 2.0" in capsys.readouterr().out
    with pytest.raises(UserError, match="no image files"):
        train_cmd.main(["--data", str(tmp_path), "--out", str(tmp_path / "run")])
    with pytest.raises(UserError, match="not a folder"):
        train_cmd.main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="broken.png"), pytest.raises(UserError, match="none readable"):
        train_cmd.main(["--data", str(tmp_path), "--out", str(tmp_path / "run")])
    with pytest.raises(UserError, match="augment"):
        train_cmd.main(["--dry-run", "--set", "train_gan.augment=[blur]"])
