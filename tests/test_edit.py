"""EditPipeline: full-resolution carrying, tiling, types in = types out, lists, bundles by name,
save_pretrained / .to, the CLI's settings. Public names only."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.cli import main
from translators.guided_filter import apply_local_affine, fit_local_affine
from translators.inference import (EditConfig, EditPipeline, translator_from_model, working_size)

REAL_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "realphotos"

# A colour change that varies across the image (warmer at the top, darker at the
# bottom): what a "sunny"/"night" translator roughly does, but known exactly.
WARM = torch.tensor([[1.05, 0.10, 0.00], [0.00, 0.95, 0.05], [0.00, 0.05, 0.80]])


class PointwiseColour(torch.nn.Module):
    """Stand-in translator: a per-pixel colour transform mixed by strength and height."""

    def forward(self, x: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("ij,njhw->nihw", WARM, x * 0.5 + 0.5) + 0.05
        ramp = torch.linspace(1.0, 0.3, x.shape[2]).view(1, 1, -1, 1)
        y = (y * ramp) * 2 - 1
        s = strength.view(-1, 1, 1, 1)
        return (x + s * (y - x)).clamp(-1, 1)


def make_pipeline(model=None, resolution=(32, 64), **cfg) -> EditPipeline:
    model = model or PointwiseColour()
    t = translator_from_model(model, {"attribute": "warm", "resolution": list(resolution),
                                      "strength_range": [0, 1], "architecture": {"n_downsample": 2}})
    return EditPipeline([t], EditConfig(**cfg))


def make_bundle(folder, attribute="sunny", seed=0, resolution=(32, 64)):
    """A tiny random-weight translator bundle written with the translators' own save_bundle."""
    from translators.bundle import save_bundle
    from translators.networks import TranslatorConfig, build_translator

    torch.manual_seed(seed)
    model = build_translator(TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1, film_hidden=8))
    # An untrained translator is the identity (zero last conv); give it a visible change.
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 3][-1]
    with torch.no_grad():
        last.weight.normal_(0, 0.05)
        last.bias.copy_(torch.tensor([0.15, 0.05, -0.1]))
    return save_bundle(folder / attribute, model, {"attribute": attribute, "resolution": list(resolution),
                                                   "strength_range": [0.0, 3.0],
                                                   "metrics": {"heldout_pairs": {"psnr_gain_db": 3.5}}})


