"""The procedural street world: determinism, re-renders that change only lighting, and
attributes that move the picture the right way (measured on small renders)."""
import dataclasses
import json

import cv2
import numpy as np
import pytest

from pipeline import world
from pipeline.cli import main as cli_main
from pipeline.world import HELD_OUT_SEED_START, LABEL_IDS, STATIC_LABELS, render, sample_scene

SIZE = (48, 96)  # small 2:1 street views keep the suite fast


def luminance(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def static_masks(r) -> np.ndarray:
    return np.stack([r.masks == LABEL_IDS[k] for k in STATIC_LABELS])


def test_same_seed_same_bytes_and_record():
    a, b = sample_scene(123, "mixed"), sample_scene(123, "mixed")
    ra, rb = render(a, SIZE), render(b, SIZE)
    assert ra.image.tobytes() == rb.image.tobytes()
    assert ra.masks.tobytes() == rb.masks.tobytes()
    assert json.dumps(world.scene_record(a, ra, SIZE)) == json.dumps(world.scene_record(b, rb, SIZE))
    other = render(sample_scene(124, "mixed"), SIZE)
    assert other.image.tobytes() != ra.image.tobytes()


def test_record_round_trips_through_json():
    p = sample_scene(7, "snow")
    q = world.SceneParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q == p
    assert render(q, SIZE).image.tobytes() == render(p, SIZE).image.tobytes()


def test_conditions_share_the_street_of_a_seed():
    day, night = sample_scene(5, "day"), sample_scene(5, "night")
    assert day.buildings == night.buildings and day.cars == night.cars and day.layout == night.layout
    assert day.lighting != night.lighting


@pytest.mark.parametrize("attribute", world.ATTRIBUTES)
def test_rerender_changes_only_lighting_and_the_attribute(attribute):
    for seed in (1, 2, 3):
        p = sample_scene(seed, "mixed")
        q = p.with_attribute(attribute, 1.0)
        # Static structure untouched in the record and in the label map.
        assert dataclasses.replace(q, lighting=p.lighting) == p
        assert q.attributes()[attribute] > 0.95
        r0, r1 = render(p, SIZE), render(q, SIZE)
        assert np.array_equal(static_masks(r0), static_masks(r1))
        low = p.with_attribute(attribute, 0.0)
        assert low.attributes()[attribute] < 0.05


def test_fog_changes_far_pixels_more_than_near_ones():
    far_gain = []
    for seed in range(4):
        p = sample_scene(seed, "day")
        clear, fog = render(p, SIZE), render(p.with_attribute("foggy", 1.0), SIZE)
        diff = np.abs(luminance(fog.image) - luminance(clear.image))
        ground = np.isin(clear.masks, [LABEL_IDS["road"], LABEL_IDS["sidewalk"]])
        near, far = ground & (clear.depth < 6), ground & (clear.depth > 25) & (clear.depth < 200)
        far_gain.append(diff[far].mean() - diff[near].mean())
    assert np.mean(far_gain) > 10, far_gain


def band_contrast(r, lo, hi):
    lum = luminance(r.image)
    band = (r.depth >= lo) & (r.depth < hi) & (r.masks != LABEL_IDS["sky"])
    return lum[band].std() if band.sum() > 20 else np.nan


def test_fog_lowers_contrast_more_with_depth():
    ratios_clear, ratios_fog = [], []
    for seed in range(6):
        p = sample_scene(seed, "day")
        clear, fog = render(p, (96, 192)), render(p.with_attribute("foggy", 1.0), (96, 192))
        ratios_clear.append(band_contrast(clear, 25, 80) / band_contrast(clear, 2, 10))
        ratios_fog.append(band_contrast(fog, 25, 80) / band_contrast(fog, 2, 10))
    # Far-band contrast relative to near-band contrast collapses under fog.
    assert np.nanmean(ratios_fog) < 0.5 * np.nanmean(ratios_clear), (ratios_fog, ratios_clear)


def test_night_is_darker_than_its_day_and_lit_by_windows_and_lamps():
    ratios = []
    for seed in range(8):
        p = sample_scene(seed, "day")
        day, night = render(p, SIZE), render(p.with_attribute("night", 1.0), SIZE)
        ratios.append(luminance(night.image).mean() / luminance(day.image).mean())
        if seed >= 4:
            continue
        # The brightest night pixels are windows (building) and lamp heads, not the sky.
        lum = luminance(night.image)
        top = lum >= np.percentile(lum, 99)
        sources = np.isin(night.masks, [LABEL_IDS["building"], LABEL_IDS["light_source"], LABEL_IDS["car"],
                                        LABEL_IDS["road"], LABEL_IDS["sidewalk"]])
        assert sources[top].mean() > 0.9
    # Every night darker than its day; on average as much darker as real street photos are (the
    # camera's metering lifts the night: real night photos' grey mean is 0.44 of day photos',
    # ../shared/realphotos*; a narrow street of lit shop fronts keeps more, seed 3 ~0.9).
    # (without the metering the mean is 0.23: the world's night was near black, #12 session 11)
    assert max(ratios) < 0.95 and 0.33 < np.mean(ratios) < 0.55, ratios


def test_metering_lifts_dark_scenes_up_to_its_cap_and_leaves_bright_ones():
    from pipeline.world import camera
    from pipeline.world.scene import CameraResponse

    def develop(level, metering):
        flat = np.full((32, 64, 3), level, np.float32)
        return camera.develop(flat, CameraResponse(metering=metering), 0.0, 0).astype(float).mean()

    bright = camera.METER_TARGET * 1.5
    assert develop(bright, True) == develop(bright, False)  # a bright day: as exposed
    dim = camera.METER_TARGET / 1.5
    assert develop(dim, True) == pytest.approx(develop(camera.METER_TARGET, False), abs=1.0)  # lifted to the target
    dark = camera.METER_TARGET / (camera.METER_MAX_GAIN * 3)  # night: lifted by the cap, no more
    assert develop(dark, True) == pytest.approx(develop(dark * camera.METER_MAX_GAIN, False), abs=1.0)
    assert develop(dark, True) > 1.5 * develop(dark, False)


def test_snow_brightens_the_ground_more_than_the_facades():
    for seed in range(3):
        p = sample_scene(seed, "overcast")
        bare, snow = render(p, SIZE), render(p.with_attribute("snowy", 1.0), SIZE)
        gain = luminance(snow.image) - luminance(bare.image)
        ground = np.isin(bare.masks, [LABEL_IDS["road"], LABEL_IDS["sidewalk"]]) & (bare.depth < 40)
        facade = bare.masks == LABEL_IDS["building"]
        assert gain[ground].mean() > 40
        assert gain[ground].mean() > 3 * abs(gain[facade].mean())


def test_sunny_casts_hard_shadows_overcast_does_not():
    from pipeline.world.renderer import ambient_occlusion, camera_from, draw_shadows, light_from

    ratio = {"sunny": [], "overcast": []}
    for seed in range(8):
        p = sample_scene(seed, "day")
        sunny = p.with_attribute("sunny", 1.0)
        cam = camera_from(sunny, 96, 192)
        # Interior of the shadows only: their 1-px soft edges are neither lit nor shaded.
        shadows = draw_shadows(sunny, cam, light_from(sunny))[0]
        # ... and away from the contact darkening of ambient occlusion (tested on its own).
        open_sky = ambient_occlusion(render(p, (96, 192)).masks, 96) > 0.999
        shade = (cv2.erode(shadows, np.ones((3, 3), np.uint8)) > 0) & open_sky
        lit = (cv2.dilate(shadows, np.ones((3, 3), np.uint8)) == 0) & open_sky
        for a in ratio:
            r = render(p.with_attribute(a, 1.0), (96, 192))
            road = (r.masks == LABEL_IDS["road"]) & (r.depth < 40)
            if (road & shade).sum() < 30 or (road & lit).sum() < 30:  # a few pixels may all be road paint
                continue
            lum = luminance(r.image)
            ratio[a].append(np.median(lum[road & shade]) / np.median(lum[road & lit]))
    # The same road pixels: much darker than their sunlit neighbours under the sun,
    # about the same under an overcast sky.
    assert len(ratio["sunny"]) >= 2
    assert np.mean(ratio["sunny"]) < 0.6 and np.mean(ratio["overcast"]) > 0.85, ratio


def test_shadows_fall_away_from_the_sun():
    from pipeline.world.renderer import camera_from, draw_shadows, light_from

    p = sample_scene(11, "day").with_lighting(sun_elevation=25.0, cloud_cover=0.0, fog_density=0.0)
    cols = {}
    for az in (-80.0, 80.0):  # sun on the left, then on the right
        q = p.with_lighting(sun_azimuth=az)
        cam = camera_from(q, 64, 128)
        ground, _ = draw_shadows(q, cam, light_from(q))
        ys, xs = np.nonzero(ground[int(cam.hor) + 4:])
        cols[az] = xs.mean() - cam.vp
    # Sun on the left: the left row of buildings shades the road, right of the vanishing point, and vice versa.
    assert cols[-80.0] > cols[80.0] + 5, cols


@pytest.mark.parametrize("size", [(32, 64), (64, 32), (40, 40), (24, 96)])
def test_non_square_sizes(size):
    p = sample_scene(3, "mixed")
    r = render(p, size)
    assert r.image.shape == (*size, 3) and r.image.dtype == np.uint8
    assert r.masks.shape == size and r.depth.shape == size
    # The horizon sits where the record says: sky above it, ground below it.
    row = int(p.layout.horizon_y * size[0])
    assert (r.masks[min(row + 3, size[0] - 1)] != LABEL_IDS["sky"]).all()
    assert set(np.unique(r.masks)) <= set(world.LABELS)


def test_parse_size():
    assert world.parse_size("128x256") == (128, 256)
    assert world.parse_size(64) == (64, 64)
    with pytest.raises(ValueError, match="HxW"):
        world.parse_size("12x")


def test_with_attribute_rejects_unknown_names_and_values():
    p = sample_scene(0)
    with pytest.raises(ValueError, match="unknown attribute"):
        p.with_attribute("rainy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        p.with_attribute("night", 2.0)


def test_render_batch_records_carry_layout_and_counts():
    images, records = world.render_batch([10, 11, 12], (16, 32))
    assert images.shape == (3, 16, 32, 3)
    for seed, r in zip([10, 11, 12], records):
        assert set(r["attributes"]) == set(world.ATTRIBUTES)
        assert all(0.0 <= v <= 1.0 for v in r["attributes"].values())
        assert 0 < r["layout"]["horizon_y"] < 1 and 0 < r["layout"]["vanishing_x"] < 1
        # the counts are the scene's own objects within 80 m, not just any numbers
        params = world.sample_scene(seed)
        assert r["counts"]["cars"] == sum(1 for c in params.cars if c.z < 80.0)
        assert r["counts"]["trees"] == sum(1 for t in params.trees if t.z < 80.0)
    assert len({json.dumps(r["counts"], sort_keys=True) for r in records}) > 1  # scenes differ


def test_world_dataset_seeds_disjoint_across_ranks_and_workers():
    from pipeline.world.dataset import WorldDataset

    seen = []
    for rank in range(2):
        ds = WorldDataset(16, seed=0, rank=rank, world_size=2, length=40)
        for wid in range(3):
            seen.append(set(ds.seeds(wid, 3)))
    union = set().union(*seen)
    assert sum(len(s) for s in seen) == len(union) == 40
    held = WorldDataset(16, held_out=True, length=5)
    assert min(held.seeds()) >= HELD_OUT_SEED_START
    with pytest.raises(ValueError):
        WorldDataset(16, seed=HELD_OUT_SEED_START - 2, length=10)


def test_world_dataset_streams_tensors_through_a_dataloader():
    import torch

    from pipeline.world.dataset import WorldDataset

    ds = WorldDataset((16, 32), seed=100, rank=1, world_size=2, length=8, with_record=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    items = list(loader)
    seeds = sorted(rec["seed"] for _, rec in items)
    assert seeds == [102, 103, 106, 107]  # rank 1 of 2, workers 0 and 1 of 2: offsets 2, 3 of every 4
    x = items[0][0]
    assert x.shape == (3, 16, 32) and x.min() >= -1 and x.max() <= 1


def test_cli_writes_images_masks_records_manifest(tmp_path):
    out = tmp_path / "w"
    sheet = tmp_path / "sheet.png"
    assert cli_main(["world", "--n", "3", "--size", "16x32", "--out", str(out), "--seed", "4",
                     "--contact-sheet", str(sheet)]) == 0
    from PIL import Image

    assert Image.open(out / "images" / "000002.png").size == (32, 16)
    mask = np.asarray(Image.open(out / "masks" / "000000.png"))
    assert mask.shape == (16, 32) and mask.max() < len(world.LABELS)
    rec = json.loads((out / "records" / "000001.json").read_text())
    assert rec["seed"] == 5 and set(rec["attributes"]) == set(world.ATTRIBUTES)
    man = json.loads((out / "manifest.json").read_text())
    assert man["n"] == 3 and man["labels"]["0"] == "sky" and man["seeds"] == [4, 7]
    table = np.load(out / "attributes.npz", allow_pickle=False)
    assert table["night"].shape == (3,) and list(table["seeds"]) == [4, 5, 6]
    assert sheet.is_file()
    assert not list(out.rglob("*.tmp"))


def test_worker_processes_write_the_same_folder_as_one(tmp_path, capsys):
    """Chunks rendered by 2 processes give byte-identical files, the same table (in seed
    order) and the same contact sheet as one process."""
    from pipeline.world.folder import CHUNK, render_folder

    cfg = world.WorldConfig(size=(16, 32), seed=7, condition="mixed")
    n = 2 * CHUNK + 5  # three chunks, the last one short
    for workers in (1, 2):
        render_folder(tmp_path / f"w{workers}", n, cfg, contact_sheet=str(tmp_path / f"s{workers}.png"),
                      workers=workers)
    one, two = tmp_path / "w1", tmp_path / "w2"
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert len(files) == 3 * n + 1
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file() and p.name != "manifest.json")
    for f in files:
        if f.suffix != ".npz":
            assert (one / f).read_bytes() == (two / f).read_bytes(), f
    t1, t2 = (np.load(d / "attributes.npz", allow_pickle=False) for d in (one, two))
    assert list(t1["seeds"]) == list(range(7, 7 + n)) and sorted(t1.files) == sorted(t2.files)
    for k in t1.files:
        np.testing.assert_array_equal(t1[k], t2[k])
    assert (tmp_path / "s1.png").read_bytes() == (tmp_path / "s2.png").read_bytes()


def test_cli_bad_input_is_a_user_error(tmp_path, capsys):
    assert cli_main(["world", "--n", "2", "--out", str(tmp_path), "--set", "world.colour=3"]) == 2
    assert "world.colour" in capsys.readouterr().err
    assert cli_main(["world", "--n", "2", "--out", str(tmp_path), "--size", "big"]) == 2
    f = tmp_path / "file"
    f.write_text("x")
    assert cli_main(["world", "--n", "2", "--out", str(f)]) == 2


def _ddp_worker(rank: int, world_size: int, tmp: str) -> None:
    import torch.distributed as dist

    from pipeline.world.dataset import WorldDataset

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=world_size)
    try:
        seeds = list(WorldDataset(16, seed=0, length=10).seeds())  # rank/world_size from the process group
        with open(f"{tmp}/rank{rank}.json", "w") as f:
            json.dump(seeds, f)
    finally:
        dist.destroy_process_group()


def test_world_dataset_under_ddp_gloo_two_processes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    a, b = (set(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in range(2))
    assert a and b and not a & b and a | b == set(range(10))


# ----------------------------------------------------------------------------------
# Issue 13: camera, textures, layouts, rain, the night's own light


def ideal_camera(p):
    """The scene seen by a camera that changes nothing: isolates the scene's own light."""
    from pipeline.world.scene import CameraResponse

    return dataclasses.replace(p, camera=CameraResponse())


def test_camera_is_part_of_the_record_and_kept_by_rerenders():
    p = sample_scene(21, "mixed")
    assert p.camera != world.SceneParams.__dataclass_fields__["camera"].default_factory()
    for attribute in world.ATTRIBUTES:
        assert p.with_attribute(attribute, 1.0).camera == p.camera
    assert sample_scene(21, "night").camera == sample_scene(21, "day").camera
    q = world.SceneParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q.camera == p.camera


def test_camera_vignette_noise_and_jpeg():
    from pipeline.world.camera import develop, tone_curve
    from pipeline.world.scene import CameraResponse

    flat = np.full((64, 128, 3), 0.4, np.float32)
    vig = luminance(develop(flat.copy(), CameraResponse(vignette=0.4), 0.0, 0))
    assert vig[:4, :4].mean() < vig[28:36, 60:68].mean() - 10  # corners darker than the centre
    day = luminance(develop(flat.copy(), CameraResponse(noise=0.01), 0.0, 5))
    night = luminance(develop(flat.copy(), CameraResponse(noise=0.01), 1.0, 5))
    assert night.std() > 2.5 * day.std() > 0  # the gain a camera needs in the dark
    ramp = np.tile(np.linspace(0.05, 0.9, 128, dtype=np.float32)[None, :, None], (64, 1, 3))
    raw = develop(ramp.copy(), CameraResponse(), 0.0, 0)
    jpeg = develop(ramp.copy(), CameraResponse(jpeg_quality=60), 0.0, 0)
    diff = np.abs(raw.astype(int) - jpeg.astype(int))
    assert diff.max() > 0 and diff.mean() < 3  # lossy, but close
    x = np.linspace(0, 4, 200)
    y = tone_curve(x, 1.2)
    assert np.all(np.diff(y) >= 0) and y[-1] < 1.0 and abs(tone_curve(np.array([0.35]), 1.2)[0] - 0.35) < 1e-6


def test_textures_are_mean_one_and_only_where_a_surface_has_one():
    from pipeline.world.surfaces import TEX, texture_multiplier

    kinds = np.zeros((256, 512), np.uint8)  # the right half covers one whole tile
    kinds[:, 256:] = TEX["asphalt"]
    m = texture_multiplier(kinds, 1234)
    assert np.all(m[:, :256] == 1.0)
    assert 0.97 < m[:, 256:].mean() < 1.03 and m[:, 256:].std() > 0.05
    assert np.array_equal(m, texture_multiplier(kinds, 1234))


def test_layout_kinds_draw_their_ground():
    seen = {}
    for seed in range(60):
        p = sample_scene(seed, "day")
        seen.setdefault(p.layout.kind, p)
    assert set(seen) == set(world.scene.LAYOUT_KINDS)
    terrain = {k: (render(p, SIZE).masks == LABEL_IDS["terrain"]).mean() for k, p in seen.items()}
    assert not seen["open_road"].buildings
    assert terrain["open_road"] > 0.05 and terrain["suburb"] > 0.02
    row = int(seen["street"].layout.horizon_y * SIZE[0]) + 2
    assert (render(seen["street"], SIZE).masks[row:] != LABEL_IDS["terrain"]).all()  # town: paved


def test_rain_darkens_the_road_underfoot_and_makes_the_far_road_shine():
    near_gain, far_gain = [], []
    for seed in range(4):
        p = ideal_camera(sample_scene(seed, "overcast")).with_lighting(rain=0.0)
        dry, wet = render(p, (64, 128)), render(p.with_lighting(rain=1.0), (64, 128))
        road = dry.masks == LABEL_IDS["road"]
        near, far = road & (dry.depth < 8), road & (dry.depth > 30) & (dry.depth < 150)
        if near.sum() < 10 or far.sum() < 10:
            continue
        ld, lw = luminance(dry.image), luminance(wet.image)
        near_gain.append(lw[near].mean() / ld[near].mean())
        far_gain.append(lw[far].mean() / ld[far].mean())
    assert len(near_gain) >= 2
    assert np.mean(near_gain) < 0.85 and np.mean(far_gain) > np.mean(near_gain) + 0.1, (near_gain, far_gain)


def test_headlights_light_the_road_ahead_at_night(monkeypatch):
    from pipeline.world import renderer

    p = ideal_camera(sample_scene(8, "night")).with_lighting(rain=0.0)
    with_beams = render(p, (64, 128))
    monkeypatch.setattr(renderer, "HEADLIGHTS", np.zeros(3, np.float32))
    without = render(p, (64, 128))
    cam = renderer.camera_from(p, 64, 128)
    x = renderer.ground_xz(with_beams.depth, cam)
    ahead = (with_beams.masks == LABEL_IDS["road"]) & (with_beams.depth > 3) & (with_beams.depth < 15) \
        & (np.abs(x - cam.cx) < 1.5)
    assert ahead.sum() > 10
    lum_on, lum_off = luminance(with_beams.image)[ahead].mean(), luminance(without.image)[ahead].mean()
    assert lum_on > 1.5 * lum_off + 5, (lum_on, lum_off)


def _furnished(seed: int = 2):
    """A day scene with one pedestrian, one sign and one traffic light placed near the camera."""
    from pipeline.world.scene import Pedestrian, Sign, TrafficLight

    p = sample_scene(seed, "day")
    rw = p.layout.road_half_width
    return dataclasses.replace(p, pedestrians=[Pedestrian(rw + 1.2, 8.0, 1.8, (0.6, 0.1, 0.1), (0.1, 0.1, 0.2), 0.6)],
                               signs=[Sign(-1, 9.0, 2.4, 0.7, 0)], traffic_lights=[TrafficLight(1, 11.0, 2.5, 2)])


def test_signs_traffic_lights_and_people_appear_in_the_label_map_where_they_stand():
    p = _furnished()
    bare = dataclasses.replace(p, pedestrians=[], signs=[], traffic_lights=[])
    r, r0 = render(p, (96, 192)), render(bare, (96, 192))
    for name in ("person", "traffic_sign", "traffic_light"):
        assert (r.masks == LABEL_IDS[name]).sum() >= 4, name
        assert (r0.masks == LABEL_IDS[name]).sum() == 0, name
    cols = np.nonzero(r.masks == LABEL_IDS["person"])[1]
    vp = p.layout.vanishing_x * 192
    assert cols.min() > vp  # the pedestrian stands on the right pavement, the sign on the left
    assert np.nonzero(r.masks == LABEL_IDS["traffic_sign"])[1].max() < vp
    # Their posts are poles, and nothing else of the picture moved.
    assert (r.masks == LABEL_IDS["pole"]).sum() > (r0.masks == LABEL_IDS["pole"]).sum()
    changed = r.masks != r0.masks
    new = np.isin(r.masks, [LABEL_IDS[k] for k in ("person", "traffic_sign", "traffic_light", "pole")])
    assert new[changed].all()


@pytest.mark.parametrize("attribute", world.ATTRIBUTES)
def test_rerender_keeps_the_new_objects_labels(attribute):
    p = _furnished()
    q = p.with_attribute(attribute, 1.0)
    assert (q.signs, q.traffic_lights, q.pedestrians) == (p.signs, p.traffic_lights, p.pedestrians)
    a, b = render(p, (96, 192)).masks, render(q, (96, 192)).masks
    for name in ("person", "traffic_sign", "traffic_light", "pole"):
        assert np.array_equal(a == LABEL_IDS[name], b == LABEL_IDS[name]), name


def test_the_lit_signal_shines_at_night_and_the_others_do_not():
    p = _furnished().with_attribute("night", 1.0)
    from pipeline.world.scene import TrafficLight

    lum = {}
    for state in (0, 2):  # red on top, green at the bottom
        q = dataclasses.replace(p, traffic_lights=[TrafficLight(1, 11.0, 2.5, state)])
        r = render(q, (192, 384))
        ys, xs = np.nonzero(r.masks == LABEL_IDS["traffic_light"])
        top, bottom = ys < np.median(ys), ys > np.median(ys)
        img = r.image.astype(np.float32)
        lum[state] = (img[ys[top], xs[top]].mean(0), img[ys[bottom], xs[bottom]].mean(0))
    red_top, green_bottom = lum[0][0], lum[2][1]
    assert red_top[0] > red_top[1] + 20 and green_bottom[1] > green_bottom[0] + 20
    assert lum[0][0].sum() > lum[2][0].sum() + 30  # the top lamp is dark when green shows


def test_streets_have_bends_and_cross_streets_and_records_of_old_worlds_still_load():
    scenes = [sample_scene(s, "mixed") for s in range(200)]
    assert 0.15 < np.mean([p.layout.curve != 0 for p in scenes]) < 0.6
    junctions = [p for p in scenes if p.layout.junction_z > 0]
    assert 0.15 < len(junctions) / len(scenes) < 0.6
    for p in junctions:  # nothing stands in the cross street
        a, b = p.layout.junction_z, p.layout.junction_z + p.layout.junction_width
        assert all(x.z1 < a or x.z0 > b for x in p.buildings)
        assert all(not a < t.z < b for t in p.trees)
    assert sum(len(p.pedestrians) for p in scenes) > 100 and sum(len(p.signs) for p in scenes) > 100
    # A record written before these fields existed reads as a straight street without them.
    d = scenes[0].to_dict()
    for k in ("signs", "traffic_lights", "pedestrians"):
        d.pop(k)
    for k in ("curve", "junction_z", "junction_width"):
        d["layout"].pop(k)
    old = world.SceneParams.from_dict(d)
    assert old.layout.curve == 0 and old.signs == [] and old.pedestrians == []


def test_a_bend_moves_the_far_road_sideways_and_keeps_the_near_road():
    p = sample_scene(4, "day")
    p = dataclasses.replace(p, layout=dataclasses.replace(p.layout, curve=0.0, junction_z=0.0, hood=0.0))
    size = (96, 192)
    centre = {}
    for curve in (-0.01, 0.0, 0.01):
        r = render(dataclasses.replace(p, layout=dataclasses.replace(p.layout, curve=curve)), size)
        road = r.masks == LABEL_IDS["road"]
        rows = {}
        for name, (lo, hi) in {"near": (0, 8), "far": (40, 80)}.items():
            sel = road & (r.depth >= lo) & (r.depth < hi)
            rows[name] = np.nonzero(sel)[1].mean()
        centre[curve] = rows
        # Depth of the road still follows the ground plane: rows further down are nearer.
        col = r.depth[:, int(p.layout.vanishing_x * 192)]
        ground = road[:, int(p.layout.vanishing_x * 192)]
        assert np.all(np.diff(col[ground]) <= 1e-3)
    assert centre[0.01]["far"] > centre[0.0]["far"] + 5 > centre[-0.01]["far"] + 10  # bends right / left
    assert abs(centre[0.01]["near"] - centre[0.0]["near"]) < 3


def test_world_version_follows_the_renders_and_keys_the_gan_stage(monkeypatch):
    from pipeline.run.stages import world_key
    from pipeline.world import renderer, version

    version.world_version.cache_clear()
    v = version.world_version()
    assert v.startswith(f"{version.WORLD_VERSION}-") and world_key("world") == {"world_version": v}
    assert world_key("/some/photo/folder") == {}
    monkeypatch.setattr(renderer, "ASPHALT", (0.3, 0.25, 0.26))  # a redder road: other renders
    version.world_version.cache_clear()
    try:
        assert version.world_version() != v and world_key("world") != {"world_version": v}
    finally:
        monkeypatch.undo()
        version.world_version.cache_clear()
    assert version.world_version() == v


def test_woods_stand_beside_the_open_road_and_leave_it_visible():
    p = next(q for q in (sample_scene(s, "day") for s in range(100)) if q.layout.kind == "open_road"
             and q.layout.woods > 0)
    bare = dataclasses.replace(p, layout=dataclasses.replace(p.layout, woods=0.0), trees=[])
    woods = dataclasses.replace(p, trees=[])
    a, b = render(bare, (96, 192)), render(woods, (96, 192))
    veg = LABEL_IDS["vegetation"]
    assert (a.masks == veg).sum() == 0 and (b.masks == veg).sum() > 0.02 * a.masks.size
    # The woods replace sky and far ground only, at their own depth; the road ahead still shows.
    changed = a.masks != b.masks
    assert np.isin(a.masks[changed], [LABEL_IDS[k] for k in ("sky", "terrain", "car", "pole", "traffic_sign")]).all()
    assert np.allclose(b.depth[changed & (b.masks == veg)], p.layout.woods_depth, rtol=0.02)
    assert (b.masks == LABEL_IDS["road"]).sum() > 0.9 * (a.masks == LABEL_IDS["road"]).sum()


def test_ambient_occlusion_darkens_ground_at_walls_under_any_sky():
    """The same road and pavement pixels are darker next to buildings and cars than in the open,
    under an overcast sky too (sky light is what occlusion removes), and nothing else changes."""
    from pipeline.world import camera, renderer as R

    seen = 0
    for seed in range(6):
        p = sample_scene(seed, "overcast")
        with pytest.MonkeyPatch.context() as mp:  # the darker corners would change what the metering sets
            mp.setattr(camera, "METER_MAX_GAIN", 1.0)
            r = render(p, (96, 192))
        ao = R.ambient_occlusion(r.masks, 96)
        ground = np.isin(r.masks, [LABEL_IDS["road"], LABEL_IDS["sidewalk"]])
        corner, open_ = ground & (ao < 0.95), ground & (ao > 0.999)
        assert (ao[~ground & (r.masks != LABEL_IDS["terrain"])] == 1).all()
        if corner.sum() < 20 or open_.sum() < 20:
            continue
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(camera, "METER_MAX_GAIN", 1.0)
            mp.setattr(R, "AO_STRENGTH", 0.0)
            flat = render(p, (96, 192))
        lum, lum0 = luminance(r.image), luminance(flat.image)
        assert np.median(lum[corner] / np.maximum(lum0[corner], 1e-3)) < 0.97
        assert np.median(np.abs(lum[open_] - lum0[open_])) < 1e-3  # the open ground keeps its light
        assert (flat.masks == r.masks).all()
        seen += 1
    assert seen >= 2


def test_world_images_in_worker_processes_equal_one_process(tmp_path, monkeypatch):
    """The GAN's training renders (32k on a GPU machine) come from worker processes; the
    array must not depend on how many."""
    from pipeline.world.folder import world_images

    monkeypatch.setenv("PHOTOEDIT_CACHE", str(tmp_path))
    one = world_images((24, 48), 5, 70, cache=False, workers=1)
    two = world_images((24, 48), 5, 70, cache=False, workers=2)  # batches of 64: 64 + 6
    assert one.shape == (70, 24, 48, 3) and one.std() > 0
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one[:6], world_images((24, 48), 6, 6, cache=False, workers=1))  # seeds matter