def textured_photo(h=480, w=640, seed=0) -> np.ndarray:
    """Smooth shading plus fine texture and hard edges: detail a blurry upsample would lose."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 37)], axis=2)
    texture = rng.random((h, w, 1)).astype(np.float32) * 0.25
    edges = ((xx // 24 + yy // 24) % 2)[..., None] * 0.2
    return (np.clip(base * 0.6 + texture + edges, 0, 1) * 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def direct_full_res(photo: np.ndarray, model, strength=1.0) -> np.ndarray:
    """The network applied to the whole full-res photo at once: the reference answer."""
    x = torch.tensor(photo).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = model(x, torch.tensor([strength]))
    return ((y[0].permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)


def test_local_affine_recovers_a_known_colour_transform_at_full_res():
    photo = textured_photo()
    truth = direct_full_res(photo, PointwiseColour())
    small_in = cv2.resize(photo, (64, 48), interpolation=cv2.INTER_AREA)
    small_out = direct_full_res(small_in, PointwiseColour())
    coef = fit_local_affine(small_in.astype(np.float32) / 255, small_out.astype(np.float32) / 255)
    carried = apply_local_affine(photo, coef)
    upsampled = cv2.resize(small_out, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_LINEAR)
    # The carried edit keeps the photo's detail; plain upsampling of the net output cannot.
    assert psnr(carried, truth) > 33
    assert psnr(carried, truth) > psnr(upsampled, truth) + 10


def test_apply_local_affine_keeps_dtype_and_identity():
    photo = textured_photo(50, 70)
    small = cv2.resize(photo, (35, 25), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    coef = fit_local_affine(small, small)
    assert np.abs(apply_local_affine(photo, coef).astype(int) - photo).max() <= 2
    photo16 = photo.astype(np.uint16) * 257
    out16 = apply_local_affine(photo16, coef)
    assert out16.dtype == np.uint16 and np.abs(out16.astype(int) - photo16).max() <= 2 * 257


def per_pixel_reference(photo: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The colour maps bilinearly upsampled to every pixel (half-pixel centres), in float64."""
    H, W, _ = photo.shape
    h, w = coef.shape[:2]
    ys = np.clip((np.arange(H) + 0.5) * h / H - 0.5, 0, h - 1)
    xs = np.clip((np.arange(W) + 0.5) * w / W - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None, None], (xs - x0)[None, :, None, None]
    c = coef.astype(np.float64)
    full = ((c[y0][:, x0] * (1 - fx) + c[y0][:, x1] * fx) * (1 - fy)
            + (c[y1][:, x0] * (1 - fx) + c[y1][:, x1] * fx) * fy)
    rgb1 = np.concatenate([photo / 255.0, np.ones((H, W, 1))], axis=2)
    return (np.clip(np.einsum("hwcj,hwj->hwc", full, rgb1), 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("hw", [(240, 320), (241, 317), (1, 7), (5, 1)])
def test_block_upsampled_colour_maps_match_per_pixel_upsampling(hw):
    """One coefficient set per 2x2 pixel block (odd sides padded) stays within rounding of
    the per-pixel bilinear upsampling it approximates, for a strong, varied change."""
    rng = np.random.default_rng(1)
    photo = textured_photo(*hw)
    small = cv2.resize(photo, (max(1, hw[1] // 10), max(1, hw[0] // 10)),
                       interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    target = np.clip(small[..., ::-1] * 1.4 - 0.1 + rng.random(small.shape, dtype=np.float32) * 0.3, 0, 1)
    coef = fit_local_affine(small, target, radius=1)
    reference = per_pixel_reference(photo, coef)
    carried = apply_local_affine(photo, coef, strip_pixels=64 * 8, threads=2)  # many strips and 2 bands
    assert carried.shape == photo.shape
    assert psnr(carried, reference) > 45 and np.abs(carried.astype(int) - reference).max() <= 10
    assert psnr(photo, reference) < 25  # the change itself is large


@pytest.mark.parametrize("hw, expect", [((3000, 4000), (32, 44)), ((1, 1), (32, 32)),
                                        ((10, 20000), (8, 128)), ((640, 448), (44, 32))])
def test_working_size_keeps_aspect_and_caps_strips(hw, expect):
    assert working_size(*hw, resolution=(32, 64), multiple=4) == expect


def test_types_sizes_and_alpha_are_kept():
    pipe = make_pipeline()
    rgba = np.dstack([textured_photo(45, 70), np.arange(45 * 70, dtype=np.uint8).reshape(45, 70)])
    out = pipe(rgba).image
    assert isinstance(out, np.ndarray) and out.shape == rgba.shape and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], rgba[..., 3])
    assert not np.array_equal(out[..., :3], rgba[..., :3])
    pil = pipe(Image.fromarray(rgba, "RGBA"), strength=0.5)
    assert isinstance(pil.image, Image.Image) and pil.image.size == (70, 45) and pil.image.mode == "RGBA"
    assert np.array_equal(np.asarray(pil.image)[..., 3], rgba[..., 3])
    grey16 = (np.arange(30 * 20, dtype=np.uint16) * 100).reshape(30, 20)
    res = pipe(grey16)
    assert res.image.dtype == np.uint16 and res.image.shape == (30, 20, 3)
    assert set(res.timings) == {"prepare_s", "network_s", "finish_s", "total_s"} and res.working_size == (48, 32)


def test_strength_zero_is_identity_and_strength_scales_the_change():
    pipe = make_pipeline()
    photo = textured_photo(90, 120)
    assert np.abs(pipe(photo, strength=0.0).image.astype(int) - photo).max() <= 1
    half = np.abs(pipe(photo, strength=0.5).image.astype(int) - photo).mean()
    full = np.abs(pipe(photo, strength=1.0).image.astype(int) - photo).mean()
    assert 0.35 * full < half < 0.65 * full and full > 5


def test_guided_and_tiled_modes_match_the_direct_full_res_network():
    photo = textured_photo(120, 200)
    model = PointwiseColour()
    truth = direct_full_res(photo, model)
    guided = make_pipeline(model)(photo).image
    # The stand-in's height ramp depends on the input height, so tiles see a different
    # ramp: use a genuinely pointwise model for the exactness check of tiling.
    flat = make_pipeline(_NoRamp(), mode="tiled", batch_size=3, tile_size=48)  # many tiles, overlaps
    tiled = flat(photo).image
    assert psnr(guided, truth) > 30  # carried edit ~ the full-res network
    assert np.abs(tiled.astype(int) - direct_full_res(photo, _NoRamp()).astype(int)).max() <= 1


class _NoRamp(torch.nn.Module):
    def forward(self, x, strength):
        y = torch.einsum("ij,njhw->nihw", WARM, x * 0.5 + 0.5) * 2 - 1
        return (x + strength.view(-1, 1, 1, 1) * (y - x)).clamp(-1, 1)


def test_real_tiny_bundle_by_name_and_path(tmp_path, monkeypatch):
    path = make_bundle(tmp_path / "models")
    monkeypatch.setenv("PHOTOEDIT_MODELS", str(tmp_path / "models"))
    by_name = EditPipeline.from_pretrained("sunny")
    by_path = EditPipeline.from_pretrained(str(path))
    photo = textured_photo(37, 91)
    a, b = by_name(photo).image, by_path(photo).image
    assert a.shape == photo.shape and np.array_equal(a, b)
    tiled_pipe = EditPipeline.from_pretrained(path, config=EditConfig(mode="tiled", tile_size=32))
    for shape in (photo.shape, (1, 1, 3), (10, 300, 3)):
        assert tiled_pipe(np.zeros(shape, np.uint8) if shape != photo.shape else photo).image.shape == shape
    with pytest.raises(FileNotFoundError, match="(?s)nosuch.*PHOTOEDIT_MODELS"):
        EditPipeline.from_pretrained("nosuch")


def test_cli_list_json_and_single_file_edit(tmp_path, capsys):
    models = tmp_path / "models"
    make_bundle(models, "sunny")
    make_bundle(models, "night", seed=1)
    assert main(["list", "--json", "--models", str(models)]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["source"] == "--models"]  # not the shipped ones
    assert {r["attribute"] for r in rows} == {"sunny", "night"}
    assert all(r["path"] and r["resolution"] == [32, 64] for r in rows)
    assert main(["list", "--models", str(models)]) == 0
    assert "pairs +3.5 dB" in capsys.readouterr().out
    src = tmp_path / "street.jpg"
    Image.fromarray(textured_photo(60, 80)).save(src)
    assert main(["-a", "sunny", "-a", "night", str(src), "--models", str(models), "--no-progress"]) == 0
    out = tmp_path / "street.sunny.night.jpg"
    assert Image.open(out).size == (80, 60)
    assert main(["-a", "sunny", str(src), "-o", str(tmp_path / "x.png"), "--models", str(models)]) == 0
    assert Image.open(tmp_path / "x.png").format == "PNG"
    assert main(["-a", "sunny", str(src), "--strength", "1,2", "--models", str(models)]) == 2
    assert "2 values for 1 attributes" in capsys.readouterr().err


def test_cli_input_typos_fail_before_torch_is_imported(tmp_path):
    """A missing file or an unknown attribute is reported without the ~2.5 s torch import."""
    import subprocess
    import sys

    code = ("import sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'torch' in sys.modules)")
    for argv, message in ((["-a", "sunny", str(tmp_path / "missing.jpg")], "no such file"),
                          (["-a", "nosuch", str(tmp_path)], "no translator for 'nosuch'")):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
        assert message in r.stderr, r.stderr
        assert r.stdout.split() == ["2", "False"], (r.stdout, r.stderr)


def test_cli_help_documents_modes_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--attribute", "x", "--help"])
    text = capsys.readouterr().out
    for needle in ("--full-res-net", "exit codes", "--shard", "--in-place", "--max-pixels", "linear in pixels"):
        assert needle in text


class ToneCurveNight(torch.nn.Module):
    """Stand-in "night": per-channel gamma curves (not affine) and a vignette (not global)."""

    def forward(self, x, strength):
        y = x * 0.5 + 0.5
        y = torch.stack([y[:, 0] ** 1.8 * 0.5, y[:, 1] ** 1.6 * 0.6, y[:, 2] ** 1.2 * 0.9], 1)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, x.shape[2]), torch.linspace(-1, 1, x.shape[3]),
                                indexing="ij")
        y = (y * (1 - 0.2 * (xx ** 2 + yy ** 2))) * 2 - 1
        return x + strength.view(-1, 1, 1, 1) * (y - x)


@pytest.mark.skipif(not REAL_PHOTOS.is_dir(), reason="../shared/realphotos not present")
@pytest.mark.parametrize("name", ["hybridnets_bdd_1.jpg", "mmdet3d_kitti_000008.png",
                                  "realesrgan_OST_009_portrait.png"])
def test_carried_edit_matches_full_res_network_on_real_photos(name):
    photo = np.asarray(Image.open(REAL_PHOTOS / name).convert("RGB"))
    model = ToneCurveNight()
    truth = direct_full_res(photo, model)
    carried = make_pipeline(model, resolution=(64, 128))(photo).image
    offset_only = make_pipeline(model, resolution=(64, 128), radius=0, eps=10.0)(photo).image
    # A non-affine edit learnt at ~64 px, carried to ~1 MP, stays close to the network run
    # on every full-res pixel, and far closer than leaving the photo unedited.
    assert psnr(carried, truth) > 35
    assert psnr(carried, truth) > psnr(photo, truth) + 15
    assert psnr(carried, truth) > psnr(offset_only, truth) + 3  # the colour matrix matters


def test_batched_network_call_equals_one_by_one(tmp_path):
    pipe = EditPipeline.from_pretrained(make_bundle(tmp_path))
    preps = [pipe.prepare(textured_photo(60, 80, seed=i)) for i in range(3)]
    together = pipe.run_network(preps, [1.0])
    for prep, out in zip(preps, together):
        np.testing.assert_allclose(pipe.run_network([prep], [1.0])[0], out, atol=1e-5)
    with pytest.raises(ValueError, match="same-size"):
        pipe.run_network([preps[0], pipe.prepare(textured_photo(60, 200))], [1.0])


class CountingColour(PointwiseColour):
    """PointwiseColour that records the batch size of every call."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x, strength):
        self.calls.append(x.shape[0])
        return super().forward(x, strength)


def test_a_list_of_images_gives_a_list_of_results_batched_by_working_size():
    model = CountingColour()
    pipe = make_pipeline(model, batch_size=2)
    same = [textured_photo(60, 80, seed=i) for i in range(3)]  # working size (32, 44)
    tall = textured_photo(120, 90, seed=3)  # working size (44, 32)
    images = [same[0], Image.fromarray(same[1]), tall, same[2]]
    results = pipe(images, strength=0.7)
    # Three same-size photos in calls of at most 2, the odd size alone: 3 calls, not 4.
    assert sorted(model.calls) == [1, 1, 2] and len(results) == 4
    assert isinstance(results[1].image, Image.Image) and isinstance(results[2].image, np.ndarray)
    assert [r.working_size for r in results] == [(32, 44), (32, 44), (44, 32), (32, 44)]
    for image, result in zip(images, results):
        alone = pipe(image, strength=0.7).image  # one photo per call
        assert np.abs(np.asarray(result.image).astype(int) - np.asarray(alone)).max() <= 1
    assert pipe([], strength=1.0) == []


def test_save_pretrained_round_trip_gives_identical_outputs(tmp_path):
    sunny, night = make_bundle(tmp_path / "in", "sunny"), make_bundle(tmp_path / "in", "night", seed=1)
    pipe = EditPipeline.from_pretrained([sunny, night], config=EditConfig(radius=3, eps=1e-3))
    saved = pipe.save_pretrained(tmp_path / "saved")
    back = EditPipeline.from_pretrained(saved)
    assert back.attributes == ["sunny", "night"] and back.config == pipe.config
    photo = textured_photo(50, 90)
    expected = pipe(photo, strength=[1.0, 0.5]).image
    assert np.array_equal(back(photo, strength=[1.0, 0.5]).image, expected)
    # The order and the config are really restored: changing either changes the output.
    swapped = EditPipeline.from_pretrained([saved / "night", saved / "sunny"], config=pipe.config)
    assert not np.array_equal(swapped(photo, strength=[0.5, 1.0]).image, expected)
    assert not np.array_equal(EditPipeline.from_pretrained([sunny, night])(photo, [1.0, 0.5]).image, expected)
    # The saved folder is also a models folder: its bundles are found by name.
    assert EditPipeline.from_pretrained("night", models_dir=saved).attributes == ["night"]
    # The same attribute twice gets two folders, not one overwritten.
    twice = EditPipeline.from_pretrained([sunny, sunny]).save_pretrained(tmp_path / "twice")
    assert EditPipeline.from_pretrained(twice).attributes == ["sunny", "sunny"]
    (tmp_path / "twice" / "pipeline.json").write_text('{"translators": []}')
    with pytest.raises(ValueError, match="pipeline.json"):
        EditPipeline.from_pretrained(twice)
    with pytest.raises(ValueError, match="PointwiseColour"):
        make_pipeline().save_pretrained(tmp_path / "standin")


def test_to_moves_every_network_and_returns_the_pipeline(tmp_path):
    pipe = EditPipeline.from_pretrained([make_bundle(tmp_path, "sunny"), make_bundle(tmp_path, "night", seed=1)])
    assert all(p.device.type == "cpu" for t in pipe.translators for p in t.model.parameters())
    assert pipe.to("meta") is pipe and pipe.device == torch.device("meta")
    assert all(p.device.type == "meta" for t in pipe.translators for p in t.model.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_to_cuda_gives_the_cpu_edit(tmp_path):
    pipe = EditPipeline.from_pretrained(make_bundle(tmp_path), config=EditConfig(half_on_cuda=False))
    photo = textured_photo(60, 80)
    cpu = pipe(photo).image
    assert np.abs(pipe.to("cuda")(photo).image.astype(int) - cpu).max() <= 2


def test_tiled_steps_keep_the_photo_and_refuse_a_reduced_copy():
    pipe = make_pipeline(_NoRamp(), mode="tiled", tile_size=32)
    photo = textured_photo(40, 70)
    prep = pipe.prepare(photo)
    assert prep.key == (40, 70) and pipe.photos_per_call == 1
    out = pipe.finish(prep, pipe.run_network([prep], 1.0)[0], photo)
    assert np.abs(out.astype(int) - direct_full_res(photo, _NoRamp()).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="reduced copy"):
        pipe.prepare(photo[::2, ::2], full_size=(40, 70))
    with pytest.raises(ValueError, match="prepared for"):
        make_pipeline().finish(make_pipeline().prepare(photo), np.zeros((32, 56, 3), np.float32), photo[:20])


def test_cli_uses_edit_config_defaults_unless_given_a_config(tmp_path, capsys, monkeypatch):
    import pipeline.config

    models = tmp_path / "models"
    make_bundle(models, "sunny")
    src = tmp_path / "street.jpg"
    Image.fromarray(textured_photo(60, 80)).save(src)
    # A shipped preset with other edit settings must not leak into `photoedit --attribute`.
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "quickstart.yaml").write_text("edit:\n  radius: 7\n  batch_size: 3\n")
    monkeypatch.setattr(pipeline.config, "CONFIG_DIR", presets)

    def dry_run(*extra):
        assert main(["-a", "sunny", str(src), "--models", str(models), "--dry-run", *extra]) == 0
        return json.loads(capsys.readouterr().out)["edit"]

    assert dry_run() == EditConfig().to_dict()
    assert dry_run("--config", "quickstart")["radius"] == 7
    own = tmp_path / "mine.yaml"
    own.write_text("edit:\n  eps: 0.01\n")
    assert dry_run("--config", str(own), "--set", "edit.radius=4") == {**EditConfig().to_dict(), "eps": 0.01,
                                                                          "radius": 4}


def test_edit_config_dry_run_and_bad_settings_answer_without_torch(tmp_path):
    """EditConfig's module, `--dry-run` and a bad `--set` never import torch (~2.5 s)."""
    import subprocess
    import sys

    models = tmp_path / "models"
    make_bundle(models, "sunny")
    src = tmp_path / "street.jpg"
    Image.fromarray(textured_photo(60, 80)).save(src)
    code = ("import sys; from pipeline.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'torch' in sys.modules)")
    base = ["-a", "sunny", str(src), "--models", str(models)]
    for extra, rc, message in ((["--dry-run"], "0", ""),
                               (["--set", "edit.x=1"], "2", "unknown key 'edit.x'"),
                               (["--set", "edit.radius=wide"], "2", "edit.radius: expected an integer"),
                               (["--set", "edit.mode=fast", "--dry-run"], "2", "edit.mode: 'fast' is not one of")):
        r = subprocess.run([sys.executable, "-c", code, *base, *extra], capture_output=True, text=True,
                           timeout=120)
        assert message in r.stderr, r.stderr
        assert r.stdout.split()[-2:] == [rc, "False"], (extra, r.stdout, r.stderr)
    r = subprocess.run([sys.executable, "-c", "import sys, translators.edit_config; print('torch' in sys.modules)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_a_bundle_carries_the_eps_it_was_measured_with(tmp_path):
    """config.json "edit": {"eps": E} sets the carry's regulariser unless the settings name
    one; with several bundles the largest wins; without any, DEFAULT_EPS."""
    import json

    from translators.edit_config import DEFAULT_EPS

    plain = make_bundle(tmp_path, "sunny", seed=1)
    smooth = make_bundle(tmp_path, "night", seed=2)
    cfg_file = smooth / "config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["edit"] = {"eps": 0.05}
    cfg_file.write_text(json.dumps(cfg))
    assert EditPipeline.from_pretrained(plain).carry_eps == DEFAULT_EPS
    assert EditPipeline.from_pretrained(smooth).carry_eps == 0.05
    assert EditPipeline.from_pretrained([plain, smooth]).carry_eps == 0.05
    assert EditPipeline.from_pretrained(smooth, config=EditConfig(eps=1e-3)).carry_eps == 1e-3
    photo = textured_photo(240, 320)
    own = EditPipeline.from_pretrained(smooth)(photo, 1.0).image
    forced = EditPipeline.from_pretrained(smooth, config=EditConfig(eps=DEFAULT_EPS))(photo, 1.0).image
    assert np.abs(own.astype(float) - forced.astype(float)).mean() > 0.05  # the recorded eps is really used
    with pytest.raises(ValueError, match="eps"):
        EditConfig(eps=0.0)
